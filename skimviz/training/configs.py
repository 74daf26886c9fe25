"""Training recipes as files: ``configs/<checkpoint>.toml`` is the training command of one shipped
checkpoint, and ``skimviz train --config configs/<checkpoint>.toml --data-dir ...`` runs it.

A config names the task and the recipe's options, spelled as on the command line without the
dashes (``lam-warmup-epochs`` or ``lam_warmup_epochs``); ``true`` is a flag that is given,
``false`` one that is not::

    task = "mnist"

    [args]
    name = "skip-gru-mnist"
    lam = 1e-4
    batch-size = 256

What depends on the run and not on the recipe (``RUN_OPTIONS``: threads, where data, states and
checkpoints are, time limits, resuming) is refused in a config and given on the command line.
Options on the command line after ``--config FILE`` are added to the recipe's, and win where both
give one (argparse keeps the last). Every value is checked by the task's own parser, as typed
options are: a config cannot do what the command line cannot. The export records the config's
path and SHA-256 in the card (``training.config``), next to the command that ran.
"""
from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from skimviz.safety import InputError, shorten, strip_controls

MAX_BYTES = 64 * 1024
# Options of a run rather than of the recipe: never in a config.
RUN_OPTIONS = {"threads", "data-dir", "work", "out", "max-minutes", "resume", "dry-run",
               "reexport", "config"}
# The config of the current command (set by the CLI before it runs; recorded by exports).
current: Optional[Dict[str, str]] = None


def label(text: str) -> str:
    """A user string as a short, inert piece of a one-line message."""
    return shorten(strip_controls(str(text)), 80)


def _value_args(key: str, value) -> List[str]:
    opt = "--" + key
    if isinstance(value, bool):
        return [opt] if value else []
    if isinstance(value, (int, float, str)):
        return [opt, str(value)]
    raise InputError(f"option {label(key)!r}: a config value must be a number, a string or "
                     f"true/false, not a {type(value).__name__}")


def load(path: str | Path) -> Tuple[str, List[str], str]:
    """(task, the recipe as command-line arguments, the file's SHA-256)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--config {label(str(path))}: no such file")
    data = p.read_bytes()
    if len(data) > MAX_BYTES:
        raise InputError(f"--config {label(str(path))}: larger than {MAX_BYTES // 1024} KiB")
    try:
        cfg = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"--config {label(str(path))}: not a TOML file ({label(str(e))})")
    unknown = set(cfg) - {"task", "args"}
    if unknown:
        raise InputError(f"--config {label(str(path))}: unknown top-level key(s) "
                         f"{', '.join(sorted(label(k) for k in unknown))} (expected task, [args])")
    task = cfg.get("task")
    if not isinstance(task, str) or not task:
        raise InputError(f"--config {label(str(path))}: no task (e.g. task = \"mnist\")")
    args = cfg.get("args", {})
    if not isinstance(args, dict):
        raise InputError(f"--config {label(str(path))}: [args] must be a table")
    argv: List[str] = []
    for key, value in args.items():
        k = key.replace("_", "-")
        if k in RUN_OPTIONS:
            raise InputError(f"--config {label(str(path))}: --{label(k)} belongs to the run, "
                             "not the recipe: give it on the command line")
        argv += _value_args(k, value)
    return task, argv, hashlib.sha256(data).hexdigest()


def expand(argv: List[str]) -> Tuple[List[str], Optional[Dict[str, str]]]:
    """``train --config FILE [options]`` -> ``train <task> <recipe> [options]``, and what the
    card records of the config; any other command line unchanged (and None)."""
    if not argv or argv[0] != "train" or not any(a == "--config" or a.startswith("--config=")
                                                  for a in argv[1:]):
        return argv, None
    rest, path = [], None
    it = iter(argv[1:])
    for a in it:
        if a == "--config" or a.startswith("--config="):
            if path is not None:
                raise InputError("--config given twice")
            path = a.split("=", 1)[1] if "=" in a else next(it, None)
            if not path:
                raise InputError("--config needs a file (configs/<checkpoint>.toml)")
        else:
            rest.append(a)
    task, recipe, digest = load(path)
    if rest and not rest[0].startswith("-"):
        raise InputError(f"train --config: the task comes from the config ({label(task)}); "
                         f"drop {label(rest[0])!r}")
    return ["train", task, *recipe, *rest], {"path": str(path), "sha256": digest}
