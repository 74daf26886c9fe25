"""AppTest of the "Speed lab — SRU and skipping" page: renders, runs a tiny benchmark, and turns
bad inputs into messages. Smallest sizes only (a 2-core machine shared with trainings)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "pages/speed_lab.py"
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


def test_page_renders():
    at = _page()
    assert at.title[0].value.startswith("Speed lab")
    text = " ".join(m.value for m in at.markdown)
    assert "FLOPs" in text and "parallel hardware" in text
    backend = " ".join(e.value for e in [*at.success, *at.info])
    assert "SRU backend on the CPU: **cpp**" in backend or "_ext build" in backend
    assert any("Skim-RNN (Skim-LSTM" in c.value for c in at.caption)
    assert "Skim-RNN" in at.multiselect(key="sl_cells").options
    assert at.selectbox(key="sl_device").options[0] == "cpu"
    assert not at.error
    assert not at.button(key="sl_run").disabled


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
    assert len(at.dataframe) == 2  # speed-ups vs nn.LSTM, then the results table
    table = at.dataframe[1].value
    assert len(table) == 3 * 2 + 2  # + the Skip GRU dense reference (p = 1)
    assert set(table["label"]) == {"nn.LSTM", "SRU", "Skip GRU"}
    seq = _chart(at, "sl_fig_seq")
    assert len(seq["data"]) == 4 and all(len(t["x"]) == 2 for t in seq["data"])
    assert seq["layout"]["xaxis"]["type"] == "log"
    speed = _chart(at, "sl_fig_speedup")
    assert len(speed["data"]) == 1 + 2 and "1/p" in speed["data"][0]["name"]  # bound + per T
    assert [len(t["x"]) for t in speed["data"][1:]] == [2, 2]  # p = 1/2 and the dense run
    assert len(at.dataframe[0].value) == 2 * 3  # SRU and 2 Skip GRU runs vs LSTM
    assert at.get("download_button")


def test_tiny_skim_benchmark():
    """Skim-RNN at read rate ½ plus its read-every-token run: the Flop-R vs measured table."""
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
    assert len(skim) == 1 and float(skim["update_rate"].iloc[0]) == 0.5
    assert float(skim["theory_speedup_flops"].iloc[0]) > 1.5
    table = at.dataframe[2].value
    assert list(table["label"]) == ["nn.LSTM", "Skim-RNN", "Skim-RNN"]
    assert sorted(table["update_rate"]) == [0.5, 1.0, 1.0]


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
    """The toggle hides the settings (a "controls" container), keeps "Run benchmark", shows the
    page's slides (skimviz.lessons) and keeps present=1 in the URL; a slide sets the rate p."""
    at = _page()
    assert not any("Slide" in c.value for c in at.caption)
    assert at.select_slider(key="sl_rate").value == 0.25
    at.toggle(key="present_toggle_speed-lab").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    assert any("<style>" in m.value and "st-key-controls" in m.value for m in at.markdown)
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
    at.switch_page(PAGE)
    at.query_params["present"] = "1"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="present_toggle_speed-lab").value is True
    assert any("Slide 1 of 4" in c.value for c in at.caption)
