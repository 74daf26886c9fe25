"""Task recipes (data + training + evaluation) used by the CLI and the app.

The registry: each task module defines ``TASK_SPEC``, a :class:`~skimviz.tasks.base.Task`
(``name``, ``card_task``, ``train_command``, ``evaluate_command``, ``predict_command``).
``TASKS`` maps the ``train`` subcommand name to it, ``get(name)`` returns one and
``by_card_task(card['task'])`` finds a checkpoint's. The modules are imported on first use
(``from skimviz.tasks import mnist`` imports that module only).
"""
from __future__ import annotations

import importlib
from typing import Dict, Optional

from skimviz.tasks.base import Task

#: ``train <task>`` subcommand → its module in this package (the one list of tasks).
MODULES = {"mnist": "mnist", "adding": "adding", "frequency": "frequency", "frames": "frames",
           "text": "skim_text", "transkimmer": "transkimmer"}


def module(name: str):
    """The module of the task ``name`` (a ``train`` subcommand)."""
    if name not in MODULES:
        raise ValueError(f"unknown task {name!r}; known: {sorted(MODULES)}")
    return importlib.import_module(f"{__name__}.{MODULES[name]}")


def get(name: str) -> Task:
    """The :class:`Task` of a ``train`` subcommand name (ValueError if unknown)."""
    return module(name).TASK_SPEC


def by_card_task(card_task) -> Optional[Task]:
    """The :class:`Task` whose checkpoints have this card ``task`` field, or None."""
    return next((t for t in _tasks().values() if t.card_task == card_task), None)


def _tasks() -> Dict[str, Task]:
    return {name: get(name) for name in MODULES}


def __getattr__(attr: str):
    # ``TASKS`` (name → Task) and ``CARD_TASKS`` (card task → name) import every task module,
    # so they are built when first read rather than when the package is imported.
    if attr == "TASKS":
        return _tasks()
    if attr == "CARD_TASKS":
        return {t.card_task: name for name, t in _tasks().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
