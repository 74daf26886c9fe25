"""Speed lab: a small benchmark runner for recurrent cells (no Streamlit here).

:func:`run_grid` builds each requested model, times it over a grid of sequence lengths and batch
sizes with :func:`skimviz.cost.measure_latency`, and returns one row per point::

    {cell, label, backend, device, seq_len, batch, hidden, input_size, mode, ms, p10_ms, p90_ms,
     repeats, flops, gflops_per_s, update_rate, status}

Cells (``CELLS``):

* ``"lstm"`` / ``"gru"``: ``torch.nn.LSTM`` / ``torch.nn.GRU`` (oneDNN / cuDNN fused kernels);
* ``"sru"``: :class:`~skimviz.models.sru.SRU` with the backend in use (``"cpp"`` when the C++
  extension is built, else ``"python"``; CUDA tensors always use the PyTorch loop);
* ``"sru-python"``: the same SRU forced onto the PyTorch recurrence (for cpp-vs-python rows);
* ``"skip-gru"``: :class:`~skimviz.models.skip_rnn.SkipRNN` with a GRU cell and a fixed update
  rate (see :func:`set_update_rate`); its backend is ``"cpp"`` where the C++ jump loop runs
  (inference at batch 1 on the CPU with the extension built, see ``skip_rnn.backend()``), else
  ``"python"``.
* ``"skim-rnn"``: :class:`~skimviz.models.skim_rnn.SkimRNN` (Skim-LSTM, big cell d = hidden,
  small cell d' = max(1, hidden // 10), the paper's d = 100, d' = 10) reading a given share of the
  tokens with its big cell (see :func:`set_read_rate`); the rate knob is the same as the Skip
  GRU's, p = the share of tokens the full cell processes, so the skim rate is 1 − p. Its backend
  is ``"cpp"`` where the C++ batch-1 loop runs (as for the Skip GRU, ``skim_rnn.backend()``).

Modes: ``"inference"`` times the forward pass under ``torch.inference_mode`` (``model.eval()``,
so the Skip RNN really jumps over skipped steps); ``"train"`` times forward + backward of
``output.sum()`` (``model.train()``; for the Skip RNN that is the paper's training path, which
computes every step).

FLOPs are analytic (:mod:`skimviz.cost`), per sequence step times steps times batch:
nn.LSTM ``lstm_cell_flops``, nn.GRU ``gru_cell_flops``, SRU ``sru_cell_flops``; the Skip RNN
counts ``flops_per_update`` on updating steps and ``SKIP_STEP_FLOPS`` on skipped ones (in train
mode every step is computed, so every step counts ``flops_per_update``); the Skim-RNN counts its
trace's FLOPs (decision + big cell on read tokens, decision + small cell on skimmed ones; in train
mode both cells and the decision at every token). A training step counts
3 × the forward FLOPs (the usual convention: the backward costs about twice the forward).

Time caps: every point gets at most ``max_seconds_per_point`` of timed runs (the number of
repeats is chosen from the first call's time; a point whose first call alone exceeds the cap is
reported from that one call with ``status="capped"``), and the grid stops starting new points
once ``max_seconds_total`` has passed or a point is predicted (from the last point of the same
cell, scaled by steps × batch) not to fit in what is left (``status="skipped"``, ``ms`` NaN).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from skimviz import cost
from skimviz.cost import threads
from skimviz.models import skim_rnn as skim_mod
from skimviz.models import skip_rnn as skip_mod
from skimviz.models import sru as sru_mod
from skimviz.models.skim_rnn import SkimRNN
from skimviz.models.skip_rnn import SkipRNN

CELLS: Dict[str, str] = {
    "lstm": "nn.LSTM",
    "gru": "nn.GRU",
    "sru": "SRU",
    "sru-python": "SRU (PyTorch loop)",
    "skip-gru": "Skip GRU",
    "skim-rnn": "Skim-RNN",
}
RATE_CELLS = ("skip-gru", "skim-rnn")  # cells that take the update rate p
MODES = ("inference", "train")
REPEATS = 10
THETA = 0.5  # the Skip RNN's inference threshold (the paper's round())


# ---------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(device: str = "cpu") -> str:
    """``cost.describe_device`` plus the CPU model and core count, for result tables."""
    import os
    return f"{cost.describe_device(device)}; {cpu_model()}, {os.cpu_count()} logical cores"


class _PythonSRU(sru_mod.SRU):
    """:class:`SRU` that always runs the PyTorch recurrence, whatever ``sru.backend()`` says
    (the same equations; used for the cpp-vs-python comparison without touching the process-wide
    ``SKIMVIZ_SRU_BACKEND``)."""

    def forward(self, input: Tensor, c0: Optional[Tensor] = None):  # type: ignore[override]
        x = input.transpose(0, 1) if self.batch_first else input
        if c0 is None:
            c0 = x.new_zeros(self.num_layers, x.shape[1], self.hidden_size)
        c_n = []
        for layer in range(self.num_layers):
            w, b, v = self._params(layer)
            U = nn.functional.linear(x, w)
            h, c = sru_mod._recurrence_python(
                U, x if w.shape[0] == 3 * self.hidden_size else None, c0[layer], b, v)
            c_n.append(c)
            x = h
        return (x.transpose(0, 1) if self.batch_first else x), torch.stack(c_n)


# --- the Skip RNN's update-rate knob ---------------------------------------------------------
def update_period(p: float) -> int:
    """The update period k the knob uses for a requested rate p: k = round(1/p), so the achieved
    rate is 1/k (exact for p = 1, 1/2, 1/3, ...)."""
    p = float(p)
    if not 0.0 < p <= 1.0 or math.isnan(p):
        raise ValueError(f"update rate must be in (0, 1], got {p}")
    return max(1, int(round(1.0 / p)))


def gate_delta(p: float, theta: float = THETA) -> float:
    """The constant Δũ that makes the Skip RNN update every k = round(1/p) steps.

    With zero gate weights Δũ_t = σ(b_p) = d at every step (Eq. 4). After an update ũ = d, and
    each skipped step adds d (Eq. 5), so the next update comes n steps later with
    n = ⌈θ/d⌉ (Eq. 6). d = θ/(k − ½) puts θ/d = k − ½ in the middle of (k − 1, k], so n = k with
    a margin against float32 rounding; for k = 1 any d ≥ θ updates every step (d = 0.9).
    """
    k = update_period(p)
    return 0.9 if k == 1 else theta / (k - 0.5)


def set_update_rate(model: SkipRNN, p: float) -> float:
    """Zero the gate's weights W_p and set its bias b_p = logit(Δũ) (see :func:`gate_delta`), so
    that the model updates its state exactly every round(1/p) steps (the first step always
    updates), on every path (training blend, batch-1 jump, batched rows). Returns the rate 1/k
    that this gives for long sequences; over T steps the model makes ⌈T/k⌉ updates."""
    d = gate_delta(p, model.update_threshold)
    with torch.no_grad():
        model.gate.weight.zero_()
        model.gate.bias.fill_(math.log(d / (1.0 - d)))
    return 1.0 / update_period(p)


def expected_updates(seq_len: int, p: float) -> int:
    """⌈T/k⌉: the updates a model set by :func:`set_update_rate` makes over ``seq_len`` steps."""
    return -(-int(seq_len) // update_period(p))


# --- the Skim-RNN's read-rate knob -----------------------------------------------------------
SKIM_SCALE = 10.0  # logit_skim − logit_read per unit of the first input feature


def set_read_rate(model: SkimRNN, x: Tensor, p: float) -> float:
    """Make ``model`` read exactly round(p·N) of the N tokens of ``x`` (B, T, I) with its big cell
    and skim the others, on every inference path (C++ and Python loop, batch 1 and batched).

    The decision layer is set to read only the first input feature: W = 0 except
    W[skim, 0] = s (s = ``SKIM_SCALE``), b[read] = 0 and b[skim] = logit(θ) − s·q, so
    p_skim > θ ⇔ x_0 > q (the decision ignores h). q is put halfway between the two values of
    x[..., 0] that separate the round((1 − p)·N) smallest from the rest, so the tokens with the
    largest x_0 are skimmed: for random x, random positions (no periodic pattern a branch
    predictor could learn), and the same ones in every run on the same x. θ must be in (0, 1).
    Returns the share of tokens read (achieved p)."""
    p = float(p)
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"read rate must be in [0, 1], got {p}")
    theta = model.skim_threshold
    if not 0.0 < theta < 1.0:
        raise ValueError(f"set_read_rate needs a threshold θ in (0, 1), got {theta}")
    v = x[..., 0].detach().flatten().double().sort().values
    n = v.numel()
    n_skim = n - int(round(p * n))
    if n_skim == 0:
        q = float(v[-1]) + 1.0
    elif n_skim == n:
        q = float(v[0]) - 1.0
    else:
        q = 0.5 * (float(v[n - n_skim - 1]) + float(v[n - n_skim]))
    with torch.no_grad():
        model.decide.weight.zero_()
        model.decide.weight[skim_mod.SKIM, 0] = SKIM_SCALE
        model.decide.bias.zero_()
        model.decide.bias[skim_mod.SKIM] = math.log(theta / (1 - theta)) - SKIM_SCALE * q
    return float((x[..., 0] <= q).double().mean())


# --- models and FLOPs ------------------------------------------------------------------------
def sru_backend(cell: str, device: str) -> str:
    """Which SRU recurrence a cell runs on ``device``: "cpp" or "python" ("" for non-SRU)."""
    if cell == "sru":
        return sru_mod.backend() if torch.device(device).type == "cpu" else "python"
    if cell == "sru-python":
        return "python"
    return ""


def row_backend(cell: str, device: str, mode: str, batch: int) -> str:
    """A row's backend: the SRU's (:func:`sru_backend`), or for the Skip GRU and the Skim-RNN
    "cpp" where their C++ batch-1 loop runs (CPU inference at batch 1, extension built), or the
    Skip GRU's fused C++ training op (CPU train mode, :func:`skimviz.ops.skip_rnn.train_backend`),
    else "python"."""
    if cell in RATE_CELLS:
        mod = skip_mod if cell == "skip-gru" else skim_mod
        cpu = torch.device(device).type == "cpu"
        cpp = mode == "inference" and int(batch) == 1 and cpu and mod.backend() == "cpp"
        if cell == "skip-gru" and mode == "train" and cpu:
            from skimviz.ops import skip_rnn as skip_train
            cpp = skip_train.train_backend() == "cpp"
        return "cpp" if cpp else "python"
    return sru_backend(cell, device)


def build_model(cell: str, input_size: int, hidden: int, update_rate: Optional[float] = None
                ) -> nn.Module:
    if cell == "lstm":
        return nn.LSTM(input_size, hidden, batch_first=True)
    if cell == "gru":
        return nn.GRU(input_size, hidden, batch_first=True)
    if cell == "sru":
        return sru_mod.SRU(input_size, hidden, batch_first=True)
    if cell == "sru-python":
        return _PythonSRU(input_size, hidden, batch_first=True)
    if cell == "skip-gru":
        m = SkipRNN(input_size, hidden, cell="gru")
        set_update_rate(m, 1.0 if update_rate is None else update_rate)
        return m
    if cell == "skim-rnn":  # the read rate is set on the input: set_read_rate (measure_point)
        return SkimRNN(input_size, hidden, small_size=skim_small_size(hidden))
    raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")


def skim_small_size(hidden: int) -> int:
    """d' for a Skim-RNN of hidden size d in the speed lab: d // 10 (the paper's 100 → 10)."""
    return max(1, int(hidden) // 10)


def dense_flops(cell: str, input_size: int, hidden: int, seq_len: int, batch: int) -> int:
    """Forward FLOPs of a dense cell over the whole (batch, seq_len) input."""
    base = {"lstm": "lstm", "gru": "gru", "sru": "sru", "sru-python": "sru"}[cell]
    return cost.cell_flops(base, input_size, hidden) * seq_len * batch


def skip_flops(model: SkipRNN, updates: float, seq_len: int, batch: int, mode: str) -> float:
    """Forward FLOPs of the Skip RNN: ``updates`` is the total over the batch (inference); in
    train mode every step is computed."""
    if mode == "train":
        return float(model.flops_per_update() * seq_len * batch)
    skipped = seq_len * batch - updates
    return float(updates * model.flops_per_update() + skipped * cost.SKIP_STEP_FLOPS)


# --- one point -------------------------------------------------------------------------------
def _step_fn(model: nn.Module, x: Tensor, mode: str) -> Callable[[], object]:
    if mode == "inference":
        def fn():
            return model(x)
        return fn

    def fn():  # measure_latency runs fn under inference_mode: switch it off for autograd
        with torch.inference_mode(False), torch.enable_grad():
            model.zero_grad(set_to_none=True)
            out = model(x)[0]
            out.sum().backward()
    return fn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _prepare_point(cell: str, seq_len: int, batch: int, hidden: int, input_size: int,
                   device: str, mode: str, update_rate: Optional[float], seed: int):
    """Build ``cell`` and its input for one point: (fn to time, device, FLOPs, update rate)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = build_model(cell, input_size, hidden, update_rate).to(dev)
    model.train(mode == "train")
    x = torch.randn(batch, seq_len, input_size, device=dev)
    if cell == "skim-rnn":
        set_read_rate(model, x, 1.0 if update_rate is None else update_rate)
    fn = _step_fn(model, x, mode)

    rate = 1.0
    if cell == "skip-gru":
        with torch.no_grad():
            _, _, trace = model(x, return_trace=True)
        updates = float(trace.update.sum())
        rate = updates / (seq_len * batch)
        flops = skip_flops(model, updates, seq_len, batch, mode)
    elif cell == "skim-rnn":
        model.eval()
        with torch.no_grad():
            _, _, trace = model(x, return_trace=True)
        model.train(mode == "train")
        n = seq_len * batch
        rate = (n - int(trace.skim.sum().round())) / n  # share of tokens the big cell read
        flops = float(trace.flops.sum())
        if mode == "train":  # decision, big and small cell at every token
            flops = float((model.read_flops() + model.skim_flops() - model.decision_flops())
                          * seq_len * batch)
    else:
        flops = float(dense_flops(cell, input_size, hidden, seq_len, batch))
    if mode == "train":
        flops *= 3
    return fn, dev, flops, rate


