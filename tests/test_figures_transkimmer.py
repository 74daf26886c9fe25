"""The Transkimmer page's pure figure builders (skimviz.viz.layers), tested on data."""
from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest

from skimviz.viz import common
from skimviz.viz import layers as ft


def _words():
    """Four words of a 4-layer model: skimmed before layer 1, before layer 3, kept, and a
    WordPiece word whose pieces left at different layers."""
    return [{"word": "the", "prune_layer": 0, "pieces": ["the"], "piece_layers": [0]},
            {"word": "film", "prune_layer": 2, "pieces": ["film"], "piece_layers": [2]},
            {"word": "great", "prune_layer": 4, "pieces": ["great"], "piece_layers": [4]},
            {"word": "unbelievably", "prune_layer": 3, "pieces": ["un", "##believ", "##ably"],
             "piece_layers": [1, 3, 2]}]


def _spans(html: str):
    return re.findall(r'<span class="(skimviz-tk[a-zA-Z0-9 -]*)" style="([^"]*)" '
                      r'title="([^"]*)">(.*?)</span>', html)


def test_layer_colors_distinct_and_black_for_kept():
    for L in (1, 4, 6, 12):
        cs = ft.layer_colors(L)
        assert len(cs) == L and len(set(cs)) == L
        assert all(c.startswith("rgb(") for c in cs)
        assert ft.KEPT_COLOR not in cs
    assert ft.color_of(4, 4) == ft.KEPT_COLOR == "#000000"
    assert ft.color_of(9, 4) == ft.KEPT_COLOR
    assert ft.color_of(0, 4) == ft.layer_colors(4)[0]
    assert ft.color_of(3, 4) == ft.layer_colors(4)[3]
    with pytest.raises(ValueError):
        ft.layer_colors(0)


def test_describe_layer_counts_from_one():
    assert ft.describe_layer(0, 4) == "skimmed before layer 1 (went through 0 of 4 layers)"
    assert ft.describe_layer(2, 4) == "skimmed before layer 3 (went through 2 of 4 layers)"
    assert ft.describe_layer(4, 4) == "kept to the end (all 4 layers)"


def test_token_html_colours_and_classes():
    out = ft.token_html(_words(), 4)
    assert "\n\n" not in out and out.startswith('<div class="skimviz-tk-tokens"')
    spans = _spans(out)
    assert [s[3] for s in spans] == ["the", "film", "great", "unbelievably"]
    assert [s[0] for s in spans] == ["skimviz-tk skimviz-tk-L1", "skimviz-tk skimviz-tk-L3",
                                     "skimviz-tk skimviz-tk-kept", "skimviz-tk skimviz-tk-L4"]
    cs = ft.layer_colors(4)
    assert f"color: {cs[0]};" in spans[0][1] and f"color: {cs[2]};" in spans[1][1]
    assert "color: #000000;" in spans[2][1] and "font-weight: 700" in spans[2][1]
    assert "kept to the end" in spans[2][2]
    # a WordPiece word: coloured by its latest piece, every piece's layer in the hover
    tip = html.unescape(spans[3][2])
    assert "pieces: un (before layer 2), ##believ (before layer 4)" in tip
    assert "font-size: 1.6rem" in ft.token_html(_words(), 4, font_size=1.6)


def test_token_html_marks_unknown_words():
    out = ft.token_html(_words(), 4, known=[True, False, True, True])
    spans = _spans(out)
    assert "skimviz-unknown" in spans[1][0] and "not in the vocabulary" in spans[1][2]
    assert sum("skimviz-unknown" in s[0] for s in spans) == 1
    with pytest.raises(ValueError):
        ft.token_html(_words(), 4, known=[True])


def test_token_html_escapes_user_text():
    words = [{"word": '<script>alert("x")</script>', "prune_layer": 1, "pieces": ["<"],
              "piece_layers": [1]},
             {"word": "$x$ *b* [l](u)", "prune_layer": 4, "pieces": ["$"], "piece_layers": [4]}]
    out = ft.token_html(words, 4)
    assert "<script" not in out and "&lt;script&gt;" in out
    assert "$" not in out and "*" not in out and "[" not in out
    assert "&quot;" in out or "&#x27;" in out or "&#34;" in out


def test_legend_has_a_swatch_per_layer_and_kept():
    out = ft.legend_html(4)
    assert out.count("layer ") >= 4
    for k in range(1, 5):
        assert f">layer {k}</span>" in out
    assert ">kept</span>" in out and "background: #000000" in out
    for c in ft.layer_colors(4):
        assert f"background: {c}" in out
    assert "dotted underline" not in out
    assert "dotted underline" in ft.legend_html(4, show_unknown=True)
    assert "\n\n" not in out


