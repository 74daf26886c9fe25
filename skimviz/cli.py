"""Command line: ``python -m skimviz {train,evaluate,predict,bench} ...``.

Every number in the README and in the model cards comes from one of these commands.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a shipped model (resumable)")
    tsub = p.add_subparsers(dest="task", required=True)
    m = tsub.add_parser("mnist", help="Skip RNN / RNN on MNIST pixel sequences (paper Sec. 4.3)")
    m.add_argument("--name", default="skip-gru-mnist")
    m.add_argument("--cell", choices=["gru", "lstm", "sru"], default="gru")
    m.add_argument("--hidden", type=int, default=110, help="units (paper: 110)")
    m.add_argument("--dense", action="store_true", help="train the plain RNN baseline")
    m.add_argument("--lam", type=float, default=1e-4, help="λ, cost per sample (Eq. 8)")
    m.add_argument("--lr", type=float, default=1e-3)
    m.add_argument("--gate-lr-scale", type=float, default=0.1,
                   help="the gate's learning rate is lr × this (0.1 → the paper's 1e-4)")
    m.add_argument("--lam-warmup-epochs", type=float, default=1.0,
                   help="ramp λ from 0 over this many epochs")
    m.add_argument("--batch-size", type=int, default=128)
    m.add_argument("--epochs", type=int, default=20)
    m.add_argument("--side", type=int, default=28, choices=[7, 14, 28],
                   help="image side: 28 → 784 steps (paper), 14 → 196")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--data-dir", help="folder laid out like ../shared/data")
    m.add_argument("--out", default="pretrained", help="where the best checkpoint is exported")
    m.add_argument("--work", default="runs", help="where the resumable state is kept")
    m.add_argument("--resume", action="store_true")
    m.add_argument("--max-minutes", type=float, default=0, help="stop (resumably) after this")
    m.add_argument("--reexport", action="store_true",
                   help="rewrite the exported checkpoint's card from its weights and the saved "
                        "state (fresh validation numbers), keeping the training command")
    m.add_argument("--dry-run", action="store_true",
                   help="two steps on 64 bundled digits, to check the pipeline")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a data split")
    p.add_argument("name", help="shipped checkpoint name or a checkpoint folder")
    p.add_argument("--data-dir", help="folder laid out like ../shared/data")
    p.add_argument("--split", choices=["valid", "test"], default="valid")
    p.add_argument("--threshold", type=float, help="inference threshold θ on ũ (default: card's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="run a checkpoint on your own input")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="an image file of a digit (PNG, JPEG, ...)")
    src.add_argument("--index", type=int, help="index of a bundled validation digit (0-4999)")
    p.add_argument("--threshold", type=float)
    p.add_argument("--json", action="store_true")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="measured latency next to FLOPs")
    bsub = p.add_subparsers(dest="what", required=True)
    s = bsub.add_parser("skip-rnn", help="Skip RNN vs its dense twin on MNIST digits")
    s.add_argument("--name", default="skip-gru-mnist")
    s.add_argument("--dense-name", default="gru-mnist")
    s.add_argument("--digits", type=int, default=20, help="validation digits timed at batch 1")
    s.add_argument("--batch", type=int, default=256, help="batch size of the batched run")
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--json", action="store_true")
    k = bsub.add_parser("kernels", help="SRU vs nn.LSTM and Skip GRU at fixed update rates "
                                        "(784 steps, hidden 128, CPU), each target PASS/FAIL")
    k.add_argument("--threads", type=int, default=1, help="torch threads while timing")
    k.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    k.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m skimviz",
                                 description="skimviz: see and measure conditional computation.")
    from . import __version__
    ap.add_argument("--version", action="version", version=f"skimviz {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_bench(sub)
    return ap


def _print(obj: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj))
    else:
        for k, v in obj.items():
            print(f"{k:>28}: {v}")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in model cards as the reproducing command
    from .checkpoint import CheckpointError

    try:
        if args.command == "train":
            from .tasks import mnist as task
            return task.train_command(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "bench":
            from . import bench
            return bench.main(args)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _load(name: str):
    from . import checkpoint
    return checkpoint.load(name)


def _evaluate(args) -> int:
    model, card = _load(args.name)
    from .tasks import mnist as task
    if card.get("task") != task.TASK:
        raise ValueError(f"{args.name}: evaluate does not know task {card.get('task')!r}")
    _print(task.evaluate(model, card, args.split, args.data_dir, args.threshold), args.json)
    return 0


def _predict(args) -> int:
    model, card = _load(args.name)
    from .data import images, mnist
    from .tasks import mnist as task
    if args.threshold is not None:
        model.set_threshold(args.threshold)
    if args.index is not None:
        x, y = mnist.load_bundled()
        if not 0 <= args.index < len(x):
            raise ValueError(f"--index must be in 0..{len(x) - 1}")
        img, truth = x[args.index], int(y[args.index])
    else:
        with open(args.input, "rb") as f:
            img, truth = images.image_to_digit(f.read(1 << 24)), None
    r = task.predict_digit(model, img, card.get("input", {}).get("side", 28))
    out = {k: r[k] for k in ("label", "probabilities", "updates", "steps", "update_rate", "flops",
                             "dense_flops")}
    out["true_label"] = truth
    _print(out, args.json)
    return 0
