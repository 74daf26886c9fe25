"""Ship a trained Transkimmer checkpoint into ``pretrained/`` in the shipped encoding, with its
numbers measured again on what is shipped.

    skimviz ship transkimmer runs/minilm/transkimmer-minilm-sst2 --data-dir ../shared/data

The weights are written as ``train transkimmer`` exports them today: float16, with the tensors of
``tasks.transkimmer.int8_rows`` as per-row int8 (every encoder Linear and every skim predictor's
first Linear, and for MiniLM the word table; tensors that are int8 already are kept bit for bit),
sharded into files under 10 MiB (``checkpoint.SHARD_BYTES``). The shipped model is then
loaded back and evaluated on SST-2 dev; the card's ``metrics`` become those numbers (the
training-time ones are kept under ``metrics_before_shipping``) and so does the shipped point of
its ``lambda_sweep``. Nothing is shipped without that evaluation.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

import torch

from skimviz.data.text import load_sst2
from skimviz.tasks import transkimmer as tk
from skimviz.training import checkpoint


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="skimviz ship transkimmer",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("src", help="exported checkpoint folder (e.g. runs/minilm/NAME)")
    ap.add_argument("--out", default=str(checkpoint.PRETRAINED_DIR))
    ap.add_argument("--data-dir", required=True, help="folder with sst2/dev.tsv")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", help="ship under this name (default: the card's); the card's "
                    "`name` becomes it and `trained_as` keeps the run's")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    src = Path(args.src)
    model, card = checkpoint.load(src)
    if card.get("task") != tk.TASK:
        print(f"{src} is not a Transkimmer checkpoint (task {card.get('task')!r})")
        return 1
    kind = card.get("training", {}).get("model", "small")
    rows = tk.int8_rows(kind, model)
    ship = copy.deepcopy(model)
    if card.get("training", {}).get("weights_dtype", "float16") == "float16":
        ship.half()
    with torch.no_grad():          # int8 tensors are quantised from float32, as in training
        for n in rows:
            p = ship.get_parameter(n)
            p.data = model.get_parameter(n).detach().float().clone()
    tok_file = card.get("input", {}).get("file", "tokenizer.json")
    tok_text = checkpoint.read_extra(src, tok_file, max_bytes=4 << 20)
    texts, labels = load_sst2(args.data_dir, "dev")
    before = dict(card["metrics"])
    if args.name and args.name != card["name"]:
        card = {**card, "name": args.name, "trained_as": card["name"]}
    dst = Path(args.out) / card["name"]
    card = {**card, "training": {**card.get("training", {}), "int8_rowwise": list(rows)}}
    checkpoint.save(ship, card, dst, extra_files={tok_file: tok_text}, int8_rows=rows)
    shipped, _ = checkpoint.load(dst)
    r = tk.evaluate(shipped, tk.text_encoder(card, dst), texts, labels)
    card = json.loads((dst / checkpoint.CARD).read_text())
    card["metrics_before_shipping"] = card.get("metrics_before_shipping") or before  # training's
    card["metrics"] = tk.card_metrics(r)
    for pt in card.get("lambda_sweep", []):
        if pt.get("shipped"):
            pt["accuracy"], pt["flops_reduction"] = r["accuracy"], r["flops_reduction"]
    twin = Path(args.out) / (card.get("dense_twin") or "") / checkpoint.CARD
    if "target" not in card and card.get("dense_twin") and twin.is_file():
        card["target"] = {  # as the training's export writes it when the twin is beside it
            "goal": "within 1 point of the dense twin on SST-2 dev at >= 2x FLOP reduction "
                    "(no padding)",
            "dense_twin_accuracy": json.loads(twin.read_text())["metrics"]["dev_accuracy"]}
    t = card.get("target")
    if t and "dense_twin_accuracy" in t:
        t["reached"] = tk.target_reached(r, t["dense_twin_accuracy"])
    if card.get("shipped_by"):  # re-shipped from a shipped checkpoint: keep how that was made
        card["first_shipped_by"] = card.get("first_shipped_by") or card["shipped_by"]
    card["shipped_by"] = ("skimviz ship transkimmer " + str(args.src)
                          + (f" --name {args.name}" if args.name else "")
                          + " --data-dir DATA_DIR")
    (dst / checkpoint.CARD).write_text(json.dumps(card, indent=2) + "\n")
    files = [f for f in checkpoint.weight_files(dst) if f.suffix == ".safetensors"]
    size = sum(f.stat().st_size for f in files)
    acc_before = before.get("dev_accuracy", float("nan"))
    print(f"{dst}: {len(files)} weights files, {size / 1e6:.1f} MB; dev accuracy "
          f"{r['accuracy']:.4f} (before {acc_before:.4f}), FLOP reduction "
          f"{r['flops_reduction']:.2f}x, kept per layer {r['tokens_kept_per_layer']}")
    return 0
