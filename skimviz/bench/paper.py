"""``python -m skimviz bench paper skip-rnn``: the Skip RNN paper's Table 1 (adding task) and
Table 2 (frequency discrimination), trained or loaded, evaluated on the fixed generated test sets
and printed next to the paper's values. "Solved" is computed by this run (adding: test MSE ≤
target variance / 100; frequency: test accuracy > 99 %).

A configuration is loaded instead of trained when a checkpoint with the same task, cell, λ,
dense/skip and sampling period exists, first among the shipped ones (``pretrained/``, e.g.
skip-gru-adding) and then among the bench's own (``--work``); ``--retrain`` trains anyway.
Trainings go through the same resumable command as ``train adding|frequency``, so an interrupted
bench continues where it stopped. ``--quick`` uses tiny sizes (for tests): its numbers mean
nothing.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from skimviz.tasks import _runner, adding, frequency
from skimviz.training import checkpoint

# None: the dense baseline. The default rows are the Skip RNN rows the tables are about (Table 1:
# λ = 1e-5; Table 2: λ ∈ {0, 1e-5, 1e-4} at both sampling periods); ``--baselines`` adds the
# paper's dense rows (and Table 1's λ = 0), which always use every sample.
TABLE1_LAMBDAS, TABLE1_BASELINES = (1e-5,), (None, 0.0)
TABLE2_LAMBDAS, TABLE2_BASELINES = (0.0, 1e-5, 1e-4), (None,)
TABLE2_SAMPLING = (1.0, 0.5)


def _paper_key(cell: str, lam: Optional[float]) -> str:
    if lam is None:
        return cell
    return f"skip_{cell}_lambda_{'0' if lam == 0 else f'{lam:.0e}'.replace('e-0', 'e-')}"


def _row_name(task: str, cell: str, lam: Optional[float], ms: Optional[float] = None) -> str:
    kind = "dense" if lam is None else f"skip-lam{lam:g}"
    return f"paper-{task}-{cell}-{kind}" + (f"-{ms:g}ms" if ms is not None else "")


def _matches(card: dict, task: str, cell: str, lam: Optional[float], ms: Optional[float]) -> bool:
    c, tr = card.get("config", {}), card.get("training", {})
    if card.get("task") != task or c.get("cell") != cell or tr.get("dry_run"):
        return False
    if lam is None:
        return c.get("skip") is False
    if not c.get("skip") or abs(float(tr.get("lambda", -1)) - lam) > 1e-12:
        return False
    return ms is None or float(card.get("input", {}).get("sampling_ms", -1)) == ms


def _find(task, cell, lam, ms, work: Path) -> Optional[Path]:
    for d in (checkpoint.PRETRAINED_DIR, work):
        if not d.is_dir():
            continue
        for card_path in sorted(d.glob(f"*/{checkpoint.CARD}")):
            try:
                card = json.loads(card_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if _matches(card, task, cell, lam, ms) and checkpoint.weight_files(card_path.parent):
                return card_path.parent
    return None


def _train_args(args, task: str, cell: str, lam: Optional[float], ms: Optional[float]
                ) -> argparse.Namespace:
    name = _row_name(task, cell, lam, ms)
    quick = args.quick
    steps = 3 if quick else (args.steps or (20000 if task == "adding" else 10000))
    eval_every = 3 if quick else max(100, min(500, steps // 10))
    argv = ["train", task, "--name", name, "--cell", cell, "--hidden", str(args.hidden),
            "--steps", str(steps), "--eval-every", str(eval_every), "--out", str(args.work),
            "--work", str(Path(args.work) / "state")]
    if lam is None:
        argv.append("--dense")
    else:
        argv += ["--lam", f"{lam:g}"]
    if ms is not None:
        argv += ["--sampling-ms", f"{ms:g}"]
    return argparse.Namespace(
        name=name, cell=cell, hidden=4 if quick else args.hidden, dense=lam is None,
        lam=0.0 if lam is None else lam, lr=1e-3, gate_lr_scale=1.0, lam_warmup_steps=0,
        batch_size=8 if quick else 256, steps=steps,
        eval_every=eval_every, seed=0,
        threads=args.threads, out=str(args.work), work=str(Path(args.work) / "state"),
        resume=True, max_minutes=args.max_minutes, dry_run=False, length=50,
        sampling_ms=ms if ms is not None else 1.0, argv=argv, valid_n=32 if quick else None)


def _run_row(args, task_mod, task: str, cell: str, lam, ms) -> Dict[str, object]:
    work = Path(args.work)
    found = None if (args.retrain or args.quick) else _find(task, cell, lam, ms, work)
    source = "loaded"
    t0 = time.time()
    if found is None and getattr(args, "no_train", False):
        return {"task": task, "cell": cell, "model": ("" if lam is None else "Skip ") + cell.upper(),
                "lambda": lam, "sampling_ms": ms, "checkpoint": None, "source": "missing"}
    if found is None:
        targs = _train_args(args, task, cell, lam, ms)
        rc = _runner.train(targs, task_mod.spec(), quiet=args.quick)
        if rc != 0:
            raise RuntimeError(f"training {targs.name} failed (exit code {rc})")
        found = Path(targs.out) / targs.name
        source = "trained"
    model, card = checkpoint.load(found)
    n = 200 if args.quick else None
    r = task_mod.evaluate(model, card, n=n) if n else task_mod.evaluate(model, card)
    T = r.get("seq_len") or card.get("input", {}).get("seq_len")
    row = {"task": task, "cell": cell, "model": ("" if lam is None else "Skip ") + cell.upper(),
           "lambda": lam, "sampling_ms": ms, "checkpoint": str(found), "source": source,
           "steps_trained": card.get("training", {}).get("steps"), "solved": bool(r["solved"]),
           "updates_mean": r["updates_mean"], "update_rate": r["update_rate"], "seq_len": T,
           "seconds": round(time.time() - t0, 1)}
    row["mse" if task == "adding" else "accuracy"] = r["mse" if task == "adding" else "accuracy"]
    return row


def run(args) -> Dict[str, object]:
    torch.set_num_threads(args.threads)
    tables = {t.strip() for t in args.tables.split(",") if t.strip()}
    if not tables <= {"1", "2"}:
        raise ValueError("--tables takes 1, 2 or 1,2")
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    fcells = [c.strip() for c in args.freq_cells.split(",") if c.strip()]
    for c in cells + fcells:
        if c not in ("gru", "lstm"):
            raise ValueError(f"unknown cell {c!r}: gru or lstm")
    out: Dict[str, object] = {"benchmark": "paper skip-rnn", "quick": bool(args.quick),
                              "threads": args.threads, "torch": torch.__version__,
                              "platform": platform.platform(), "table1": [], "table2": []}
    if "1" in tables:
        paper = adding.PAPER["state_updates_percent"]
        lams1 = (TABLE1_BASELINES if args.baselines else ()) + TABLE1_LAMBDAS
        for cell in cells:
            for lam in lams1:
                row = _run_row(args, adding, "adding", cell, lam, None)
                row["paper_updates_percent"] = paper[_paper_key(cell, lam)]
                row["paper_solved"] = True
                out["table1"].append(row)
    if "2" in tables:
        for ms in TABLE2_SAMPLING:
            paper = frequency.PAPER["ts_1ms_length_100" if ms == 1.0 else "ts_0.5ms_length_200"]
            for cell in fcells:
                for lam in (TABLE2_BASELINES if args.baselines else ()) + TABLE2_LAMBDAS:
                    row = _run_row(args, frequency, "frequency", cell, lam, ms)
                    row["paper_updates"] = paper[_paper_key(cell, lam)]
                    row["paper_solved"] = True
                    out["table2"].append(row)
    return out


def _lam(v) -> str:
    return "—" if v is None else ("0" if v == 0 else f"{v:.0e}")


def table(r: dict) -> str:
    lines = []
    if r["table1"]:
        lines += ["Table 1 — adding task (length 50); solved: test MSE ≤ variance/100 = 0.00167",
                  f"{'model':<10} {'λ':>6} {'solved':>7} {'MSE':>9} {'updates %':>10} "
                  f"{'paper updates %':>16} {'source':>8}"]
        for x in r["table1"]:
            if x["source"] == "missing":
                lines.append(f"{x['model']:<10} {_lam(x['lambda']):>6} {'—':>7} {'—':>9} {'—':>10} "
                             f"{x['paper_updates_percent']:>16.1f} {'missing':>8}")
                continue
            lines.append(f"{x['model']:<10} {_lam(x['lambda']):>6} {'yes' if x['solved'] else 'no':>7} "
                         f"{x['mse']:>9.5f} {100 * x['update_rate']:>10.1f} "
                         f"{x['paper_updates_percent']:>16.1f} {x['source']:>8}")
    if r["table2"]:
        lines += ["", "Table 2 — frequency discrimination; solved: test accuracy > 99 %",
                  f"{'Ts':>6} {'model':<10} {'λ':>6} {'solved':>7} {'accuracy':>9} "
                  f"{'updates':>8} {'paper updates':>14} {'source':>8}"]
        for x in r["table2"]:
            if x["source"] == "missing":
                lines.append(f"{x['sampling_ms']:>4g}ms {x['model']:<10} {_lam(x['lambda']):>6} "
                             f"{'—':>7} {'—':>9} {'—':>8} {x['paper_updates']:>14.1f} "
                             f"{'missing':>8}")
                continue
            lines.append(f"{x['sampling_ms']:>4g}ms {x['model']:<10} {_lam(x['lambda']):>6} "
                         f"{'yes' if x['solved'] else 'no':>7} {x['accuracy']:>9.4f} "
                         f"{x['updates_mean']:>8.1f} {x['paper_updates']:>14.1f} {x['source']:>8}")
    lines.append("(paper: every configuration solved; mean over 4 runs. Ours: one run each.)")
    if any(x["source"] == "missing" for x in r["table1"] + r["table2"]):
        lines.append("missing: no checkpoint for that configuration (--no-train); run without "
                     "--no-train to train it (resumable).")
    if r["quick"]:
        lines.append("--quick: tiny models trained for 3 steps; the numbers mean nothing.")
    return "\n".join(lines)


def main(args) -> int:
    if args.quick and args.work == "runs/paper-skip-rnn":
        raise ValueError("--quick needs its own --work folder (it must not touch runs/)")
    r = run(args)
    print(json.dumps(r) if args.json else table(r))
    return 0
