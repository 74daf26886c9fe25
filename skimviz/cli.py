"""Command line: ``python -m skimviz {train,evaluate,predict,bench} ...``.

Every number in the README and in the model cards comes from one of these commands.
"""
from __future__ import annotations

import argparse
import sys
import tarfile
import zlib
from typing import List, Optional

from skimviz import argtypes as at


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a shipped model (resumable)",
                       description="Train one task's model. `skimviz train --config "
                       "configs/<checkpoint>.toml --data-dir ../shared/data` runs the recipe of "
                       "a shipped checkpoint (the task comes from the file; options after it are "
                       "added and win).")
    p.add_argument("--config", metavar="FILE.toml",
                   help="a recipe file (configs/<checkpoint>.toml) in place of the task and its "
                        "options")
    tsub = p.add_subparsers(dest="task", required=True)
    m = tsub.add_parser("mnist", help="Skip RNN / RNN on MNIST pixel sequences (paper Sec. 4.3)")
    m.add_argument("--name", default="skip-gru-mnist", type=at.name,
                   help="checkpoint name: one folder name (letters, digits, '.', '_', '-')")
    m.add_argument("--cell", choices=["gru", "lstm", "sru"], default="gru")
    m.add_argument("--hidden", type=at.HIDDEN, default=110, help="units (paper: 110)")
    m.add_argument("--dense", action="store_true", help="train the plain RNN baseline")
    m.add_argument("--lam", type=at.NONNEG, default=1e-4, help="λ, cost per sample (Eq. 8)")
    m.add_argument("--lr", type=at.LR, default=1e-3)
    m.add_argument("--gate-lr-scale", type=at.SCALE, default=0.1,
                   help="the gate's learning rate is lr × this (0.1 → the paper's 1e-4)")
    m.add_argument("--lam-warmup-epochs", type=at.NONNEG, default=1.0,
                   help="ramp λ from 0 over this many epochs")
    m.add_argument("--batch-size", type=at.BATCH, default=128)
    m.add_argument("--epochs", type=at.EPOCHS, default=20)
    m.add_argument("--side", type=int, default=28, choices=[7, 14, 28],
                   help="image side: 28 → 784 steps (paper), 14 → 196")
    m.add_argument("--seed", type=at.SEED, default=0)
    m.add_argument("--threads", type=at.THREADS, default=1)
    m.add_argument("--data-dir", type=at.existing_dir,
                   help="folder laid out like ../shared/data")
    m.add_argument("--out", default="pretrained", type=at.output_dir,
                   help="where the best checkpoint is exported")
    m.add_argument("--work", default="runs", type=at.output_dir,
                   help="where the resumable state is kept")
    m.add_argument("--resume", action="store_true")
    m.add_argument("--max-minutes", type=at.MINUTES, default=0,
                   help="stop (resumably) after this many minutes (0: no limit)")
    m.add_argument("--reexport", action="store_true",
                   help="rewrite the exported checkpoint's card from its weights and the saved "
                        "state (fresh validation numbers), keeping the training command")
    m.add_argument("--dry-run", action="store_true",
                   help="two steps on 64 bundled digits, to check the pipeline")
    for task, help_, name, extra in (
            ("adding", "Skip RNN on the adding task (paper Sec. 4.1, Table 1)",
             "skip-gru-adding", None),
            ("frequency", "Skip RNN on frequency discrimination (paper Sec. 4.2, Table 2)",
             "skip-gru-frequency", "frequency"),
            ("frames", "CNN + Skip RNN on digit clips (our take on paper Sec. 4.5)",
             "skip-gru-frames", "frames")):
        _add_signal_task(tsub, task, help_, name, extra)
    from skimviz.tasks import skim_text
    skim_text.add_arguments(tsub)
    from skimviz.tasks import transkimmer
    transkimmer.add_arguments(tsub)


