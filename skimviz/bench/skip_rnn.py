"""``python -m skimviz bench skip-rnn``: what skipping saves in theory (FLOPs) next to what it saves
in measured wall-clock time, on the shipped MNIST checkpoints.

Rows (all at inference, same digits):
* ``skip``: the Skip GRU as trained (skipped steps not computed: Eq. 6 jump at batch 1,
  gather/scatter of the updating rows in a batch);
* ``skip-forced-dense``: the same model with the gate forced to update at every step — its own
  dense run, so the ratio isolates what skipping saves in this implementation;
* ``dense``: the plain GRU baseline on ``torch.nn.GRU`` (oneDNN), a fused implementation.
"""
from __future__ import annotations

import json
import os
import platform
from typing import Dict, List

import torch

from skimviz import cost
from skimviz.data import mnist
from skimviz.training import checkpoint


def _time(model, x, device, repeats) -> float:
    return cost.measure_latency(lambda: model(x), device=device, warmup=1, repeats=repeats).median_ms


def skip_rnn(name: str, dense_name: str, digits: int, batch: int, device: str = "cpu",
             threads: int = 1) -> Dict[str, object]:
    torch.set_num_threads(threads)
    skip, card = checkpoint.load(name)
    side = card.get("input", {}).get("side", 28)
    try:
        dense, dense_card = checkpoint.load(dense_name)
        dense_note = dense_name
    except checkpoint.CheckpointError:
        from skimviz.tasks.mnist import make_model
        c = skip.config
        dense = make_model(c["cell"], c["hidden_size"], skip=False).eval()
        dense_note = "untrained dense twin (weights do not change its time)"
    skip, dense = skip.to(device), dense.to(device)
    xs, _ = mnist.load_bundled()
    x_all = mnist.to_sequence(xs, side).to(device)
    pick = torch.linspace(0, len(x_all) - 1, digits).long()
    T = x_all.shape[1]
    per_digit = {"skip": [], "skip-forced-dense": [], "dense": [], "updates": []}
    with torch.no_grad():
        for i in pick.tolist():
            x = x_all[i:i + 1]
            _, tr = skip(x, return_trace=True)
            per_digit["updates"].append(float(tr.update.sum()))
            per_digit["skip"].append(_time(skip, x, device, 3))
            skip.rnn.force_update = True
            per_digit["skip-forced-dense"].append(_time(skip, x, device, 3))
            skip.rnn.force_update = False
            per_digit["dense"].append(_time(dense, x, device, 3))
        xb = x_all[:batch]
        _, trb = skip(xb, return_trace=True)
        batched = {"skip": _time(skip, xb, device, 3)}
        skip.rnn.force_update = True
        batched["skip-forced-dense"] = _time(skip, xb, device, 3)
        skip.rnn.force_update = False
        batched["dense"] = _time(dense, xb, device, 3)

    def mean(v):
        return sum(v) / len(v)

    upd = mean(per_digit["updates"])
    f_skip = upd * skip.rnn.flops_per_update() + (T - upd) * cost.SKIP_STEP_FLOPS
    f_dense = dense.dense_flops(T) if hasattr(dense, "dense_flops") else float("nan")
    b1 = {k: mean(per_digit[k]) for k in ("skip", "skip-forced-dense", "dense")}
    return {
        "model": name, "dense_model": dense_note, "device": cost.describe_device(device),
        "machine": platform.machine(), "torch": torch.__version__, "threads": threads,
        "steps": T, "digits_batch1": digits, "updates_mean": upd, "update_rate": upd / T,
        "flops_skip": f_skip, "flops_dense": f_dense, "flop_reduction": f_dense / f_skip,
        "batch1_ms": b1,
        "batch1_speedup_vs_own_dense": b1["skip-forced-dense"] / b1["skip"],
        "batch1_speedup_vs_nn_gru": b1["dense"] / b1["skip"],
        "batch": batch, "batch_update_rate": float(trb.update.mean()), "batch_ms": batched,
        "batch_speedup_vs_own_dense": batched["skip-forced-dense"] / batched["skip"],
        "batch_speedup_vs_nn_gru": batched["dense"] / batched["skip"],
    }


