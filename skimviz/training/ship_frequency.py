"""Copy the Skip GRU checkpoints that ``python -m skimviz bench paper skip-rnn --tables 2`` trained
(under ``runs/paper-skip-rnn``) into ``pretrained/`` under short names, so that the app's chart of
updates and accuracy against λ has one point per Table 2 configuration at each sampling period.

    skimviz ship frequency [--work runs/paper-skip-rnn] [--dry-run]

Weights are copied byte for byte; the card gets the new ``name`` and ``copied_from`` (the card
keeps the bench's training command). Configurations already shipped (``skip-gru-frequency``:
λ = 1e-4 at 1 ms) and dense baselines are left out; a missing configuration is reported, not
invented.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from skimviz.training import checkpoint

# (bench row name, shipped name)
ROWS = [("paper-frequency-gru-skip-lam0-1ms", "skip-gru-frequency-lam0"),
        ("paper-frequency-gru-skip-lam1e-05-1ms", "skip-gru-frequency-lam1e-5"),
        ("paper-frequency-gru-skip-lam0-0.5ms", "skip-gru-frequency-0.5ms-lam0"),
        ("paper-frequency-gru-skip-lam1e-05-0.5ms", "skip-gru-frequency-0.5ms-lam1e-5"),
        ("paper-frequency-gru-skip-lam0.0001-0.5ms", "skip-gru-frequency-0.5ms")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="skimviz ship frequency",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "paper-skip-rnn"))
    ap.add_argument("--out", default=str(checkpoint.PRETRAINED_DIR))
    ap.add_argument("--dry-run", action="store_true", help="say what would be copied")
    args = ap.parse_args(argv)
    missing = 0
    for src_name, name in ROWS:
        src = Path(args.work) / src_name
        if not (src / checkpoint.CARD).is_file() or not checkpoint.weight_files(src):
            print(f"missing: {src} (train it with the bench first)")
            missing += 1
            continue
        card = json.loads((src / checkpoint.CARD).read_text())
        if card.get("training", {}).get("dry_run"):
            print(f"skipped: {src} is a dry run")
            continue
        dst = Path(args.out) / name
        print(f"{src} -> {dst}")
        if args.dry_run:
            continue
        checkpoint.load(src)                      # refuse to ship what does not load
        dst.mkdir(parents=True, exist_ok=True)
        for f in checkpoint.weight_files(src):   # one file, or an index and its shards
            shutil.copyfile(f, dst / f.name)
        card["name"], card["copied_from"] = name, src_name
        (dst / checkpoint.CARD).write_text(json.dumps(card, indent=2) + "\n")
    return 1 if missing else 0
