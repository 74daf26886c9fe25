"""Shared pytest configuration for the whole suite (unit, AppTest and browser tests).

- Tests under ``tests/browser/`` get the ``browser`` marker automatically, so
  ``pytest -m "not browser"`` runs everything that needs no Chromium.
- Hypothesis: no per-example deadline (this runs on small, busy CI machines where a torch op can
  take a second); under CI (``CI`` set) examples are derandomized so a run is reproducible.
- ``REPO_ROOT`` / ``repo_root``: the repository root, for tests that need files by path.
- Under pytest-xdist (``make test`` runs two workers), each worker's torch uses one thread: two
  workers of two threads each on two cores would oversubscribe them (OpenMP threads spin while
  they wait). A test that needs more threads sets them itself.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BROWSER_DIR = REPO_ROOT / "tests" / "browser"

try:  # hypothesis is a test requirement, but keep the suite importable without it
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover
    settings = None

if settings is not None:
    settings.register_profile(
        "skimviz", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "ci", parent=settings.get_profile("skimviz"), derandomize=True, print_blob=True
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                          or ("ci" if os.environ.get("CI") else "skimviz"))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if BROWSER_DIR in path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def cpp():
    """torch.ops.skimviz (the SRU and Skip RNN C++ ops), building the extension first if
    needed; skips the test, with the compiler's reason, if it cannot be built or loaded."""
    from skimviz import _ext

    if _ext.load() is None:
        try:
            _ext.build()
        except Exception as exc:  # no compiler, missing headers, compile error…
            pytest.skip(f"C++ extension not built, and building it here failed "
                        f"({type(exc).__name__}: {str(exc)[-800:]})")
    ops = _ext.load()
    if ops is None:
        pytest.skip(f"C++ extension at {_ext.library_path()} could not be loaded")
    return ops
