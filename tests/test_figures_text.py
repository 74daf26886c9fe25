"""The Skim-RNN page's pure builders (skimviz.viz.tokens), the speed-up measurement
(skimviz.bench.skim_speed) and its URL state (ui.urlstate.parse_skim / encode_skim), tested on
their data."""
from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
import torch

from skimviz.bench import skim_speed
from skimviz.data import text as textdata
from skimviz.models.text_classifier import TextClassifier
from skimviz.viz import common
from skimviz.viz import tokens as figures_text
from ui import urlstate

SWEEP = [{"threshold": 0.2, "accuracy": 0.70, "skim_rate": 0.8, "flop_r": 3.0},
         {"threshold": 0.5, "accuracy": 0.80, "skim_rate": 0.5, "flop_r": 1.8},
         {"threshold": 0.8, "accuracy": 0.82, "skim_rate": 0.1, "flop_r": 1.1}]


# --- token HTML -----------------------------------------------------------------------------
def _spans(html: str):
    return re.findall(r'<span class="(skimviz-[a-z -]+)"[^>]*>(.*?)</span>', html)


def test_token_html_marks_read_skimmed_and_unknown():
    out = figures_text.token_html(["a", "fine", "film", "!"], [1, 0, 0, 1],
                                  [True, True, False, True], [0.9, 0.1, 0.2, 0.7])
    spans = _spans(out)
    assert [s[1] for s in spans] == ["a", "fine", "film", "&#33;"]
    assert [s[0] for s in spans] == ["skimviz-skim", "skimviz-read",
                                     "skimviz-read skimviz-unknown", "skimviz-skim"]
    assert out.count(figures_text.READ_STYLE) == 2 and out.count(figures_text.SKIM_STYLE) == 2
    assert "underline dotted" in out
    assert "p&#95;skim = 0.90" in out  # the tooltip carries p_skim (escaped)
    assert "\n\n" not in out  # one HTML block for Markdown


def test_token_html_escapes_user_text():
    tokens = textdata.tokenize('<script>alert("x")</script> $x$ :smile: **b** [a](b)')
    out = figures_text.token_html(tokens, [0] * len(tokens))
    assert "<script" not in out and "</script" not in out
    assert "&lt;" in out
    for ch in "$:*[]()":  # nothing Markdown could act on survives, except ( )
        if ch not in "()":
            assert ch not in re.sub(r"<[^>]*>", "", out), ch
    assert figures_text.escape_text('<b a="x">') == "&lt;b a=&quot;x&quot;&gt;"
    with pytest.raises(ValueError):
        figures_text.token_html(["a", "b"], [0])


@pytest.mark.parametrize("text", ["they're", "don't <b>", "it's $5 & #1 :smile: 100% [a](b) ~x~ {y}",
                                  "\\'\"\\"])
def test_escaped_text_reads_back_as_typed(text):
    """The browser shows what was typed: the escaped text unescapes to it (apostrophes were once
    shown as "&#x27;", html.escape's entity having its "#" escaped again)."""
    out = figures_text.escape_text(text)
    assert html.unescape(out) == text
    for ch in "<>\"'$:*_`[]\\~|{}!":
        assert ch not in re.sub(r"&#?\w+;", "", out), ch


def test_token_rows_and_trace_json():
    analysis = {"tokens": ["great", ",", "zork"], "skim": [0, 1, 0], "known": [True, True, False],
                "p_skim": [0.1, 0.8, 0.3], "label": 1, "probability": 0.9, "flop_r": 1.5}
    rows = figures_text.token_rows(analysis)
    assert [r["decision"] for r in rows] == ["read", "skimmed", "read"]
    parsed = list(csv.DictReader(io.StringIO(common.to_csv(rows))))
    assert parsed[2] == {"index": "2", "token": "zork", "decision": "read", "p_skim": "0.3",
                         "known": "0"}
    j = json.loads(figures_text.trace_json(analysis, {"model": "m", "theta": 0.4}))
    assert j["model"] == "m" and j["skim"] == [0, 1, 0] and j["label"] == 1


# --- accuracy vs Flop-R ---------------------------------------------------------------------
def test_sweep_point_exact_interpolated_nearest():
    assert figures_text.sweep_point([], 0.5) is None
    m = figures_text.sweep_point(SWEEP, 0.5)
    assert m["how"] == "exact" and m["flop_r"] == 1.8
    m = figures_text.sweep_point(SWEEP, 0.35)
    assert m["how"] == "interpolated"
    assert m["flop_r"] == pytest.approx(2.4) and m["accuracy"] == pytest.approx(0.75)
    m = figures_text.sweep_point(SWEEP, 0.95)
    assert m["how"] == "nearest" and m["flop_r"] == 1.1


def test_accuracy_flop_r_figure_data():
    paper = {"sst2": {"lstm": {"accuracy": 0.864},
                      "skim_d10": {"accuracy": 0.858, "skim_rate": 0.6, "flop_r": 2.5}}}
    fig = figures_text.accuracy_flop_r_figure(SWEEP, 0.35, text_flop_r=2.2, paper=paper,
                                              dataset="sst2")
    sweep, star, line, pap = fig.data
    assert list(sweep.x) == [3.0, 1.8, 1.1] and list(sweep.y) == [0.70, 0.80, 0.82]
    assert star.x[0] == pytest.approx(2.4) and "current θ = 0.35 (interpolated)" in star.name
    assert list(line.x) == [2.2, 2.2] and "Flop-R 2.20" in line.name
    assert sorted(pap.x) == [1.0, 2.5]
    assert "Flop-R" in fig.layout.xaxis.title.text
    # the card's own form: the points of its dataset only
    fig = figures_text.accuracy_flop_r_figure(SWEEP, 0.5, paper=paper["sst2"], dataset="sst2")
    assert sorted(fig.data[-1].x) == [1.0, 2.5] and "paper" in fig.data[-1].name
    assert len(figures_text.accuracy_flop_r_figure(SWEEP, 0.5, paper=None).data) == 2
    empty = figures_text.accuracy_flop_r_figure([], 0.5)
    assert len(empty.data) == 0 and "no θ sweep" in empty.layout.annotations[0].text


