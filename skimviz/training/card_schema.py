"""The one schema of a model card (``card.json``), checked before any model is built.

A card may come from anywhere: ``pretrained/``, a folder a user names on the command line, a
checkpoint a page lists. :func:`validate` is the gate every card passes (``checkpoint.load``,
``load_card`` and ``build_from`` call it), so a hostile card can neither allocate hundreds of
gigabytes (``hidden_size`` 200000), nor crash a forward pass (``side`` 0, ``hidden`` not a
multiple of ``heads``, an MNIST card whose model reads 2 features), nor send the parser into
deep recursion. What it checks:

* the file: at most :data:`MAX_CARD_BYTES`, JSON, nested at most :data:`MAX_DEPTH` deep;
* ``name`` (a safe checkpoint name), ``architecture`` (one of :data:`CONFIGS`) and ``task``
  (one of :data:`TASKS`, optional) and that the two fit together;
* every ``config`` field an architecture is built from: its type and range (unknown fields and
  missing required ones are refused), the cross-field rules the constructors assume, and the
  model's size (at most :data:`MAX_PARAMETERS`, counted on PyTorch's ``meta`` device, where
  nothing is allocated);
* what the task code reads from the card (``input.side``, ``input.seq_len``, ``skim_threshold``,
  the tokenizer file, ...), and the shape of ``weights_encoding``.

Free-form parts (``metrics``, ``training``, ``paper`` ...) must only have the JSON type the
pages expect (an object, a list). Extra files (``vocab.txt``, ``tokenizer.json``) are limited
to :data:`MAX_VOCAB_BYTES`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Tuple

MAX_CARD_BYTES = 1 << 20            # 1 MiB; the largest shipped card is 40 KB
MAX_VOCAB_BYTES = 4 << 20           # vocab.txt / tokenizer.json; shipped: at most 466 KB
MAX_DEPTH = 12                      # shipped cards nest 4 deep
MAX_PARAMETERS = 64 * 2**20         # what a 64 MiB weights file can hold at one byte a weight
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EXTRA_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}\.(txt|json)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is meant for the user."""


# ----------------------------------------------------------------------------- field types
@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def check(self, where: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or not self.lo <= v <= self.hi:
            raise CheckpointError(f"{where} must be an integer in {self.lo}..{self.hi}, "
                                  f"not {_show(v)}")


@dataclass(frozen=True)
class Float:
    lo: float
    hi: float
    lo_open: bool = False           # (lo, hi] instead of [lo, hi]

    def check(self, where: str, v: Any) -> None:
        ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
              and (self.lo < v if self.lo_open else self.lo <= v) and v <= self.hi)
        if not ok:
            rng = f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
            raise CheckpointError(f"{where} must be a number in {rng}, not {_show(v)}")


@dataclass(frozen=True)
class Choice:
    values: Tuple[Any, ...]

    def check(self, where: str, v: Any) -> None:
        # bool is an int in Python: `True in (1,)` must not pass
        if not any(type(v) is type(c) and v == c for c in self.values):
            raise CheckpointError(f"{where} must be one of {list(self.values)}, not {_show(v)}")


@dataclass(frozen=True)
class Bool:
    def check(self, where: str, v: Any) -> None:
        if not isinstance(v, bool):
            raise CheckpointError(f"{where} must be true or false, not {_show(v)}")


@dataclass(frozen=True)
class Optional_:
    inner: Any

    def check(self, where: str, v: Any) -> None:
        if v is not None:
            self.inner.check(where, v)


