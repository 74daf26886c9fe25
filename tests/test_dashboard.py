"""skimviz.dashboard: points from constructed model cards, the paper's points, θ sweeps,
missing fields, latency; and skimviz.lessons' slides."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skimviz import cost, dashboard as D, lessons


def _card(name="skip-a", skip=True, acc=0.9, flops=3.0e7, updates=400.0, sweep=True,
          target=None, task="mnist-pixels"):
    card = {"name": name, "task": task, "architecture": "SequenceClassifier",
            "config": {"input_size": 1, "hidden_size": 110, "num_classes": 10, "cell": "gru",
                       "num_layers": 1, "skip": skip},
            "input": {"side": 28, "seq_len": 784},
            "metrics": {"valid_accuracy": acc, "valid_updates_mean": updates,
                        "flops_per_sequence_mean": flops, "dense_flops_per_sequence": 58817890},
            "threshold_sweep": ([{"threshold": t, "accuracy": acc - t / 10, "updates": u,
                                  "flops": u * 75000.0}
                                 for t, u in ((0.7, 300.0), (0.3, 600.0), (0.5, 400.0))]
                                if sweep and skip else []),
            "training": {"dry_run": False}}
    if target is not None:
        card["target"] = target
    return card


def test_one_point_per_card_and_a_new_card_is_a_new_point():
    cards = [_card("skip-a"), _card("gru-a", skip=False, acc=0.95, flops=5.9e7, updates=784)]
    pts = D.points_from_cards(cards)
    ours = [p for p in pts if p["source"] == "ours"]
    assert [(p["name"], p["kind"]) for p in ours] == [("skip-a", "skip"), ("gru-a", "dense")]
    assert ours[0]["value"] == 0.9 and ours[0]["flops"] == 3.0e7 and ours[0]["updates"] == 400
    assert ours[0]["metric"] == "valid_accuracy" and ours[0]["seq_len"] == 784
    more = D.points_from_cards(cards + [_card("skip-b", acc=0.8, flops=2e7)])
    assert [p["name"] for p in more if p["source"] == "ours"] == ["skip-a", "gru-a", "skip-b"]
    # a dict name → card works too
    assert len(D.points_from_cards({c["name"]: c for c in cards})) == len(pts)


def test_paper_points_table_3_converted_with_cost():
    pts = [p for p in D.points_from_cards([_card()]) if p["source"] == "paper"]
    got = {p["label"]: p for p in pts}
    assert set(got) == {"paper Table 3: Skip GRU, λ=1e-4", "paper Table 3: GRU",
                        "paper Table 3: Skip LSTM, λ=1e-4", "paper Table 3: LSTM"}
    assert all(p["ref"] == "paper Table 3" and "110-unit" in p["note"] for p in pts)
    gru = got["paper Table 3: GRU"]
    assert gru["kind"] == "dense" and gru["value"] == pytest.approx(0.968)
    head = cost.linear_flops(110, 10)
    assert gru["flops"] == 784 * cost.gru_cell_flops(1, 110) + head
    sg = got["paper Table 3: Skip GRU, λ=1e-4"]
    expect = (392.62 * (cost.gru_cell_flops(1, 110) + cost.skip_gate_flops(110))
              + (784 - 392.62) * cost.SKIP_STEP_FLOPS + head)
    assert sg["kind"] == "skip" and sg["flops"] == pytest.approx(expect)
    sl = got["paper Table 3: Skip LSTM, λ=1e-4"]
    assert sl["flops"] == pytest.approx(
        379.38 * (cost.lstm_cell_flops(1, 110) + cost.skip_gate_flops(220))
        + (784 - 379.38) * 3 + head)
    assert got["paper Table 3: LSTM"]["value"] == pytest.approx(0.91)
    # the paper's dense GRU costs exactly what our dense GRU card says
    assert gru["flops"] == 58817890


def test_same_flops_as_the_model():
    from skimviz.tasks.mnist import make_model

    m = make_model("gru", 110, skip=False)
    assert D.sequence_flops("gru", False, 784, 784, 110) == m.dense_flops(784)


def test_paper_points_only_for_the_cards_tasks():
    pts = D.points_from_cards([_card(task="some-text-task")])
    assert {p["source"] for p in pts} == {"ours"}
    assert pts[0]["task_title"] == "some-text-task"
    assert D.points_from_cards([]) == []


def test_missing_fields_are_none_not_errors():
    bare = {"name": "bare", "architecture": "X", "config": {}}
    weird = {"name": "weird", "task": "mnist-pixels", "config": "nope", "metrics": {
        "valid_accuracy": "n/a", "flops_per_sequence_mean": float("nan")},
        "threshold_sweep": [{"threshold": 0.5}, "junk", {"threshold": 0.5, "accuracy": 0.9,
                                                         "flops": 1e7, "updates": 100}]}
    pts = D.points_from_cards([bare, weird, "not a card"])
    ours = {p["name"]: p for p in pts if p["source"] == "ours"}
    assert set(ours) == {"bare", "weird"}
    assert ours["bare"]["value"] is None and ours["bare"]["flops"] is None
    assert ours["bare"]["task"] == "unknown task" and ours["bare"]["kind"] == "dense"
    assert ours["weird"]["value"] is None and ours["weird"]["flops"] is None
    assert [p["name"] for p in D.missing(pts)] == ["bare", "weird"]
    assert all(p["source"] == "paper" for p in D.drawable(pts))
    curves = D.sweep_curves([bare, weird])
    assert len(curves) == 1 and curves[0]["thresholds"] == [0.5]


def test_sweep_curves_sorted_by_theta_dense_has_none():
    curves = D.sweep_curves([_card("skip-a"), _card("gru-a", skip=False)])
    assert len(curves) == 1
    c = curves[0]
    assert c["name"] == "skip-a" and c["thresholds"] == [0.3, 0.5, 0.7]
    assert c["updates"] == [600.0, 400.0, 300.0] and c["flops"][0] == 600 * 75000.0


def test_targets_and_latency():
    cards = [_card("a", target={"goal": "≥ 97 %", "reached": False, "note": "not reached: more"}),
             _card("b", target={"goal": "g", "reached": True, "note": "reached"}), _card("c")]
    pts = D.points_from_cards(cards)
    assert D.target_notes(pts) == [{"name": "a", "goal": "≥ 97 %", "note": "not reached: more"}]
    with_lat = D.with_latency(pts, {"a": 12.5, "zzz": 1.0, "b": float("nan")})
    got = {p["name"]: p["latency_ms"] for p in with_lat}
    assert got["a"] == 12.5 and got["b"] is None and got["c"] is None
    assert all(p["latency_ms"] is None for p in pts)  # the input is not modified
    assert [p["name"] for p in D.drawable(with_lat, "latency_ms")] == ["a"]


def test_checkpoint_latency_one_thread():
    from skimviz.tasks.mnist import make_model

    m = make_model("gru", 8, skip=True).eval()
    card = {"task": "mnist-pixels", "input": {"side": 7}}
    before = torch.get_num_threads()
    r = D.checkpoint_latency(m, card, repeats=3)
    assert r["median_ms"] > 0 and r["repeats"] == 3 and "1 CPU thread" in r["input"]
    assert "7×7" in r["input"] and torch.get_num_threads() == before
    r = D.checkpoint_latency(m, card, image=np.zeros((28, 28), np.uint8), repeats=3)
    assert math.isfinite(r["median_ms"])
    with pytest.raises(ValueError):
        D.checkpoint_latency(m, {"task": "other"})


#: Each page with slides: its script, and the valid values of every widget a slide may set.
LESSON_PAGES = {
    "skip-rnn-mnist": "pages/skip_rnn_mnist.py",
    "skim-rnn-text": "pages/skim_rnn_text.py",
    "dashboard": "pages/dashboard.py",
    "speed-lab": "pages/speed_lab.py",
    "skip-rnn-signals": "pages/skip_rnn_signals.py",
    "home": "pages/home.py",
    "transkimmer-text": "pages/transkimmer_text.py",
}
_GRID_MNIST = {round(0.05 * i, 2) for i in range(1, 21)}  # the θ slider: 0.05 … 1.00
_GRID_SKIM = {round(0.01 * i, 2) for i in range(1, 100)}  # the Skim-RNN θ slider: 0.01 … 0.99
LESSON_VALUES = {
    "theta": lambda v: v in _GRID_MNIST,
    "skim_theta": lambda v: v in _GRID_SKIM,
    "sl_rate": lambda v: v in [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 20],
}


def test_lesson_state_sets_only_known_widgets(repo_root):
    """Every slide's ``state`` key is a widget key of its own page (``key="..."`` in that page's
    script) with a value the widget accepts; every page with slides calls ``presentation``."""
    assert set(lessons.SLIDES) == set(LESSON_PAGES)
    for page, script in LESSON_PAGES.items():
        source = (repo_root / script).read_text()
        assert "presentation(" in source, script
        sl = lessons.slides(page)
        assert 3 <= len(sl) <= 5 and all(s["title"] and s["text"] for s in sl), page
        for s in sl:
            for key, value in (s.get("state") or {}).items():
                assert f'key="{key}"' in source, (page, key)
                assert key in LESSON_VALUES and LESSON_VALUES[key](value), (page, key, value)


def test_lessons():
    for page in ("skip-rnn-mnist", "dashboard", "speed-lab", "skip-rnn-signals"):
        sl = lessons.slides(page)
        assert 3 <= len(sl) <= 5 and all(s["title"] and s["text"] for s in sl)
    assert any("red pixels" in s["text"] for s in lessons.slides("skip-rnn-mnist"))
    assert any(s.get("state", {}).get("theta") for s in lessons.slides("skip-rnn-mnist"))
    assert lessons.slides("nope") == [] and lessons.clamp_step(5, "nope") == 0
    assert lessons.clamp_step(99, "dashboard") == len(lessons.slides("dashboard")) - 1
    assert lessons.clamp_step(-3, "dashboard") == 0


def test_text_cards_get_their_own_panels():
    """Skim-RNN cards (``config.skim``, one panel per dataset) and Transkimmer cards (FLOPs under
    ``flops_mean``) become points without code for each checkpoint."""
    skim = {"name": "s", "task": "text-classification", "dataset": "imdb",
            "config": {"skim": True, "hidden_size": 100},
            "metrics": {"valid_accuracy": 0.9, "flops_per_sequence_mean": 10.0,
                        "dense_flops_per_sequence": 50.0}, "skim_threshold": 0.4}
    tk = {"name": "t", "task": "sst2-transkimmer", "config": {"skim": False, "layers": 4, "hidden": 128},
          "metrics": {"dev_accuracy": 0.8, "flops_mean": 7.0, "dense_flops_mean": 7.0}}
    a, b = D.card_point(skim), D.card_point(tk)
    assert (a["task"], a["kind"], a["value"], a["flops"], a["threshold"]) == (
        "text-classification/imdb", "skip", 0.9, 10.0, 0.4)
    assert a["task_title"].startswith("IMDB") and "Skim LSTM" in a["label"]
    assert (b["task"], b["kind"], b["value"], b["flops"]) == ("sst2-transkimmer", "dense", 0.8, 7.0)
    assert "encoder, 4 layers" in b["label"]
