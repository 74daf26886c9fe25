"""What the Speed lab page says about a benchmark's rows (from :mod:`skimviz.bench.speedlab`): the
quick look it shows on opening, each cell against a baseline cell in FLOPs and in time, one
sentence per measured result generated from the numbers, and the tables with plain column names.

No Streamlit here: the page only lays out what these functions return.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, List, Sequence

from skimviz.bench import speedlab
from skimviz.viz.common import rate_fraction

#: The quick look run on opening: one MNIST-length sequence at batch 1 through every default
#: cell, the Skip GRU at p = 1/4 and at p = 1 (its own dense run).
QUICK = {"cells": ("lstm", "gru", "sru", "skip-gru"), "seq_len": 784, "batch": 1, "hidden": 128,
         "update_rate": 0.25}

#: Plain column names for the tables (the rows' keys are for code).
COLUMNS = {"label": "cell", "backend": "runs as", "device": "device", "mode": "mode",
           "seq_len": "steps", "batch": "batch", "hidden": "hidden size",
           "update_rate": "share of steps computed", "ms": "time (ms)",
           "p10_ms": "fastest 10 % (ms)", "p90_ms": "slowest 10 % (ms)", "repeats": "runs",
           "flops": "FLOPs", "gflops_per_s": "GFLOP/s achieved", "status": "status"}
BACKENDS = {"cpp": "C++ loop", "python": "PyTorch loop", "": "PyTorch kernel"}


def _ok(r: Dict[str, object]) -> bool:
    ms = r.get("ms")
    return isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0


fraction = rate_fraction  # 0.25 → "1/4", as the page's slider writes it


def name(r: Dict[str, object]) -> str:
    """A row's cell in plain words: "SRU", "Skip GRU, p = 1/4" (the requested rate)."""
    p = r.get("requested_update_rate")
    return f"{r['label']}, p = {fraction(p)}" if p is not None else str(r["label"])


# --- running ------------------------------------------------------------------------------------
def quick_look(max_seconds: float = 2.0) -> List[Dict[str, object]]:
    """The :data:`QUICK` points timed side by side (interleaved, a warm call before each timed
    one), so one burst of load on a shared machine slows them all alike."""
    q = QUICK
    pts = [dict(cell=c, seq_len=q["seq_len"], batch=q["batch"], hidden=q["hidden"])
           for c in q["cells"] if c not in speedlab.RATE_CELLS]
    pts += [dict(cell=c, seq_len=q["seq_len"], batch=q["batch"], hidden=q["hidden"],
                 update_rate=p) for c in q["cells"] if c in speedlab.RATE_CELLS
            for p in (q["update_rate"], 1.0)]
    return speedlab.measure_interleaved(pts, max_seconds=max_seconds, rounds=15, warm_calls=1)


def run_with_references(grid: Dict[str, object], progress: Callable[[float, str], None],
                        max_point_s: float, max_total_s: float) -> List[Dict[str, object]]:
    """``run_grid`` on the page's grid, plus each rate cell's own dense run (p = 1) when p < 1,
    for the speed-up over itself; all within ``max_total_s``."""
    t0 = time.perf_counter()
    kw = dict(device=grid["device"], mode=grid["mode"], max_seconds_per_point=max_point_s)
    rows = speedlab.run_grid(grid["cells"], grid["seq_lens"], grid["batches"], grid["hidden"],
                             update_rate=grid["update_rate"], progress=progress,
                             max_seconds_total=max_total_s, **kw)
    if grid["update_rate"] < 1.0:
        for c in [c for c in grid["cells"] if c in speedlab.RATE_CELLS]:
            rows += speedlab.run_grid(
                [c], grid["seq_lens"], grid["batches"], grid["hidden"], update_rate=1.0,
                progress=lambda f, m, c=c: progress(f, f"{speedlab.CELLS[c]} at p = 1: " + m),
                max_seconds_total=max(1e-9, max_total_s - (time.perf_counter() - t0)), **kw)
    return rows


