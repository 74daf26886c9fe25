"""The adding task (Skip RNN paper, Sec. 4.1, Table 1): (value, marker) sequences of length 50,
the target is the sum of the two marked values; MSE loss; "solved" when the test MSE is at least
100× below the variance of the target (2/12 for values ~ U(−0.5, 0.5)).

Evaluation: 10,000 sequences generated with :data:`TEST_SEED` (training batches use seeds
≥ 10,000,000, see ``tasks._runner``), so the test set is fixed and never trained on.
"""
from __future__ import annotations

from typing import Dict

import torch

from skimviz.data.synthetic import ADDING_TARGET_VARIANCE, adding_task
from skimviz.models import SequenceClassifier
from skimviz.tasks import _runner
from skimviz.tasks.base import Task
from skimviz.training.loop import evaluate_regressor, infer_one, regression_loss, trace_fields

TASK = "adding"
LENGTH = 50
TEST_SEED, VALID_SEED = 2018_41, 4_1
N_TEST, N_VALID = 10_000, 1_000
SOLVED_FACTOR = 100.0
#: The app's live training (:func:`ui.signals.live_run`): visible skipping within
#: :data:`LIVE_SECONDS` on the 2-core server (measured, 3 seeds: see tests/test_tasks_signals.py).
#: The budget ramps up over the first 300 steps so the sum is learnt before the gate closes.
LIVE = dict(hidden=32, batch=64, lr=1e-2, gate_lr_scale=1.0, lam=5e-4, warmup=300, steps=1000,
            valid_n=500)
LIVE_SECONDS = 35
PAPER = {"reference": "Campos et al., ICLR 2018, Table 1 (mean ± std over 4 runs; all solved)",
         "state_updates_percent": {"lstm": 100.0, "skip_lstm_lambda_0": 81.1,
                                   "skip_lstm_lambda_1e-5": 53.9, "gru": 100.0,
                                   "skip_gru_lambda_0": 97.9, "skip_gru_lambda_1e-5": 50.7}}


def make_model(cell: str = "gru", hidden: int = 110, skip: bool = True) -> SequenceClassifier:
    return SequenceClassifier(2, hidden, 1, cell=cell, skip=skip)


def solved(mse: float) -> bool:
    return mse * SOLVED_FACTOR <= ADDING_TARGET_VARIANCE


def measure(model, x, y) -> Dict[str, float]:
    r = evaluate_regressor(model, x, y)
    r["seq_len"] = x.shape[1]
    return r


def target_status(v: dict, args=None) -> dict:
    ok = solved(v["mse"])
    return {"goal": f"solved: MSE ≤ target variance / 100 = {ADDING_TARGET_VARIANCE / 100:.5f} "
                    "(paper, Sec. 4.1); Skip RNN λ=1e-5 with about half the updates (Table 1)",
            "reached": bool(ok), "mse": v["mse"], "update_rate": v["update_rate"],
            "note": "reached" if ok else "not solved yet: continue with --resume (see README)"}


def _length(args) -> int:
    return getattr(args, "length", LENGTH)


def spec() -> _runner.Spec:
    return _runner.Spec(
        task=TASK, metric="mse",
        make_model=lambda a: make_model(a.cell, a.hidden, skip=not a.dense),
        make_batch=lambda a: (lambda n, s: adding_task(n, _length(a), seed=s)),
        valid_set=lambda a: adding_task(_runner.valid_n(a, 64, N_VALID), _length(a), seed=VALID_SEED),
        measure=measure,
        loss=lambda a: regression_loss(0.0 if a.dense else a.lam, a.lam_warmup_steps),
        card=lambda a, m: {
            "input": {"seq_len": _length(a), "features": ["value", "marker"],
                      "values": "U(-0.5, 0.5)", "markers": "one in the first 10 %, one in the last half"},
            "data": {"train": "fresh generated batches (seeds ≥ 10,000,000)",
                     "valid": f"{N_VALID} sequences, seed {VALID_SEED}",
                     "test": f"{N_TEST} sequences, seed {TEST_SEED}"},
            "target_variance": ADDING_TARGET_VARIANCE, "paper": PAPER},
        target=target_status, score=score, baseline_mse=ADDING_TARGET_VARIANCE)


def score(v: dict) -> tuple:
    """Export choice: once solved (Sec. 4.1), fewer updates is better (Table 1 reports the
    updates of solving models); before that, lower MSE."""
    return (1, -v["updates"]) if solved(v["mse"]) else (0, -v["mse"])


def train_command(args) -> int:
    """``python -m skimviz train adding ...``"""
    return _runner.train(args, spec())


def test_set(n: int = N_TEST, length: int = LENGTH):
    return adding_task(n, length, seed=TEST_SEED)


def evaluate(model, card: dict, n: int = N_TEST, threshold=None) -> dict:
    x, y = test_set(n, card.get("input", {}).get("seq_len", LENGTH))
    r = evaluate_regressor(model, x, y, threshold=threshold)
    out = _runner.summary(model, card, r, "mse")
    out.update(target_variance=ADDING_TARGET_VARIANCE, solved=solved(r["mse"]),
               mse_ratio=ADDING_TARGET_VARIANCE / max(r["mse"], 1e-12), test_seed=TEST_SEED)
    return out


@torch.no_grad()
def predict(model, x: torch.Tensor) -> dict:
    """One sequence (T, 2) through the inference path: output, used steps, ũ."""
    out, trace = infer_one(model, x)
    return {"output": float(out[0, 0]), **trace_fields(trace)}


#: This task for the CLI (:mod:`skimviz.tasks` registry); ``predict`` does not apply.
TASK_SPEC = Task(name="adding", card_task=TASK, train_command=train_command,
                 evaluate_command=_runner.generated_evaluate_command(evaluate))
