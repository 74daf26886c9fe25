"""Checkpoints: safetensors weights plus a JSON model card.

A checkpoint is a folder ``NAME/`` holding ``model.safetensors`` and ``card.json``. The card says
how to rebuild the model (``architecture`` + ``config``, looked up in a fixed table — a card can
never name code to run), what data it saw, its metrics and the exact command that produced it.
Nothing is ever unpickled: weights are read with ``safetensors`` only.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import load_file, save_file
from torch import nn

from .models import build

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
WEIGHTS, CARD = "model.safetensors", "card.json"
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # refuse larger files outright
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REQUIRED_CARD_KEYS = ("name", "architecture", "config")
_EXTRA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}\.(txt|json)$")
MAX_EXTRA_BYTES = 16 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is meant for the user."""


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise CheckpointError(f"invalid checkpoint name {name!r}: letters, digits, '.', '_', '-' only")
    return name


# ----------------------------------------------------------------------------- int8 rows
INT8_SCALE = ".int8_scale"  # suffix of the per-row scales stored beside an int8 matrix


def quantize_rows(w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``w ≈ q · scale[:, None]`` with ``q ∈ [-127, 127]``.

    w: (rows, cols) float → q: (rows, cols) int8, scale: (rows,) float32. Used for large
    embedding tables (one row per token), where it halves the fp16 size.
    """
    w = w.detach().float()
    scale = (w.abs().amax(1) / 127.0).clamp_min(1e-12)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]


def int8_roundtrip(w: torch.Tensor) -> torch.Tensor:
    """``w`` as it will read back after :func:`quantize_rows` (to evaluate what is shipped)."""
    return dequantize_rows(*quantize_rows(w)).to(w.dtype)


def as_shipped(model: nn.Module, fp16: bool = False, int8_rows: Tuple[str, ...] = ()
               ) -> nn.Module:
    """A copy of ``model`` with the weights it will read back from a checkpoint saved in fp16
    and/or with ``int8_rows`` (so validation numbers describe the shipped file), in eval mode;
    ``model`` itself when neither applies."""
    if not fp16 and not int8_rows:
        return model
    import copy
    m = copy.deepcopy(model)
    if fp16:
        m.half().float()
    with torch.no_grad():
        for n in int8_rows:
            p = m.get_parameter(n)
            p.copy_(int8_roundtrip(p))
    return m.eval()


def _decode(card: dict, tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Undo the card's ``weights_encoding`` (``{"int8_rowwise": [names]}``) on loaded tensors."""
    enc = card.get("weights_encoding")
    if enc is None:
        return tensors
    names = enc.get("int8_rowwise") if isinstance(enc, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or \
            set(enc) != {"int8_rowwise"}:
        raise CheckpointError("card 'weights_encoding' must be {\"int8_rowwise\": [tensor names]}")
    out = dict(tensors)
    for n in names:
        q, sc = out.pop(n, None), out.pop(n + INT8_SCALE, None)
        if q is None or sc is None or q.dtype != torch.int8 or q.dim() != 2 or \
                sc.shape != (q.shape[0],) or not sc.is_floating_point():
            raise CheckpointError(f"int8 tensor {n!r} or its scales are missing or malformed")
        out[n] = dequantize_rows(q, sc)
    return out


def save(model: nn.Module, card: dict, directory: str | os.PathLike,
         extra_files: Dict[str, str | bytes] | None = None, int8_rows: Tuple[str, ...] = ()
         ) -> Path:
    """Write ``model.safetensors`` and ``card.json`` into ``directory`` (created if missing),
    plus ``extra_files`` (name → text or bytes, e.g. a text model's ``vocab.txt``).
    Tensors named in ``int8_rows`` are stored as per-row int8 (:func:`quantize_rows`) and the
    card records it as ``weights_encoding``; :func:`load` undoes it.

    Files are written to temporaries and renamed, so a crash never leaves half a checkpoint.
    """
    for key in REQUIRED_CARD_KEYS:
        if key not in card:
            raise CheckpointError(f"card is missing {key!r}")
    _check_name(card["name"])
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    card = {k: v for k, v in card.items() if k != "weights_encoding"}
    if int8_rows:
        for n in int8_rows:
            if n not in tensors or tensors[n].dim() != 2:
                raise CheckpointError(f"int8_rows: {n!r} is not a matrix of this model")
            tensors[n], tensors[n + INT8_SCALE] = quantize_rows(tensors[n])
        card["weights_encoding"] = {"int8_rowwise": list(int8_rows)}
    tmp_w, tmp_c = d / (WEIGHTS + ".tmp"), d / (CARD + ".tmp")
    save_file(tensors, str(tmp_w), metadata={"name": card["name"]})
    tmp_c.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    for fname, data in (extra_files or {}).items():
        if fname in (WEIGHTS, CARD) or not _EXTRA.match(fname):
            raise CheckpointError(f"invalid extra file name {fname!r}")
        tmp = d / (fname + ".tmp")
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, d / fname)
    os.replace(tmp_w, d / WEIGHTS)
    os.replace(tmp_c, d / CARD)
    return d


def parse_card(text: str | bytes) -> dict:
    try:
        card = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"card.json is not valid JSON: {e}") from None
    if not isinstance(card, dict):
        raise CheckpointError("card.json must hold a JSON object")
    for key in REQUIRED_CARD_KEYS:
        if key not in card:
            raise CheckpointError(f"card.json is missing {key!r}")
    if not isinstance(card["config"], dict):
        raise CheckpointError("card 'config' must be an object")
    return card


