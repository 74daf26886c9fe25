"""The one interface of a task recipe, as the CLI uses it.

Every module in :mod:`skimviz.tasks` ends with ``TASK_SPEC = Task(...)``: its ``train <name>``
subcommand, the ``task`` field of the cards it writes, and the three commands. The registry
(:mod:`skimviz.tasks`: ``TASKS``, ``get``, ``by_card_task``) hands them to ``skimviz.cli``, which
has no per-task code for ``train``, ``evaluate`` or ``predict``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

Args = argparse.Namespace


def no_checks(args: Args) -> str | None:
    """``check_train_args`` of a task whose options need no cross-checks."""
    return None


def no_predict(model: torch.nn.Module, card: dict, args: Args) -> int:
    """``predict_command`` of a task that predicts nothing per input from the CLI."""
    raise ValueError(f"predict runs MNIST digit and text checkpoints; {args.name} is a "
                     f"{card['task']!r} model: use evaluate")


@dataclass(frozen=True)
class Task:
    """One task: its names and its three commands (each reads the parsed command line ``args``).

    * ``name``: the ``skimviz train <name>`` subcommand (mnist, adding, frequency, frames, text,
      transkimmer).
    * ``card_task``: the ``task`` field of its checkpoints' cards (how ``evaluate`` and
      ``predict`` find the task of a checkpoint).
    * ``train_command(args) -> int``: ``skimviz train <name> ...``; the exit code.
    * ``evaluate_command(model, card, args) -> dict``: ``skimviz evaluate NAME``: the metrics the
      CLI prints. Reads ``args.name``, ``args.split``, ``args.data_dir``, ``args.threshold``; an
      option that does not apply to the task is refused with a ``ValueError``.
    * ``predict_command(model, card, args) -> int``: ``skimviz predict NAME``: prints one result
      per input (``args.input``, ``args.index``, ``args.threshold``, ``args.json``); the exit
      code. Default: :func:`no_predict` (a ``ValueError``: use evaluate).
    * ``check_train_args(args) -> str | None``: rules between ``train <name>``'s options, checked
      before any work; the message of the first one broken (the CLI exits with a usage error),
      else None. Default: :func:`no_checks`.
    """
    name: str
    card_task: str
    train_command: Callable[[Args], int]
    evaluate_command: Callable[[torch.nn.Module, dict, Args], dict]
    predict_command: Callable[[torch.nn.Module, dict, Args], int] = no_predict
    check_train_args: Callable[[Args], "str | None"] = no_checks


def print_result(obj: dict, as_json: bool) -> None:
    """A command's result: one JSON object, or one ``key: value`` line per item."""
    if as_json:
        print(json.dumps(obj))
    else:
        for k, v in obj.items():
            print(f"{k:>28}: {v}")
