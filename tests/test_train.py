"""The training loop: it learns, stops on request, refuses NaN, resumes, and evaluation."""
import math

import pytest
import torch

from skimviz.data import mnist
from skimviz.tasks import mnist as task
from skimviz.training.loop import (
    StopTraining,
    Trainer,
    TrainingDiverged,
    batches,
    classification_loss,
    evaluate_classifier,
    summarize_history,
    threshold_sweep,
)


def _data(n=256, side=7):
    x, y = mnist.load_bundled()
    idx = torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:n].numpy()
    return mnist.to_sequence(x[idx], side), torch.tensor(y[idx])


def test_loss_goes_down_and_callback_sees_progress():
    torch.manual_seed(0)
    x, y = _data()
    m = task.make_model("gru", hidden=16)
    tr = Trainer(m, classification_loss(1e-3), lr=1e-2)
    seen = []
    hist = tr.fit(batches(x, y, 64), 40, callback=lambda p: seen.append(p.fraction))
    assert len(hist) == 40 and len(seen) == 40 and seen[-1] == 1.0
    first, last = sum(h["loss"] for h in hist[:5]), sum(h["loss"] for h in hist[-5:])
    assert last < first
    assert {"task_loss", "accuracy", "update_rate", "epoch"} <= set(hist[0])
    assert not m.training


def test_callback_can_stop():
    x, y = _data(64)
    m = task.make_model("gru", hidden=8)
    tr = Trainer(m, classification_loss(0.0))
    tr.fit(batches(x, y, 32), 100, callback=lambda p: p.step >= 3)
    assert tr.step == 3

    def stop(p):
        raise StopTraining

    tr.fit(batches(x, y, 32), 100, callback=stop)
    assert tr.step == 4


def test_nan_loss_is_reported_before_the_weights_change():
    x, y = _data(64)
    x[0, 0, 0] = math.nan
    m = task.make_model("gru", hidden=8)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    tr = Trainer(m, classification_loss(0.0))
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        tr.fit(batches(x, y, 64), 3)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])


def test_resume_reproduces_an_uninterrupted_run():
    x, y = _data(128)

    def run(split):
        torch.manual_seed(1)
        m = task.make_model("gru", hidden=8)
        tr = Trainer(m, classification_loss(1e-3), gate_lr=1e-4)
        if split:
            tr.fit(batches(x, y, 32, seed=3), 3)
            state = tr.state_dict()
            torch.manual_seed(99)
            m2 = task.make_model("gru", hidden=8)
            tr = Trainer(m2, classification_loss(1e-3), gate_lr=1e-4)
            tr.load_state_dict(state)
            tr.fit(batches(x, y, 32, seed=3, start_epoch=0), 0)
            data = batches(x, y, 32, seed=3)
            for _ in range(3):
                next(data)
            tr.fit(data, 3)
            return tr.model
        tr.fit(batches(x, y, 32, seed=3), 6)
        return tr.model

    a, b = run(False), run(True)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k])


def test_gate_has_its_own_learning_rate():
    m = task.make_model("gru", hidden=8)
    tr = Trainer(m, classification_loss(0.0), lr=1e-3, gate_lr=1e-4)
    lrs = sorted(g["lr"] for g in tr.opt.param_groups)
    assert lrs == [1e-4, 1e-3]
    gate_ids = {id(p) for p in m.rnn.gate.parameters()}
    assert {id(p) for p in tr.opt.param_groups[1]["params"]} == gate_ids


def test_linear_lr_decay_per_group_and_across_a_resume():
    x, y = _data(64)
    m = task.make_model("gru", hidden=8)
    tr = Trainer(m, classification_loss(0.0), lr=1e-3, gate_lr=1e-4, lr_decay_steps=4)
    tr.fit(batches(x, y, 16), 2)                     # steps 0, 1 ran at 1 and 3/4 of the lr
    assert [g["lr"] for g in tr.opt.param_groups] == pytest.approx([1e-3 * 0.75, 1e-4 * 0.75])
    state = tr.state_dict()
    tr2 = Trainer(task.make_model("gru", hidden=8), classification_loss(0.0), lr=1e-3,
                  gate_lr=1e-4, lr_decay_steps=4)
    tr2.load_state_dict(state)
    tr2.fit(batches(x, y, 16), 2)                    # resumed: steps 2, 3 at 1/2 and 1/4
    assert [g["lr"] for g in tr2.opt.param_groups] == pytest.approx([1e-3 * 0.25, 1e-4 * 0.25])
    const = Trainer(task.make_model("gru", hidden=8), classification_loss(0.0), lr=1e-3)
    const.fit(batches(x, y, 16), 3)
    assert const.opt.param_groups[0]["lr"] == 1e-3  # default: constant


