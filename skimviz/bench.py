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
import platform
from typing import Dict, List

import torch

from . import checkpoint, cost
from .data import mnist


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
        from .tasks.mnist import make_model
        c = skip.config
        dense = make_model(c["cell"], c["hidden_size"], skip=False).eval()
        dense_note = "untrained dense twin (weights do not change its time)"
    skip, dense = skip.to(device), dense.to(device)
    xs, _ = mnist.load_bundled()
    x_all = mnist.to_sequence(xs, side).to(device)
    pick = torch.linspace(0, len(x_all) - 1, digits).long()
    T = x_all.shape[1]
    rows: List[Dict[str, float]] = []
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
    raise ValueError(f"unknown benchmark {args.what!r}")
