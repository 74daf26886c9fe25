"""Checkpoints: safetensors weights plus a JSON model card.

A checkpoint is a folder ``NAME/`` holding ``model.safetensors`` and ``card.json``. The card says
how to rebuild the model (``architecture`` + ``config``, looked up in a fixed table — a card can
never name code to run), what data it saw, its metrics and the exact command that produced it.
Nothing is ever unpickled: weights are read with ``safetensors`` only.

Large checkpoints are sharded the Hugging Face way: ``model-00001-of-00004.safetensors`` … plus
``model.safetensors.index.json`` (``{"metadata": {"total_size"}, "weight_map": {tensor: file}}``),
each file at most ``max_shard_bytes``. A tensor larger than a shard is cut into row blocks
``NAME.rows0``, ``NAME.rows1``, … recorded in the card's ``weights_encoding.row_blocks``.
"""
from __future__ import annotations

import copy
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

from skimviz.cache import BoundedCache
from skimviz.models import build
from skimviz.safety import human_bytes
from skimviz.training import card_schema, configs, distributed
from skimviz.training.card_schema import CheckpointError  # noqa: F401  (the module's error; defined there)

PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
WEIGHTS, CARD = "model.safetensors", "card.json"
INDEX = "model.safetensors.index.json"          # sharded weights: the map tensor → shard file
_SHARD = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")
MAX_INDEX_BYTES = 1 << 20
SHARD_BYTES = 9 * 2**20   # default shard size: every file stays under 10 MiB (the repository's limit)
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # refuse larger files outright
_NAME = card_schema.NAME
REQUIRED_CARD_KEYS = ("name", "architecture", "config")
_EXTRA = card_schema.EXTRA_FILE
MAX_EXTRA_BYTES = card_schema.MAX_VOCAB_BYTES


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
    """Undo the card's ``weights_encoding`` on loaded tensors: ``row_blocks`` ({name: k}: the
    tensor was stored as k row blocks ``name.rows0`` …) first, then ``int8_rowwise`` ([names])."""
    enc = card.get("weights_encoding")
    if enc is None:
        return tensors
    card_schema.check_weights_encoding(enc)
    names, blocks = enc.get("int8_rowwise", []), enc.get("row_blocks", {})
    out = dict(tensors)
    for n, k in blocks.items():
        parts = [out.pop(f"{n}.rows{i}", None) for i in range(k)]
        if any(p is None for p in parts) or len({(p.dtype, p.shape[1:]) for p in parts}) != 1:
            raise CheckpointError(f"row blocks of {n!r} are missing or do not fit together")
        out[n] = torch.cat(parts, 0)
    for n in names:
        q, sc = out.pop(n, None), out.pop(n + INT8_SCALE, None)
        if q is None or sc is None or q.dtype != torch.int8 or q.dim() != 2 or \
                sc.shape != (q.shape[0],) or not sc.is_floating_point():
            raise CheckpointError(f"int8 tensor {n!r} or its scales are missing or malformed")
        out[n] = dequantize_rows(q, sc)
    return out


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _shard(tensors: Dict[str, torch.Tensor], max_bytes: int
           ) -> Tuple[list, Dict[str, int]]:
    """Pack tensors (in name order) into shards of at most ``max_bytes`` of data each (the
    safetensors header adds a few KiB; callers leave room). Tensors over ``max_bytes`` are cut
    into row blocks first. → ([{name: tensor}, …], row_blocks {name: k})."""
    items, blocks = [], {}
    for n in sorted(tensors):
        t = tensors[n]
        if _nbytes(t) > max_bytes and t.dim() >= 1 and t.shape[0] > 1:
            row = max(1, _nbytes(t) // t.shape[0])
            per = max(1, max_bytes // row)
            parts = list(torch.split(t, per, 0))
            blocks[n] = len(parts)
            items += [(f"{n}.rows{i}", p.contiguous()) for i, p in enumerate(parts)]
        else:
            items.append((n, t))
    shards, cur, size = [], {}, 0
    for n, t in items:
        if cur and size + _nbytes(t) > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[n] = t
        size += _nbytes(t)
    if cur:
        shards.append(cur)
    return shards, blocks


def weight_files(directory: str | os.PathLike) -> list:
    """The weight files of a checkpoint folder: ``[model.safetensors]`` or, when sharded, the
    index and its shards (empty when there are none)."""
    d = Path(directory)
    if (d / WEIGHTS).is_file():
        return [d / WEIGHTS]
    if (d / INDEX).is_file():
        return [d / INDEX] + sorted(p for p in d.glob("model-*-of-*.safetensors")
                                    if _SHARD.match(p.name))
    return []


def save(model: nn.Module, card: dict, directory: str | os.PathLike,
         extra_files: Dict[str, str | bytes] | None = None, int8_rows: Tuple[str, ...] = (),
         max_shard_bytes: int | None = SHARD_BYTES) -> Path:
    """Write ``model.safetensors`` and ``card.json`` into ``directory`` (created if missing),
    plus ``extra_files`` (name → text or bytes, e.g. a text model's ``vocab.txt``).
    Tensors named in ``int8_rows`` are stored as per-row int8 (:func:`quantize_rows`) and the
    card records it as ``weights_encoding``; :func:`load` undoes it. With ``max_shard_bytes``,
    weights larger than that are sharded (see the module docstring).

    Files are written to temporaries and renamed, so a crash never leaves half a checkpoint;
    weight files of an earlier save in another layout (single file vs shards) are removed.
    """
    for key in REQUIRED_CARD_KEYS:
        if key not in card:
            raise CheckpointError(f"card is missing {key!r}")
    _check_name(card["name"])
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    card = {k: v for k, v in card.items() if k != "weights_encoding"}
    if isinstance(card.get("training"), dict):
        training = dict(card["training"])
        if configs.current:                            # trained from a recipe file
            training["config"] = dict(configs.current)
        world = distributed.world_size()
        if world > 1:                                  # trained under torchrun
            training["world_size"] = world
            if isinstance(training.get("batch_size"), int):
                training["per_process_batch"] = training["batch_size"] // world
        card["training"] = training
    if int8_rows:
        for n in int8_rows:
            if n not in tensors or tensors[n].dim() != 2:
                raise CheckpointError(f"int8_rows: {n!r} is not a matrix of this model")
            tensors[n], tensors[n + INT8_SCALE] = quantize_rows(tensors[n])
        card["weights_encoding"] = {"int8_rowwise": list(int8_rows)}
    total = sum(_nbytes(t) for t in tensors.values())
    if max_shard_bytes and total > max_shard_bytes:
        shards, blocks = _shard(tensors, max_shard_bytes)
        if blocks:
            card.setdefault("weights_encoding", {})["row_blocks"] = blocks
        names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        writes = [(d / (f + ".tmp"), d / f, sh) for f, sh in zip(names, shards)]
        index = {"metadata": {"total_size": total, "name": card["name"]},
                 "weight_map": {k: f for f, sh in zip(names, shards) for k in sorted(sh)}}
        last = (d / (INDEX + ".tmp"), d / INDEX, json.dumps(index, indent=2) + "\n")
    else:
        writes, last = [(d / (WEIGHTS + ".tmp"), d / WEIGHTS, tensors)], None
    for tmp, _, sh in writes:
        save_file(sh, str(tmp), metadata={"name": card["name"]})
    if last:
        last[0].write_text(last[2])
    tmp_c = d / (CARD + ".tmp")
    tmp_c.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    for fname, data in (extra_files or {}).items():
        if fname in (WEIGHTS, CARD) or not _EXTRA.match(fname):
            raise CheckpointError(f"invalid extra file name {fname!r}")
        tmp = d / (fname + ".tmp")
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, d / fname)
    stale = set(weight_files(d))
    for tmp, final, _ in writes:
        os.replace(tmp, final)
    if last:
        os.replace(last[0], last[1])
    os.replace(tmp_c, d / CARD)
    for f in stale - {final for _, final, _ in writes} - ({last[1]} if last else set()):
        f.unlink(missing_ok=True)
    return d


def parse_card(text: str | bytes) -> dict:
    """The card in ``text``, checked against the one card schema (:mod:`skimviz.training.card_schema`:
    size, nesting, types and ranges of every field a model is built from) before anything is
    built from it."""
    return card_schema.parse(text)


_CARDS = BoundedCache(256)   # (path, inode, mtime, size) → parsed card


def _read_card(path: Path) -> dict:
    """``parse_card`` of a ``card.json`` file, its size checked before it is read. A file is
    parsed (and checked) once per version: the result is kept per path, modification time and
    size, and every caller gets its own copy, so that a page rerun does not re-check every card
    and no caller can change another's."""
    try:
        info = path.stat()
        if info.st_size > card_schema.MAX_CARD_BYTES:
            raise CheckpointError(f"{path.name} is {human_bytes(info.st_size)}; the limit is "
                                  f"{human_bytes(card_schema.MAX_CARD_BYTES)}")
        key = (os.path.abspath(path), info.st_ino, info.st_mtime_ns, info.st_size)
        hit = _CARDS.get(key)
        if hit is not None:
            return copy.deepcopy(hit)
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path.name}: {e.strerror or e}") from None
    card = parse_card(data)
    if len(data) == info.st_size:                  # not rewritten between the stat and the read
        _CARDS.put(key, copy.deepcopy(card))
    return card


