"""AppTest of the "Speed lab — SRU and skipping" page: opens on a quick look (each cell against
nn.LSTM, FLOPs beside time, sentences from the numbers), runs a tiny benchmark, shows tables with
plain column names only, and turns bad inputs into messages. Smallest sizes only (a 2-core machine
shared with trainings)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "views/speed_lab.py"
TIMEOUT = 120


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _chart(at: AppTest, key: str) -> dict:
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


#: The benchmark rows' own keys: never a column a student reads.
RAW = {"theory_speedup_flops", "measured_speedup", "measured_over_theory", "gflops_per_s",
       "p10_ms", "p90_ms", "seq_len", "update_rate", "requested_update_rate", "backend", "label",
       "ms", "flops", "hidden", "repeats"}


def _no_raw_names(at: AppTest) -> None:
    for d in at.dataframe:
        assert not RAW & set(d.value.columns), list(d.value.columns)
    text = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert not any(k in text for k in RAW if "_" in k), text


def _main(at: AppTest) -> None:
    """The main chart, the metrics and the sentences agree: one sentence per cell, each with
    the speed-up its metric shows."""
    spec = _chart(at, "sl_fig_main")
    named = [t for t in spec["data"] if t.get("name")]
    assert len(named) == 2 and "nn.LSTM" in named[1]["name"]
    cells = named[1]["y"][1:]
    metrics = {m.label: m.value for m in at.metric}
    sentences = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(sentences) == len(cells) and len(metrics) == min(4, len(cells))
    for label, value in metrics.items():
        assert value.endswith(("faster", "slower", "about the same")), value
        sentence = next(x for x in sentences if x.startswith(f"**{label}**"))
        assert value in sentence, (value, sentence)


def test_page_renders():
    """It opens on the quick look: four cells against nn.LSTM at 784 steps, batch 1."""
    at = _page()
    assert at.title[0].value.startswith("Speed lab")
    text = " ".join(m.value for m in at.markdown)
    assert "FLOPs" in text and "SRU" in text and "<abbr" in text and "Try:" in text
    captions = " ".join(c.value for c in at.caption)
    assert "Quick look" in captions and "784 steps, batch 1" in captions
    assert "On this server SRU" in captions and "python -m" not in captions
    assert "Skim-RNN" in at.multiselect(key="sl_cells").options
    assert at.selectbox(key="sl_device").options[0] == "cpu"
    assert not at.error
    assert not at.button(key="sl_run").disabled
    _main(at)
    names = _chart(at, "sl_fig_main")["data"][-1]["y"]
    assert names == ["nn.LSTM", "nn.GRU", "SRU", "Skip GRU, p = 1", "Skip GRU, p = 1/4"]
    _no_raw_names(at)


def test_tiny_benchmark_produces_chart_rows():
    at = _page()
    at.multiselect(key="sl_cells").set_value(["lstm", "sru", "skip-gru"])
    at.text_input(key="sl_seq").set_value("5, 10")
    at.text_input(key="sl_batch").set_value("1")
    at.number_input(key="sl_hidden").set_value(8)
    at.select_slider(key="sl_rate").set_value(0.5)
    at.run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="sl_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("Your benchmark: 10 steps, batch 1, hidden size 8")
               for c in at.caption)
    assert len(at.dataframe) == 2  # speed-ups vs nn.LSTM, then the results table
    table = at.dataframe[1].value
    assert len(table) == 3 * 2 + 2  # + the Skip GRU's own run at p = 1
    assert set(table["cell"]) == {"nn.LSTM", "SRU", "Skip GRU, p = 1/2", "Skip GRU, p = 1"}
    seq = _chart(at, "sl_fig_seq")
    assert len(seq["data"]) == 4 and all(len(t["x"]) == 2 for t in seq["data"])
    assert seq["layout"]["xaxis"]["type"] == "log"
    assert seq["layout"]["legend"]["orientation"] == "h"
    speed = _chart(at, "sl_fig_speedup")
    assert len(speed["data"]) == 1 + 2 and "1/p" in speed["data"][0]["name"]  # bound + per T
    assert [len(t["x"]) for t in speed["data"][1:]] == [2, 2]  # p = 1/2 and the dense run
    assert len(at.dataframe[0].value) == 2 * 3  # SRU and 2 Skip GRU runs vs LSTM
    assert at.get("download_button")
    _main(at)
    assert any("the FLOPs alone promise 2.0×" in m.value for m in at.markdown)
    _no_raw_names(at)


def test_tiny_skim_benchmark():
    """Skim-RNN at read rate ½ plus its read-every-token run: FLOPs vs measured, in words and in
    a table with plain column names."""
    at = _page()
    at.multiselect(key="sl_cells").set_value(["lstm", "skim-rnn"])
    at.text_input(key="sl_seq").set_value("10")
    at.text_input(key="sl_batch").set_value("1")
    at.number_input(key="sl_hidden").set_value(20)
    at.select_slider(key="sl_rate").set_value(0.5)
    at.run()
    at.button(key="sl_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.dataframe) == 3  # Skim-RNN vs its own dense run, vs nn.LSTM, all rows
    skim = at.dataframe[0].value
    assert len(skim) == 1 and float(skim["share read by the big cell"].iloc[0]) == 0.5
    assert float(skim["fewer FLOPs (×)"].iloc[0]) > 1.5
    assert any(m.value.startswith("At 10 steps, batch 1, the Skim-RNN") for m in at.markdown)
    table = at.dataframe[2].value
    assert list(table["cell"]) == ["nn.LSTM", "Skim-RNN, p = 1/2", "Skim-RNN, p = 1"]
    assert sorted(table["share of steps computed"]) == [0.5, 1.0, 1.0]
    _no_raw_names(at)


@pytest.mark.parametrize("field,value,message", [
    ("sl_seq", "10, abc", "not a whole number"),
    ("sl_batch", "0", "outside the allowed range"),
    ("sl_seq", "5000", "outside the allowed range"),
])
def test_bad_input_gives_message(field, value, message):
    at = _page()
    at.text_input(key=field).set_value(value).run()
    assert not at.exception
    errors = " | ".join(e.value for e in at.error)
    assert message in errors and "Cannot run this benchmark" in errors
    assert at.button(key="sl_run").disabled


def test_bad_hidden_and_no_cells():
    at = _page()
    at.number_input(key="sl_hidden").set_value(4096).run()
    assert "hidden size" in " | ".join(e.value for e in at.error)
    at.number_input(key="sl_hidden").set_value(64)
    at.multiselect(key="sl_cells").set_value([]).run()
    assert "at least one cell" in " | ".join(e.value for e in at.error)
    assert not at.exception


def test_presentation_mode_steps_through_slides():
    """The toggle shows the page's slides (ui.lessons) beside the main chart, keeps every
    control and present=1 in the URL; a slide sets the rate p."""
    at = _page()
    assert not any("Slide" in c.value for c in at.caption)
    assert at.select_slider(key="sl_rate").value == 0.25
    at.toggle(key="present_toggle_speed-lab").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    assert any("<style>" in m.value and "1.25rem" in m.value for m in at.markdown)
    assert at.multiselect(key="sl_cells") and at.text_input(key="sl_seq")  # controls stay
    assert at.query_params.get("present") in ("1", ["1"])
    assert at.button(key="present_prev_speed-lab").disabled
    assert any(s.value == "FLOPs are not time" for s in at.subheader)
    for n in (2, 3, 4):
        at.button(key="present_next_speed-lab").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(f"Slide {n} of 4" in c.value for c in at.caption)
    assert at.button(key="present_next_speed-lab").disabled
    assert at.select_slider(key="sl_rate").value == 0.1  # the last slide's p = 1/10
    assert not at.button(key="sl_run").disabled
    assert not any("default value" in w.value for w in at.warning)
    at.toggle(key="present_toggle_speed-lab").set_value(False).run()
    assert not any("Slide" in c.value for c in at.caption)
    assert "present" not in at.query_params


def test_presentation_mode_from_a_link():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["present"] = "1"   # the link's parameters, from the session's first run
    at.run()  # pages in views/ are known to AppTest after one run
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="present_toggle_speed-lab").value is True
    assert any("Slide 1 of 4" in c.value for c in at.caption)
