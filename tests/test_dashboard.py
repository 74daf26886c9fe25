"""ui.dashboard: points from constructed model cards, the paper's points, θ sweeps,
missing fields, latency; and ui.lessons' slides."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skimviz import cost
from skimviz.training import checkpoint
from ui import dashboard as D
from ui import lessons


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
    "skip-rnn-mnist": "views/skip_rnn_mnist.py",
    "skim-rnn-text": "views/skim_rnn_text.py",
    "dashboard": "views/dashboard.py",
    "speed-lab": "views/speed_lab.py",
    "skip-rnn-signals": "views/skip_rnn_signals.py",
    "home": "views/home.py",
    "transkimmer-text": "views/transkimmer_text.py",
}
_GRID_MNIST = {round(0.05 * i, 2) for i in range(1, 21)}  # the θ slider: 0.05 … 1.00
_GRID_SKIM = {round(0.01 * i, 2) for i in range(1, 100)}  # the Skim-RNN θ slider: 0.01 … 0.99
LESSON_VALUES = {
    "theta": lambda v: v in _GRID_MNIST,
    "skim_theta": lambda v: v in _GRID_SKIM,
    "sl_rate": lambda v: v in [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 20],
    "dash_task": lambda v: v in D.GROUPS,
    "dash_axis": lambda v: v in ("flops", "latency_ms"),
    "signals_task": lambda v: v in ("adding", "frequency", "frames"),
}


def test_lesson_state_sets_only_known_widgets(repo_root):
    """Every slide's ``state`` key is a widget key of its own page (``key="..."`` in that page's
    script) with a value the widget accepts; every page with slides calls ``presentation``."""
    assert set(lessons.SLIDES) == set(LESSON_PAGES)
    for page, script in LESSON_PAGES.items():
        source = (repo_root / script).read_text()
        assert "presentation" in source, script  # app_support.presentation or ui.presentation
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


# --- the task picker, the best trade-off and its sentence -----------------------------------
def _text_card(name, skim, acc, flops, dense=3.2e6, dataset="sst2", tokens=None, sweep=()):
    return {"name": name, "task": "text-classification", "dataset": dataset,
            "config": {"skim": skim, "hidden_size": 100},
            "metrics": {"valid_accuracy": acc, "flops_per_sequence_mean": flops,
                        "dense_flops_per_sequence": dense, "tokens_per_text_mean": tokens},
            "threshold_sweep": list(sweep)}


def test_groups_follow_the_pages_and_keep_unknown_tasks():
    pts = D.points_from_cards([_card("skip-a"), _text_card("s", True, 0.8, 1e6),
                               _card("o", task="some-other-task")])
    assert D.groups(pts) == ["mnist", "skim-rnn", "other"]
    assert {p["task"] for p in D.in_group(pts, "skim-rnn")} == {"text-classification/sst2"}
    assert [p["name"] for p in D.in_group(pts, "other")] == ["o"]
    assert D.group_of("frames") == "signals" and D.group_label("other") == "Other tasks"
    adding = {**_card("add"), "task": "adding"}
    order = [p["task"] for p in D.in_group(D.points_from_cards(
        [{**_card("f"), "task": "frames"}, adding]), "signals")]
    assert order == ["adding", "frames"]  # the group's own order, not the cards'


def test_best_tradeoff_is_the_cheapest_within_one_point():
    cards = [_card("dense", skip=False, acc=0.90, flops=6e7), _card("skip-a", acc=0.895, flops=3e7),
             _card("skip-b", acc=0.87, flops=1e7)]
    pts = D.points_from_cards(cards)
    b = D.best_tradeoff(pts, "mnist-pixels")
    assert b["pick"]["name"] == "skip-a" and b["best"]["name"] == "dense"
    assert b["cheaper"]["name"] == "skip-b"
    s = D.tradeoff_sentence(pts, "mnist-pixels")
    assert "**skip-a**" in s and "89.5 %" in s and "2.0× fewer FLOPs than our best, dense" in s
    assert "90.0 %" in s and "Table 3" in s  # the paper's best point, with its table
    # measured time decides in latency mode: the dense model is faster here
    lat = D.with_latency(pts, {"dense": 1.0, "skip-a": 4.0, "skip-b": 2.0})
    b = D.best_tradeoff(lat, "mnist-pixels", "latency_ms")
    assert b["pick"]["name"] == "dense"
    s = D.tradeoff_sentence(lat, "mnist-pixels", "latency_ms")
    assert "**dense**" in s and "1.0 ms" in s and "the cheapest of ours" in s
    assert "Table 3" not in s  # the paper reports no time


def test_best_tradeoff_on_the_adding_task_is_the_cheapest_that_solves_it():
    def add(name, mse, flops):
        return {"name": name, "task": "adding", "config": {"skip": True, "cell": "gru"},
                "metrics": {"valid_mse": mse, "flops_per_sequence_mean": flops}}
    pts = D.points_from_cards([add("good", 1e-4, 2e6), add("ok", 1e-3, 1e6),
                               add("unsolved", 0.05, 1e5)])
    b = D.best_tradeoff(pts, "adding")
    assert (b["pick"]["name"], b["best"]["name"]) == ("ok", "good")
    s = D.tradeoff_sentence(pts, "adding")
    assert "**ok**" in s and "MSE 0.001" in s and "solves the task" in s
    one = D.points_from_cards([add("only", 1e-4, 2e6)])
    assert "one model only, **only**" in D.tradeoff_sentence(one, "adding")
    assert "none of our models" in D.tradeoff_sentence([], "adding")


def test_text_papers_placed_relative_to_our_models():
    """Skim-RNN's points at our LSTM's FLOPs ÷ the reported FLOP reduction; Transkimmer's at
    BERT-base's FLOPs counted at our WordPiece dev length; none without an anchor."""
    pts = D.points_from_cards([_text_card("s", True, 0.83, 1e6, dense=3.0e6)])
    paper = {p["label"]: p for p in pts if p["source"] == "paper"}
    assert paper["paper Table 2: LSTM"]["flops"] == pytest.approx(3.0e6)
    assert paper["paper Table 2: Skim-LSTM, 3.0× fewer FLOPs"]["flops"] == pytest.approx(1.0e6)
    assert paper["paper Table 2: Skim-LSTM, 3.0× fewer FLOPs"]["value"] == 0.864
    assert all(p["task"] == "text-classification/sst2" for p in paper.values())
    tk = {"name": "t", "task": "sst2-transkimmer", "config": {"skim": True, "layers": 6},
          "input": {"tokenizer": "wordpiece"},
          "metrics": {"dev_accuracy": 0.88, "flops_mean": 2e8, "tokens_mean": 25.0}}
    paper = {p["label"]: p for p in D.points_from_cards([tk]) if p["source"] == "paper"}
    bert = D.bert_base_flops(25.0)
    assert 3e9 < bert < 6e9  # ~ 12 layers × 25 tokens × 14 MFLOPs
    assert paper["paper Table 3: BERT-base"]["flops"] == pytest.approx(bert)
    assert paper["paper Table 3: Transkimmer on BERT-base"]["flops"] == pytest.approx(bert / 1.58)
    words = {**tk, "input": {"tokenizer": "words"}}
    assert [p for p in D.points_from_cards([words]) if p["source"] == "paper"] == []
    assert D.paper_points() == D.paper_points(["mnist-pixels"])  # no anchor, no text points