def _table(r: dict) -> str:
    lines = [f"{r['model']} on {r['device']} (torch {r['torch']}, {r['threads']} thread(s))",
             f"updates {r['updates_mean']:.1f}/{r['steps']} ({100 * r['update_rate']:.1f} %), "
             f"FLOP reduction {r['flop_reduction']:.2f}x",
             f"{'':<22}{'batch 1 (ms)':>14}{'batch ' + str(r['batch']) + ' (ms)':>16}"]
    for k in ("skip", "skip-forced-dense", "dense"):
        lines.append(f"{k:<22}{r['batch1_ms'][k]:>14.2f}{r['batch_ms'][k]:>16.1f}")
    lines.append(f"speed-up vs own dense run: batch 1 {r['batch1_speedup_vs_own_dense']:.2f}x, "
                 f"batch {r['batch']} {r['batch_speedup_vs_own_dense']:.2f}x")
    lines.append(f"speed-up vs nn.GRU (oneDNN): batch 1 {r['batch1_speedup_vs_nn_gru']:.2f}x, "
                 f"batch {r['batch']} {r['batch_speedup_vs_nn_gru']:.2f}x")
    return "\n".join(lines)


def main(args) -> int:
    if args.what == "skip-rnn":
        r = skip_rnn(args.name, args.dense_name, args.digits, args.batch, args.device, args.threads)
        print(json.dumps(r) if args.json else _table(r))
        return 0
    if args.what == "kernels":
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        r = kernels(args.quick, args.threads)
        print(json.dumps(r) if args.json else _kernels_table(r))
        return 0
    raise ValueError(f"unknown benchmark {args.what!r}")


# =============================================================================================
# ``python -m skimviz bench kernels``: the speed targets, measured side by side in one run.
KERNEL_TARGETS = {
    "sru_train_speedup": 5.0,    # SRU vs nn.LSTM, training step (forward + backward), batch 32
    "sru_infer_speedup": 10.0,   # SRU vs nn.LSTM, inference, batch 1
    "skip_own_dense_factor": 0.8,  # Skip GRU at rate p: speed-up over its own dense run >= 0.8/p
    "skip_vs_lstm_max_p": 0.5,   # ... and faster than nn.LSTM whenever p <= 0.5
    "skim_flop_r_factor": 0.7,   # Skim-RNN: speed-up over its own read-all run >= 0.7 x Flop-R
}
SKIP_RATES = (1.0, 0.5, 0.25, 0.1)
# Skim-RNN rows: the share of tokens read by the big cell (skim rates 0, 0.5, 0.75, 0.9), set by
# speedlab.set_read_rate: the decision layer reads only the first feature of the seeded random
# input and its bias puts the threshold at that feature's quantile, so exactly round(p·T) tokens
# are read, at random positions. Sizes: the paper's d = 100, d' = 10, 100-d embeddings.
SKIM_READ_RATES = (1.0, 0.5, 0.25, 0.1)
SKIM_SIZES = {"steps": 400, "hidden": 100, "input_size": 100}
SKIM_SIZES_QUICK = {"steps": 20, "hidden": 20, "input_size": 8}


TIMING_NOTE = ("rows of each comparison timed interleaved (round after round, each row in turn "
               "one untimed warm-up call then one timed call; median per row), so load from "
               "other processes hits both sides alike: nn.LSTM, SRU and Skip GRU at batch 1 "
               "together; the training steps together; the Skim-RNN rows together")