def _point_row(cell, seq_len, batch, hidden, input_size, device, mode, update_rate, flops, rate,
               ms, p10, p90, n, status) -> Dict[str, object]:
    return {
        "cell": cell, "label": CELLS[cell], "backend": row_backend(cell, device, mode, batch),
        "device": str(torch.device(device)), "seq_len": int(seq_len), "batch": int(batch),
        "hidden": int(hidden), "input_size": int(input_size), "mode": mode, "ms": ms,
        "p10_ms": p10, "p90_ms": p90, "repeats": n, "flops": flops,
        "gflops_per_s": flops / (ms / 1e3) / 1e9, "update_rate": rate,
        "requested_update_rate": update_rate if cell in RATE_CELLS else None, "status": status,
    }


def measure_point(cell: str, seq_len: int, batch: int, hidden: int, *, input_size: int = 1,
                  device: str = "cpu", mode: str = "inference", update_rate: Optional[float] = None,
                  max_seconds: float = 2.0, repeats: int = REPEATS, seed: int = 0
                  ) -> Dict[str, object]:
    """Build ``cell``, time it on one (seq_len, batch) point and return its row."""
    t_start = time.perf_counter()
    fn, dev, flops, rate = _prepare_point(cell, seq_len, batch, hidden, input_size, device, mode,
                                          update_rate, seed)
    t0 = time.perf_counter()  # the first call is the warm-up, and it sizes the repeats
    with torch.inference_mode(mode == "inference"):
        fn()
    _sync(dev)
    first = time.perf_counter() - t0
    left = max_seconds - (time.perf_counter() - t_start)
    status = "ok"
    if left <= first:
        ms, p10, p90, n = first * 1e3, first * 1e3, first * 1e3, 1
        status = "capped"
    else:
        n_rep = max(1, min(repeats, int(left / max(first, 1e-6))))
        lat = cost.measure_latency(fn, device=dev, warmup=0, repeats=n_rep, max_seconds=left)
        ms, p10, p90, n = lat.median_ms, lat.p10_ms, lat.p90_ms, lat.repeats
    return _point_row(cell, seq_len, batch, hidden, input_size, device, mode, update_rate, flops,
                      rate, ms, p10, p90, n, status)


