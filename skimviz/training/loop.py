"""The one training loop: every model, the CLI and the app's live training go through
:class:`Trainer`. A ``callback(progress)`` is called after every step; it returns True (or
raises :class:`StopTraining`) to stop. Pages pass a callback that updates the UI.

Optimiser set-up follows the Skip RNN paper (Sec. 4): Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8) and
gradient clipping at norm 1 over all trainable variables.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skimviz.models import budget_loss
from skimviz.training import distributed

LossFn = Callable[[nn.Module, Tuple[Tensor, ...]], Tuple[Tensor, Dict[str, float]]]


class TrainingDiverged(RuntimeError):
    """The loss or its gradient became NaN or infinite; the message says what to change. It is
    raised before the optimiser step, so the model keeps the last finite weights."""


class StopTraining(Exception):
    """Raised by a callback to end training early (the model keeps what it learnt)."""


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: int
    loss: float
    stats: Dict[str, float]
    elapsed_s: float
    history: List[Dict[str, float]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / max(1, self.total_steps))


def batches(x: Tensor, y: Tensor, batch_size: int, seed: int = 0, start_epoch: int = 0
            ) -> Iterator[Tuple[int, Tuple[Tensor, Tensor]]]:
    """Endless shuffled mini-batches as (epoch, (x, y)); each epoch is a fresh permutation that
    depends only on (seed, epoch), so a resumed run sees the same order."""
    n = len(x)
    if n == 0:
        raise ValueError("no training examples")
    epoch = start_epoch
    while True:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = perm[i:i + batch_size]
            yield epoch, (x[idx], y[idx])
        epoch += 1


def classification_loss(lam: float, warmup_steps: int = 0) -> LossFn:
    """Cross-entropy + the Skip RNN budget loss λ·Σu_t (Eq. 8).

    ``warmup_steps`` > 0 ramps λ linearly from 0 over that many calls (our addition, not the
    paper's: with Adam at lr 1e-3 — 10× the paper's — a budget applied from step 1 closes the gate
    before the classifier has learnt anything; ``fn.calls`` is set when a run resumes).
    """

    def fn(model: nn.Module, batch: Tuple[Tensor, ...]):
        x, y = batch
        logits, trace = model(x, return_trace=True)
        task = F.cross_entropy(logits, y)
        fn.calls += 1
        ramp = min(1.0, fn.calls / warmup_steps) if warmup_steps else 1.0
        loss = task + (budget_loss(trace, lam * ramp) if lam else 0.0)
        with torch.no_grad():
            acc = (logits.argmax(-1) == y).float().mean().item()
            rate = trace.update.float().mean().item()
        return loss, {"task_loss": task.item(), "accuracy": acc, "update_rate": rate}

    fn.calls = 0
    return fn


class Trainer:
    def __init__(self, model: nn.Module, loss_fn: LossFn, lr: float = 1e-3, clip: float = 1.0,
                 gate_lr: Optional[float] = None, lr_decay_steps: Optional[int] = None):
        """``gate_lr`` gives the Skip RNN gate (W_p, b_p) its own learning rate (default: lr).
        ``lr_decay_steps``: every group's learning rate decays linearly from its own to 0 over
        that many steps (the usual schedule for fine-tuning BERT, without warm-up); a function
        of ``self.step``, so a resumed run continues the same schedule. Default: constant."""
        self.model, self.loss_fn, self.clip = model, loss_fn, clip
        self.lr_decay_steps = lr_decay_steps
        gate = [p for n, p in model.named_parameters() if ".gate." in f".{n}"]
        rest = [p for n, p in model.named_parameters() if ".gate." not in f".{n}"]
        groups = [{"params": rest, "lr": lr}]
        if gate:
            groups.append({"params": gate, "lr": lr if gate_lr is None else gate_lr})
        self.base_lrs = [g["lr"] for g in groups]
        self.opt = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        # under torchrun: DistributedDataParallel around the model (skimviz.training.distributed)
        self.net = distributed.wrap(model)
        self.step = 0
        self.history: List[Dict[str, float]] = []

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        self.history = list(state["history"])

    def fit(self, data: Iterator[Tuple[int, Tuple[Tensor, ...]]], steps: int,
            callback: Optional[Callable[[Progress], Optional[bool]]] = None,
            log_every: int = 1, max_seconds: Optional[float] = None) -> List[Dict[str, float]]:
        """Run ``steps`` optimisation steps (counted from the current ``self.step``).

        Appends one row per ``log_every`` steps to ``self.history``. Raises
        :class:`TrainingDiverged` on a non-finite loss or gradient, before the optimiser step:
        the weights stay those of the last good step (finite), so what is saved or exported
        afterwards is usable. (A NaN gradient under a finite loss — an overflow in backward —
        would otherwise turn every weight into NaN one step before the loss shows it.)
        """
        t0 = time.perf_counter()
        end = self.step + steps
        self.model.train()
        try:
            while self.step < end:
                epoch, batch = next(data)
                # under torchrun each process takes its share of the global batch
                loss, stats = self.loss_fn(self.net, distributed.shard(batch))
                loss_value = distributed.mean(loss.item())   # the global batch's loss
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"the loss became {loss_value} at step {self.step + 1}; lower the learning "
                        "rate or λ and start again")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = (float(nn.utils.clip_grad_norm_(self.model.parameters(), self.clip))
                        if self.clip else self._grad_norm())     # the norm before clipping
                if not math.isfinite(norm):
                    self.opt.zero_grad(set_to_none=True)
                    raise TrainingDiverged(
                        f"the gradient became {norm} at step {self.step + 1} (the loss was "
                        f"{loss.item():.4g}); the weights from before that step are kept; lower "
                        "the learning rate or λ and start again")
                if self.lr_decay_steps:
                    f = max(0.0, 1.0 - self.step / self.lr_decay_steps)
                    for g, lr0 in zip(self.opt.param_groups, self.base_lrs):
                        g["lr"] = lr0 * f
                self.opt.step()
                self.step += 1
                row = {"step": self.step, "epoch": epoch, "loss": loss_value, **stats}
                if self.step % log_every == 0 or self.step == end:
                    self.history.append(row)
                elapsed = time.perf_counter() - t0
                stop = max_seconds is not None and elapsed > max_seconds
                if callback is not None:
                    prog = Progress(self.step, end, epoch, row["loss"], stats, elapsed, self.history)
                    stop = bool(callback(prog)) or stop
                if distributed.any_rank(stop):   # every rank stops at the same step
                    break
        except StopTraining:
            pass
        finally:
            self.model.eval()
        return self.history


    @torch.no_grad()
    def _grad_norm(self) -> float:
        """The 2-norm of all gradients (inf or nan when any element is)."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        return float(torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads])))


