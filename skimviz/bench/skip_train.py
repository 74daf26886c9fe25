"""``python -m skimviz bench skip-train``: the time of one training step of the Skip GRU with the
fused C++ path (``skimviz/csrc/skip_rnn_train_cpu.cpp``, "fused"), the same model on the PyTorch
path ("pytorch"), and the dense ``nn.GRU`` (oneDNN) twin ("dense"), side by side in one run.

A step is what :class:`~skimviz.training.loop.Trainer` does: forward, a Linear head on the last output,
cross-entropy (plus the budget loss λ·Σ u_t, Eq. 8, for the Skip models), backward, gradient-norm
clipping at 1 and an Adam step. The three are timed interleaved (one step of each in turn, the
order rotated every round) at the same thread count, so that a load on the machine that comes and
goes hits all three alike; the load average is reported with them. On an oversubscribed machine
(load above the core count) code that meets at a barrier every step (nn.GRU, the PyTorch loop)
loses far more than the fused op, whose threads run their batch rows independently, so ratios
measured there overstate the gain; the CPU time of all threads per step is reported as well.
Inputs are random pixel sequences (a training step computes every step whatever the data, so its
time does not depend on them).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, Iterator, List

import torch
from torch import nn
from torch.nn import functional as F

QUICK = {"batch": 8, "steps": 40, "hidden": 16, "repeats": 2}
VARIANTS = ("fused", "pytorch", "dense")


def add_arguments(bsub) -> None:
    from skimviz import argtypes as at
    p = bsub.add_parser("skip-train", help="one training step: Skip GRU fused C++ vs its PyTorch "
                                           "path vs nn.GRU (interleaved, same threads)")
    p.add_argument("--batch", type=at.BATCH, default=128, help="batch size (default 128)")
    p.add_argument("--steps", type=at.integer(1, 100_000), default=784,
                   help="sequence length T (pixel MNIST: 784)")
    p.add_argument("--hidden", type=at.HIDDEN, default=110, help="units (paper: 110)")
    p.add_argument("--cell", choices=["gru", "lstm"], default="gru",
                   help="lstm: Skip LSTM vs nn.LSTM")
    p.add_argument("--lam", type=at.NONNEG, default=1e-4, help="λ of the budget loss (Eq. 8)")
    p.add_argument("--repeats", type=at.integer(1, 1000), default=5,
                   help="timed steps of each (median)")
    p.add_argument("--threads", type=at.THREADS, default=2, help="torch threads for all three")
    p.add_argument("--only", default=",".join(VARIANTS),
                   help="comma-separated subset of " + ",".join(VARIANTS))
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (batch 8, 40 steps, hidden 16, 2 repeats) to check it runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")


@contextlib.contextmanager
def _train_backend(name: str) -> Iterator[None]:
    """Route the Skip RNN's training path: ``fused`` (C++) or ``python`` (PyTorch loop)."""
    from skimviz.ops import skip_rnn as ops
    old = os.environ.get(ops.ENV)
    os.environ[ops.ENV] = "cpp" if name == "fused" else "python"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ops.ENV, None)
        else:
            os.environ[ops.ENV] = old