def measure_interleaved(points: Sequence[Dict[str, object]], *, max_seconds: float = 5.0,
                        rounds: int = 5 * REPEATS, warm_calls: int = 0
                        ) -> List[Dict[str, object]]:
    """Time several points side by side and return their rows (as :func:`measure_point`).

    ``points``: keyword arguments of :func:`measure_point` (``cell``, ``seq_len``, ``batch``,
    ``hidden`` and optionally ``input_size``, ``device``, ``mode``, ``update_rate``, ``seed``).
    Each model is built and warmed up once, then timed one call each in turn, round after round,
    until ``rounds`` rounds or ``max_seconds`` (at least 3 rounds); each row reports the median
    of its calls. On a machine shared with other work, a burst of load then slows every point
    alike, so their ratios (the speed-ups of ``bench kernels``) stay meaningful where points
    timed one after the other would each see a different load.

    ``warm_calls``: untimed calls of a point right before each of its timed calls. With 0, a
    point's call runs on caches (and branch predictors) that the previous point's call filled
    with its own data, which slows a sub-millisecond call next to a multi-millisecond one by
    tens of percent; with 1, every timed call is a warm one, as in :func:`measure_point`, and
    load still hits every point alike (it costs one more call per point per round).
    """
    if warm_calls < 0:
        raise ValueError("warm_calls must be >= 0")
    keys = ("cell", "seq_len", "batch", "hidden", "input_size", "device", "mode", "update_rate")
    specs = [{"input_size": 1, "device": "cpu", "mode": "inference", "update_rate": None,
              "seed": 0, **p} for p in points]
    prepared = [_prepare_point(*(sp[k] for k in keys), sp["seed"]) for sp in specs]
    for fn, dev, _, _ in prepared:  # warm-up
        cost.measure_latency(fn, device=dev, warmup=0, repeats=1)
    times: List[List[float]] = [[] for _ in prepared]
    t_start = time.perf_counter()
    for r in range(max(3, rounds)):
        for i, (fn, dev, _, _) in enumerate(prepared):
            times[i].append(cost.measure_latency(fn, device=dev, warmup=warm_calls,
                                                 repeats=1).median_ms)
        if r >= 2 and time.perf_counter() - t_start > max_seconds:
            break
    rows = []
    for sp, (_, _, flops, rate), ts in zip(specs, prepared, times):
        qs = statistics.quantiles(ts, n=10)
        rows.append(_point_row(*(sp[k] for k in keys), flops, rate, statistics.median(ts),
                               qs[0], qs[-1], len(ts), "ok"))
    return rows