def _add_signal_task(tsub, task: str, help_: str, name: str, extra) -> None:
    """``train adding|frequency|frames``: step-based, fresh generated batches, resumable."""
    t = tsub.add_parser(task, help=help_)
    t.add_argument("--name", default=name, type=at.name,
                   help="checkpoint name: one folder name (letters, digits, '.', '_', '-')")
    t.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    t.add_argument("--hidden", type=at.HIDDEN, default=110, help="units (paper: 110)")
    t.add_argument("--dense", action="store_true", help="train the plain RNN baseline")
    t.add_argument("--lam", type=at.NONNEG, default=1e-5 if task == "adding" else 1e-4,
                   help="λ, cost per sample (Eq. 8)")
    t.add_argument("--lr", type=at.LR, default=1e-3, help="Adam learning rate (paper: 1e-4)")
    t.add_argument("--gate-lr-scale", type=at.SCALE, default=1.0,
                   help="the gate's learning rate is lr × this")
    t.add_argument("--lam-warmup-steps", type=at.integer(0, 100_000_000), default=0,
                   help="ramp λ from 0 over these steps")
    t.add_argument("--batch-size", type=at.BATCH, default=256 if task != "frames" else 32,
                   help="paper: 256")
    t.add_argument("--steps", type=at.STEPS, default={"adding": 20000, "frequency": 10000,
                                                      "frames": 3000}[task])
    t.add_argument("--eval-every", type=at.STEPS, default=500,
                   help="validate (and export if best) every this many steps")
    t.add_argument("--seed", type=at.SEED, default=0)
    t.add_argument("--threads", type=at.THREADS, default=1)
    t.add_argument("--out", default="pretrained", type=at.output_dir,
                   help="where the best checkpoint is exported")
    t.add_argument("--work", default="runs", type=at.output_dir,
                   help="where the resumable state is kept")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-minutes", type=at.MINUTES, default=0,
                   help="stop (resumably) after this many minutes (0: no limit)")
    t.add_argument("--dry-run", action="store_true", help="two steps, to check the pipeline")
    if task == "adding":
        t.add_argument("--length", type=at.integer(10, 1000), default=50,
                       help="sequence length (paper: 50)")
    if extra == "frequency":
        t.add_argument("--sampling-ms", type=float, default=1.0, choices=[1.0, 0.5],
                       help="sampling period: 1 ms → 100 steps, 0.5 ms → 200 steps")
    if extra == "frames":
        t.add_argument("--length", type=at.integer(24, 128), default=48, help="frames per clip")
        t.add_argument("--feature-size", type=at.integer(1, 4096), default=64,
                       help="frame encoder output size")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a data split")
    p.add_argument("name", help="shipped checkpoint name or a checkpoint folder")
    p.add_argument("--data-dir", type=at.existing_dir, help="folder laid out like ../shared/data")
    p.add_argument("--split", choices=["valid", "test", "dev"], default=None,
                   help="MNIST: valid|test; SST-2: dev; IMDB: valid (default: the validation split)")
    p.add_argument("--threshold", type=at.UNIT,
                   help="inference threshold θ (Skip RNN: on ũ; Skim-RNN: skim when p_skim > θ; "
                        "default: the card's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="run a checkpoint on your own input")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=at.input_file,
                     help="an image file of a digit (PNG, JPEG, ...); for text models a UTF-8 "
                          "text file, one input per line (at most 10,000 lines of 5,000 "
                          "characters)")
    src.add_argument("--index", type=at.integer(0, 4999),
                     help="index of a bundled validation digit (0-4999)")
    p.add_argument("--threshold", type=at.UNIT,
                   help="inference threshold θ in [0, 1] (Skip RNN: update when ũ > θ; "
                        "Skim-RNN and Transkimmer: skim when p_skim > θ; default: the card's)")
    p.add_argument("--json", action="store_true")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="measured latency next to FLOPs")
    bsub = p.add_subparsers(dest="what", required=True)
    s = bsub.add_parser("skip-rnn", help="Skip RNN vs its dense twin on MNIST digits")
    s.add_argument("--name", default="skip-gru-mnist")
    s.add_argument("--dense-name", default="gru-mnist")
    s.add_argument("--digits", type=at.integer(1, 5000), default=20,
                   help="validation digits timed at batch 1")
    s.add_argument("--batch", type=at.integer(1, 5000), default=256,
                   help="batch size of the batched run")
    s.add_argument("--device", default="cpu", type=at.device)
    s.add_argument("--threads", type=at.THREADS, default=1)
    s.add_argument("--json", action="store_true")
    k = bsub.add_parser("kernels", help="SRU vs nn.LSTM and Skip GRU at fixed update rates "
                                        "(784 steps, hidden 128, CPU), each target PASS/FAIL")
    k.add_argument("--threads", type=at.THREADS, default=1, help="torch threads while timing")
    k.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    k.add_argument("--json", action="store_true", help="print one JSON object")
    from skimviz.bench.transkimmer import add_arguments as _add_bench_transkimmer
    _add_bench_transkimmer(bsub)
    from skimviz.bench.skip_train import add_arguments as _add_bench_skip_train
    _add_bench_skip_train(bsub)
    from skimviz.bench.ops import add_arguments as _add_bench_ops
    _add_bench_ops(bsub)
    pp = bsub.add_parser("paper", help="reproduce a paper's tables")
    psub = pp.add_subparsers(dest="paper", required=True)
    q = psub.add_parser("skip-rnn", help="Skip RNN Tables 1 (adding) and 2 (frequency): train or "
                                         "load, evaluate, print next to the paper")
    q.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    q.add_argument("--retrain", action="store_true", help="train even when a checkpoint exists")
    q.add_argument("--no-train", action="store_true",
                   help="only load: configurations without a checkpoint are listed as missing")
    q.add_argument("--baselines", action="store_true",
                   help="add the paper's dense rows (and Table 1's λ = 0 rows)")
    q.add_argument("--steps", type=at.integer(0, 100_000_000), default=0,
                   help="training steps per configuration (default: the train commands')")
    q.add_argument("--hidden", type=at.HIDDEN, default=110)
    q.add_argument("--tables", default="1,2", help="which tables: 1, 2 or 1,2")
    q.add_argument("--cells", default="lstm,gru", help="cells for Table 1")
    q.add_argument("--freq-cells", default="gru", help="cells for Table 2")
    q.add_argument("--work", default="runs/paper-skip-rnn", type=at.output_dir,
                   help="checkpoints and resumable states of the bench's own trainings")
    q.add_argument("--max-minutes", type=at.MINUTES, default=0,
                   help="per configuration (resumable)")
    q.add_argument("--threads", type=at.THREADS, default=1)
    q.add_argument("--json", action="store_true")


