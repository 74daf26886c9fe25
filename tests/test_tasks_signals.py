"""The Skip RNN signal tasks (adding, frequency) and the digit clips: generators, a few training
steps per task on tiny sizes, evaluation keys, and the clip model's batch-1 path (which encodes
only the used frames) against its batched path."""
from __future__ import annotations

import argparse
import time

import numpy as np
import pytest
import torch

from skimviz.data import clips
from skimviz.models import build
from skimviz.models.clip_classifier import ClipClassifier
from skimviz.tasks import _runner, adding, frames, frequency
from skimviz.training import checkpoint
from skimviz.training.loop import Trainer, regression_loss


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- clips ----------------------------------------------------------------------------------------
def test_clips_shapes_labels_and_redundancy():
    x, y, info = clips.make_clips(12, seed=3)
    assert x.shape == (12, clips.LENGTH, 28, 28) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    _, labels = clips.mnist.load_bundled()
    assert y.tolist() == labels[info["digit_index"].numpy()].tolist()
    # blank where the digit is not visible, ink where it is
    ink = x.flatten(2).sum(-1)
    assert torch.all(ink[~info["visible"]] == 0) and torch.all(ink[info["visible"]] > 0)
    # most frames repeat the previous one exactly (the held and blank stretches)
    assert info["changed"].float().mean() < 0.35
    # the digit moves during the drift, then holds still
    i = 0
    a, h = int(info["appear"][i]), int(info["hold"][i])
    assert info["changed"][i, a] and not info["changed"][i, h + 1:int(info["vanish"][i])].any()


def test_clips_are_seeded_and_splits_disjoint():
    x1, y1, _ = clips.make_clips(4, seed=7)
    x2, y2, _ = clips.make_clips(4, seed=7)
    x3, _, _ = clips.make_clips(4, seed=8)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    tr, te = clips.digit_indices("train"), clips.digit_indices("test")
    assert len(tr) == 4000 and len(te) == 1000 and not set(tr) & set(te)
    _, _, info = clips.make_clips(20, seed=1, split="test")
    assert set(info["digit_index"].tolist()) <= set(te.tolist())
    with pytest.raises(ValueError):
        clips.make_clips(2, length=10)
    with pytest.raises(ValueError):
        clips.digit_indices("valid")


# --- clip model -------------------------------------------------------------------------------------
def test_clip_model_batch1_agrees_with_batched_and_skips_the_encoder():
    torch.manual_seed(0)
    m = ClipClassifier(hidden_size=12, feature_size=16)
    with torch.no_grad():  # a gate that skips: a negative bias gives Δũ ≈ 0.2 (skip 2 of 3)
        m.rnn.gate.bias.fill_(-1.4)
        m.rnn.gate.weight.mul_(0.1)
    m.eval()
    x, _, _ = clips.make_clips(3, seed=2)
    with torch.no_grad():
        logits, trace = m(x, return_trace=True)
        for i in range(3):
            l1, t1 = m(x[i:i + 1], return_trace=True)
            assert torch.allclose(l1[0], logits[i], atol=1e-5)
            assert torch.equal(t1.update[0], trace.update[i])
            assert torch.allclose(t1.update_prob[0], trace.update_prob[i], atol=1e-6)
            n_used = int(t1.update.sum())
            assert 0 < n_used < x.shape[1]
            # batch 1: the encoder ran on used frames only; batched: on every frame
            enc = m.encoder.flops()
            assert float(trace.flops[i].sum() - t1.flops[0].sum()) == pytest.approx(
                enc * (x.shape[1] - n_used), rel=1e-6)
    assert isinstance(build("ClipClassifier", m.config), ClipClassifier)
    with pytest.raises(ValueError):
        m(x[0])


def test_clip_model_counts_encoder_calls():
    m = ClipClassifier(hidden_size=8, feature_size=8).eval()
    with torch.no_grad():
        m.rnn.gate.bias.fill_(-2.0)
        m.rnn.gate.weight.zero_()
    calls = []
    m.encoder.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    x, _, _ = clips.make_clips(1, seed=0)
    with torch.no_grad():
        _, tr = m(x, return_trace=True)
    assert len(calls) == int(tr.update.sum()) < x.shape[1] and set(calls) == {1}


