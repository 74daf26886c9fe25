"""``python -m skimviz bench ops``: every hand-written C++ kernel against the best PyTorch
alternative on this machine, end to end (the model's forward or training step), at batch 1 and
batched.

A kernel earns its place when it beats every alternative by ``KEEP`` (1.2×) or more where the
library uses it; one that does not is deleted (its row then times the alternatives only). The
rows:

* SRU recurrence (``sru_layer_forward`` / ``_backward``): ``SRU`` inference and a training step,
  against the same model on PyTorch's operators (a loop over time of elementwise ops);
* Skip GRU at batch 1 (``skip_rnn_forward``, the jump loop) and its training step
  (``skip_rnn_train_forward`` / ``_backward``), the gate set to update every other step;
* Skim-LSTM at batch 1 (``skim_rnn_forward``), half the tokens read;
* the Transkimmer engine (``transkimmer_*``: the batch-1 forward, the int8 GEMM, the small-layer
  kernel; batches have none since its batched predictors and one-token layers lost) on the shipped ``transkimmer-small-sst2`` (or a model of its
  size) against PyTorch in float32, PyTorch with its int8 dynamic quantisation
  (``torch.ao.quantization.quantize_dynamic``: fbgemm/oneDNN int8 GEMMs) and PyTorch with int8
  weights through ``torch.ops.aten._weight_int8pack_mm``, and with ``--compile`` PyTorch in
  float32 through ``torch.compile``.

Each case's variants are timed interleaved (:func:`skimviz.cost.interleaved_ms`), so a burst of
load slows them alike. Switching a model between its C++ and PyTorch paths uses the backends'
environment variables (``SKIMVIZ_*_BACKEND=python``), the switch the tests use.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import warnings
from typing import Callable, Dict, List

import torch
from torch import nn

from skimviz import cost

KEEP = 1.2          # a kernel stays when it is at least this much faster than every alternative
ENV = {"sru": "SKIMVIZ_SRU_BACKEND", "skip": "SKIMVIZ_SKIP_BACKEND",
       "skim": "SKIMVIZ_SKIM_BACKEND", "transkimmer": "SKIMVIZ_TRANSKIMMER_BACKEND"}


@contextlib.contextmanager
def _python(system: str):
    """The PyTorch path of ``system`` for the calls inside."""
    var = ENV[system]
    was = os.environ.get(var)
    os.environ[var] = "python"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = was


def _on_python(system: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with _python(system):
            return fn()
    return run


def _train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """One training step (forward, backward) of ``model`` on ``x``, as the Speed lab times it."""
    from skimviz.bench.speedlab import _step_fn
    return _step_fn(model, x, "train")


class Int8PackLinear(nn.Module):
    """``nn.Linear`` with int8 weights, one scale per output row, through PyTorch's
    ``aten._weight_int8pack_mm`` (weight-only int8: activations stay float32)."""

    weight = None    # no float weight: the model's checks for its C++ path see there is none

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(1).clamp_min(1e-12) / 127.0
        self.register_buffer("codes", torch.round(w / scale[:, None]).clamp(-127, 127)
                             .to(torch.int8).contiguous())
        self.register_buffer("scale", scale.contiguous())
        self.register_buffer("bias", None if linear.bias is None
                             else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, x.shape[-1]).contiguous(),
                                               self.codes, self.scale)
        y = y.reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


def int8pack(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by :class:`Int8PackLinear`."""
    model = copy.deepcopy(model)
    for name, child in list(model.named_modules()):
        for cname, sub in list(child.named_children()):
            if type(sub) is nn.Linear:
                setattr(child, cname, Int8PackLinear(sub))
    return model


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with PyTorch's int8 dynamic quantisation of every ``nn.Linear``."""
    from torch.ao.quantization import quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # the torch.ao deprecation notices
        return quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


# --- the cases ----------------------------------------------------------------------------------
def _case(op: str, batch: int, mode: str, kernel: Callable, alternatives: Dict[str, Callable],
          note: str = "") -> dict:
    return {"op": op, "batch": batch, "mode": mode, "kernel": kernel,
            "alternatives": alternatives, "note": note}


