"""Print the README's tables of shipped text checkpoints (Skim-RNN and Transkimmer), measured now
on each model's validation split (SST-2 dev, or the IMDB validation reviews).

    skimviz results text --data-dir ../shared/data           # markdown
    skimviz results text --data-dir ../shared/data --json

Every accuracy, skim rate, Flop-R and FLOP reduction is re-evaluated here (the same code as
``python -m skimviz evaluate NAME --data-dir DIR --json``); for Skim-RNN models the row "at
Flop-R ≥ 2.5" is the highest-accuracy θ of a sweep re-run here (θ from the card's grid).
Only the training facts (command, wall time) come from the cards.
"""
from __future__ import annotations

import argparse
import json

from skimviz.data import text as textdata
from skimviz.tasks import skim_text, transkimmer
from skimviz.training import checkpoint


def skim_rows(data_dir: str, min_flop_r: float = 2.5):
    out = []
    for name in checkpoint.list_pretrained():
        model, card = checkpoint.load(name)
        if card.get("task") != skim_text.TASK:
            continue
        dataset = card.get("dataset", "sst2")
        texts, labels = skim_text.load_split(dataset, data_dir, skim_text.SPLITS[dataset][1])
        ids = skim_text.encode(texts, skim_text.load_vocab(name),
                               card.get("input", {}).get("max_tokens", textdata.MAX_TOKENS))
        r = skim_text.evaluate(model, ids, labels)
        row = {"name": name, "dataset": dataset, "skim": card["config"]["skim"],
               "small": card["config"]["small_size"] if card["config"]["skim"] else None,
               "gamma": card.get("training", {}).get("gamma"), "threshold": card.get("skim_threshold"),
               "accuracy": r["accuracy"], "skim_rate": r["skim_rate"], "flop_r": r["flop_r"],
               "n": r["n"], "wall_time_min": card.get("training", {}).get("wall_time_s", 0) / 60,
               "command": card.get("training", {}).get("command")}
        if card["config"]["skim"]:
            grid = [p["threshold"] for p in card.get("threshold_sweep", [])] or list(skim_text.THRESHOLDS)
            sweep = skim_text.threshold_sweep(model, ids, labels, grid)
            ok = [p for p in sweep if p["flop_r"] >= min_flop_r]
            best = max(ok, key=lambda p: p["accuracy"]) if ok else None
            row["at_min_flop_r"] = None if best is None else {
                k: best[k] for k in ("threshold", "accuracy", "skim_rate", "flop_r")}
        out.append(row)
    return out


def transkimmer_rows(data_dir: str):
    out = []
    for name in checkpoint.list_pretrained():
        card = checkpoint.load_card(name)
        if card.get("task") != transkimmer.TASK:
            continue
        model, card = checkpoint.load(name)
        r = transkimmer.evaluate_command(model, card, name, "dev", data_dir)
        out.append({"name": name, "skim": card["config"].get("skim", True),
                    "lambda": card.get("lambda"), "accuracy": r["accuracy"],
                    "flops_reduction": r["flops_reduction"],
                    "tokens_kept_per_layer": r["tokens_kept_per_layer"],
                    "wall_time_min": card.get("training", {}).get("wall_time_s", 0) / 60,
                    "command": card.get("training", {}).get("command")})
    return out


def markdown(skim, tk) -> str:
    lines = ["| checkpoint | model | accuracy | skim rate | Flop-R | best θ at Flop-R ≥ 2.5 | training time |",
             "|---|---|---|---|---|---|---|"]
    for r in skim:
        model = (f"Skim-LSTM d=100, d'={r['small']}, γ={r['gamma']}, θ={r['threshold']}"
                 if r["skim"] else "LSTM d=100")
        at = r.get("at_min_flop_r")
        at_s = (f"θ={at['threshold']}: {100 * at['accuracy']:.1f} % at {at['flop_r']:.2f}×"
                if at else "—")
        lines.append(f"| `{r['name']}` ({r['dataset']}, n={r['n']}) | {model} | "
                     f"{100 * r['accuracy']:.1f} % | {100 * r['skim_rate']:.1f} % | "
                     f"{r['flop_r']:.2f}× | {at_s} | {r['wall_time_min']:.0f} min |")
    if tk:
        lines += ["", "| checkpoint | model | SST-2 dev accuracy | FLOP reduction (no padding) | "
                      "tokens entering each layer | training time |", "|---|---|---|---|---|---|"]
        for r in tk:
            kept = ", ".join(f"{k:.1f}" for k in r["tokens_kept_per_layer"])
            model = f"Transkimmer λ={r['lambda']}" if r["skim"] else "dense twin"
            lines.append(f"| `{r['name']}` | {model} | {100 * r['accuracy']:.1f} % | "
                         f"{r['flops_reduction']:.2f}× | {kept} | {r['wall_time_min']:.0f} min |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="skimviz results text", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    skim, tk = skim_rows(a.data_dir), transkimmer_rows(a.data_dir)
    print(json.dumps({"skim_rnn": skim, "transkimmer": tk}, indent=1) if a.json
          else markdown(skim, tk))
    return 0
