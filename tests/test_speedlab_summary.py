"""skimviz.bench.speedlab_summary: what the Speed lab page says about a benchmark — each cell against
nn.LSTM, sentences generated from the numbers, plain tables — and its main chart. Constructed rows
only (no timing)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from skimviz.bench import speedlab_summary as S
from skimviz.viz import speed

RAW_KEYS = {"theory_speedup_flops", "measured_speedup", "gflops_per_s", "p10_ms", "seq_len",
            "update_rate", "requested_update_rate", "backend"}


def _row(cell, T, B, ms, flops, p=None, backend="", mode="inference"):
    labels = {"lstm": "nn.LSTM", "gru": "nn.GRU", "sru": "SRU", "skip-gru": "Skip GRU",
              "skim-rnn": "Skim-RNN"}
    return {"cell": cell, "label": labels[cell], "backend": backend, "device": "cpu",
            "seq_len": T, "batch": B, "hidden": 8, "input_size": 1, "mode": mode, "ms": ms,
            "p10_ms": ms, "p90_ms": ms, "repeats": 5, "flops": flops,
            "gflops_per_s": flops / (ms / 1e3) / 1e9, "update_rate": 1.0 if p is None else p,
            "requested_update_rate": p, "status": "ok"}


ROWS = [_row("lstm", 100, 1, 10.0, 1e6), _row("lstm", 10, 1, 1.0, 1e5),
        _row("lstm", 100, 4, 12.0, 4e6), _row("lstm", 10, 4, 3.0, 4e5),
        _row("sru", 100, 1, 0.5, 5e4, backend="cpp"),
        _row("gru", 100, 1, 20.0, 8e5),
        _row("skip-gru", 100, 1, 4.0, 3e5, p=0.25, backend="cpp"),
        _row("skip-gru", 100, 1, 8.0, 1e6, p=1.0, backend="cpp")]


def test_fraction_and_names():
    assert [S.fraction(p) for p in (1.0, 0.5, 0.25, 0.1, 0.3)] == ["1", "1/2", "1/4", "1/10",
                                                                  "0.3"]
    assert S.name(ROWS[6]) == "Skip GRU, p = 1/4" and S.name(ROWS[0]) == "nn.LSTM"


def test_headline_each_cell_against_lstm_at_the_longest_batch_1_point():
    e = S.headline(ROWS)
    assert [x["name"] for x in e] == ["nn.LSTM", "nn.GRU", "SRU", "Skip GRU, p = 1",
                                      "Skip GRU, p = 1/4"]
    assert all((x["seq_len"], x["batch"], x["baseline"]) == (100, 1, "nn.LSTM") for x in e)
    by = {x["name"]: x for x in e}
    assert by["nn.LSTM"]["time_ratio"] == by["nn.LSTM"]["flop_ratio"] == 1.0
    assert by["SRU"]["time_ratio"] == pytest.approx(20.0) and by["SRU"]["flop_ratio"] == 20.0
    assert by["nn.GRU"]["time_ratio"] == pytest.approx(0.5)
    # without nn.LSTM the first measured cell is the baseline
    e = S.headline([r for r in ROWS if r["cell"] != "lstm"])
    assert e[0]["name"] == e[0]["baseline"] == "SRU"
    assert S.headline([]) == []


def test_sentences_follow_the_numbers():
    by = {x["name"]: x for x in S.headline(ROWS)}
    sru = S.cell_sentence(by["SRU"])
    assert sru.startswith("**SRU** needs 20.0× fewer FLOPs than nn.LSTM and runs 20.0× faster")
    assert "follows the FLOPs" in sru
    gru = S.cell_sentence(by["nn.GRU"])
    assert "1.2× fewer FLOPs" in gru and "2.0× slower" in gru and "did not buy time" in gru
    skip = S.cell_sentence(by["Skip GRU, p = 1/4"])  # 3.3× fewer FLOPs, 2.5× faster
    assert "3.3× fewer FLOPs" in skip and "2.5× faster" in skip and "less than the FLOPs" in skip
    fast = S.cell_sentence({**by["SRU"], "time_ratio": 60.0})
    assert "even more than the arithmetic" in fast
    same = S.cell_sentence({**by["SRU"], "time_ratio": 1.0, "flop_ratio": 1.0})
    assert "about the same FLOPs" in same and "about the same time" in same
    metrics = S.summary_metrics(S.headline(ROWS))
    assert [m["value"] for m in metrics] == ["2.0× slower", "20.0× faster", "1.2× faster",
                                            "2.5× faster"]
    assert all(len(m["value"]) <= 14 and len(m["delta"]) <= 20 for m in metrics)


def test_chart_sentences():
    g = S.growth_sentence(ROWS, "seq_len")
    assert g.startswith("From 10 to 100 steps (10× the work)") and "nn.LSTM 10.0×" in g
    b = S.growth_sentence(ROWS, "batch")  # the chart's slice: the shortest sequence, 10 steps
    assert b.startswith("From 1 to 4 sequences per batch (4× the work)") and "nn.LSTM 3.0×" in b
    assert "Only one length" in S.growth_sentence(ROWS[3:], "seq_len")
    assert S.gflops_sentence(ROWS).startswith(
        "nn.LSTM did the most arithmetic per second (0.33 GFLOP/s at 100 steps, batch 4); "
        "nn.GRU the least (0.04 GFLOP/s at 100 steps, batch 1)")
    pts = speed.skip_speedup_points(ROWS)
    s = S.skip_sentence(pts, "inference")
    assert "ran 2.0× faster than at p = 1; the FLOPs alone promise 4.0×" in s
    assert "noise" not in s and "train mode" in S.skip_sentence(pts, "train")
    noisy = [{**p, "speedup": 6.0} for p in pts]
    assert "timing noise" in S.skip_sentence(noisy, "inference")
    skim = [_row("skim-rnn", 10, 1, 1.0, 1e5, p=0.5, backend="cpp"),
            _row("skim-rnn", 10, 1, 1.5, 2e5, p=1.0, backend="cpp")]
    assert "needs 2.0× fewer FLOPs than reading them all and ran 1.5× faster" in \
        S.skim_sentence(skim)
    assert S.skim_sentence(ROWS) == "" and S.skip_sentence([], "inference") == ""


def test_tables_have_plain_column_names():
    for table in (S.plain_rows(ROWS), S.plain_speedups(ROWS),
                  S.plain_skim([_row("skim-rnn", 10, 1, 1.0, 1e5, p=0.5),
                                _row("skim-rnn", 10, 1, 1.5, 2e5, p=1.0)])):
        assert table and not RAW_KEYS & set(table[0])
    rows = S.plain_rows(ROWS)
    assert rows[4]["runs as"] == "C++ loop" and rows[0]["runs as"] == "PyTorch kernel"
    assert rows[6]["cell"] == "Skip GRU, p = 1/4"
    assert S.plain_speedups(ROWS)[0]["faster than nn.LSTM (×)"] == pytest.approx(20.0)


def test_backends_sentence_has_no_commands():
    s = S.backends_sentence("python", "cpp", "cpp")
    assert "the Skip GRU and the Skim-RNN run as a C++ loop" in s
    assert "SRU as a slower PyTorch loop" in s and "python -m" not in s and "build" not in s
    assert "SRU, the Skip GRU and the Skim-RNN run as a C++ loop" in \
        S.backends_sentence("cpp", "cpp", "cpp")


def test_dumbbell_figure():
    e = S.headline(ROWS)
    fig = speed.speed_dumbbell_figure(e)
    flops, time_ = [t for t in fig.data if t.name]
    assert flops.name == "FLOPs: × fewer than nn.LSTM"
    assert time_.name == "time: × faster than nn.LSTM"
    assert list(time_.x) == pytest.approx([x["time_ratio"] for x in e])
    assert time_.text[0] == "" and time_.text[2] == "20×"  # the baseline row is not labelled
    assert fig.layout.xaxis.type == "log" and fig.layout.legend.orientation == "h"
    assert list(fig.layout.yaxis.categoryarray)[-1] == "nn.LSTM"  # the baseline on top
    assert "nothing measured" in speed.speed_dumbbell_figure([]).layout.annotations[0].text


def test_module_does_not_import_streamlit():
    code = "import sys, skimviz.bench.speedlab_summary; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