class Parser(argparse.ArgumentParser):
    """argparse with its error line kept to one line: a user's value is shown with control
    characters escaped (``a\\nb``) and bidi controls removed, so it can neither split the
    message nor reorder the terminal's text. Subcommand parsers inherit the class."""

    def error(self, message: str):
        super().error(one_line(message))


def one_line(message: object) -> str:
    """A message as one terminal line: bidi controls removed, other unprintable characters
    (newlines, escape sequences) shown escaped, as Python writes them."""
    from skimviz.safety import strip_bidi
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in strip_bidi(str(message)))


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="skimviz",
                description="skimviz: see and measure conditional computation.")
    from skimviz import __version__
    ap.add_argument("--version", action="version", version=f"skimviz {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_bench(sub)
    e = sub.add_parser("ext", help="the C++ kernels: build them now, or say whether they are built")
    e.add_argument("action", choices=["build", "status"])
    # Two families whose subcommands keep their own options (each module's main(argv); `--help`
    # after the subcommand shows them).
    for name, help_, what in (
            ("results", "the README's results tables, measured again now",
             {"mnist": "the shipped MNIST checkpoints on the validation digits",
              "text": "the shipped Skim-RNN and Transkimmer checkpoints (needs --data-dir)"}),
            ("ship", "put a trained checkpoint into pretrained/ in its shipped form",
             {"transkimmer": "a Transkimmer: int8 Linears, shards, evaluated again on SST-2 dev",
              "frequency": "the frequency task's Table 2 checkpoints under their short names"})):
        f = sub.add_parser(name, help=help_)
        fsub = f.add_subparsers(dest="what", required=True)
        for w, h in what.items():
            fsub.add_parser(w, help=h, add_help=False)   # options: see _FAMILIES, main()
    return ap


# `skimviz results|ship <what> ...`: the rest of the command line goes to the module's main(argv)
_FAMILIES = {("results", "mnist"): "skimviz.bench.results_mnist",
             ("results", "text"): "skimviz.bench.results_text",
             ("ship", "transkimmer"): "skimviz.training.ship_transkimmer",
             ("ship", "frequency"): "skimviz.training.ship_frequency"}


def _family(argv: List[str]) -> Optional[int]:
    """Run ``results``/``ship`` subcommands (None for any other command line)."""
    module = _FAMILIES.get(tuple(argv[:2]))
    if module is None:
        return None
    from importlib import import_module
    try:
        return import_module(module).main(argv[2:])
    except SystemExit as e:              # the module's own argparse: --help or a usage error
        return e.code if isinstance(e.code, int) else 2


def _check(args, parser: argparse.ArgumentParser) -> None:
    """Rules between a training's options (its task's ``check_train_args``), checked before any
    work (``parser.error``: exit code 2)."""
    if args.command == "train":
        from skimviz import tasks
        problem = tasks.get(args.task).check_train_args(args)
        if problem:
            parser.error(problem)


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns the process exit code (2: a usage error or an input the
    command refuses, with a one-line message; 1: a training that diverged)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    from skimviz.safety import InputError
    from skimviz.training import configs
    try:
        expanded, configs.current = configs.expand(argv)
    except InputError as e:
        print(f"skimviz train: error: {one_line(e)}", file=sys.stderr)
        return 2
    family = _family(argv)
    if family is not None:
        return family
    try:
        args = parser.parse_args(expanded)
        _check(args, parser)
    except SystemExit as e:             # argparse printed the usage error (or --help)
        return e.code if isinstance(e.code, int) else 2
    args.argv = argv  # recorded in model cards as the reproducing command (with --config, if any)
    from skimviz.training.checkpoint import CheckpointError
    from skimviz.training.loop import TrainingDiverged
    if args.command == "train":
        from skimviz.training import distributed
        distributed.setup()   # under torchrun: join the process group (else a no-op)

    try:
        return _run(args)
    except TrainingDiverged as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except (CheckpointError, ValueError, EOFError, tarfile.TarError, zlib.error) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)   # InputError, ImageError: ValueErrors;
        return 2                                         # broken data: gzip, tar, zlib errors
    except OSError as e:                # a file or folder that cannot be read or written
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {one_line(f'{where}{e.strerror or e}')}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``skimviz`` console command (``pip install .``)."""
    raise SystemExit(main())


def _run(args) -> int:
    """The work of a parsed, checked command line."""
    from skimviz import _ext
    if args.command == "ext":
        return _ext.main([args.action])
    _ext.ensure()                        # first use: compile the C++ kernels once
    if args.command == "train":
        from skimviz import tasks
        return tasks.get(args.task).train_command(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "predict":
        return _predict(args)
    if args.command == "bench" and args.what == "transkimmer":
        from skimviz.bench import transkimmer as bench_transkimmer
        return bench_transkimmer.main(args)
    if args.command == "bench" and args.what == "skip-train":
        from skimviz.bench import skip_train as bench_skip_train
        return bench_skip_train.main(args)
    if args.command == "bench" and args.what == "ops":
        from skimviz.bench import ops as bench_ops
        return bench_ops.main(args)
    if args.command == "bench" and args.what == "paper":
        from skimviz.bench import paper as bench_paper
        return bench_paper.main(args)
    from skimviz.bench import skip_rnn as bench
    return bench.main(args)


def _load(name: str):
    from skimviz.training import checkpoint
    return checkpoint.load(name)


def _evaluate(args) -> int:
    model, card = _load(args.name)
    from skimviz import tasks
    from skimviz.tasks.base import print_result
    task = tasks.by_card_task(card.get("task"))
    if task is None:
        raise ValueError(f"{args.name}: evaluate does not know task {card.get('task')!r}")
    print_result(task.evaluate_command(model, card, args), args.json)
    return 0


def _predict(args) -> int:
    model, card = _load(args.name)
    from skimviz import tasks
    from skimviz.tasks.base import no_predict
    task = tasks.get("mnist") if "task" not in card else tasks.by_card_task(card["task"])
    return (task.predict_command if task is not None else no_predict)(model, card, args)

