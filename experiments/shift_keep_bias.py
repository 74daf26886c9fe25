"""Shift the skim predictors' decision towards keeping, in a copy of a trained Transkimmer.

    python experiments/shift_keep_bias.py runs/minilm/NAME runs/minilm/NAME-k1 --delta 1.0 \
        --data-dir ../shared/data

Our addition, not the paper's. At inference a predictor keeps token t when its keep logit
beats its skim logit (argmax of Eq. 2's two outputs). Adding δ to the bias of the keep logit
of the predictor's last Linear (``gate.i.net.4.bias[1]``) keeps every token whose margin was
above −δ: a threshold on the logit difference, the counterpart of Skim-RNN's θ. δ > 0 keeps
more tokens (lower FLOP reduction), δ < 0 fewer. ``--delta`` is one value for every predictor
or one per layer (comma-separated). The copy is then a starting point for a ``--fixed-policy``
stage (``train transkimmer --init-from``), which fine-tunes the encoder under the new pruning.

The source folder is never written. The copy's card keeps the source's card, records the shift
under ``keep_bias_shift`` and, with ``--data-dir``, gets ``metrics`` measured again on SST-2 dev
(the source's are kept under ``metrics_before_shift``). Choosing δ on dev is a choice made on
the evaluation set, like every ``--min-reduction`` export (README).
"""
from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from skimviz.data.text import load_sst2  # noqa: E402
from skimviz.tasks import transkimmer as tk  # noqa: E402
from skimviz.training import checkpoint  # noqa: E402


def shift_keep_bias(model, deltas) -> None:
    """Add ``deltas[i]`` to the keep logit's bias of predictor i, in place (float64 sum)."""
    if len(deltas) != len(model.gate):
        raise ValueError(f"--delta: {len(model.gate)} predictors, {len(deltas)} values")
    with torch.no_grad():
        for pred, d in zip(model.gate, deltas):
            b = pred.net[-1].bias
            b[1] = (b[1].double() + d).to(b.dtype)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="a Transkimmer checkpoint folder (not written)")
    ap.add_argument("dst", help="the new folder")
    ap.add_argument("--delta", required=True,
                    help="added to each predictor's keep-logit bias: one value, or one per layer")
    ap.add_argument("--data-dir", help="folder with sst2/dev.tsv: measure the copy on dev")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    src, dst = Path(args.src), Path(args.dst)
    if dst.resolve() == src.resolve():
        raise SystemExit("dst must differ from src (the source is never overwritten)")
    model, card = checkpoint.load(src)
    if card.get("task") != tk.TASK or not getattr(model, "skim", False):
        raise SystemExit(f"{src}: not a Transkimmer with predictors")
    vals = [float(v) for v in args.delta.split(",")]
    deltas = vals * len(model.gate) if len(vals) == 1 else vals
    shift_keep_bias(model, deltas)
    model.eval()
    new = copy.deepcopy(card)
    new["name"] = dst.name
    new["keep_bias_shift"] = {"source": card["name"], "delta_per_layer": deltas,
                              "command": "python " + shlex.join(sys.argv)}
    tok_file = card.get("input", {}).get("file", "vocab.txt")
    tok_text = checkpoint.read_extra(src, tok_file, max_bytes=4 << 20)
    if args.data_dir:
        texts, labels = load_sst2(args.data_dir, "dev")
        enc = tk.text_encoder(card, str(src))
        new["metrics_before_shift"] = card.get("metrics")
        r = tk.evaluate(model, enc, texts, labels)
        new["metrics"] = tk.card_metrics(r)
        twin = new.get("target", {}).get("dense_twin_accuracy")
        if twin is not None:
            new["target"]["reached"] = tk.target_reached(r, twin)
    kind = card.get("training", {}).get("model", "small")
    checkpoint.save(model, new, dst, extra_files={tok_file: tok_text},
                    int8_rows=tk.int8_rows(kind, model))
    print(json.dumps({"dst": str(dst), "delta": deltas, "metrics": new.get("metrics")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