def sru_cases(batch: int, steps: int = 784, hidden: int = 128) -> List[dict]:
    from skimviz.models.sru import SRU
    torch.manual_seed(0)
    m = SRU(1, hidden, batch_first=True)
    out = []
    for b in (1, batch):
        x = torch.randn(b, steps, 1)
        out.append(_case("SRU recurrence (sru_layer_forward)", b, "inference",
                         lambda m=m, x=x: m(x),
                         {"PyTorch ops": _on_python("sru", lambda m=m, x=x: m(x))}))
    x = torch.randn(batch, steps, 1)
    out.append(_case("SRU recurrence (sru_layer_forward + _backward)", batch, "train",
                     _train_step(m, x), {"PyTorch autograd": _on_python("sru", _train_step(m, x))}))
    return out


def skip_cases(batch: int, steps: int = 784, hidden: int = 128) -> List[dict]:
    from skimviz.bench.speedlab import set_update_rate
    from skimviz.models.skip_rnn import SkipRNN
    torch.manual_seed(0)
    m = SkipRNN(1, hidden, cell="gru")
    set_update_rate(m, 0.5)
    x1, xb = torch.randn(1, steps, 1), torch.randn(batch, steps, 1)
    m.eval()
    infer = _case("Skip GRU jump loop (skip_rnn_forward)", 1, "inference", lambda: m(x1),
                  {"PyTorch ops": _on_python("skip", lambda: m(x1))},
                  "half the steps updated")
    mt = copy.deepcopy(m).train()
    train = _case("Skip GRU training step (skip_rnn_train_forward + _backward)", batch, "train",
                  _train_step(mt, xb), {"PyTorch autograd": _on_python("skip", _train_step(mt, xb))},
                  "every step computed (training)")
    return [infer, train]


def skim_cases(steps: int = 400, hidden: int = 100) -> List[dict]:
    from skimviz.bench.speedlab import set_read_rate, skim_small_size
    from skimviz.models.skim_rnn import SkimRNN
    torch.manual_seed(0)
    m = SkimRNN(hidden, hidden, small_size=skim_small_size(hidden)).eval()
    x = torch.randn(1, steps, hidden)
    set_read_rate(m, x, 0.5)
    return [_case("Skim-LSTM loop (skim_rnn_forward)", 1, "inference", lambda: m(x),
                  {"PyTorch ops": _on_python("skim", lambda: m(x))}, "half the tokens read")]


def transkimmer_cases(batch: int, seq_len: int = 128, name: str = "transkimmer-small-sst2",
                      compile: bool = False) -> List[dict]:
    from skimviz.bench.transkimmer import _inputs
    from skimviz.models.transkimmer import TranskimmerClassifier
    from skimviz.tasks.transkimmer import synthetic_sst, text_encoder
    from skimviz.training import checkpoint
    try:
        model, card = checkpoint.load(name)
        enc = text_encoder(card, name)
        texts = synthetic_sst(400, 3)[0]
        x = _inputs(enc, texts, seq_len, batch)
        which = name
    except (checkpoint.CheckpointError, OSError, ValueError):
        torch.manual_seed(0)
        model = TranskimmerClassifier(30522, hidden=128, layers=4, heads=4, ffn=512)
        x = torch.randint(1000, 30000, (batch, seq_len))
        x[:, 0] = 101
        which = "an untrained model of the small one's size"
    model.eval()
    q8, p8 = dynamic_int8(model).eval(), int8pack(model).eval()
    compiled = None
    if compile:    # graph breaks where the pruning needs a count (bool(...)): compiled pieces
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = torch.compile(copy.deepcopy(model), dynamic=True)
    out = []
    for b in (1, batch):
        xx = x[:b]
        alts = {"PyTorch float32": _on_python("transkimmer", lambda xx=xx: model(xx)),
                "PyTorch int8 dynamic (quantize_dynamic)":
                    _on_python("transkimmer", lambda xx=xx: q8(xx)),
                "PyTorch int8 weights (_weight_int8pack_mm)":
                    _on_python("transkimmer", lambda xx=xx: p8(xx))}
        if compiled is not None:
            alts["PyTorch float32, torch.compile"] = _on_python(
                "transkimmer", lambda xx=xx: compiled(xx))
        # batches: no hand-written kernel any more (its batched pieces lost to PyTorch and were
        # deleted); the row shows what the alternatives do there
        out.append(_case("Transkimmer engine (transkimmer_*)", b, "inference",
                         (lambda xx=xx: model(xx)) if b == 1 else None, alts,
                         f"{which}, {seq_len} tokens"))
    return out