# --- each cell against a baseline ----------------------------------------------------------------
def headline(rows: Sequence[Dict[str, object]], baseline: str = "lstm") -> List[Dict[str, object]]:
    """Every measured cell at one point of the grid (the longest sequence at the smallest batch
    where the baseline was measured: where the recurrence matters most) against the baseline
    cell there: ``{"name", "cell", "ms", "flops", "time_ratio", "flop_ratio", "backend",
    "seq_len", "batch", "baseline"}``, the baseline first (both ratios 1). Ratios > 1 mean
    faster / fewer FLOPs. Without the baseline cell the first measured cell is the baseline."""
    ok = [r for r in rows if _ok(r)]
    if not ok:
        return []
    base_cell = baseline if any(r["cell"] == baseline for r in ok) else ok[0]["cell"]
    bases = [r for r in ok if r["cell"] == base_cell]
    batch = min(int(r["batch"]) for r in bases)
    T = max(int(r["seq_len"]) for r in bases if int(r["batch"]) == batch)
    here = [r for r in bases if int(r["batch"]) == batch and int(r["seq_len"]) == T]
    base = next((r for r in here if r.get("requested_update_rate") in (None, 1.0)), here[0])
    at = [r for r in ok if int(r["seq_len"]) == T and int(r["batch"]) == batch
          and r["mode"] == base["mode"]]
    at.sort(key=lambda r: (r is not base, list(speedlab.CELLS).index(r["cell"]),
                           -(r.get("requested_update_rate") or 1.0)))
    return [{"name": name(r), "cell": r["cell"], "ms": float(r["ms"]),
             "flops": float(r["flops"]), "time_ratio": float(base["ms"]) / float(r["ms"]),
             "flop_ratio": float(base["flops"]) / float(r["flops"]), "backend": r["backend"],
             "seq_len": T, "batch": batch, "baseline": name(base)} for r in at]


def _times(x: float, more: str, less: str) -> str:
    """2.0 → "2.0× {more}", 0.5 → "2.0× {less}", ~1 → "about the same"."""
    if 0.95 <= x <= 1.05:
        return "about the same"
    return f"{x:.1f}× {more}" if x > 1 else f"{1 / x:.1f}× {less}"


def cell_sentence(e: Dict[str, object]) -> str:
    """One sentence on one cell of :func:`headline`, built from its two ratios only."""
    t, f = float(e["time_ratio"]), float(e["flop_ratio"])
    flops = _times(f, "fewer FLOPs", "more FLOPs")
    flops = "about the same FLOPs" if flops == "about the same" else flops
    speed = _times(t, "faster", "slower")
    head = f"**{e['name']}** needs {flops} than {e['baseline']} and runs {speed}"
    if speed == "about the same":
        head = (f"**{e['name']}** needs {flops} than {e['baseline']} and takes about the same "
                "time")
    if t > 1.05 and t >= 1.25 * f:
        return head + ": time fell even more than the arithmetic."
    if t > 1.05 and t >= 0.8 * f:
        return head + ": the time saved follows the FLOPs saved."
    if t > 1.05 and f > 1.05:
        return head + (": time fell less than the FLOPs, because part of each step's cost does "
                       "not shrink with the arithmetic.")
    if f > 1.05:
        return head + ": fewer FLOPs did not buy time here."
    return head + "."


def summary_metrics(entries: Sequence[Dict[str, object]], n: int = 4) -> List[Dict[str, str]]:
    """Short texts for up to ``n`` metrics: each non-baseline cell's speed-up (value) and its
    FLOP ratio (below), short enough not to be cut off."""
    out = []
    for e in list(entries)[1:n + 1]:
        out.append({"label": str(e["name"]),
                    "value": _times(float(e["time_ratio"]), "faster", "slower"),
                    "delta": _times(float(e["flop_ratio"]), "fewer FLOPs", "more FLOPs")})
    return out


# --- sentences for the secondary charts ---------------------------------------------------------
def growth_sentence(rows: Sequence[Dict[str, object]], x: str) -> str:
    """How each cell's time grew from the smallest to the largest ``x`` ("seq_len" or
    "batch") along the slice the chart draws."""
    other = "batch" if x == "seq_len" else "seq_len"
    ok = [r for r in rows if _ok(r)]
    parts, span = [], None
    for key in dict.fromkeys((r["cell"], r.get("requested_update_rate")) for r in ok):
        rs = [r for r in ok if (r["cell"], r.get("requested_update_rate")) == key]
        fix = min(int(r[other]) for r in rs)
        rs = sorted((r for r in rs if int(r[other]) == fix), key=lambda r: int(r[x]))
        if len(rs) < 2:
            continue
        span = (int(rs[0][x]), int(rs[-1][x]))
        parts.append(f"{name(rs[0])} {float(rs[-1]['ms']) / float(rs[0]['ms']):.1f}×")
    if not parts:
        return ("Only one " + ("length" if x == "seq_len" else "batch size") + " was measured: "
                "add more to see how time grows.")
    what = "steps" if x == "seq_len" else "sequences per batch"
    return (f"From {span[0]} to {span[1]} {what} ({span[1] / span[0]:.0f}× the work), the time "
            "grew: " + ", ".join(parts) + ".")


def gflops_sentence(rows: Sequence[Dict[str, object]]) -> str:
    """Which cell turned FLOPs into time best, and which worst."""
    ok = [r for r in rows if _ok(r)]
    if not ok:
        return ""
    hi = max(ok, key=lambda r: float(r["gflops_per_s"]))
    lo = min(ok, key=lambda r: float(r["gflops_per_s"]))
    return (f"{name(hi)} did the most arithmetic per second ({float(hi['gflops_per_s']):.2g} "
            f"GFLOP/s at {hi['seq_len']} steps, batch {hi['batch']}); {name(lo)} the least "
            f"({float(lo['gflops_per_s']):.2g} GFLOP/s at {lo['seq_len']} steps, batch "
            f"{lo['batch']}). Small, step-by-step work keeps the processor waiting.")