# --- training smoke tests -------------------------------------------------------------------------
def _args(**kw):
    base = dict(cell="gru", hidden=8, dense=False, lam=1e-4, lr=1e-2, gate_lr_scale=1.0,
                lam_warmup_steps=0, batch_size=16, steps=3, eval_every=3, seed=0, threads=1,
                resume=False, max_minutes=0, dry_run=False, length=50, sampling_ms=1.0,
                feature_size=8, valid_n=32, argv=["train", "x"])
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("mod,kw,metric", [
    (adding, {}, "mse"),
    (frequency, {"sampling_ms": 0.5}, "accuracy"),
    (frames, {"length": 24, "batch_size": 4}, "accuracy"),
])
def test_training_smoke_and_resume(tmp_path, mod, kw, metric):
    name = f"t-{mod.TASK}"
    a = _args(name=name, out=str(tmp_path), work=str(tmp_path / "w"), **kw)
    assert _runner.train(a, mod.spec(), quiet=True) == 0
    model, card = checkpoint.load(tmp_path / name)
    assert card["task"] == mod.TASK and card["training"]["steps"] == 3
    assert card["training"]["command"].startswith("python -m skimviz train")
    assert card["training"]["lambda"] == 1e-4 and "paper" in card
    assert f"valid_{metric}" in card["metrics"] and {"goal", "reached"} <= set(card["target"])
    assert all(metric in r and "update_rate" in r for r in card["training"]["history"])
    # resume: 2 more steps continue from step 3
    b = _args(name=name, out=str(tmp_path), work=str(tmp_path / "w"), steps=5, resume=True, **kw)
    assert _runner.train(b, mod.spec(), quiet=True) == 0
    state = torch.load(tmp_path / "w" / name / "state.pt", weights_only=True)
    assert state["trainer"]["step"] == 5 and len(state["trainer"]["history"]) == 5


def test_batches_are_seeded_per_step():
    make = lambda n, s: adding.adding_task(n, 50, seed=s)  # noqa: E731
    a = [b for _, (_, b) in zip(range(3), _runner.generated_batches(make, 4, seed=1))]
    b = next(_runner.generated_batches(make, 4, seed=1, start_step=2))[1]
    assert torch.equal(a[2][0], b[0])
    assert _runner.batch_seed(0, 0) > max(adding.TEST_SEED, frequency.TEST_SEED, frames.TEST_SEED)


def test_regression_loss_budget_and_stats():
    torch.manual_seed(0)
    m = adding.make_model(hidden=8)
    x, y = adding.adding_task(16, 50, seed=0)
    loss0, s0 = regression_loss(0.0)(m, (x, y))
    loss1, s1 = regression_loss(1e-2)(m, (x, y))
    assert set(s0) == {"task_loss", "mse", "update_rate"}
    assert (loss1 - loss0).item() == pytest.approx(1e-2 * 50 * s1["update_rate"], rel=1e-4)
    tr = Trainer(m, regression_loss(1e-3), lr=1e-2)
    tr.fit(iter([(0, (x, y))] * 2), 2)
    assert len(tr.history) == 2 and "mse" in tr.history[0]


# --- evaluate ----------------------------------------------------------------------------------------
def test_evaluate_keys():
    card = {"name": "t", "task": "adding", "input": {"seq_len": 50}}
    r = adding.evaluate(adding.make_model(hidden=4).eval(), card, n=100)
    assert {"mse", "target_variance", "solved", "update_rate"} <= set(r)
    assert r["target_variance"] == pytest.approx(2 / 12) and r["n"] == 100
    assert adding.solved(0.0016) and not adding.solved(0.002)
    r = frequency.evaluate(frequency.make_model(hidden=4).eval(),
                           {"name": "t", "task": "frequency", "input": {"sampling_ms": 0.5}}, n=50)
    assert {"accuracy", "solved", "updates_mean", "update_rate"} <= set(r) and r["seq_len"] == 200
    r = frames.evaluate(frames.make_model(hidden=4, feature_size=4).eval(),
                        {"name": "t", "task": "frames", "input": {"seq_len": 24}}, n=10)
    assert {"accuracy", "updates_mean", "update_rate"} <= set(r) and r["n"] == 10