def test_word_rows_and_csv():
    res = {"layers": 4, "words": _words()}
    rows = ft.word_rows(res, known=[True, True, False, True])
    assert [r["layers_run"] for r in rows] == [0, 2, 4, 3]
    assert [r["kept_to_end"] for r in rows] == [0, 0, 1, 0]
    assert rows[3]["pieces"] == "un ##believ ##ably"
    assert [r["known"] for r in rows] == [1, 1, 0, 1]
    back = list(csv.DictReader(io.StringIO(common.to_csv(rows))))
    assert [r["word"] for r in back] == ["the", "film", "great", "unbelievably"]
    assert "known" not in ft.word_rows(res)[0]


def test_trace_json_keeps_meta_first():
    res = {"label": 1, "probability": 0.9, "layers": 4, "flops": 10.0, "dense_flops": 20.0,
           "flops_reduction": 2.0, "tokens_kept_per_layer": [5, 3, 2, 1],
           "tokens": ["[CLS]", "a"], "prune_layer": [4, 1], "words": _words()[:1],
           "unrelated": 1}
    d = json.loads(ft.trace_json(res, {"model": "m", "text": "<b>é</b>"}))
    assert list(d)[:2] == ["model", "text"] and d["text"] == "<b>é</b>"
    assert d["flops_reduction"] == 2.0 and "unrelated" not in d
    assert d["words"][0]["word"] == "the"


def test_remaining_tokens_figure():
    fig = ft.remaining_tokens_figure([10, 6, 3, 1], 10, [1.0, 0.5, 0.3, 0.2])
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == [1, 2, 3, 4]
    assert list(fig.data[0].y) == pytest.approx([1.0, 0.6, 0.3, 0.1])
    assert [c[0] for c in fig.data[0].customdata] == [10, 6, 3, 1]
    assert list(fig.data[1].y) == [1.0, 0.5, 0.3, 0.2]
    assert fig.data[1].name == "average (dev set)"
    assert len(ft.remaining_tokens_figure([4, 2], 4).data) == 1        # no average on the card
    empty = ft.remaining_tokens_figure([], 0)
    assert not empty.data and "no tokens" in empty.layout.annotations[0].text


def test_lambda_figure_marks_the_shipped_model():
    sweep = [{"lambda": 1.0, "accuracy": 0.78, "flops_reduction": 4.0, "shipped": False},
             {"lambda": 0.1, "accuracy": 0.81, "flops_reduction": 1.6, "shipped": False},
             {"lambda": 0.3, "accuracy": 0.80, "flops_reduction": 3.0, "shipped": True}]
    paper = {"reference": "x", "bert_base": {"accuracy": 0.93, "flops_reduction": 1.0},
             "transkimmer": {"accuracy": 0.923, "flops_reduction": 1.58, "lambda": 0.3}}
    fig = ft.lambda_figure(sweep, None, paper)
    assert [t.name for t in fig.data] == ["λ sweep (validation)", "shipped model (λ = 0.3)",
                                          "the paper (BERT-base, Table 3)"]
    assert list(fig.data[0].customdata) == [0.1, 0.3, 1.0]            # sorted by λ
    assert list(fig.data[1].x) == [3.0] and fig.data[1].marker.symbol == "star"
    assert sorted(fig.data[2].x) == [1.0, 1.58]
    assert sorted(fig.data[2].text) == ["BERT-base", "Transkimmer"]
    assert not fig.layout.annotations
    lo, hi = fig.layout.yaxis.range
    assert lo < 0.78 and hi > 0.93


def test_lambda_figure_second_stage_is_the_star_not_a_curve_point():
    """A shipped model fine-tuned after its λ run (second_stage) is drawn as the star only."""
    sweep = [{"lambda": 0.3, "accuracy": 0.89, "flops_reduction": 1.1, "shipped": False},
             {"lambda": 0.4, "accuracy": 0.87, "flops_reduction": 2.4, "shipped": False},
             {"lambda": 0.4, "accuracy": 0.885, "flops_reduction": 2.4, "shipped": True,
              "second_stage": True}]
    fig = ft.lambda_figure(sweep, None, None)
    assert list(fig.data[0].y) == [0.89, 0.87]
    assert fig.data[1].name == "shipped model (λ = 0.4)" and list(fig.data[1].y) == [0.885]


def test_lambda_figure_empty_sweep_says_not_run():
    shipped = ft.shipped_point({"lambda": 0.3, "metrics": {"dev_accuracy": 0.8,
                                                           "flops_reduction": 2.9}})
    assert shipped == {"lambda": 0.3, "accuracy": 0.8, "flops_reduction": 2.9}
    fig = ft.lambda_figure([], shipped, None)
    assert [t.name for t in fig.data] == ["shipped model (λ = 0.3)"]
    assert "not run" in fig.layout.annotations[0].text
    bare = ft.lambda_figure([], None, None)
    assert not bare.data and "not run" in bare.layout.annotations[0].text
    assert ft.shipped_point({"metrics": {}}) is None