def read_weights_bytes(data: bytes) -> Dict[str, torch.Tensor]:
    """Parse safetensors bytes (e.g. an upload); anything else is refused with a clear message."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"weights file is {len(data) / 2**20:.1f} MiB; the limit is "
                              f"{MAX_CHECKPOINT_BYTES // 2**20} MiB")
    if len(data) < 8:
        raise CheckpointError("not a safetensors file (too short)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or header_len > len(data) - 8 or data[8:9] != b"{":
        raise CheckpointError("not a safetensors file (bad header); pickled .pt/.pth files are "
                              "never loaded")
    try:
        return st_load_bytes(data)
    except (SafetensorError, Exception) as e:  # safetensors raises several error types
        raise CheckpointError(f"not a valid safetensors file: {e}") from None


def build_from(card: dict, tensors: Dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the model a card describes and load ``tensors`` into it (strict)."""
    try:
        model = build(card["architecture"], card["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"card does not describe a known model: {e}") from None
    tensors = _decode(card, tensors)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"weights do not match the card's model: {str(e)[:500]}") from None
    theta = card.get("update_threshold")
    if theta is not None and hasattr(model, "set_threshold"):
        model.set_threshold(float(theta))
    return model.eval()


def load(path_or_name: str | os.PathLike, pretrained_dir: str | os.PathLike | None = None
         ) -> Tuple[nn.Module, dict]:
    """Load ``(model, card)`` from a checkpoint folder, or by name from ``pretrained/``."""
    p = Path(path_or_name)
    if not p.is_dir():
        p = Path(pretrained_dir or PRETRAINED_DIR) / _check_name(str(path_or_name))
    if not (p / WEIGHTS).is_file() or not (p / CARD).is_file():
        known = ", ".join(list_pretrained(pretrained_dir)) or "none"
        raise CheckpointError(f"no checkpoint at {p} (shipped checkpoints: {known})")
    if (p / WEIGHTS).stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{p / WEIGHTS} is larger than {MAX_CHECKPOINT_BYTES // 2**20} MiB")
    card = parse_card((p / CARD).read_text())
    try:
        tensors = load_file(str(p / WEIGHTS))
    except Exception as e:
        raise CheckpointError(f"{p / WEIGHTS} is not a valid safetensors file: {e}") from None
    return build_from(card, tensors), card


def list_pretrained(pretrained_dir: str | os.PathLike | None = None) -> list[str]:
    d = Path(pretrained_dir or PRETRAINED_DIR)
    if not d.is_dir():
        return []
    return sorted(c.parent.name for c in d.glob(f"*/{CARD}") if (c.parent / WEIGHTS).is_file())


def load_card(name: str, pretrained_dir: str | os.PathLike | None = None) -> dict:
    p = Path(pretrained_dir or PRETRAINED_DIR) / _check_name(name) / CARD
    if not p.is_file():
        raise CheckpointError(f"no card for {name!r}")
    return parse_card(p.read_text())


def read_extra(path_or_name: str | os.PathLike, filename: str,
               pretrained_dir: str | os.PathLike | None = None,
               max_bytes: int = MAX_EXTRA_BYTES) -> str:
    """Text of an extra file (e.g. ``vocab.txt``, ``tokenizer.json``) stored next to a
    checkpoint's card: the name is checked (no paths), the size is limited."""
    if not isinstance(filename, str) or not _EXTRA.match(filename):
        raise CheckpointError(f"invalid extra file name {filename!r}")
    p = Path(path_or_name)
    if not p.is_dir():
        p = Path(pretrained_dir or PRETRAINED_DIR) / _check_name(str(path_or_name))
    f = p / filename
    if not f.is_file():
        raise CheckpointError(f"checkpoint {p.name!r} has no {filename}")
    if f.stat().st_size > max_bytes:
        raise CheckpointError(f"{filename} is larger than {max_bytes // 2**20} MiB")
    try:
        return f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{filename} is not UTF-8 text") from None