def test_test_sets_are_fixed_and_distinct_from_validation():
    x1, y1 = adding.test_set(20)
    x2, _ = adding.test_set(20)
    xv, _ = adding.adding_task(20, 50, seed=adding.VALID_SEED)
    assert torch.equal(x1, x2) and not torch.equal(x1, xv)
    assert len({adding.TEST_SEED, adding.VALID_SEED, frequency.TEST_SEED, frames.TEST_SEED}) == 4


def test_predict_helpers():
    x, y = adding.adding_task(1, 50, seed=0)
    r = adding.predict(adding.make_model(hidden=4), x[0])
    assert r["steps"] == 50 and len(r["update"]) == 50 and np.isfinite(r["output"])
    xf, _, _ = frequency.frequency_task(1, seed=0)
    r = frequency.predict(frequency.make_model(hidden=4), xf[0])
    assert len(r["probabilities"]) == 2 and len(r["update_prob"]) == 100
    xc, _, _ = clips.make_clips(1, length=24, seed=0)
    r = frames.predict(frames.make_model(hidden=4, feature_size=4), xc[0])
    assert r["steps"] == 24 and r["flops"] <= r["dense_flops"] * 1.01


def test_adding_export_choice_prefers_solved_then_fewer_updates():
    from skimviz.tasks import adding
    unsolved_low_mse = adding.score({"mse": 0.01, "updates": 10.0})
    solved_many = adding.score({"mse": 0.001, "updates": 50.0})
    solved_few = adding.score({"mse": 0.0015, "updates": 25.0})
    assert solved_few > solved_many > unsolved_low_mse
    assert adding.score({"mse": 0.01, "updates": 1}) > adding.score({"mse": 0.02, "updates": 1})


# --- the app's live training (ui.signals, the LIVE recipes) -----------------------------------
#: The default live runs (``signals.live_run(task, seed)``) as the page starts them, measured on
#: this 2-core server with ``nice -n 10``, one torch thread, the fused C++ training path
#: (skimviz.ops), while the machine also ran other engineers' trainings and test suites: seconds
#: from Start to the validated model (training + validation) and the validation numbers
#: (frequency 500 waves, adding 500 sequences, frames 200 clips of unseen digits).
#:
#:     task       seed  time    steps used  quality                      load average
#:     frequency  0     12.5 s    24 %      accuracy 96.2 %              5
#:     frequency  1      8.1 s    60 %      accuracy 98.0 %              5
#:     frequency  2      8.1 s    50 %      accuracy 97.4 %              4
#:     adding     0     16.6 s    53 %      MSE 0.034 (the mean: 0.167)  5
#:     adding     1     15.8 s    39 %      MSE 0.016                    5
#:     adding     2     15.6 s    37 %      MSE 0.012                    5
#:     frames     0     54.2 s    22 %      accuracy 54 % (chance 10 %)  9
#:     frames     1     54.7 s    21 %      accuracy 44 %                9
#:     frames     2     43.4 s    31 %      accuracy 59 %                9
#:
#: At a load average of about 9 the training alone took 15–23 s (frequency) and 12–27 s (adding),
#: so ``LIVE_SECONDS``, the time the page states, covers such a moment: frequency 30 s, adding
#: 35 s, frames 65 s. The shipped models' recipes (λ 1e-5 to 1e-4, the gate at a tenth of the
#: learning rate, thousands of steps) do not skip within such a run: the old page's frequency
#: default ended at 100 % of the steps (after 103 s, on the PyTorch training path).
LIVE_TABLE = {"frequency": [(12.5, 0.24), (8.1, 0.60), (8.1, 0.50)],
              "adding": [(16.6, 0.53), (15.8, 0.39), (15.6, 0.37)],
              "frames": [(54.2, 0.22), (54.7, 0.21), (43.4, 0.31)]}