def _make_step(variant: str, cell: str, hidden: int, lam: float, x, y,
               seed: int = 0) -> Callable[[], float]:
    """One training step of ``variant`` as a closure returning the loss (weights from ``seed``)."""
    from skimviz.models import SequenceClassifier, budget_loss
    torch.manual_seed(seed)
    model = SequenceClassifier(x.shape[-1], hidden, 10, cell=cell, skip=variant != "dense")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step() -> float:
        with _train_backend(variant):
            logits, trace = model(x, return_trace=True)
            loss = F.cross_entropy(logits, y)
            if model.skip and lam:
                loss = loss + budget_loss(trace, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step.model = model  # type: ignore[attr-defined]
    return step


def run(batch: int = 128, steps: int = 784, hidden: int = 110, repeats: int = 5,
        threads: int = 2, cell: str = "gru", lam: float = 1e-4,
        only=VARIANTS) -> Dict[str, object]:
    """Median seconds per training step of each variant in ``only`` and the ratios; ``fused``
    is left out (with the reason) when the extension is not built."""
    from skimviz.ops import skip_rnn as ops
    if min(batch, steps, hidden, repeats, threads) < 1:
        raise ValueError("--batch, --steps, --hidden, --repeats and --threads must be >= 1")
    unknown = set(only) - set(VARIANTS)
    if not only or lam < 0:
        raise ValueError("--only needs at least one variant and --lam must be >= 0")
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(batch, steps, 1, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        notes = {}
        with _train_backend("fused"):
            fused_ok = ops.train_backend() == "cpp"
        names = [v for v in VARIANTS if v in only]
        if "fused" in names and not fused_ok:
            names.remove("fused")
            notes["fused"] = ("not built or switched off (SKIMVIZ_SKIP_BACKEND=python): "
                              "python -m skimviz._ext build")
        fns = {v: _make_step(v, cell, hidden, lam, x, y) for v in names}
        times: Dict[str, List[float]] = {v: [] for v in names}
        cpu: Dict[str, List[float]] = {v: [] for v in names}
        for v in names:  # warm-up: allocations, oneDNN primitives, the workspace
            fns[v]()
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for v in order:
                c0, t0 = time.process_time(), time.perf_counter()
                fns[v]()
                times[v].append(time.perf_counter() - t0)
                cpu[v].append(time.process_time() - c0)
    finally:
        torch.set_num_threads(old_threads)
    med = {v: statistics.median(ts) for v, ts in times.items()}
    ratio = {}
    if "fused" in med and "dense" in med:
        ratio["dense_over_fused"] = med["dense"] / med["fused"]
    if "fused" in med and "pytorch" in med:
        ratio["pytorch_over_fused"] = med["pytorch"] / med["fused"]
    return {
        "what": f"one training step (forward, CE + budget loss, backward, clip, Adam), "
                f"Skip {cell.upper()} vs nn.{cell.upper()}",
        "batch": batch, "steps": steps, "hidden": hidden, "cell": cell, "lam": lam,
        "threads": threads, "repeats": repeats,
        "median_s": {v: round(t, 4) for v, t in med.items()},
        "median_cpu_s": {v: round(statistics.median(ts), 4) for v, ts in cpu.items()},
        "all_s": {v: [round(t, 4) for t in ts] for v, ts in times.items()},
        "ratios": {k: round(v, 2) for k, v in ratio.items()},
        "notes": notes,
        "loadavg_1_5_15": [round(a, 2) for a in os.getloadavg()],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main(args) -> int:
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    r = run(args.batch, args.steps, args.hidden, args.repeats, args.threads, args.cell,
            args.lam, only)
    if args.json:
        print(json.dumps(r))
        return 0
    cell = args.cell.upper()
    label = {"fused": f"Skip {cell}, fused C++", "pytorch": f"Skip {cell}, PyTorch path",
             "dense": f"nn.{cell} + Linear"}
    print(f"{r['what']}: batch {r['batch']}, {r['steps']} steps, hidden {r['hidden']}, "
          f"{r['threads']} threads, median of {r['repeats']} (interleaved)")
    for v, t in r["median_s"].items():
        print(f"  {label[v]:<28} {t:8.3f} s/step  (CPU time of all threads "
              f"{r['median_cpu_s'][v]:.3f} s)")
    for v, note in r["notes"].items():
        print(f"  {label[v]:<28} skipped: {note}")
    rat = r["ratios"]
    if "dense_over_fused" in rat:
        print(f"  fused is {rat['dense_over_fused']:.2f}x faster than nn.{cell}")
    if "pytorch_over_fused" in rat:
        print(f"  fused is {rat['pytorch_over_fused']:.2f}x faster than the PyTorch path")
    print(f"  load average {r['loadavg_1_5_15']} on {r['cpus']} CPUs, {r['date_utc']} UTC")
    return 0