def read_weights_bytes(data: bytes) -> Dict[str, torch.Tensor]:
    """Parse safetensors bytes (e.g. an upload); anything else is refused with a clear message."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"weights file is {human_bytes(len(data))}; the limit is "
                              f"{human_bytes(MAX_CHECKPOINT_BYTES)}")
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
    """Rebuild the model a card describes and load ``tensors`` into it (strict). The card is
    checked against the schema first (a dict from anywhere may arrive here)."""
    card_schema.validate(card)
    try:
        model = build(card["architecture"], card["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"card does not describe a known model: {e}") from None
    tensors = _decode(card, tensors)
    bad = sorted(n for n, t in tensors.items()
                 if t.is_floating_point() and not bool(torch.isfinite(t).all()))
    if bad:
        raise CheckpointError(f"the weights hold NaN or infinite values ({bad[0]}"
                              f"{' and others' if len(bad) > 1 else ''}): the training that wrote "
                              "them diverged")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"weights do not match the card's model: {str(e)[:500]}") from None
    theta = card.get("update_threshold", card.get("skim_threshold"))
    if theta is not None and hasattr(model, "set_threshold"):
        model.set_threshold(float(theta))
    return model.eval()


def _read_index(d: Path) -> Dict[str, list]:
    """The sharded layout's index, checked: → {shard file name: [tensor names]}."""
    f = d / INDEX
    if f.stat().st_size > MAX_INDEX_BYTES:
        raise CheckpointError(f"{f.name} is {human_bytes(f.stat().st_size)}; the limit is "
                              f"{human_bytes(MAX_INDEX_BYTES)}")
    try:
        wm = json.loads(f.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # JSON, UTF-8, shape
        raise CheckpointError(f"{f} is not a valid weights index: {str(e)[:200]}") from None
    if not isinstance(wm, dict):
        raise CheckpointError(f"{f}: 'weight_map' must be an object")
    files: Dict[str, list] = {}
    for k, v in wm.items():
        if not isinstance(v, str) or not _SHARD.match(v):
            raise CheckpointError(f"{f}: shard name {v!r} is not model-NNNNN-of-NNNNN.safetensors")
        files.setdefault(v, []).append(k)
    return files


def read_tensors(directory: str | os.PathLike) -> Dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder, single file or sharded, with size limits
    (``MAX_CHECKPOINT_BYTES`` in all) and, when sharded, every shard's tensors checked against
    the index."""
    d = Path(directory)
    if (d / WEIGHTS).is_file():
        files = {WEIGHTS: None}
    elif (d / INDEX).is_file():
        files = _read_index(d)
    else:
        raise CheckpointError(f"no weights in {d}")
    total = 0
    for f in files:
        if not (d / f).is_file():
            raise CheckpointError(f"{d}: shard {f} is missing")
        total += (d / f).stat().st_size
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{d}: the weights are {human_bytes(total)}; the limit is "
                              f"{human_bytes(MAX_CHECKPOINT_BYTES)}")
    tensors: Dict[str, torch.Tensor] = {}
    for f, expected in files.items():
        try:
            part = load_file(str(d / f))
        except Exception as e:
            raise CheckpointError(f"{d / f} is not a valid safetensors file: {e}") from None
        if expected is not None and sorted(part) != sorted(expected):
            raise CheckpointError(f"{d / f} does not hold the tensors its index lists")
        if set(part) & set(tensors):
            raise CheckpointError(f"{d / f}: a tensor appears in two shards")
        tensors.update(part)
    return tensors


def load(path_or_name: str | os.PathLike, pretrained_dir: str | os.PathLike | None = None
         ) -> Tuple[nn.Module, dict]:
    """Load ``(model, card)`` from a checkpoint folder, or by name from ``pretrained/``. The
    card is read and checked against the schema before the weights are read or anything is
    built."""
    p = Path(path_or_name)
    if not p.is_dir():
        p = Path(pretrained_dir or PRETRAINED_DIR) / _check_name(str(path_or_name))
    if not weight_files(p) or not (p / CARD).is_file():
        known = ", ".join(list_pretrained(pretrained_dir)) or "none"
        raise CheckpointError(f"no checkpoint at {p} (shipped checkpoints: {known})")
    card = _read_card(p / CARD)
    return build_from(card, read_tensors(p)), card


def list_pretrained(pretrained_dir: str | os.PathLike | None = None) -> list[str]:
    d = Path(pretrained_dir or PRETRAINED_DIR)
    if not d.is_dir():
        return []
    return sorted(c.parent.name for c in d.glob(f"*/{CARD}") if weight_files(c.parent))


def load_card(name: str, pretrained_dir: str | os.PathLike | None = None) -> dict:
    p = Path(pretrained_dir or PRETRAINED_DIR) / _check_name(name) / CARD
    if not p.is_file():
        raise CheckpointError(f"no card for {name!r}")
    return _read_card(p)


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
        raise CheckpointError(f"{filename} is {human_bytes(f.stat().st_size)}; the limit is "
                              f"{human_bytes(max_bytes)}")
    try:
        return f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{filename} is not UTF-8 text") from None