def _skipped_row(cell, seq_len, batch, hidden, input_size, device, mode, update_rate, why):
    return {"cell": cell, "label": CELLS[cell], "backend": row_backend(cell, device, mode, batch),
            "device": str(torch.device(device)), "seq_len": int(seq_len), "batch": int(batch),
            "hidden": int(hidden), "input_size": int(input_size), "mode": mode,
            "ms": math.nan, "p10_ms": math.nan, "p90_ms": math.nan, "repeats": 0,
            "flops": math.nan, "gflops_per_s": math.nan, "update_rate": math.nan,
            "requested_update_rate": update_rate if cell in RATE_CELLS else None,
            "status": f"skipped: {why}"}


def validate(cells: Sequence[str], seq_lens: Sequence[int], batches: Sequence[int], hidden: int,
             device: str, mode: str, update_rate: Optional[float]) -> None:
    """Raise ValueError with a readable message for a bad grid."""
    if not cells:
        raise ValueError("pick at least one cell")
    for c in cells:
        if c not in CELLS:
            raise ValueError(f"unknown cell {c!r}; choose from {', '.join(CELLS)}")
    if not seq_lens or not batches:
        raise ValueError("give at least one sequence length and one batch size")
    for name, vals in (("sequence length", seq_lens), ("batch size", batches)):
        for v in vals:
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if int(hidden) != hidden or hidden < 1:
        raise ValueError(f"hidden size must be a positive integer, got {hidden!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available on this machine")
    if "skip-gru" in cells or "skim-rnn" in cells:
        update_period(1.0 if update_rate is None else update_rate)