@pytest.mark.parametrize("task", sorted(LIVE_TABLE))
def test_stated_live_times_cover_the_measured_runs(task):
    from ui import signals
    mod = signals.MODULES[task]
    slowest = max(t for t, _ in LIVE_TABLE[task])
    assert slowest <= mod.LIVE_SECONDS <= 3 * slowest            # measured, with a margin
    assert all(0.1 < rate < 0.9 for _, rate in LIVE_TABLE[task])  # skipping, not collapsed
    assert signals.live_seconds(task) == mod.LIVE_SECONDS
    assert signals.live_seconds(task, 2 * mod.LIVE["steps"]) == 2 * mod.LIVE_SECONDS


@pytest.mark.parametrize("task,metric", [("frequency", "accuracy"), ("adding", "mse"),
                                         ("frames", "accuracy")])
def test_live_run_recipe_and_a_two_step_run(task, metric):
    from ui import signals
    run = signals.live_run(task, 5, lam=1e-3, steps=2)
    cfg = signals.MODULES[task].LIVE
    assert run.total == 2 and run.config["lam"] == 1e-3 and run.config["seed"] == 5
    assert run.config["hidden"] == cfg["hidden"] and run.config["batch"] == cfg["batch"]
    assert signals.live_run(task, 5).config["lam"] == cfg["lam"]
    assert signals.live_run(task, 5).total == cfg["steps"]
    assert run.start().join(120) and run.status == "done", run.error
    m = run.snapshot()["metrics"]
    assert {f"valid_{metric}", "valid_update_rate", "valid_updates_mean", "n_valid"} <= set(m)
    assert m["n_valid"] == cfg["valid_n"] and len(run.history) == 2


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_default_live_run_skips_within_the_stated_time():
    """The page's default live run (frequency, seed 0, the LIVE recipe) with its stated time as
    the budget: it must finish inside it and skip visibly (10–30 s here)."""
    from ui import signals
    run = signals.live_run("frequency", 0)
    run.max_seconds = frequency.LIVE_SECONDS          # stops the run past the stated time
    t0 = time.perf_counter()
    assert run.start().join(frequency.LIVE_SECONDS + 120)
    wall = time.perf_counter() - t0
    s = run.snapshot()
    assert s["status"] == "done", (f"stopped at step {s['step']} of {s['total']} "
                                   f"({s['reason']}): not within the stated "
                                   f"{frequency.LIVE_SECONDS} s")
    assert wall <= frequency.LIVE_SECONDS, f"{wall:.0f} s > the stated {frequency.LIVE_SECONDS} s"
    assert 0.1 < s["metrics"]["valid_update_rate"] < 0.9, s["metrics"]
    assert s["metrics"]["valid_accuracy"] > 0.75, s["metrics"]


def test_example_numbers_and_sentence():
    from ui import signals
    torch.manual_seed(0)
    model = signals.new_model("frequency")
    with torch.no_grad():
        model.rnn.gate.bias.fill_(-1.0)          # a gate that skips
    ex = signals.example("frequency", 3)
    r = signals.run(model, ex)
    assert r["steps"] == 100 and 0 < r["updates"] < 100 and len(r["update"]) == 100
    assert r["flops"] < r["dense_flops"]
    text = signals.sentence("frequency", ex, r, "the model")
    assert text.startswith(f"The model read {r['updates']} of the 100 samples")
    assert f"{signals.flop_reduction(r):.1f}× fewer FLOPs" in text
    assert f"{ex['period']:.2f} ms" in text
    untrained = signals.run(signals.new_model("adding"), signals.example("adding", 0))
    assert untrained["updates"] == 50
    assert "saved no work" in signals.sentence("adding", signals.example("adding", 0), untrained,
                                               "the untrained model")
    assert signals.dense_twin(model).config["skip"] is False
    assert signals.dense_twin(signals.new_model("frames")) is None
