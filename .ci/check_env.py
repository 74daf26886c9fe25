"""Fail (exit 1) unless the virtualenv holds the CPU build of torch 2.13.0 and no CUDA packages.

Run by the Makefile after every install (and before `make run` / `make test`). It reads the same
installed-distribution metadata that `pip list` prints, without importing torch (fast).
Usage: .venv/bin/python .ci/check_env.py
"""
from __future__ import annotations

import re
import sys
from importlib import metadata

TORCH = "2.13.0"
ALLOWED_LOCAL = {None, "cpu"}  # "2.13.0+cpu" (the CPU wheel) or a plain "2.13.0"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    installed = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            installed[_norm(name)] = dist.version
    problems = []
    torch = installed.get("torch")
    if torch is None:
        problems.append(f"torch is not installed (want {TORCH}, CPU build)")
    else:
        public, _, local = torch.partition("+")
        if public != TORCH or (local or None) not in ALLOWED_LOCAL:
            problems.append(f"torch {torch} is installed; want {TORCH} (CPU build)")
    cuda = sorted(f"{n}=={v}" for n, v in installed.items() if n.startswith("nvidia-"))
    if cuda:
        problems.append("CUDA packages are installed (this project is CPU-only): " + ", ".join(cuda))
    if problems:
        for p in problems:
            print(f"check_env: ERROR: {p}", file=sys.stderr)
        print("check_env: fix: rm -rf .venv && make test   (torch must come from the CPU wheel; "
              "see the Makefile)", file=sys.stderr)
        return 1
    print(f"check_env: ok (torch {torch}, no nvidia-* packages, python "
          f"{sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