def run_grid(cells: Sequence[str], seq_lens: Sequence[int], batches: Sequence[int], hidden: int,
             device: str = "cpu", mode: str = "inference", update_rate: Optional[float] = None,
             progress: Optional[Callable[[float, str], None]] = None,
             max_seconds_per_point: float = 2.0, max_seconds_total: float = math.inf,
             input_size: int = 1, repeats: int = REPEATS, n_threads: Optional[int] = None
             ) -> List[Dict[str, object]]:
    """Time every cell on every (seq_len, batch) point; see the module docstring.

    ``progress(fraction, message)`` is called before each point and once at the end (1.0).
    ``n_threads``: torch threads while timing (restored afterwards); None keeps the current.
    """
    validate(cells, seq_lens, batches, hidden, device, mode, update_rate)
    points = [(c, int(t), int(b)) for c in cells for t in seq_lens for b in batches]
    rows: List[Dict[str, object]] = []
    last: Dict[str, Dict[str, object]] = {}
    start = time.perf_counter()
    with threads(n_threads):
        for i, (c, t, b) in enumerate(points):
            if progress is not None:
                progress(i / len(points), f"{CELLS[c]}: {t} steps, batch {b} "
                                          f"({i + 1}/{len(points)})")
            left = max_seconds_total - (time.perf_counter() - start)
            prev = last.get(c)
            est = (prev["ms"] / 1e3 * (t * b) / (prev["seq_len"] * prev["batch"])
                   if prev is not None else 0.0)
            if left <= 0:
                rows.append(_skipped_row(c, t, b, hidden, input_size, device, mode, update_rate,
                                         "total time cap reached"))
                continue
            if est > left:
                rows.append(_skipped_row(c, t, b, hidden, input_size, device, mode, update_rate,
                                         f"predicted {est:.1f} s, {left:.1f} s left"))
                continue
            r = measure_point(c, t, b, hidden, input_size=input_size, device=device, mode=mode,
                              update_rate=update_rate, repeats=repeats,
                              max_seconds=min(max_seconds_per_point, left))
            rows.append(r)
            last[c] = r
    if progress is not None:
        progress(1.0, f"done: {sum(not str(r['status']).startswith('skipped') for r in rows)} points")
    return rows


