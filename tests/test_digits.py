"""ui.digits: the MNIST page's sentences say exactly the numbers they are given; the Fig. 3
history comes from the cards; live training runs and repeats with its seed."""
from __future__ import annotations

import numpy as np
import pytest

from ui import digits


def _pred(update, flops=50.0, dense=100.0):
    update = np.asarray(update, dtype=float)
    return {"steps": update.size, "updates": int(update.sum()), "update": update.tolist(),
            "flops": flops, "dense_flops": dense}


def _image():
    img = np.zeros((28, 28), np.uint8)
    img[10:18, 10:18] = 255          # 64 ink pixels in the middle, the rest blank
    return img


def test_blank_share_counts_skipped_background():
    u = np.ones(784)
    assert digits.blank_share(_image(), u, 28) is None       # nothing skipped
    u[:100] = 0                                              # the first rows: blank
    assert digits.blank_share(_image(), u, 28) == 1.0
    u = np.ones(784)
    ink = (_image() > 0).reshape(-1)
    u[ink] = 0                                               # only ink skipped
    assert digits.blank_share(_image(), u, 28) == 0.0


@pytest.mark.parametrize("skipped, dense, word", [(5.0, 50.0, "10.0× faster"),
                                                  (50.0, 5.0, "10.0× slower"),
                                                  (10.0, 10.5, "about the same time")])
def test_time_clause_follows_the_numbers(skipped, dense, word):
    r = {"skipped": {"ms": skipped}, "dense": {"ms": dense}, "masked": {"ms": 1.0}}
    text = digits.time_clause(r)
    assert f"took {skipped:.2f} ms against {dense:.2f} ms" in text and word in text
    assert digits.time_clause(None) == ""


def test_summary_says_the_counts_and_the_saving():
    u = np.ones(784)
    u[:100] = 0
    text = digits.summary(_pred(u, flops=40.0, dense=100.0), _image(), 28)
    assert text.startswith("The Skip GRU used 684 of the 784 pixels and skipped 100 "
                           "(100% of them blank background): 2.50× fewer FLOPs")
    more = digits.summary(_pred(np.ones(784), flops=110.0, dense=100.0), _image(), 28)
    assert "1.10× more FLOPs" in more and "blank" not in more


def test_history_prefers_all_sessions_and_skips_bad_rows():
    card = {"training": {
        "valid_per_epoch": [{"epoch": 2, "accuracy": 0.5}],
        "valid_per_epoch_all": [{"epoch": 2, "accuracy": 0.6}, {"epoch": 1, "accuracy": 0.3},
                                {"epoch": 3, "accuracy": "nan"}, {"epoch": 4},
                                {"epoch": 2, "accuracy": 0.65}]}}
    assert digits.history(card) == {"epoch": [1, 2], "accuracy": [0.3, 0.65]}
    assert digits.history({"training": {"valid_per_epoch": [{"epoch": 1, "accuracy": 0.4}]}}) \
        == {"epoch": [1], "accuracy": [0.4]}
    assert digits.history(None) == {"epoch": [], "accuracy": []}


def test_history_sentence_generated_from_the_curves():
    skip = {"epoch": [1, 2, 3], "accuracy": [0.5, 0.92, 0.95]}
    gru = {"epoch": [1, 2, 3, 4], "accuracy": [0.4, 0.6, 0.85, 0.91]}
    text = digits.history_sentence({"Skip GRU": skip, "GRU": gru}, expected="Skip GRU")
    assert "the Skip GRU reached 95.0% after 3 epochs (above 90% from epoch 2)" in text
    assert "the GRU reached 91.0% after 4 epochs (above 90% from epoch 4)" in text
    assert text.endswith("The Skip GRU passed 90% first, as in the paper.")
    text = digits.history_sentence({"Skip GRU": gru, "GRU": skip}, expected="Skip GRU")
    assert text.endswith("The GRU passed 90% first; in the paper the Skip GRU was faster.")
    low = {"epoch": [1], "accuracy": [0.3]}
    text = digits.history_sentence({"Skip GRU": low, "GRU": low})
    assert "first" not in text and "above" not in text
    assert digits.history_sentence({"Skip GRU": {"epoch": [], "accuracy": []}}) == ""


def test_grid_indices_two_of_each_class_in_order():
    y = np.repeat(np.arange(10), 5)[::-1]
    idx = digits.grid_indices(y, per_class=2)
    assert [int(y[i]) for i in idx] == [c for c in range(10) for _ in range(2)]
    assert len(set(idx.tolist())) == 20


def test_top_used_share_and_attribution_line():
    attr = np.arange(10.0)                       # the top 3 are the last three
    used = np.zeros(10)
    used[[9, 8, 0]] = 1
    assert digits.top_used_share(attr, used, 3) == pytest.approx(2 / 3)
    assert digits.top_used_share(-attr, used, 1) == 1.0   # by |attribution|
    with pytest.raises(ValueError):
        digits.top_used_share(attr, used, 0)
    assert digits.attribution_line(0.9, 0.5).endswith("more than chance.")
    assert digits.attribution_line(0.5, 0.51).endswith("no better than chance.")
    assert digits.attribution_line(0.3, 0.5).endswith("less than chance.")
    assert digits.attribution_line(0.77, 0.8).startswith("77% of the attribution lies on the 80%")


def test_live_problems_in_words():
    ok = digits.live_problems(1e-3, 32, 400, 1e-2, 7, 100)
    assert ok == []
    bad = digits.live_problems(0.5, 7, None, 1.0, None, 100)
    assert len(bad) == 5 and any("seed" in b for b in bad) and any("steps" in b for b in bad)
    assert digits.live_problems(1e-3, 32, 0, 1e-2, 101, 100) == [
        "the training steps must be 1 to 3,000", "the seed must be a whole number from 0 to 100"]


def test_live_run_trains_measures_and_repeats_with_its_seed():
    runs = [digits.live_run(16, 1e-3, 1e-2, 2, seed=3).start() for _ in range(2)]
    for r in runs:
        assert r.join(120) and r.status == "done" and r.step == 2
    a, b = runs
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    m = a.metrics
    assert m["n_valid"] == 1000 and 0 <= m["valid_accuracy"] <= 1
    assert 0 <= m["valid_updates_mean"] <= 196
    assert [s["threshold"] for s in m["sweep"]] == list(digits.task.SWEEP)
    assert a.config == {"hidden": 16, "lam": 1e-3, "lr": 1e-2, "steps": 2, "seed": 3,
                        "side": 14}