# --- running ------------------------------------------------------------------------------------
def run(batch: int = 32, threads: int = 1, rounds: int = 7, max_seconds: float = 4.0,
        systems=("sru", "skip", "skim", "transkimmer"), compile: bool = False) -> dict:
    from skimviz import _ext
    torch.set_num_threads(threads)
    if _ext.load() is None:
        raise RuntimeError("the C++ kernels are not built: python -m skimviz._ext build")
    build = {"sru": lambda: sru_cases(batch), "skip": lambda: skip_cases(batch),
             "skim": skim_cases,
             "transkimmer": lambda: transkimmer_cases(batch, compile=compile)}
    rows = []
    with torch.no_grad():
        for system in systems:
            for case in build[system]():
                has = case["kernel"] is not None
                names = ["hand-written C++"] * has + list(case["alternatives"])
                fns = [case["kernel"]] * has + list(case["alternatives"].values())
                ms = cost.interleaved_ms(fns, rounds=rounds, max_seconds=max_seconds)
                best = min(range(int(has), len(ms)), key=lambda i: ms[i])
                ratio = ms[best] / ms[0] if has else None
                rows.append({"op": case["op"], "batch": case["batch"], "mode": case["mode"],
                             "note": case["note"], "ms": dict(zip(names, ms)),
                             "best_alternative": names[best], "kernel_speedup": ratio,
                             "verdict": ("none: PyTorch runs it" if not has else
                                         "keep" if ratio >= KEEP else "delete")})
    return {"benchmark": "ops", "device": cost.describe_device(), "machine": platform.machine(),
            "cpu": _cpu(), "torch": torch.__version__, "threads": threads, "keep_if": KEEP,
            "rows": rows}


def _cpu() -> str:
    from skimviz.bench.speedlab import cpu_model
    return cpu_model()


def table(r: dict) -> str:
    out = [f"hand-written kernels vs the best PyTorch alternative on {r['device']} "
           f"(torch {r['torch']}, {r['threads']} thread(s)); kept when >= {r['keep_if']}x faster"]
    for row in r["rows"]:
        out.append(f"\n{row['op']}, {row['mode']}, batch {row['batch']}"
                   + (f" ({row['note']})" if row["note"] else ""))
        for k, v in row["ms"].items():
            out.append(f"  {k:<46}{v:>10.3f} ms")
        if row["kernel_speedup"] is None:
            out.append(f"  -> no hand-written kernel; fastest: {row['best_alternative']}")
        else:
            out.append(f"  -> {row['kernel_speedup']:.2f}x vs {row['best_alternative']}: "
                       f"{row['verdict'].upper()}")
    return "\n".join(out)


def add_arguments(bsub) -> None:
    from skimviz import argtypes as at
    o = bsub.add_parser("ops", help="every hand-written C++ kernel against the best PyTorch "
                                    "alternative, batch 1 and batched")
    o.add_argument("--batch", type=at.integer(2, 1024), default=32)
    o.add_argument("--threads", type=at.THREADS, default=1)
    o.add_argument("--rounds", type=at.integer(3, 1000), default=7)
    o.add_argument("--systems", default="sru,skip,skim,transkimmer",
                   help="comma-separated subset of sru, skip, skim, transkimmer")
    o.add_argument("--compile", action="store_true",
                   help="also the Transkimmer through torch.compile (about a minute to compile)")
    o.add_argument("--json", action="store_true")


def main(args) -> int:
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in ENV]
    if unknown or not systems:
        raise ValueError(f"unknown system(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(ENV)}")
    r = run(args.batch, args.threads, args.rounds, systems=tuple(systems), compile=args.compile)
    print(json.dumps(r) if args.json else table(r))
    return 0
