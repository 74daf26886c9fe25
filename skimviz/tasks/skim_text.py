"""Skim-LSTM (and its dense LSTM twin) on SST-2 and IMDB: training, evaluation, the inference
threshold sweep (paper Fig. 5) and predictions on free text.

Set-up as in the Skim-RNN paper (method notes, "Training"): d = 100, d' ∈ {5, 10}, skim loss
γ ∈ {0.01, 0.02}, Gumbel temperature annealed to 0.5, batch 32, a linear classifier on the last
state, early stopping on validation (the best validation accuracy is exported). Differences, all
recorded in the card: embeddings are learnt from scratch (no GloVe on these machines), so the
learning rate is 1e-3 rather than 1e-4 and dropout regularises the embeddings.

Flop-R = FLOPs of the plain LSTM on the same tokens / FLOPs of the Skim-LSTM, both counting the
recurrent part only (the shared embedding lookup and classifier are the same on both sides);
the Skim-LSTM side includes its decision layer. Padding is never counted.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from torch.nn import functional as F

from skimviz import argtypes as at
from skimviz.data import text as textdata
from skimviz.models.skim_rnn import skim_loss
from skimviz.models.text_classifier import TextClassifier
from skimviz.tasks import _input
from skimviz.tasks.base import Task
from skimviz.tasks._runner import check_model, command_line, run_resumable
from skimviz.training import card_schema, checkpoint
from skimviz.training.loop import Trainer, detect_collapse, seed_everything, summarize_history

TASK = "text-classification"
THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
PAPER = {"reference": "Seo et al., ICLR 2018, Table 2 (GloVe embeddings)",
         "sst2": {"lstm": {"accuracy": 0.864},
                  "skim_d5_g0.01": {"accuracy": 0.864, "skim_rate": 0.582, "flop_r": 2.4},
                  "skim_d10_g0.01": {"accuracy": 0.858, "skim_rate": 0.611, "flop_r": 2.5},
                  "skim_d10_g0.02": {"accuracy": 0.864, "skim_rate": 0.680, "flop_r": 3.0}},
         "imdb": {"lstm": {"accuracy": 0.911},
                  "skim_d5_g0.01": {"accuracy": 0.893, "skim_rate": 0.792, "flop_r": 4.7},
                  "skim_d10_g0.01": {"accuracy": 0.912, "skim_rate": 0.839, "flop_r": 5.8},
                  "skim_d10_g0.02": {"accuracy": 0.909, "skim_rate": 0.907, "flop_r": 9.5}}}
SPLITS = {"sst2": ("train", "dev"), "imdb": ("train", "valid")}


def load_split(dataset: str, data_dir: str, split: str):
    if dataset == "sst2":
        return textdata.load_sst2(data_dir, split)
    if dataset == "imdb":
        return textdata.load_imdb(data_dir, split)
    raise ValueError(f"unknown dataset {dataset!r}")


def encode(texts: Sequence[str], vocab: textdata.Vocab, max_tokens: int) -> List[List[int]]:
    return [vocab.encode(textdata.tokenize(t, max_tokens)) or [1] for t in texts]


def length_batches(ids: List[List[int]], labels: Sequence[int], batch_size: int, seed: int,
                   start_epoch: int = 0, skip: int = 0) -> Iterator:
    """Endless (epoch, (tokens, lengths, y)) batches of similar lengths (little padding): each
    epoch shuffles (seeded by seed and epoch), sorts within pools of 50 batches and shuffles the
    batches. ``skip`` drops the first batches of ``start_epoch`` (mid-epoch resume)."""
    n = len(ids)
    y_all = torch.tensor(labels, dtype=torch.long)
    epoch = start_epoch
    while True:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        pool = batch_size * 50
        groups = []
        for i in range(0, n, pool):
            chunk = sorted(perm[i:i + pool], key=lambda j: len(ids[j]))
            groups += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
        order = torch.randperm(len(groups), generator=g).tolist()
        for b, gi in enumerate(order):
            if epoch == start_epoch and b < skip:
                continue
            idx = groups[gi]
            tokens, lengths = textdata.pad_batch([ids[j] for j in idx])
            yield epoch, (tokens, lengths, y_all[idx])
        epoch += 1


def loss_fn(gamma: float, anneal_rate: float = 1e-4):
    """Cross-entropy + γ·mean(−log p_skim) (skim loss); anneals τ with the step count."""

    def fn(model, batch):
        tokens, lengths, y = batch
        fn.calls += 1
        if model.skim:
            model.rnn.anneal(fn.calls, anneal_rate)
        logits, trace = model(tokens, lengths, return_trace=True)
        task = F.cross_entropy(logits, y)
        loss = task + (skim_loss(trace, gamma) if model.skim and gamma else 0.0)
        with torch.no_grad():
            acc = (logits.argmax(-1) == y).float().mean().item()
            rate = ((trace.skim > 0.5).float() * trace.valid).sum().item() / trace.valid.sum().item()
        return loss, {"task_loss": task.item(), "accuracy": acc, "skim_rate": rate}

    fn.calls = 0
    return fn


@torch.no_grad()
def evaluate(model: TextClassifier, ids: List[List[int]], labels: Sequence[int],
             threshold: Optional[float] = None, batch_size: int = 64) -> Dict[str, float]:
    """Accuracy, skim rate (share of real tokens skimmed) and Flop-R on an encoded set, with the
    inference path (hard decisions; the big cell does not run on skimmed tokens).
    ``threshold`` overrides θ for this call only."""
    model.eval()
    old = model.rnn.skim_threshold if model.skim else None
    if threshold is not None:
        model.set_threshold(threshold)
    try:
        order = sorted(range(len(ids)), key=lambda j: len(ids[j]))
        correct, skimmed, tokens, flops = 0, 0.0, 0, 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x, lengths = textdata.pad_batch([ids[j] for j in idx])
            logits, trace = model(x, lengths, return_trace=True)
            y = torch.tensor([labels[j] for j in idx])
            correct += (logits.argmax(-1) == y).sum().item()
            skimmed += trace.skim.sum().item()
            tokens += int(lengths.sum())
            flops += trace.flops.sum().item()
    finally:
        if old is not None:
            model.set_threshold(old)
    dense = tokens * model.dense_flops_per_token()
    return {"accuracy": correct / len(ids), "skim_rate": skimmed / tokens,
            "flop_r": dense / flops, "flops_per_text": flops / len(ids),
            "dense_flops_per_text": dense / len(ids), "tokens_per_text": tokens / len(ids),
            "n": len(ids)}


def threshold_sweep(model, ids, labels, thresholds=THRESHOLDS) -> List[Dict[str, float]]:
    """Accuracy, skim rate and Flop-R as θ moves (the paper's Fig. 5 curve)."""
    if not model.skim:
        return []
    return [{"threshold": t, **evaluate(model, ids, labels, threshold=t)} for t in thresholds]


# Closed-class English words (determiners, pronouns, prepositions, conjunctions, auxiliaries;
# negations such as "no" and "not" carry polarity and are left out):
# the words a reader skims first. Fixed, so the measure does not depend on a model.
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every my your his her its our their
i you he she it we they me him us them who whom which what
of in on at by for with from to into onto about over under between through during
and or but nor so yet if than as because while although
is are was were be been being am 's do does did have has had will would shall should can could
may might must
""".split())


def polarity_lexicon(texts: Sequence[str], labels: Sequence[int], size: int = 200,
                     min_count: int = 50, max_tokens: int = textdata.MAX_TOKENS
                     ) -> Dict[str, float]:
    """The ``size`` words whose presence most separates the two classes of a training set:
    word → smoothed log-odds log P(word | positive) − log P(word | negative) over texts containing
    it, among alphabetic words in at least ``min_count`` texts, function words excluded. Derived
    from the data, so "sentiment word" needs no hand-made list."""
    pos, neg = Counter(), Counter()
    for t, y in zip(texts, labels):
        (pos if int(y) == 1 else neg).update(set(textdata.tokenize(t, max_tokens)))
    n_pos = sum(1 for y in labels if int(y) == 1)
    n_neg = len(labels) - n_pos
    odds = {w: math.log((pos[w] + 1) / (n_pos + 2)) - math.log((neg[w] + 1) / (n_neg + 2))
            for w in set(pos) | set(neg)
            if pos[w] + neg[w] >= min_count and w.isalpha() and w not in FUNCTION_WORDS}
    return dict(sorted(odds.items(), key=lambda kv: -abs(kv[1]))[:size])


@torch.no_grad()
def word_class_read_rates(model: TextClassifier, vocab: textdata.Vocab, ids: List[List[int]],
                          lexicon: Dict[str, float]) -> Dict[str, object]:
    """Share of tokens the big LSTM read (not skimmed) at the model's θ, by word class: function
    words, positive and negative words of ``lexicon`` (:func:`polarity_lexicon`), and all tokens.
    The Skim-RNN paper's Fig. 4 claim in numbers: a model that skims well reads the words that
    carry the label and skims the rest."""
    model.eval()
    classes = {"function_words": FUNCTION_WORDS,
               "positive_words": {w for w, v in lexicon.items() if v > 0},
               "negative_words": {w for w, v in lexicon.items() if v < 0}}
    read, total = Counter(), Counter()
    for seq in ids:
        _, trace = model(torch.tensor([seq]), torch.tensor([len(seq)]), return_trace=True)
        for tok, skim in zip(seq, trace.skim[0].flatten().tolist()):
            word = vocab.itos[tok]
            hit = ["all"] + [c for c, words in classes.items() if word in words]
            for c in hit:
                total[c] += 1
                read[c] += skim < 0.5
    return {c: {"read_rate": read[c] / total[c] if total[c] else None, "tokens": total[c]}
            for c in ("all", *classes)}


def set_default_threshold(name: str, theta: float, data_dir: str, out: str) -> dict:
    """Re-select a shipped Skim-LSTM's default θ (``--set-threshold``): evaluate it on its
    validation split at ``theta``, and rewrite its card's ``skim_threshold``, ``metrics``,
    ``target`` and ``read_rates`` (weights untouched). Returns the new card."""
    if not 0.0 < theta < 1.0:
        raise ValueError("--set-threshold must be in (0, 1)")
    model, card = checkpoint.load(name, out)
    if not card["config"].get("skim"):
        raise ValueError(f"{name} is a dense LSTM: it has no θ")
    dataset = card.get("dataset", "sst2")
    tr_split, va_split = SPLITS[dataset]
    vocab = load_vocab(Path(out) / name)
    max_tokens = card.get("input", {}).get("max_tokens", textdata.MAX_TOKENS)
    x_va, y_va = load_split(dataset, data_dir, va_split)
    ids_va = encode(x_va, vocab, max_tokens)
    v = evaluate(model, ids_va, list(y_va), threshold=theta)
    x_tr, y_tr = load_split(dataset, data_dir, tr_split)
    model.set_threshold(theta)
    rates = word_class_read_rates(model, vocab, ids_va, polarity_lexicon(x_tr, list(y_tr)))
    card["skim_threshold"] = theta
    card["metrics"].update({"valid_accuracy": v["accuracy"], "valid_skim_rate": v["skim_rate"],
                            "valid_flop_r": v["flop_r"], "flops_per_sequence_mean": v["flops_per_text"],
                            "dense_flops_per_sequence": v["dense_flops_per_text"],
                            "tokens_per_text_mean": v["tokens_per_text"], "n_valid": v["n"]})
    card["read_rates"] = {
        **rates, "threshold": theta, "split": va_split,
        "definition": "share of tokens read by the big LSTM at θ; positive/negative words: the "
                      "200 words of the training split with the largest |log-odds| between the "
                      "classes (in ≥ 50 texts), function words: a fixed closed-class list"}
    twin = card.get("dense_twin")
    if twin:
        args = argparse.Namespace(dense=False, dense_twin=twin, out=out)
        card["target"] = target_status(v, args)
    card["threshold_set_by"] = (f"python -m skimviz train text --dataset {dataset} --name {name} "
                                f"--set-threshold {theta} --data-dir DATA_DIR")
    path = Path(out) / name / checkpoint.CARD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    print(f"{name}: θ = {theta}: valid accuracy {v['accuracy']:.4f}, skim {v['skim_rate']:.3f}, "
          f"Flop-R {v['flop_r']:.2f}; read rates " + ", ".join(
              f"{c} {r['read_rate']:.2f}" for c, r in rates.items() if r["read_rate"] is not None),
          flush=True)
    return card


def load_vocab(name_or_path, card: Optional[dict] = None) -> textdata.Vocab:
    """The checkpoint's ``vocab.txt``; with its ``card``, checked to fit the model's word table
    (an id past it would crash the forward pass)."""
    try:
        vocab = textdata.Vocab.from_text(checkpoint.read_extra(name_or_path, "vocab.txt"))
    except checkpoint.CheckpointError:
        raise
    except ValueError as e:
        raise checkpoint.CheckpointError(f"vocab.txt: {e}") from None
    if card is not None:
        card_schema.check_vocab_size(card, len(vocab), "vocab.txt")
    return vocab


@torch.no_grad()
def analyse(model: TextClassifier, vocab: textdata.Vocab, text: str,
            max_tokens: int = textdata.MAX_TOKENS) -> Dict[str, object]:
    """Everything the page and ``predict`` show for one text at batch 1: tokens, whether each
    is in the vocabulary, the per-token decision and p_skim, the label and probability,
    skim rate and Flop-R. The model's current θ applies."""
    tokens = textdata.tokenize(text, max_tokens)
    if not tokens:
        raise ValueError("the text has no words to read")
    ids = vocab.encode(tokens)
    model.eval()
    logits, trace = model(torch.tensor([ids]), torch.tensor([len(ids)]), return_trace=True)
    prob = torch.softmax(logits[0], -1)
    label = int(prob.argmax())
    flops = float(trace.flops.sum())
    dense = len(ids) * model.dense_flops_per_token()
    return {"tokens": tokens, "known": vocab.known(tokens),
            "skim": trace.skim[0].round().int().tolist(), "p_skim": trace.p_skim[0].tolist(),
            "label": label, "probability": float(prob[label]),
            "probabilities": prob.tolist(), "skim_rate": float(trace.skim.mean()),
            "flops": flops, "dense_flops": dense, "flop_r": dense / flops,
            "truncated": len(tokens) >= max_tokens}


# ----------------------------------------------------------------------------- training CLI

def make_model(args, vocab_size: int) -> TextClassifier:
    return TextClassifier(vocab_size, args.embed, args.hidden, args.small, 2,
                          skim=not args.dense, dropout=args.dropout)


def _data(args):
    tr_split, va_split = SPLITS[args.dataset]
    x_tr, y_tr = load_split(args.dataset, args.data_dir, tr_split)
    x_va, y_va = load_split(args.dataset, args.data_dir, va_split)
    if args.dry_run:
        x_tr, y_tr, x_va, y_va = x_tr[:256], y_tr[:256], x_va[:64], y_va[:64]
    toks = [textdata.tokenize(t, args.max_tokens) for t in x_tr]
    vocab = textdata.Vocab.build(toks, min_freq=args.min_freq, max_size=args.max_vocab)
    ids_tr = [vocab.encode(t) or [1] for t in toks]
    ids_va = encode(x_va, vocab, args.max_tokens)
    return vocab, ids_tr, list(y_tr), ids_va, list(y_va)


def init_from_dense(model: TextClassifier, name: str, vocab: textdata.Vocab, out: str) -> None:
    """Start a Skim-LSTM from a trained dense twin (same vocabulary and sizes): embeddings, the
    big LSTM cell and the classifier are copied; the small cell and the decision layer start
    fresh. Our addition, not the paper's (it trains from GloVe): without pre-trained embeddings
    this gives the skim model the baseline's reading before it learns to skim."""
    dense, card = checkpoint.load(name, out)
    if card["config"].get("skim", True) or not model.skim:
        raise ValueError(f"--init-from needs a dense LSTM checkpoint and a skim model ({name})")
    if load_vocab(Path(out) / name).itos != vocab.itos:
        raise ValueError(f"--init-from {name}: its vocabulary differs from this run's")
    with torch.no_grad():
        model.embed.weight.copy_(dense.embed.weight)
        model.head.load_state_dict(dense.head.state_dict())
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(model.rnn.big, n).copy_(getattr(dense.rnn, n + "_l0"))


def train_command(args) -> int:
    """``python -m skimviz train text ...``: resumable, exports the best validation accuracy."""
    torch.set_num_threads(args.threads)
    if args.set_threshold is not None:
        set_default_threshold(args.name, args.set_threshold, args.data_dir, args.out)
        return 0
    seed_everything(args.seed)
    vocab, ids_tr, y_tr, ids_va, y_va = _data(args)
    check_model(lambda: make_model(args, len(vocab)), args.name, TASK)
    model = make_model(args, len(vocab))
    if args.init_from and not args.resume:
        init_from_dense(model, args.init_from, vocab, args.out)
    trainer = Trainer(model, loss_fn(0.0 if args.dense else args.gamma), lr=args.lr, clip=1.0)
    steps_per_epoch = -(-len(ids_tr) // args.batch_size) if len(ids_tr) >= args.batch_size else 1
    steps = 2 if args.dry_run else args.epochs * steps_per_epoch
    eval_every = steps if args.dry_run else max(1, min(args.eval_every, steps))
    command = command_line(args)

    def make_data(step):
        epoch0, skip = divmod(step, steps_per_epoch)
        return length_batches(ids_tr, y_tr, args.batch_size, args.seed, epoch0, skip)

    def score(v):  # accuracy among evaluations with Flop-R >= --min-flop-r, after them Flop-R
        ok = args.dense or v["flop_r"] >= args.min_flop_r
        return [float(ok), v["accuracy"] if ok else v["flop_r"]]

    return run_resumable(
        trainer, Path(args.work) / args.name, steps, eval_every, resume=args.resume,
        make_data=make_data,
        evaluate=lambda: evaluate(checkpoint.as_shipped(model, args.fp16, _int8(args)), ids_va,
                                  y_va),
        score=score,
        export=lambda v, meta: export(model, vocab, args, meta, v, trainer.history, command,
                                      ids_va, y_va),
        eval_line=lambda v: (f"step {v['step']}: valid accuracy {v['accuracy']:.4f} skim "
                             f"{v['skim_rate']:.3f} flop_r {v['flop_r']:.2f}"),
        step_line=lambda p: (f"step {p.step} epoch {p.epoch} loss {p.loss:.4f} acc "
                             f"{p.stats['accuracy']:.3f} skim {p.stats['skim_rate']:.3f} "
                             f"{p.elapsed_s:.0f}s"),
        step_every=100, log_every=10, max_minutes=args.max_minutes,
        reexport=(lambda meta: reexport(model, vocab, args, meta, trainer, ids_va, y_va))
        if args.reexport else None,
        collapse=lambda v: collapsed(v, model.config["num_classes"], model.skim),
        name=args.name)


def collapsed(v: dict, num_classes: int, skim: bool) -> Optional[dict]:
    """:func:`~skimviz.training.loop.detect_collapse` on a validation result: chance accuracy, or a
    Skim-LSTM that skims (almost) every token (its big LSTM reads under 2 %)."""
    return detect_collapse(accuracy=v["accuracy"], num_classes=num_classes,
                           use=1.0 - v["skim_rate"] if skim else None,
                           used="tokens read by the big LSTM")


def _int8(args) -> tuple:
    """Tensors shipped as per-row int8: the word embeddings (most of a text model's size)."""
    return ("embed.weight",) if getattr(args, "int8_embed", False) else ()


def reexport(model, vocab, args, meta, trainer, ids_va, y_va) -> int:
    """Rewrite the exported checkpoint's card from its own weights (fresh validation numbers and
    sweep), keeping the command that trained it."""
    out = Path(args.out) / args.name
    old = checkpoint.load_card(args.name, args.out)
    model.load_state_dict(checkpoint.load(out)[0].state_dict())   # int8 rows decoded
    try:
        step, command = old["training"]["steps"], old["training"]["command"]
    except (KeyError, TypeError):
        raise checkpoint.CheckpointError(f"{args.name}: its card has no training steps and "
                                         "command to re-export with") from None
    v = evaluate(checkpoint.as_shipped(model, args.fp16, _int8(args)), ids_va, y_va)
    v["step"] = step
    export(model, vocab, args, meta, v, trainer.history, command, ids_va, y_va)
    return 0


def target_status(v: dict, args) -> Optional[dict]:
    """The issue's target for a Skim-LSTM: within 1 point of its dense twin's validation
    accuracy at Flop-R ≥ 2.5 (None for the dense model or when the twin is not exported)."""
    if args.dense or not args.dense_twin:
        return None
    try:
        twin = checkpoint.load_card(args.dense_twin, args.out)["metrics"]["valid_accuracy"]
    except (checkpoint.CheckpointError, KeyError):
        return None
    ok = v["accuracy"] >= twin - 0.01 and v["flop_r"] >= 2.5
    return {"goal": "within 1 point of the dense LSTM at Flop-R >= 2.5 (Skim-RNN issue)",
            "reached": bool(ok), "accuracy": v["accuracy"], "dense_twin_accuracy": twin,
            "flop_r": v["flop_r"],
            "note": "reached" if ok else "not reached at the card's θ; see threshold_sweep"}


def sweep_subset(n: int, k: int, seed: int = 0) -> List[int]:
    """Indices of the validation texts the θ sweep runs on: all of them, or a fixed random
    sample of ``k`` (IMDB's files are read class by class, so its first ``k`` would be one
    class)."""
    if k >= n:
        return list(range(n))
    return sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist())


def export(model, vocab, args, meta, v, history, command, ids_va, y_va) -> Path:
    sub = sweep_subset(len(ids_va), len(ids_va) if args.dataset == "sst2" else 1000)
    card = {
        "name": args.name, "task": TASK, "architecture": "TextClassifier",
        "config": model.config, "skim_threshold": 0.5,
        "dataset": args.dataset, "dense_twin": args.dense_twin or None,
        "input": {"tokenizer": "skimviz.data.text.tokenize (SST-2 / PTB style, lower-cased)",
                  "max_tokens": args.max_tokens, "vocab_file": "vocab.txt",
                  "vocab_size": len(vocab)},
        "data": {"dataset": args.dataset, "train": SPLITS[args.dataset][0],
                 "valid": SPLITS[args.dataset][1],
                 "source": "GLUE SST-2 (Socher et al. 2013)" if args.dataset == "sst2" else
                 "IMDB (Maas et al. 2011), 15 % of train held out by file-name hash",
                 "embeddings": "learnt from scratch (no GloVe available)"},
        "metrics": {"valid_accuracy": v["accuracy"], "valid_skim_rate": v["skim_rate"],
                    "valid_flop_r": v["flop_r"], "flops_per_sequence_mean": v["flops_per_text"],
                    "dense_flops_per_sequence": v["dense_flops_per_text"],
                    "tokens_per_text_mean": v["tokens_per_text"], "n_valid": v["n"]},
        "threshold_sweep": [] if args.dense else threshold_sweep(
            checkpoint.as_shipped(model, args.fp16, _int8(args)), [ids_va[i] for i in sub],
            [y_va[i] for i in sub]),
        "threshold_sweep_n": len(sub),
        "paper": PAPER[args.dataset],
        "target": target_status(v, args),
        **({"collapsed": v["collapsed"]} if v.get("collapsed") else {}),
        "training": {
            "command": command, "gamma": 0.0 if args.dense else args.gamma, "lr": args.lr,
            "init_from": args.init_from or None,
            "batch_size": args.batch_size, "dropout": args.dropout,
            "temperature": "max(0.5, exp(-1e-4 * step))",
            "optimizer": "Adam(0.9, 0.999, 1e-8), grad-norm clip 1",
            "steps": v["step"], "epochs_planned": args.epochs, "seed": args.seed,
            "wall_time_s": round(meta["wall_s"], 1), "threads": args.threads,
            "torch_version": torch.__version__, "machine": platform.machine(),
            "valid_per_eval": [{k: r[k] for k in ("step", "accuracy", "skim_rate", "flop_r")}
                               for r in meta["valid"]],
            "history": summarize_history(history, 20) if len(history) > 100 else history,
            "weights_dtype": "float16" if args.fp16 else "float32",
            "int8_rowwise": list(_int8(args)),
            "dry_run": bool(args.dry_run)},
    }
    if getattr(args, "reexport", False):
        card["training"]["reexport_command"] = command_line(args)
    out = Path(args.out) / args.name
    checkpoint.save(copy.deepcopy(model).half() if args.fp16 else model, card, out,
                    extra_files={"vocab.txt": vocab.to_text()}, int8_rows=_int8(args))
    print(f"exported {out} (valid accuracy {v['accuracy']:.4f})", flush=True)
    return out


def add_arguments(tsub) -> None:
    t = tsub.add_parser("text", help="Skim-LSTM / LSTM on SST-2 or IMDB (Skim-RNN paper Table 2)")
    t.add_argument("--dataset", choices=["sst2", "imdb"], default="sst2")
    t.add_argument("--name", default="skim-lstm-sst2", type=at.name,
                   help="checkpoint name: one folder name (letters, digits, '.', '_', '-')")
    t.add_argument("--dense", action="store_true", help="train the plain LSTM baseline")
    t.add_argument("--dense-twin", default="", type=at.optional_name,
                   help="name of the baseline, recorded in the card")
    t.add_argument("--hidden", type=at.HIDDEN, default=100, help="d (paper: 100)")
    t.add_argument("--small", type=at.integer(1, 4095), default=10, help="d' (paper: 5 or 10)")
    t.add_argument("--embed", type=at.integer(1, 2048), default=100,
                   help="embedding size (GloVe-100 in the paper)")
    t.add_argument("--gamma", type=at.NONNEG, default=0.01,
                   help="γ of the skim loss (paper: 0.01, 0.02)")
    t.add_argument("--dropout", type=at.DROPOUT, default=0.3)
    t.add_argument("--lr", type=at.LR, default=1e-3, help="Adam (paper: 1e-4 with GloVe)")
    t.add_argument("--batch-size", type=at.BATCH, default=32)
    t.add_argument("--epochs", type=at.EPOCHS, default=3)
    t.add_argument("--eval-every", type=at.STEPS, default=500)
    t.add_argument("--min-freq", type=at.integer(1, 1_000_000_000), default=1)
    t.add_argument("--max-vocab", type=at.integer(3, 2_000_000), default=30_000)
    t.add_argument("--max-tokens", type=at.integer(1, 10_000), default=textdata.MAX_TOKENS)
    t.add_argument("--data-dir", default="../shared/data", type=at.existing_dir,
                   help="folder laid out like ../shared/data (sst2/, imdb/)")
    t.add_argument("--seed", type=at.SEED, default=0)
    t.add_argument("--threads", type=at.THREADS, default=1)
    t.add_argument("--out", default="pretrained", type=at.output_dir)
    t.add_argument("--work", default="runs", type=at.output_dir)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-minutes", type=at.MINUTES, default=0,
                   help="stop (resumably) after this many minutes (0: no limit)")
    t.add_argument("--dry-run", action="store_true", help="two steps on 256 texts")
    t.add_argument("--min-flop-r", type=at.NONNEG, default=0.0,
                   help="export the best validation accuracy among evaluations with at least "
                        "this Flop-R (before any reaches it: the highest Flop-R)")
    t.add_argument("--init-from", default="", type=at.optional_name,
                   help="start from this trained dense LSTM checkpoint (in --out), same vocabulary")
    t.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=True,
                   help="ship float16 weights, validated as read back (default: on)")
    t.add_argument("--int8-embed", action=argparse.BooleanOptionalAction, default=True,
                   help="ship the word embeddings as per-row int8 (default: on)")
    t.add_argument("--set-threshold", type=at.number(0.0, 1.0, lo_open=True, hi_open=True),
                   default=None, metavar="THETA",
                   help="no training: make THETA the exported checkpoint's default θ, with its "
                        "validation metrics and read rates by word class re-measured at THETA")
    t.add_argument("--reexport", action="store_true",
                   help="rewrite the exported card from its weights (fresh validation numbers and "
                        "threshold sweep), keeping the training command")