#: a run whose validation accuracy is within this of chance, or whose model uses less than
#: :data:`COLLAPSE_MIN_USE` of its input, "collapsed" (see :func:`detect_collapse`)
COLLAPSE_CHANCE_MARGIN = 0.02
COLLAPSE_MIN_USE = 0.02
COLLAPSE_MSE_FRACTION = 0.9


def detect_collapse(*, accuracy: Optional[float] = None, num_classes: Optional[int] = None,
                    mse: Optional[float] = None, baseline_mse: Optional[float] = None,
                    use: Optional[float] = None, used: str = "steps updated"
                    ) -> Optional[Dict[str, object]]:
    """Whether a finished training collapsed, from its validation numbers: accuracy at chance
    (within :data:`COLLAPSE_CHANCE_MARGIN` of 1/``num_classes``), an MSE no better than
    predicting the mean (at least 90 % of ``baseline_mse``, the target's variance), or a
    model that uses (``use``: the fraction of steps it updated, tokens it read) less than
    :data:`COLLAPSE_MIN_USE` of its input. Reading everything (a Skip RNN at 100 % updates) is
    not a collapse. → None, or {"reason": one sentence, and the numbers behind it}."""
    reasons, out = [], {}
    if accuracy is not None and num_classes and num_classes > 1:
        chance = 1.0 / num_classes
        if not accuracy > chance + COLLAPSE_CHANCE_MARGIN:
            reasons.append(f"validation accuracy {accuracy:.1%} is chance level "
                           f"(1/{num_classes} = {chance:.1%})")
            out.update(accuracy=accuracy, chance=chance)
    if mse is not None and baseline_mse:
        if not mse < COLLAPSE_MSE_FRACTION * baseline_mse:
            reasons.append(f"validation MSE {mse:.4g} is no better than predicting the mean "
                           f"({baseline_mse:.4g})")
            out.update(mse=mse, baseline_mse=baseline_mse)
    if use is not None and use < COLLAPSE_MIN_USE:
        reasons.append(f"only {use:.1%} of its input is used ({used}); it has learnt to ignore "
                       "it")
        out.update(use=use)
    if not reasons:
        return None
    return {"reason": "; ".join(reasons), **out}


def collapse_warning(collapsed: Optional[dict], name: str) -> Optional[str]:
    """The one CLI line that says a run collapsed (None when it did not)."""
    if not collapsed:
        return None
    return (f"warning: {name} collapsed: {collapsed['reason']}. The training finished but the "
            "model is not useful; see 'collapsed' in its card (try a smaller λ, a lower "
            "learning rate or more steps)")