def _show(v: Any) -> str:
    """A value in a message: short, whatever it is (a 5,000-digit integer included)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**40:
        return "a huge integer"
    s = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return s if len(s) <= 40 else s[:39] + "…"


# ----------------------------------------------------------------------------- architectures
HIDDEN = Int(1, 4096)
#: architecture → {config field: type}; the fields each constructor takes, bounded.
CONFIGS: Dict[str, Dict[str, Any]] = {
    "SequenceClassifier": {"input_size": Int(1, 1024), "hidden_size": HIDDEN,
                           "num_classes": Int(1, 1000), "cell": Choice(("gru", "lstm", "sru")),
                           "num_layers": Int(1, 8), "skip": Bool()},
    "ClipClassifier": {"hidden_size": HIDDEN, "num_classes": Int(1, 1000),
                       "cell": Choice(("gru", "lstm")), "feature_size": Int(1, 4096),
                       "side": Int(4, 128), "skip": Bool()},
    "TextClassifier": {"vocab_size": Int(2, 2_000_000), "embed_dim": Int(1, 2048),
                       "hidden_size": HIDDEN, "small_size": Int(1, 4095),
                       "num_classes": Int(1, 1000), "skim": Bool(), "dropout": Float(0.0, 0.99)},
    "TranskimmerClassifier": {
        "vocab_size": Int(2, 2_000_000), "hidden": HIDDEN, "layers": Int(1, 48),
        "heads": Int(1, 64), "ffn": Int(1, 16384), "max_positions": Int(1, 8192),
        "type_vocab": Int(1, 16), "num_classes": Int(1, 1000), "dropout": Float(0.0, 0.99),
        "skim": Bool(), "predictor_hidden": Optional_(HIDDEN), "tau": Float(0.0, 100.0, True),
        "mu0": Float(-100.0, 100.0), "eps": Float(0.0, 0.1, True),
        "pool": Choice(("cls", "mean"))},
}
#: config fields without a default in the constructor.
REQUIRED = {"SequenceClassifier": ("input_size", "hidden_size", "num_classes"),
            "ClipClassifier": (), "TextClassifier": ("vocab_size",),
            "TranskimmerClassifier": ("vocab_size",)}


def _cross_checks(arch: str, c: dict) -> None:
    """Rules between fields that the constructors or forward passes assume."""
    if arch == "TextClassifier" and c.get("skim", True):
        small, hidden = c.get("small_size", 10), c.get("hidden_size", 100)
        if not small < hidden:
            raise CheckpointError(f"config small_size ({small}) must be below hidden_size "
                                  f"({hidden}) for a Skim-LSTM")
    if arch == "TranskimmerClassifier":
        hidden, heads = c.get("hidden", 128), c.get("heads", 4)
        if hidden % heads:
            raise CheckpointError(f"config hidden ({hidden}) must be a multiple of heads "
                                  f"({heads})")


# ----------------------------------------------------------------------------- tasks
#: card ``task`` → the architecture it runs, config values its data fixes, the ``input``
#: fields its code reads, and other top-level fields it reads.
TASKS: Dict[str, dict] = {
    "mnist-pixels": {"architecture": "SequenceClassifier",
                     "config": {"input_size": 1, "num_classes": 10},
                     "input": {"side": Choice((7, 14, 28)), "seq_len": Int(1, 784)}},
    "adding": {"architecture": "SequenceClassifier",
               "config": {"input_size": 2, "num_classes": 1},
               "input": {"seq_len": Int(10, 1000)}},        # data.synthetic.adding_task
    "frequency": {"architecture": "SequenceClassifier",
                  "config": {"input_size": 1, "num_classes": 2},
                  "input": {"sampling_ms": Float(0.1, 10.0), "seq_len": Int(1, 1000)}},
    "frames": {"architecture": "ClipClassifier", "config": {"side": 28, "num_classes": 10},
               "input": {"seq_len": Int(24, 128)}},         # data.clips: 250 clips a chunk
    "text-classification": {"architecture": "TextClassifier", "config": {"num_classes": 2},
                            "input": {"max_tokens": Int(1, 10_000),
                                      "vocab_size": Int(2, 2_000_000),
                                      "vocab_file": Choice(("vocab.txt",))},
                            "fields": {"dataset": Choice(("sst2", "imdb"))}},
    "sst2-transkimmer": {"architecture": "TranskimmerClassifier", "config": {"num_classes": 2},
                         "input": {"tokenizer": Choice(("words", "wordpiece")),
                                   "file": Choice(("vocab.txt", "tokenizer.json")),
                                   "max_len": Int(2, 8192), "lowercase": Bool()}},
}
#: top-level fields every card may have, by type; the thresholds apply when the model is built.
FIELDS = {"update_threshold": Float(0.0, 1.0), "skim_threshold": Float(0.0, 1.0)}
OBJECT_FIELDS = ("input", "data", "metrics", "training", "paper", "read_rates",
                 "metrics_before_shipping")
NULLABLE_OBJECT_FIELDS = ("target", "collapsed")   # None: no target / not collapsed
STRING_FIELDS = ("dense_twin",)                     # a name or null
LIST_FIELDS = ("threshold_sweep", "lambda_sweep")


# ----------------------------------------------------------------------------- parsing
def depth(obj: Any) -> int:
    """How deep JSON containers nest in ``obj`` (0 for a scalar), without recursion."""
    best, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            o = list(o.values())
        if isinstance(o, list):
            best = max(best, d)
            stack.extend((v, d + 1) for v in o if isinstance(v, (dict, list)))
    return best


def parse(text: str | bytes) -> dict:
    """The card in ``text`` (the content of a ``card.json``), checked by :func:`validate`."""
    if len(text) > MAX_CARD_BYTES:
        from skimviz.safety import human_bytes
        raise CheckpointError(f"card.json is {human_bytes(len(text))}; the limit is "
                              f"{human_bytes(MAX_CARD_BYTES)}")
    try:
        card = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"card.json nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, huge integers
        raise CheckpointError(f"card.json is not valid JSON: {str(e)[:200]}") from None
    return validate(card)


# ----------------------------------------------------------------------------- validation
def validate(card: Any) -> dict:
    """``card`` if it follows the schema (see the module docstring), else
    :class:`CheckpointError` saying what is wrong. Builds nothing (the size check runs on the
    ``meta`` device)."""
    if not isinstance(card, dict):
        raise CheckpointError("card.json must hold a JSON object")
    if depth(card) > MAX_DEPTH:
        raise CheckpointError(f"card.json nests deeper than {MAX_DEPTH} levels")
    for key in ("name", "architecture", "config"):
        if key not in card:
            raise CheckpointError(f"card.json is missing {key!r}")
    if not isinstance(card["name"], str) or not NAME.match(card["name"]) or ".." in card["name"]:
        raise CheckpointError(f"card 'name' {_show(card['name'])} is not a checkpoint name "
                              "(letters, digits, '.', '_', '-'; at most 64)")
    arch, config = card["architecture"], card["config"]
    if not isinstance(arch, str) or arch not in CONFIGS:
        raise CheckpointError(f"card does not describe a known model: architecture "
                              f"{_show(arch)} is not one of {sorted(CONFIGS)}")
    if not isinstance(config, dict):
        raise CheckpointError("card 'config' must be an object")
    _check_config(arch, config)
    for key, kind in FIELDS.items():
        if key in card:
            kind.check(f"card '{key}'", card[key])
    for key in OBJECT_FIELDS + NULLABLE_OBJECT_FIELDS:
        if key in card and not isinstance(card[key], dict) and not (
                card[key] is None and key in NULLABLE_OBJECT_FIELDS):
            raise CheckpointError(f"card '{key}' must be an object")
    for key in STRING_FIELDS:
        if card.get(key) is not None and not isinstance(card[key], str):
            raise CheckpointError(f"card '{key}' must be a string or null")
    for key in LIST_FIELDS:
        if key in card and not (isinstance(card[key], list)
                                and all(isinstance(r, dict) for r in card[key])):
            raise CheckpointError(f"card '{key}' must be a list of objects")
    if "weights_encoding" in card:
        check_weights_encoding(card["weights_encoding"])
    if "task" in card:
        _check_task(card)
    _check_size(arch, config)
    return card


def _check_config(arch: str, config: dict) -> None:
    fields = CONFIGS[arch]
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise CheckpointError(f"card does not describe a known model: {arch} has no config "
                              f"field {_show(unknown[0])}")
    for key in REQUIRED[arch]:
        if key not in config:
            raise CheckpointError(f"card does not describe a known model: {arch} config is "
                                  f"missing {key!r}")
    for key, v in config.items():
        fields[key].check(f"config {key}", v)
    _cross_checks(arch, config)


def _check_task(card: dict) -> None:
    task = card["task"]
    if not isinstance(task, str) or task not in TASKS:
        raise CheckpointError(f"card 'task' {_show(task)} is not one of {sorted(TASKS)}")
    rule = TASKS[task]
    if card["architecture"] != rule["architecture"]:
        raise CheckpointError(f"task {task!r} runs a {rule['architecture']}, not a "
                              f"{card['architecture']}")
    for key, want in rule["config"].items():
        got = card["config"].get(key, _default(card["architecture"], key))
        if got != want:
            raise CheckpointError(f"task {task!r} needs config {key} = {want}, not {_show(got)}")
    inp = card.get("input", {})
    for key, kind in rule["input"].items():
        if key in inp:
            kind.check(f"card input.{key}", inp[key])
    for key, kind in rule.get("fields", {}).items():
        if key in card:
            kind.check(f"card '{key}'", card[key])
    if task == "sst2-transkimmer":
        max_len, positions = inp.get("max_len", 128), card["config"].get("max_positions", 128)
        if max_len > positions:
            raise CheckpointError(f"card input.max_len ({max_len}) exceeds config "
                                  f"max_positions ({positions})")
        words = inp.get("tokenizer", "words") == "words"
        if inp.get("file", "vocab.txt" if words else "tokenizer.json") != (
                "vocab.txt" if words else "tokenizer.json"):
            raise CheckpointError("card input.file must be vocab.txt for the 'words' tokenizer "
                                  "and tokenizer.json for 'wordpiece'")


def _default(arch: str, key: str) -> Any:
    """A constructor's default for a config field (the task rules compare against it)."""
    import inspect

    from skimviz.models import ARCHITECTURES
    p = inspect.signature(ARCHITECTURES[arch].__init__).parameters.get(key)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def check_weights_encoding(enc: Any) -> None:
    """``{"int8_rowwise": [tensor names], "row_blocks": {tensor name: 1..1024}}``, both
    optional (what ``checkpoint.save`` writes)."""
    if not isinstance(enc, dict) or not set(enc) <= {"int8_rowwise", "row_blocks"}:
        raise CheckpointError("card 'weights_encoding' must be {\"int8_rowwise\": [tensor "
                              "names], \"row_blocks\": {tensor name: count}}")
    names, blocks = enc.get("int8_rowwise", []), enc.get("row_blocks", {})
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or \
            not isinstance(blocks, dict) or \
            not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 1024
                    for k in blocks.values()):
        raise CheckpointError("card 'weights_encoding' is malformed")


def _check_size(arch: str, config: dict) -> None:
    """Refuse a model over :data:`MAX_PARAMETERS` weights, counted on the ``meta`` device
    (shapes only, no memory), so the real build can never allocate more than that."""
    import torch

    from skimviz.models import build
    try:
        with torch.device("meta"):
            model = build(arch, config)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"card does not describe a known model: {str(e)[:300]}") from None
    n = sum(t.numel() for t in model.state_dict().values())
    if n > MAX_PARAMETERS:
        raise CheckpointError(f"the model would have {n:,} weights; the limit is "
                              f"{MAX_PARAMETERS:,}")


def check_vocab_size(card: dict, entries: int, what: str = "vocabulary") -> None:
    """A text model's vocabulary (``entries`` ids) must fit its embedding table, or the first
    out-of-range id would crash the forward pass."""
    size = card.get("config", {}).get("vocab_size")
    if isinstance(size, int) and entries > size:
        raise CheckpointError(f"the checkpoint's {what} has {entries:,} entries but its model "
                              f"embeds only {size:,}")