def _load_avg() -> List[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def kernels(quick: bool = False, threads: int = 1, max_seconds: float = 3.0) -> Dict[str, object]:
    """Measure the rows and judge the targets (nothing here is hard-coded but the thresholds).

    Full size: 784 steps (pixel MNIST), hidden 128, input 1, CPU; inference at batch 1 and a
    training step (forward + backward of ``output.sum()``) at batch 32. ``quick`` shrinks it to
    49 steps, hidden 16, training batch 4 (for tests; its verdicts mean nothing).

    All rows of a comparison are timed interleaved (:func:`skimviz.bench.speedlab.measure_interleaved`,
    see ``TIMING_NOTE``); the load average before and after is reported with them.

    Skim-RNN rows (``SKIM_SIZES``: 400 tokens, d = 100, d' = 10, input 100, batch-1 inference):
    the same model at the read rates ``SKIM_READ_RATES`` (see there), timed against its own run
    reading every token (p = 1) and against nn.LSTM of the same size, all five interleaved
    (:func:`skimviz.bench.speedlab.measure_interleaved`). Flop-R = the read-all run's
    FLOPs / the skimming run's FLOPs (both count the decision layer; against a plain LSTM without
    it the ratio is 0.5 % smaller).
    """
    from skimviz.bench import speedlab
    from skimviz.models import skim_rnn as skim_mod
    from skimviz.models import skip_rnn as skip_mod
    from skimviz.models import sru as sru_mod

    T, H, B = (49, 16, 4) if quick else (784, 128, 32)
    sk = SKIM_SIZES_QUICK if quick else SKIM_SIZES
    max_s = 0.3 if quick else max_seconds
    cpp = sru_mod.backend() == "cpp"
    sru_cells = (["sru"] if cpp else []) + ["sru-python"]
    notes = []
    if not cpp:
        why = ("disabled by SKIMVIZ_SRU_BACKEND=python" if os.environ.get("SKIMVIZ_SRU_BACKEND")
               == "python" else "not built (build it with: python -m skimviz._ext build)")
        notes.append(f"C++ SRU extension {why}: only the PyTorch-loop SRU is measured")
    if skip_mod.backend() != "cpp":
        why = ("disabled by SKIMVIZ_SKIP_BACKEND=python" if os.environ.get("SKIMVIZ_SKIP_BACKEND")
               == "python" else "not built (build it with: python -m skimviz._ext build)")
        notes.append(f"C++ Skip RNN jump loop {why}: the Skip GRU runs the Python loop")
    if skim_mod.backend() != "cpp":
        why = ("disabled by SKIMVIZ_SKIM_BACKEND=python" if os.environ.get("SKIMVIZ_SKIM_BACKEND")
               == "python" else "not built (build it with: python -m skimviz._ext build)")
        notes.append(f"C++ Skim-RNN loop {why}: the Skim-RNN runs the Python loop")
    rows: List[Dict[str, object]] = []
    load_before = _load_avg()
    with cost.threads(threads):
        machine = speedlab.describe_machine("cpu")
        # Every comparison is timed side by side (speedlab.measure_interleaved: one call of each
        # row in turn, round after round, median per row), so a burst of load from other work
        # slows both sides of a speed-up alike. Batch 1: nn.LSTM, the SRUs and the Skip GRU at
        # every rate (its own dense run is p = 1) in one group; the training steps in another.
        b1 = dict(seq_len=T, batch=1, hidden=H, mode="inference")
        rows += speedlab.measure_interleaved(
            [dict(cell=c, **b1) for c in ["lstm"] + sru_cells]
            + [dict(cell="skip-gru", update_rate=p, **b1) for p in SKIP_RATES],
            max_seconds=2 * max_s, rounds=5 if quick else 300, warm_calls=1)
        rows += speedlab.measure_interleaved(
            [dict(cell=c, seq_len=T, batch=B, hidden=H, mode="train")
             for c in ["lstm"] + sru_cells],
            max_seconds=3 * max_s, rounds=5 if quick else 50, warm_calls=1)
        skim_size = dict(seq_len=sk["steps"], batch=1, hidden=sk["hidden"],
                         input_size=sk["input_size"], mode="inference")
        rows += speedlab.measure_interleaved(
            [dict(cell="lstm", **skim_size)]
            + [dict(cell="skim-rnn", update_rate=p, **skim_size) for p in SKIM_READ_RATES],
            max_seconds=5 * max_s, rounds=5 if quick else 200, warm_calls=1)

    def row(cell, mode, p=None, hidden=H):
        for r in rows:
            if r["cell"] == cell and r["mode"] == mode and r["hidden"] == hidden and (
                    p is None or r["requested_update_rate"] == p):
                return r
        raise KeyError(cell)

    def ms(cell, mode, p=None, hidden=H):
        return float(row(cell, mode, p, hidden)["ms"])

    targets = []
    for cell in sru_cells:
        name = f"SRU ({'cpp' if cell == 'sru' else 'python'})"
        for mode, key, what in (("train", "sru_train_speedup", f"training step, batch {B}"),
                                ("inference", "sru_infer_speedup", "inference, batch 1")):
            s = ms("lstm", mode) / ms(cell, mode)
            thr = KERNEL_TARGETS[key]
            targets.append({"target": f"{name} vs nn.LSTM, {what}: speed-up >= {thr:g}x",
                            "measured": s, "threshold": thr, "pass": bool(s >= thr),
                            "primary": cell == sru_cells[0]})
    dense = ms("skip-gru", "inference", 1.0)
    lstm1 = ms("lstm", "inference")
    for p in SKIP_RATES:
        skip = ms("skip-gru", "inference", p)
        if p < 1.0:
            thr = KERNEL_TARGETS["skip_own_dense_factor"] / p
            s = dense / skip
            targets.append({"target": f"Skip GRU p={p:g} vs its own dense run (p=1), batch 1: "
                                      f"speed-up >= 0.8/p = {thr:g}x",
                            "measured": s, "threshold": thr, "pass": bool(s >= thr),
                            "primary": True})
        if p <= KERNEL_TARGETS["skip_vs_lstm_max_p"]:
            s = lstm1 / skip
            targets.append({"target": f"Skip GRU p={p:g} vs nn.LSTM (oneDNN), batch 1: "
                                      f"faster (speed-up > 1x)",
                            "measured": s, "threshold": 1.0, "pass": bool(s > 1.0),
                            "primary": True})
    d, d2 = sk["hidden"], speedlab.skim_small_size(sk["hidden"])
    skim_dense = row("skim-rnn", "inference", 1.0, d)
    lstm_d = ms("lstm", "inference", hidden=d)
    for p in SKIM_READ_RATES[1:]:
        r = row("skim-rnn", "inference", p, d)
        flop_r = skim_dense["flops"] / r["flops"]
        thr = KERNEL_TARGETS["skim_flop_r_factor"] * flop_r
        s = skim_dense["ms"] / r["ms"]
        targets.append({"target": f"Skim-RNN skim {1 - p:g} (d={d}, d'={d2}) vs its own run "
                                  f"reading every token, batch 1: speed-up >= 0.7 x Flop-R "
                                  f"({flop_r:.2f}) = {thr:.2f}x",
                        "measured": s, "threshold": thr, "flop_r": flop_r,
                        "pass": bool(s >= thr), "primary": True})
        s = lstm_d / r["ms"]
        targets.append({"target": f"Skim-RNN skim {1 - p:g} vs nn.LSTM (oneDNN, d={d}), "
                                  f"batch 1: faster (speed-up > 1x)",
                        "measured": s, "threshold": 1.0, "pass": bool(s > 1.0),
                        "primary": True})
    return {
        "benchmark": "kernels", "quick": quick, "device": machine,
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "torch": torch.__version__, "threads": threads,
        "sru_backend": sru_mod.backend(), "skip_backend": skip_mod.backend(),
        "skim_backend": skim_mod.backend(), "steps": T, "hidden": H, "input_size": 1,
        "skim": {**sk, "small": speedlab.skim_small_size(sk["hidden"]),
                 "read_rates": list(SKIM_READ_RATES)},
        "train_batch": B, "rows": rows, "targets": targets,
        "timing": TIMING_NOTE, "load_avg": {"before": load_before, "after": _load_avg()},
        "all_primary_pass": all(t["pass"] for t in targets if t["primary"]), "notes": notes,
    }


def _kernels_table(r: dict) -> str:
    lines = [f"bench kernels on {r['device']} ({r['platform']}; torch {r['torch']}, "
             f"{r['threads']} thread(s)); SRU backend: {r['sru_backend']}, "
             f"Skip GRU backend: {r['skip_backend']}",
             f"{r['steps']} steps, hidden {r['hidden']}, input {r['input_size']}"
             + (" [--quick: sizes shrunk, verdicts meaningless]" if r["quick"] else ""),
             f"Skim-RNN rows (backend: {r['skim_backend']}): {r['skim']['steps']} tokens, "
             f"d = {r['skim']['hidden']}, d' = {r['skim']['small']}, input "
             f"{r['skim']['input_size']}; p = share of tokens read by the big cell",
             "", f"{'cell':<22}{'backend':<9}{'mode':<11}{'T':>5}{'d':>5}{'batch':>6}{'p':>6}"
             f"{'ms':>11}{'GFLOP/s':>10}{'updates':>9}"]
    for x in r["rows"]:
        p = "" if x["requested_update_rate"] is None else f"{x['requested_update_rate']:g}"
        lines.append(f"{x['label']:<22}{x['backend'] or '-':<9}{x['mode']:<11}"
                     f"{x['seq_len']:>5}{x['hidden']:>5}{x['batch']:>6}"
                     f"{p:>6}{x['ms']:>11.2f}{x['gflops_per_s']:>10.3f}"
                     f"{100 * x['update_rate']:>8.1f}%")
    lines += ["", f"timing: {r['timing']}"]
    la = r.get("load_avg") or {}
    if la.get("before"):
        lines.append(f"load average (1, 5, 15 min) before: "
                     f"{', '.join(f'{v:.2f}' for v in la['before'])}; after: "
                     f"{', '.join(f'{v:.2f}' for v in la.get('after') or [])} "
                     f"({os.cpu_count()} logical cores)")
    lines += ["", "targets:"]
    for t in r["targets"]:
        lines.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: measured "
                     f"{t['measured']:.2f}x" + ("" if t["primary"] else "  (secondary backend)"))
    lines += [f"note: {n}" for n in r["notes"]]
    return "\n".join(lines)