def test_lambda_warmup_ramps_the_budget():
    torch.manual_seed(2)
    x, y = _data(32)
    m = task.make_model("gru", hidden=8).train()
    fn = classification_loss(1.0, warmup_steps=4)
    losses = []
    for _ in range(5):
        torch.manual_seed(3)
        loss, stats = fn(m, (x, y))
        losses.append(loss.item() - stats["task_loss"])
    updates = 49.0  # the fresh gate updates at every step
    assert losses == pytest.approx([updates * r for r in (0.25, 0.5, 0.75, 1.0, 1.0)], rel=1e-5)


def test_batches_cover_each_epoch_once():
    x, y = torch.arange(10).float().view(10, 1, 1), torch.arange(10)
    it = batches(x, y, 5, seed=0)
    seen = [next(it) for _ in range(4)]
    assert [e for e, _ in seen] == [0, 0, 1, 1]
    assert sorted(torch.cat([b[1] for _, b in seen[:2]]).tolist()) == list(range(10))


def test_evaluate_and_sweep_restore_the_threshold():
    x, y = _data(64)
    m = task.make_model("gru", hidden=8)
    with torch.no_grad():
        m.rnn.gate.bias.fill_(-1.0)
    r = evaluate_classifier(m, x, y)
    assert 0 <= r["accuracy"] <= 1 and r["n"] == 64 and 1 <= r["updates"] <= 49
    sweep = threshold_sweep(m, x, y, (0.3, 0.6, 0.9))
    ups = [s["updates"] for s in sweep]
    assert ups == sorted(ups, reverse=True)
    assert m.rnn.update_threshold == 0.5


def test_summarize_history():
    h = [{"step": i + 1, "epoch": 0, "loss": float(i)} for i in range(10)]
    s = summarize_history(h, 5)
    assert [r["loss"] for r in s] == [2.0, 7.0] and [r["step"] for r in s] == [5, 10]


def _nan_gradient_at(step: int):
    """A loss that is finite at every step but whose gradient is NaN at call ``step``
    (0 · ∂√x at x = 0: an overflow in backward that the loss does not show)."""
    base = classification_loss(0.0)

    def fn(model, batch):
        loss, stats = base(model, batch)
        if base.calls == step:
            p = next(model.parameters())
            loss = loss + 0.0 * torch.sqrt(p - p.detach()).sum()
        return loss, stats
    return fn


@pytest.mark.parametrize("clip", [1.0, 0.0])
def test_a_nan_gradient_stops_training_with_the_last_finite_weights(clip):
    x, y = _data(64)
    torch.manual_seed(0)
    m = task.make_model("gru", hidden=8)
    tr = Trainer(m, _nan_gradient_at(3), clip=clip)
    tr.fit(batches(x, y, 32), 2)
    good = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="gradient.*weights from before that step are kept"):
        tr.fit(batches(x, y, 32), 3)
    assert tr.step == 2
    for k, v in m.state_dict().items():
        assert bool(torch.isfinite(v).all()), k
        assert torch.equal(v, good[k]), k


def test_detect_collapse():
    from skimviz.training.loop import collapse_warning, detect_collapse
    assert detect_collapse(accuracy=0.97, num_classes=10, use=0.4) is None
    assert detect_collapse(accuracy=0.97, num_classes=10, use=1.0) is None   # reads all: fine
    c = detect_collapse(accuracy=0.11, num_classes=10, use=0.5)
    assert "chance" in c["reason"] and c["chance"] == 0.1
    assert "chance" in detect_collapse(accuracy=0.515, num_classes=2)["reason"]
    assert detect_collapse(accuracy=0.55, num_classes=2) is None
    c = detect_collapse(accuracy=0.9, num_classes=10, use=1 / 196, used="pixels read")
    assert "0.5% of its input is used (pixels read)" in c["reason"] and c["use"] == 1 / 196
    assert detect_collapse(mse=0.16, baseline_mse=1 / 6)["baseline_mse"] == 1 / 6
    assert detect_collapse(mse=1e-4, baseline_mse=1 / 6, use=0.5) is None
    assert detect_collapse(accuracy=math.nan, num_classes=2) is not None      # NaN: collapsed
    assert collapse_warning(None, "m") is None
    assert collapse_warning(c, "m").startswith("warning: m collapsed: ")
