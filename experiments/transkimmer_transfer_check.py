"""A check outside the dev set: Transkimmer checkpoints and their dense twin on IMDB reviews.

    python experiments/transkimmer_transfer_check.py runs/minilm/transkimmer-minilm-mean-dense \
        pretrained/transkimmer-minilm-sst2 --data-dir ../shared/data --n 1000

Every SST-2 number in the README is chosen on SST-2 dev (the export is the best evaluation, and
the stage, λ and schedule were picked by looking at dev), and SST-2 has no labelled test set. So
the gap between a skim model and its dense twin is also measured here on data none of those
choices saw: ``n`` reviews of the IMDB validation split (``load_imdb(.., "valid")``, 15 % of
the training reviews held out by a fixed hash; the first ``n`` after a seeded shuffle), each
encoded as the model's text encoder does (WordPiece, cut to 128 tokens). It is a transfer
task (movie reviews, not SST-2's phrases), so the accuracies are lower than on dev; what it
tests is whether the skim model stays as close to its twin off the dev set as on it. Prints
one JSON line per checkpoint: accuracy, FLOP reduction (no padding), tokens kept per layer.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from skimviz.data.text import load_imdb  # noqa: E402
from skimviz.tasks import transkimmer as tk  # noqa: E402
from skimviz.training import checkpoint  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="Transkimmer checkpoint folders or names")
    ap.add_argument("--data-dir", required=True, help="folder with imdb/aclImdb_v1_train.tar.gz")
    ap.add_argument("--n", type=int, default=1000, help="reviews (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    texts, labels = load_imdb(args.data_dir, "valid")
    order = list(range(len(texts)))
    random.Random(args.seed).shuffle(order)
    order = order[:args.n]
    texts, labels = [texts[i].replace("<br />", " ") for i in order], [labels[i] for i in order]
    for name in args.checkpoints:
        model, card = checkpoint.load(name)
        if card.get("task") != tk.TASK:
            print(f"{name}: not a Transkimmer checkpoint", file=sys.stderr)
            return 1
        with torch.no_grad():
            r = tk.evaluate(model, tk.text_encoder(card, name), texts, labels)
        print(json.dumps({"checkpoint": card["name"], "data": f"IMDB valid, {len(texts)} "
                          f"reviews (seed {args.seed}), cut to 128 tokens", **r}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