# ----------------------------------------------------------------------------- evaluate / predict

def evaluate_command(model, card: dict, name: str, split: Optional[str], data_dir: Optional[str],
                     threshold: Optional[float]) -> Dict[str, object]:
    """``evaluate NAME --data-dir DIR --split dev|valid [--threshold X]``."""
    dataset = card.get("dataset", "sst2")
    valid_split = SPLITS[dataset][1]
    split = split or valid_split
    if split != valid_split:
        raise ValueError(f"{name} ({dataset}) is evaluated on --split {valid_split}")
    vocab = load_vocab(name, card)
    texts, labels = load_split(dataset, data_dir or "../shared/data", split)
    if not texts:
        raise ValueError(f"the {dataset} {split} split in {data_dir} holds no texts")
    max_tokens = card.get("input", {}).get("max_tokens", textdata.MAX_TOKENS)
    ids = encode(texts, vocab, max_tokens)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError("--threshold must be in [0, 1]")
    r = evaluate(model, ids, labels, threshold=threshold)
    return {"model": card["name"], "dataset": dataset, "split": split,
            "threshold": threshold if threshold is not None else card.get("skim_threshold", 0.5),
            **r}


MAX_PREDICT_LINES = _input.MAX_LINES


def predict_command(model, card: dict, args) -> int:
    """``predict NAME --input FILE [--threshold θ] [--json]``: one result per non-blank line
    (limits and warnings: :mod:`skimviz.tasks._input`). With ``--json`` each result also has
    ``tokens`` and ``read`` aligned with them (true: the big LSTM read that token; false: the
    small one skimmed it; a dense LSTM reads every token)."""
    if args.input is None:
        raise ValueError("text models read --input FILE (one text per line)")
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise ValueError("--threshold must be in [0, 1]")
        model.set_threshold(args.threshold)
    vocab = load_vocab(args.name, card)
    max_tokens = card.get("input", {}).get("max_tokens", textdata.MAX_TOKENS)
    lines, warnings = _input.read_lines(args.input)
    _input.warn(warnings)
    for number, ln in lines:
        try:
            r = analyse(model, vocab, ln, max_tokens)
        except ValueError as e:
            r = {"error": str(e)}
        out = {"line": number, "text": ln[:200],
               **{k: r[k] for k in ("label", "probability", "skim_rate", "flop_r") if k in r}}
        if "error" in r:
            out["error"] = r["error"]
        else:
            out["tokens"], out["read"] = r["tokens"], [not s for s in r["skim"]]
        if args.json:
            print(json.dumps(out))
        else:
            out.pop("tokens", None)
            read = out.pop("read", [])
            print(" ".join(f"{k}={v}" for k, v in out.items())
                  + (f" read={sum(read)}/{len(read)}" if read else ""))
    return 0


def check_train_args(args) -> str | None:
    if not args.dense and not 0 < args.small < args.hidden:
        return f"train text: --small ({args.small}) must be below --hidden ({args.hidden})"
    return None


#: This task for the CLI (:mod:`skimviz.tasks` registry); its evaluate is
#: :func:`evaluate_command` with the options read from ``args``.
TASK_SPEC = Task(name="text", card_task=TASK, train_command=train_command,
                 check_train_args=check_train_args,
                 evaluate_command=lambda model, card, args: evaluate_command(
                     model, card, args.name, args.split, args.data_dir, args.threshold),
                 predict_command=predict_command)