# --- helpers for the page --------------------------------------------------------------------
def parse_int_list(text: str, name: str, lo: int, hi: int, max_items: int = 8) -> List[int]:
    """"16, 64,256" → [16, 64, 256] (sorted, unique); ValueError with a readable message for
    anything else (not integers, out of [lo, hi], empty, too many)."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError(f"give at least one {name} (comma-separated integers)")
    vals = []
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise ValueError(f"{name}: {p!r} is not a whole number") from None
        if not lo <= v <= hi:
            raise ValueError(f"{name}: {v} is outside the allowed range {lo}–{hi}")
        vals.append(v)
    vals = sorted(set(vals))
    if len(vals) > max_items:
        raise ValueError(f"{name}: at most {max_items} values, got {len(vals)}")
    return vals


def relative_speedups(rows: Sequence[Dict[str, object]], baseline: str = "lstm"
                      ) -> List[Dict[str, object]]:
    """For each measured row of another cell, its speed-up over the ``baseline`` cell at the same
    point: theory (baseline FLOPs / its FLOPs) next to measured (baseline ms / its ms)."""
    key = ("seq_len", "batch", "hidden", "mode", "device")
    ok = [r for r in rows if isinstance(r.get("ms"), float) and math.isfinite(r["ms"])]
    base = {tuple(r[k] for k in key): r for r in ok if r["cell"] == baseline}
    out = []
    for r in ok:
        b = base.get(tuple(r[k] for k in key))
        if b is None or r["cell"] == baseline:
            continue
        out.append({"cell": r["label"] + (f" [{r['backend']}]" if r["backend"] else ""),
                    "seq_len": r["seq_len"], "batch": r["batch"], "update_rate": r["update_rate"],
                    "theory_speedup_flops": b["flops"] / r["flops"],
                    "measured_speedup": b["ms"] / r["ms"]})
    return out


def own_dense_speedups(rows: Sequence[Dict[str, object]], cell: str = "skim-rnn"
                       ) -> List[Dict[str, object]]:
    """For each measured row of ``cell`` (a rate cell, see ``RATE_CELLS``) at a rate p < 1, its
    speed-up over the same cell's dense run (requested p = 1: every step updated / every token
    read by the big cell) at the same point: theory (dense FLOPs / its FLOPs, the paper's Flop-R
    counted with the decision layer on both sides) next to measured (dense ms / its ms)."""
    key = ("seq_len", "batch", "hidden", "mode", "device")
    ok = [r for r in rows if r["cell"] == cell and isinstance(r.get("ms"), float)
          and math.isfinite(r["ms"])]
    dense = {tuple(r[k] for k in key): r for r in ok if r.get("requested_update_rate") == 1.0}
    out = []
    for r in ok:
        d = dense.get(tuple(r[k] for k in key))
        if d is None or r is d:
            continue
        theory, measured = d["flops"] / r["flops"], d["ms"] / r["ms"]
        out.append({"cell": r["label"] + (f" [{r['backend']}]" if r["backend"] else ""),
                    "seq_len": r["seq_len"], "batch": r["batch"],
                    "requested_update_rate": r["requested_update_rate"],
                    "update_rate": r["update_rate"], "theory_speedup_flops": theory,
                    "measured_speedup": measured, "measured_over_theory": measured / theory})
    return out