def _headline_point(pts: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """The longest sequence at the smallest batch: where a sentence looks first."""
    batch = min(int(p["batch"]) for p in pts)
    return max((p for p in pts if int(p["batch"]) == batch), key=lambda p: int(p["seq_len"]))


def skip_sentence(points: Sequence[Dict[str, float]], mode: str) -> str:
    """The Skip GRU's measured speed-up over its own dense run against the 1/p bound, at the
    headline point, and the range over the others."""
    pts = [p for p in points if float(p["update_rate"]) < 1.0]
    if not pts:
        return ""
    h = _headline_point(pts)
    text = (f"At {h['seq_len']} steps, batch {h['batch']}, the Skip GRU computing a share "
            f"p = {fraction(h['update_rate'])} of the steps ran {h['speedup']:.1f}× faster than "
            f"at p = 1; the FLOPs alone promise {h['theory']:.1f}×.")
    if len(pts) > 1:
        s = [float(p["speedup"]) for p in pts]
        text += f" Over all {len(pts)} points: {min(s):.1f}× to {max(s):.1f}×."
    if mode == "train":
        text += (" In train mode every step is computed and blended, so skipping cannot save "
                 "time there.")
    if any(p["speedup"] > 1.1 * p["theory"] for p in pts):
        text += (" A speed-up above its bound can only be timing noise on a busy machine: run "
                 "it again.")
    return text


def skim_sentence(rows: Sequence[Dict[str, object]]) -> str:
    """The Skim-RNN's measured speed-up over reading every token, against its FLOP reduction,
    at the headline point, and the range over the others."""
    own = speedlab.own_dense_speedups(rows, "skim-rnn")
    if not own:
        return ""
    h = _headline_point(own)
    text = (f"At {h['seq_len']} steps, batch {h['batch']}, the Skim-RNN reading a share "
            f"p = {fraction(h['requested_update_rate'])} of the tokens with its big cell needs "
            f"{h['theory_speedup_flops']:.1f}× fewer FLOPs than reading them all and ran "
            f"{_times(float(h['measured_speedup']), 'faster', 'slower')}.")
    if len(own) > 1:
        s = [float(o["measured_speedup"]) for o in own]
        text += f" Over all {len(own)} points: {min(s):.1f}× to {max(s):.1f}× faster."
    return text


# --- tables -------------------------------------------------------------------------------------
def plain_rows(rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """The benchmark's rows with plain column names and values (cells named with their p)."""
    out = []
    for r in rows:
        d = {COLUMNS[k]: r.get(k) for k in COLUMNS}
        d[COLUMNS["label"]] = name(r)
        d[COLUMNS["backend"]] = BACKENDS.get(str(r.get("backend") or ""), r.get("backend"))
        out.append(d)
    return out


def plain_speedups(rows: Sequence[Dict[str, object]], baseline: str = "lstm"
                   ) -> List[Dict[str, object]]:
    """Every measured cell against the baseline cell at the same point, plain column names."""
    label = speedlab.CELLS.get(baseline, baseline)
    return [{"cell": o["cell"], "steps": o["seq_len"], "batch": o["batch"],
             "share of steps computed": o["update_rate"],
             f"fewer FLOPs than {label} (×)": o["theory_speedup_flops"],
             f"faster than {label} (×)": o["measured_speedup"]}
            for o in speedlab.relative_speedups(rows, baseline)]


def plain_skim(rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """The Skim-RNN against its own run reading every token, plain column names."""
    return [{"cell": o["cell"], "steps": o["seq_len"], "batch": o["batch"],
             "share read by the big cell": o["update_rate"],
             "fewer FLOPs (×)": o["theory_speedup_flops"], "faster (×)": o["measured_speedup"]}
            for o in speedlab.own_dense_speedups(rows, "skim-rnn")]


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def backends_sentence(sru: str, skip: str, skim: str) -> str:
    """How the cells run on this server (backends "cpp" or "python"), in words, no commands."""
    cells = (("SRU", sru), ("the Skip GRU", skip), ("the Skim-RNN", skim))
    cpp = [c for c, b in cells if b == "cpp"]
    py = [c for c, b in cells if b != "cpp"]
    text = "On this server "
    if cpp:
        text += f"{_join(cpp)} run{'s' if len(cpp) == 1 else ''} as a C++ loop"
    if py:
        text += (", " if cpp else "") + (f"{_join(py)} as a slower PyTorch loop (no C++ version "
                                         "is available here)")
    return text + ("; the skipping cells use theirs at batch 1 when not training, and nn.LSTM "
                   "and nn.GRU are PyTorch's own fused kernels.")
