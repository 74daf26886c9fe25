"""argparse ``type=`` validators for the command line: every argument is checked while it is
parsed, so a bad value is one argparse usage error (exit code 2) before any work starts —
never a folder created outside ``--work`` by ``--name ../../x``, never a training that runs to
its end and then fails, never ``range() arg 3 must not be zero`` from ``--batch-size 0``.

Bounds on model sizes are those of :mod:`skimviz.training.card_schema`, so what the CLI trains, the
checkpoint loader accepts.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from skimviz.safety import shorten, strip_controls
from skimviz.training import card_schema

Err = argparse.ArgumentTypeError


def _show(text: str) -> str:
    """A user's value in a message: control characters removed, short."""
    return repr(shorten(strip_controls(text), 60))


def name(text: str) -> str:
    """A checkpoint / run name: one safe path component (letters, digits, '.', '_', '-')."""
    if not card_schema.NAME.match(text) or ".." in text:
        raise Err(f"{_show(text)} is not a valid name: a single folder name of letters, digits, "
                  "'.', '_' and '-' (at most 64, starting with a letter or digit)")
    return text


def optional_name(text: str) -> str:
    """:func:`name`, or "" for "none"."""
    return text if text == "" else name(text)


def name_or_dir(text: str) -> str:
    """An existing checkpoint folder, or a checkpoint name (looked up later), or ""."""
    if text == "" or Path(text).is_dir():
        return text
    return name(text)


def existing_dir(text: str) -> str:
    if not text or not Path(text).is_dir():
        raise Err(f"no folder {_show(text)}")
    return text


def input_file(text: str) -> str:
    """A file to read: it exists and is a regular file (not a folder, not a device)."""
    p = Path(text)
    if p.is_dir():
        raise Err(f"{_show(text)} is a folder; give a file")
    if not p.is_file():
        raise Err(f"no file {_show(text)}")
    if not os.access(p, os.R_OK):
        raise Err(f"{_show(text)} cannot be read (permissions)")
    return text


def output_dir(text: str) -> str:
    """A folder to write into (created later): not an existing file."""
    if not text:
        raise Err("the folder name is empty")
    if Path(text).exists() and not Path(text).is_dir():
        raise Err(f"{_show(text)} exists and is not a folder")
    return text


def device(text: str) -> str:
    """A torch device this machine has: "cpu", or "cuda"/"cuda:N" where CUDA is available."""
    import torch
    try:
        d = torch.device(text)
    except (RuntimeError, ValueError):
        raise Err(f"{_show(text)} is not a device (cpu, cuda, cuda:0, ...)") from None
    if d.type == "cpu":
        return text
    if d.type == "cuda" and torch.cuda.is_available() and (d.index or 0) < \
            torch.cuda.device_count():
        return text
    raise Err(f"device {_show(text)} is not available on this machine")


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in ``lo..hi``."""
    def parse(text: str) -> int:
        try:
            v = int(text.strip(), 10)
        except ValueError:
            raise Err(f"{_show(text)} is not an integer") from None
        if not lo <= v <= hi:
            raise Err(f"{v} is out of range: give an integer in {lo:,}..{hi:,}")
        return v
    parse.__name__ = "integer"          # argparse names the type in "invalid integer value"
    return parse


def number(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False,
           rule: str = "") -> Callable[[str], float]:
    """A finite number in the range (``lo_open``/``hi_open``: the bound itself excluded);
    ``rule`` replaces "a number in [lo, hi]" in the message."""
    rng = rule or f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise Err(f"{_show(text)} is not a number") from None
        if not math.isfinite(v) or (v <= lo if lo_open else v < lo) or \
                (v >= hi if hi_open else v > hi):
            raise Err(f"{text.strip()} is out of range: give {rng}")
        return v
    parse.__name__ = "number"
    return parse


def number_list(lo: float, hi: float) -> Callable[[str], str]:
    """Comma-separated numbers, each in [lo, hi] (kept as the text; the code splits it)."""
    return _listed(number(lo, hi))


def integer_list(lo: int, hi: int) -> Callable[[str], str]:
    """Comma-separated integers, each in lo..hi (kept as the text; the code splits it)."""
    return _listed(integer(lo, hi))


def _listed(one: Callable[[str], object]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        parts = text.split(",")
        if not 1 <= len(parts) <= 100:
            raise Err("give 1 to 100 comma-separated numbers")
        for part in parts:
            one(part)
        return text
    parse.__name__ = "list"
    return parse


# common arguments, one definition each --------------------------------------------------------
SEED = integer(0, 2**32 - 1)
THREADS = integer(1, 256)
BATCH = integer(1, 65_536)
EPOCHS = integer(1, 100_000)
STEPS = integer(1, 100_000_000)
HIDDEN = integer(1, card_schema.HIDDEN.hi)
LR = number(0.0, 10.0, lo_open=True)
NONNEG = number(0.0, 1e9)
SCALE = number(0.0, 1e6)
MINUTES = number(0.0, 1e7)            # 0: no limit
UNIT = number(0.0, 1.0)               # thresholds θ
DROPOUT = number(0.0, 0.99)