def test_text_sweeps_land_in_their_dataset_panel():
    sweep = [{"threshold": 0.5, "accuracy": 0.8, "flops_per_text": 1e6},
             {"threshold": 0.3, "accuracy": 0.82, "flops_per_text": 2e6}]
    curves = D.sweep_curves([_text_card("s", True, 0.8, 1e6, dataset="imdb", sweep=sweep)])
    assert [(c["task"], c["thresholds"], c["flops"]) for c in curves] == [
        ("text-classification/imdb", [0.3, 0.5], [2e6, 1e6])]


@pytest.mark.skipif(not checkpoint.list_pretrained(), reason="no shipped checkpoints")
def test_latency_inputs_run_every_shipped_checkpoint():
    """One batch-1 input per task, the same for every checkpoint of a task, that the model
    runs; and the timing runs them all on one thread."""
    calls, what = {}, {}
    for name in checkpoint.list_pretrained():
        model, card = checkpoint.load(name)
        args, w = D.latency_inputs(card, checkpoint.PRETRAINED_DIR / name)
        assert args[0].shape[0] == 1, name  # batch 1
        with torch.inference_mode():
            model.eval()(*args)
        what.setdefault(D.card_point(card)["task"], set()).add(w)
        calls[name] = lambda m=model, a=args: m(*a)
    # one input per task; the frequency models differ in sampling period, the Transkimmers in
    # tokenizer (the same sentence, in words or in WordPiece tokens)
    assert all(len(ws) == 1 for task, ws in what.items()
               if task not in ("frequency", "sst2-transkimmer")), what
    before = torch.get_num_threads()
    ms = D.time_models(calls, rounds=3, max_seconds=1.0)
    assert set(ms) == set(calls) and all(v > 0 for v in ms.values())
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="no latency input"):
        D.latency_inputs({"task": "something else"})


# --- the trade-off figure ------------------------------------------------------------------------
def test_tradeoff_figure_grid_legend_and_ring():
    from skimviz.viz import common, tradeoff

    cards = [{**_card(f"m{i}"), "task": t} for i, t in
             enumerate(["adding", "frequency", "frames", "mnist-pixels"])]
    pts = D.points_from_cards(cards)
    fig = tradeoff.tradeoff_figure(pts, highlight=["m1"])
    domains = {tuple(fig.layout[k].domain) for k in fig.layout if k.startswith("xaxis")}
    assert len(domains) == 2  # four panels as 2 × 2, never more than 3 columns
    fig3 = tradeoff.tradeoff_figure(pts[:3] + [p for p in pts if p["task"] == "adding"])
    assert len({tuple(fig3.layout[k].domain) for k in fig3.layout
                if k.startswith("xaxis")}) == 3
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y == 1
    ring = [t for t in fig.data if t.meta["kind"] == "best"]
    assert len(ring) == 1 and ring[0].meta["task"] == "frequency"
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert len(names) == len(set(names))  # one legend entry per kind, not per panel
    assert fig.layout.margin.t >= 12 * 1.9 * common.legend_rows(names, 12, 680)


def test_log_ticks_and_short_numbers():
    from skimviz.viz import common

    assert common.log_ticks(1e6, 1e8) == [1e6, 1e7, 1e8] or len(common.log_ticks(1e6, 1e8)) <= 5
    t = common.log_ticks(1.2e6, 3.4e6)
    assert 2 <= len(t) <= 5 and all(1.2e6 <= v <= 3.4e6 for v in t)
    assert len(common.log_ticks(0.2, 60)) <= 5 and common.log_ticks(0, 1) == []
    assert [common.short_number(v) for v in (2e7, 5e5, 3e9, 0.5)] == ["20M", "500k", "3G", "0.5"]
    assert common.legend_rows([], 12, 600) == 0
    assert common.legend_rows(["a" * 40] * 6, 12, 600) > common.legend_rows(["a" * 40] * 6, 12, 2000)