def test_speedup_skim_figure_data():
    rows = [{"threshold": 0.2, "skim_rate": 0.9, "flop_r": 4.0, "speedup_vs_dense": 1.5,
             "speedup_vs_all_read": 2.5},
            {"threshold": 0.8, "skim_rate": 0.1, "flop_r": 1.1, "speedup_vs_dense": 0.5,
             "speedup_vs_all_read": 1.05}]
    fig = figures_text.speedup_skim_figure(rows)
    bound, dense, all_read, one = fig.data
    assert list(bound.x) == [0.1, 0.9] and list(bound.y) == [1.1, 4.0]  # sorted by skim rate
    assert list(dense.y) == [0.5, 1.5] and list(all_read.y) == [1.05, 2.5]
    assert list(one.y) == [1, 1]
    assert "bound" in bound.name


# --- skim_speed -------------------------------------------------------------------------------
def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    vocab = textdata.Vocab.build([textdata.tokenize("a fine film with a dull ending , really")])
    model = TextClassifier(len(vocab), 8, 16, 4, 2, skim=True).eval()
    return model, vocab


def test_speedup_vs_skim_rows():
    model, vocab = _tiny()
    ids = skim_speed.encode_texts(vocab, ["a fine film", "", "a dull ending , really fine"])
    assert len(ids) == 2  # the empty text is dropped
    dense = skim_speed.dense_like(model)
    assert dense.skim is False and dense.config["hidden_size"] == 16
    calls = []
    res = skim_speed.speedup_vs_skim(model, dense, ids, thresholds=(0.01, 0.99), repeats=3,
                                     max_seconds=20, progress=lambda f, m: calls.append(f))
    rows = res["rows"]
    assert res["complete"] and len(rows) == 2 and res["tokens"] == 9
    by_t = {r["threshold"]: r for r in rows}
    assert by_t[0.01]["skim_rate"] == 1.0 and by_t[0.99]["skim_rate"] == 0.0
    assert by_t[0.01]["flop_r"] > 1.0 > by_t[0.99]["flop_r"]  # reading all costs the decision too
    for r in rows:
        assert set(skim_speed.ROW_KEYS) <= set(r)
        assert r["speedup_vs_dense"] == pytest.approx(r["dense_ms"] / r["skim_ms"])
        assert r["speedup_vs_all_read"] == pytest.approx(r["all_read_ms"] / r["skim_ms"])
    assert rows[0]["skim_rate"] <= rows[1]["skim_rate"]
    assert calls[0] == 0 and calls[-1] == 1.0
    # the caller's model is untouched
    assert model.rnn.skim_threshold == 0.5 and model.rnn.force is None


def test_speedup_vs_skim_stops_and_refuses():
    model, vocab = _tiny()
    ids = skim_speed.encode_texts(vocab, ["a fine film"])
    dense = skim_speed.dense_like(model)
    res = skim_speed.speedup_vs_skim(model, dense, ids, thresholds=(0.3, 0.6), repeats=1,
                                     progress=lambda f, m: f > 0.3)  # stop at the 1st threshold
    assert not res["complete"] and res["rows"] == []
    with pytest.raises(skim_speed.SpeedError):
        skim_speed.speedup_vs_skim(dense, dense, ids)
    with pytest.raises(skim_speed.SpeedError):
        skim_speed.speedup_vs_skim(model, dense, [[]])
    with pytest.raises(skim_speed.SpeedError):
        skim_speed.speedup_vs_skim(model, dense, ids, thresholds=(1.5,))


def test_latency_pair():
    model, vocab = _tiny()
    out = skim_speed.latency_pair(model, skim_speed.dense_like(model), [2, 3, 4], repeats=3)
    assert set(out) == {"skim", "dense"}
    assert out["skim"]["median_ms"] > 0 and out["dense"]["repeats"] >= 3
    with pytest.raises(skim_speed.SpeedError):
        skim_speed.latency_pair(model, model, [])


# --- URL state ----------------------------------------------------------------------------------
def test_parse_skim_and_encode_skim():
    state, notices = urlstate.parse_skim({"model": "skim-lstm-sst2", "theta": "0.333",
                                          "text": "<b>hi</b>"}, ["skim-lstm-sst2"])
    assert state == {"model": "skim-lstm-sst2", "theta": 0.33, "text": "<b>hi</b>"}
    assert notices == []
    state, notices = urlstate.parse_skim({"model": "other", "theta": "2",
                                          "text": "<script>" + "x" * 600}, ["skim-lstm-sst2"])
    assert state == {"model": None, "theta": None, "text": None} and len(notices) == 3
    assert not any("<script" in n for n in notices)
    q = urlstate.encode_skim({"model": "m", "theta": 0.4, "text": "a & b", "present": True})
    assert q == {"model": "m", "theta": "0.40", "text": "a & b", "present": "1"}
    assert "text" not in urlstate.encode_skim({"model": "m", "text": "y" * 501})
    # a round trip keeps the view
    back, _ = urlstate.parse_skim(q, ["m"])
    assert back == {"model": "m", "theta": 0.4, "text": "a & b"}
