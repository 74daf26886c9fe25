"""Print the README's table of shipped MNIST checkpoints, measured now on the validation digits.

    skimviz results mnist            # markdown
    skimviz results mnist --json

Each row re-evaluates the checkpoint (``python -m skimviz evaluate NAME --split valid``): nothing
is copied from the cards except the training facts (epochs, wall time, command).
"""
from __future__ import annotations

import argparse
import json

from skimviz.tasks import mnist as task
from skimviz.training import checkpoint


def rows():
    out = []
    for name in checkpoint.list_pretrained():
        model, card = checkpoint.load(name)
        if card.get("task") != task.TASK:
            continue
        r = task.evaluate(model, card, "valid", None, None)
        tr = card.get("training", {})
        out.append({"name": name, "cell": card["config"]["cell"], "skip": card["config"]["skip"],
                    "lambda": tr.get("lambda"), "accuracy": r["accuracy"],
                    "updates": r["updates_mean"], "flops_reduction": r["flops_reduction"],
                    "epochs": tr.get("epochs"), "wall_time_h": (tr.get("wall_time_s") or 0) / 3600,
                    "command": tr.get("command")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="skimviz results mnist", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rs = rows()
    if args.json:
        print(json.dumps(rs, indent=1))
        return 0
    print("| checkpoint | model | λ | valid accuracy | state updates (of 784) | FLOP reduction "
          "| epochs | training time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rs:
        kind = f"Skip {r['cell'].upper()}" if r["skip"] else r["cell"].upper()
        print(f"| `{r['name']}` | {kind}, 110 units | {r['lambda']:g} | {100 * r['accuracy']:.1f} % "
              f"| {r['updates']:.1f} | {r['flops_reduction']:.2f}× | {r['epochs']} "
              f"| {r['wall_time_h']:.1f} h |")
    return 0