@contextlib.contextmanager
def threshold_override(model: nn.Module, threshold: Optional[float]) -> Iterator[None]:
    """Run the block with the Skip RNN's inference threshold θ set to ``threshold`` (None: as it
    is) and put the old θ back afterwards."""
    old = getattr(getattr(model, "rnn", None), "update_threshold", None)
    if threshold is not None and hasattr(model, "set_threshold"):
        model.set_threshold(threshold)
    try:
        yield
    finally:
        if old is not None:
            model.set_threshold(old)


@torch.no_grad()
def infer_one(model: nn.Module, x: Tensor) -> Tuple[Tensor, "object"]:
    """Run one example ``x`` (no batch dimension) through the inference path (eval mode, so
    skipped steps are not computed) and put the model's train/eval mode back.
    Returns (output (1, ·), trace)."""
    was = model.training
    model.eval()
    try:
        return model(x[None], return_trace=True)
    finally:
        model.train(was)


def trace_fields(trace) -> Dict[str, object]:
    """The per-example trace fields every ``predict`` reports (batch of one)."""
    return {"updates": int(trace.update.sum()), "steps": trace.update.shape[1],
            "update": trace.update[0].tolist(), "update_prob": trace.update_prob[0].tolist()}


@torch.no_grad()
def evaluate_classifier(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000,
                        threshold: Optional[float] = None) -> Dict[str, float]:
    """Accuracy, mean updates per sequence and mean FLOPs on (x, y), with the inference path
    (skipped steps are not computed). ``threshold`` overrides θ for this call only."""
    model.eval()
    correct, updates, flops = 0, 0.0, 0.0
    with threshold_override(model, threshold):
        for i in range(0, len(x), batch_size):
            logits, trace = model(x[i:i + batch_size], return_trace=True)
            correct += (logits.argmax(-1) == y[i:i + batch_size]).sum().item()
            updates += trace.update.sum().item()
            flops += trace.flops.sum().item()
    n, T = len(x), x.shape[1]
    return {"accuracy": correct / n, "updates": updates / n, "update_rate": updates / n / T,
            "flops": flops / n, "n": n}


def threshold_sweep(model: nn.Module, x: Tensor, y: Tensor,
                    thresholds=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)) -> List[Dict[str, float]]:
    """Accuracy and updates as the inference threshold θ on ũ moves."""
    return [{"threshold": float(t), **evaluate_classifier(model, x, y, threshold=float(t))}
            for t in thresholds]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def summarize_history(history: List[Dict[str, float]], every: int) -> List[Dict[str, float]]:
    """Average history rows in windows of ``every`` steps (for compact cards and charts)."""
    out = []
    for i in range(0, len(history), every):
        chunk = history[i:i + every]
        keys = [k for k in chunk[0] if isinstance(chunk[0][k], (int, float))]
        row = {k: float(np.mean([c[k] for c in chunk])) for k in keys}
        row["step"] = chunk[-1]["step"]
        row["epoch"] = chunk[-1]["epoch"]
        out.append(row)
    return out


def as_dict(p: Progress) -> dict:
    return asdict(p)


def regression_loss(lam: float, warmup_steps: int = 0) -> LossFn:
    """Mean squared error + the Skip RNN budget loss λ·Σu_t (Eq. 8), for a model whose output is
    (B, 1) (``SequenceClassifier(..., num_classes=1)``), as in the adding task (Sec. 4.1).

    Same conventions as :func:`classification_loss` (``warmup_steps`` ramps λ, ``fn.calls``);
    the stats report ``"mse"`` where the classifier reports ``"accuracy"``.
    """

    def fn(model: nn.Module, batch: Tuple[Tensor, ...]):
        x, y = batch
        out, trace = model(x, return_trace=True)
        task = F.mse_loss(out.squeeze(-1), y.to(out.dtype))
        fn.calls += 1
        ramp = min(1.0, fn.calls / warmup_steps) if warmup_steps else 1.0
        loss = task + (budget_loss(trace, lam * ramp) if lam else 0.0)
        with torch.no_grad():
            rate = trace.update.float().mean().item()
        return loss, {"task_loss": task.item(), "mse": task.item(), "update_rate": rate}

    fn.calls = 0
    return fn


@torch.no_grad()
def evaluate_regressor(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000,
                       threshold: Optional[float] = None) -> Dict[str, float]:
    """MSE, mean updates per sequence and mean FLOPs on (x, y) with the inference path."""
    model.eval()
    se, updates, flops = 0.0, 0.0, 0.0
    with threshold_override(model, threshold):
        for i in range(0, len(x), batch_size):
            out, trace = model(x[i:i + batch_size], return_trace=True)
            se += ((out.squeeze(-1) - y[i:i + batch_size]) ** 2).sum().item()
            updates += trace.update.sum().item()
            flops += trace.flops.sum().item()
    n, T = len(x), x.shape[1]
    return {"mse": se / n, "updates": updates / n, "update_rate": updates / n / T,
            "flops": flops / n, "n": n}
