"""The app's figures are pure functions: test their data, not their pixels."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from skimviz.viz import common, speed, tradeoff
from skimviz.viz import curves as curves_figs
from skimviz.viz import pixels as pixels_figs
from skimviz.viz import signals as signals_figs


def _digit(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 11:17] = rng.integers(128, 256, size=(16, 6))
    return img


def _mask(T: int, every: int = 3) -> np.ndarray:
    u = np.zeros(T)
    u[::every] = 1
    return u


SWEEP = [{"threshold": t, "accuracy": a, "updates": u, "flops": 1.0}
         for t, a, u in ((0.3, 0.97, 500.0), (0.5, 0.96, 390.0), (0.7, 0.93, 250.0),
                         (1.0, 0.80, 120.0))]


# --- used / skipped map --------------------------------------------------------------------------
@pytest.mark.parametrize("side", [28, 14])
def test_used_map_z_is_the_update_mask(side):
    T = side * side
    u = _mask(T)
    fig = pixels_figs.used_skipped_figure(_digit(), u, side, np.linspace(0, 1, T))
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(heat.z), u.reshape(side, side))
    # hover data: step index in scan-line order, the pixel intensity and ũ
    custom = np.asarray(heat.customdata)
    assert custom.shape == (side, side, 3)
    np.testing.assert_array_equal(custom[..., 0], np.arange(T).reshape(side, side))
    np.testing.assert_allclose(custom[..., 2], np.linspace(0, 1, T).reshape(side, side))
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 at the top, like the image


def test_used_red_skipped_blue():
    fig = pixels_figs.used_skipped_figure(_digit(), _mask(784), 28)
    scale = fig.data[0].colorscale
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1
    low = {c for v, c in scale if v <= 0.5 and c != scale[-1][1]}
    assert low == {common.SKIPPED_COLOR}          # z = 0 (skipped) → blue
    assert scale[-1][1] == common.USED_COLOR      # z = 1 (used) → red
    assert scale[0][1] == common.SKIPPED_COLOR
    assert common.USED_COLOR.lower() == "#d62728" and common.SKIPPED_COLOR.lower() == "#1f77b4"
    legend = {t.name: t.marker.color for t in fig.data if isinstance(t, go.Scatter)}
    used = int(_mask(784).sum())
    assert legend == {f"used: {used}": common.USED_COLOR, f"skipped: {784 - used}": common.SKIPPED_COLOR}


def test_used_map_ink_layer_washes_the_background_only():
    img = _digit()
    fig = pixels_figs.used_skipped_figure(img, _mask(784), 28)
    wash = fig.data[1]
    np.testing.assert_allclose(np.asarray(wash.z), 1.0 - img / 255.0)
    assert wash.hoverinfo == "skip"
    assert wash.colorscale[0][1].endswith(",0)")  # ink (z = 0): fully transparent


def test_ink_pools_like_to_sequence():
    from skimviz.data import mnist

    img = _digit(3)
    np.testing.assert_allclose(common.ink(img, 14),
                               mnist.to_sequence(img[None], 14).reshape(14, 14).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(common.ink(img, 28), img / 255.0)


def test_used_map_rejects_bad_input():
    with pytest.raises(ValueError):
        pixels_figs.used_skipped_figure(_digit(), np.ones(100), 28)
    with pytest.raises(ValueError):
        pixels_figs.used_skipped_figure(_digit(), np.full(784, 0.5), 28)
    with pytest.raises(ValueError):
        pixels_figs.used_skipped_figure(np.zeros((10, 10)), np.ones(784), 28)


def test_update_prob_map():
    p = np.linspace(0, 1, 196)
    fig = pixels_figs.update_prob_figure(p, 14, theta=0.7)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), p.reshape(14, 14))
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)
    assert "0.70" in fig.data[0].colorbar.title.text


def test_digit_figure():
    img = _digit()
    fig = pixels_figs.digit_figure(img)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), img / 255.0)


def test_probabilities_figure_highlights_prediction():
    p = np.full(10, 0.02)
    p[7] = 0.82
    fig = pixels_figs.probabilities_figure(p, true_label=7)
    bar = fig.data[0]
    assert list(bar.x) == [str(i) for i in range(10)]
    np.testing.assert_allclose(np.asarray(bar.y), p)
    colours = list(bar.marker.color)
    assert colours[7] == common.PREDICTED_COLOR and colours.count(common.PREDICTED_COLOR) == 1
    assert [a.text for a in fig.layout.annotations] == ["true"]
    with pytest.raises(ValueError):
        pixels_figs.probabilities_figure([0.5, 0.5])


# --- θ sweep -----------------------------------------------------------------------------------
def test_sweep_marker_exact_interpolated_nearest():
    m = tradeoff.sweep_marker(SWEEP, 0.5)
    assert m["how"] == "exact" and m["accuracy"] == 0.96 and m["updates"] == 390.0
    m = tradeoff.sweep_marker(SWEEP, 0.6)
    assert m["how"] == "interpolated"
    assert m["accuracy"] == pytest.approx(0.945) and m["updates"] == pytest.approx(320.0)
    m = tradeoff.sweep_marker(SWEEP, 0.85)  # between 0.7 and 1.0: 50 %
    assert m["updates"] == pytest.approx(185.0)
    m = tradeoff.sweep_marker(SWEEP, 0.1)
    assert m["how"] == "nearest" and m["updates"] == 500.0 and "0.3" in m["note"]
    assert tradeoff.sweep_marker(list(reversed(SWEEP)), 0.6)["updates"] == pytest.approx(320.0)
    assert tradeoff.sweep_marker([], 0.5) is None


def test_sweep_figure_marks_current_theta():
    fig = tradeoff.threshold_sweep_figure(SWEEP, 0.6, seq_len=784)
    line, star = fig.data
    assert list(line.x) == [500.0, 390.0, 250.0, 120.0]
    assert list(line.y) == [0.97, 0.96, 0.93, 0.80]
    assert list(line.text) == ["0.3", "0.5", "0.7", "1"]
    assert star.x[0] == pytest.approx(320.0) and star.y[0] == pytest.approx(0.945)
    assert "0.60" in star.name and "interpolated" in star.name
    assert "784" in fig.layout.xaxis.title.text


def test_sweep_figure_without_sweep():
    fig = tradeoff.threshold_sweep_figure([], 0.5)
    assert len(fig.data) == 0
    assert "no θ sweep" in fig.layout.annotations[0].text


# --- training curves ----------------------------------------------------------------------------
def test_training_curves():
    hist = [{"step": i + 1, "epoch": 0, "loss": 2.0 - i / 10, "accuracy": i / 20,
             "update_rate": 1.0 - i / 40, "task_loss": 1.0} for i in range(12)]
    fig = curves_figs.training_curves_figure(hist, smooth=4)
    assert len(fig.data) == 6  # raw + smoothed for loss, accuracy, update rate
    for k, key in enumerate(("loss", "accuracy", "update_rate")):
        raw, smooth = fig.data[2 * k], fig.data[2 * k + 1]
        assert list(raw.x) == list(range(1, 13))
        assert list(raw.y) == [r[key] for r in hist]
        assert list(smooth.y) == pytest.approx(common.moving_average(raw.y, 4))
    assert curves_figs.training_curves_figure([]).data[0].x in ((), None, [])


def test_moving_average():
    assert common.moving_average([1, 2, 3, 4], 2) == [1.0, 1.5, 2.5, 3.5]
    assert common.moving_average([], 3) == []


# --- counters and the live split -----------------------------------------------------------------
def test_counters():
    pred = {"updates": 392, "steps": 784, "update_rate": 0.5, "flops": 1.0e6,
            "dense_flops": 2.0e6}
    c = pixels_figs.counters(pred)
    assert c["updates"] == "392 / 784"
    assert c["update_rate"] == "50% of steps"
    assert c["flops_ratio"] == "2.00× fewer"
    assert c["flops"] == "1.00 MFLOPs vs 2.00 MFLOPs dense"
    assert pixels_figs.counters({**pred, "flops": 4.0e6})["flops_ratio"] == "2.00× more"
    with pytest.raises(ValueError):
        common.flops_ratio(0, 1)


def test_live_split_is_stratified():
    y = np.repeat(np.arange(10), 500)  # the bundled digits are sorted by class
    tr, va = pixels_figs.live_split(y, 100)
    assert len(tr) == 4000 and len(va) == 1000
    assert set(tr).isdisjoint(va)
    assert np.bincount(y[va]).tolist() == [100] * 10
    assert np.bincount(y[tr]).tolist() == [400] * 10
    with pytest.raises(ValueError):
        pixels_figs.live_split(np.arange(10), 1)


def test_figures_serialise():
    """Every figure goes to the browser as JSON; nothing may fail to encode."""
    img = _digit()
    for fig in (pixels_figs.used_skipped_figure(img, _mask(784), 28, np.zeros(784)),
                pixels_figs.update_prob_figure(np.zeros(196), 14), pixels_figs.digit_figure(img),
                pixels_figs.probabilities_figure(np.full(10, 0.1)), tradeoff.threshold_sweep_figure(SWEEP, 0.5),
                curves_figs.training_curves_figure([{"step": 1, "loss": 1, "accuracy": 0,
                                           "update_rate": 1}])):
        json.loads(fig.to_json())


def test_figure_modules_do_not_import_streamlit():
    import ast
    import inspect

    from skimviz.viz import layers, playback, tokens
    for mod in (common, pixels_figs, curves_figs, signals_figs, speed, tradeoff, tokens, layers,
                playback):
        tree = ast.parse(inspect.getsource(mod))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import,))
                 for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module}
        assert "streamlit" not in names and "ui" not in names, mod.__name__


# --- attributions -------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [28, 7])
def test_attribution_figure_z_and_top_k(side):
    T = side * side
    rng = np.random.default_rng(0)
    attr = rng.normal(size=T)
    u = _mask(T)
    fig = pixels_figs.attribution_figure(attr, side, u, k=5)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), attr.reshape(side, side))
    assert fig.data[0].zmin == -fig.data[0].zmax == -np.abs(attr).max()
    top = np.argsort(-np.abs(attr))[:5]
    assert sorted(zip(fig.data[1].y, fig.data[1].x)) == sorted(zip(*np.divmod(top, side)))
    colours = ["black" if u[t] else "#9e9e9e" for t in top]
    assert sorted(fig.data[1].marker.color) == sorted(colours)
    unsigned = pixels_figs.attribution_figure(attr, side, signed=False)
    assert len(unsigned.data) == 1 and (np.asarray(unsigned.data[0].z) >= 0).all()
    with pytest.raises(ValueError):
        pixels_figs.attribution_figure(attr[:-1], side)
    with pytest.raises(ValueError):
        pixels_figs.attribution_figure(np.full(T, np.nan), side)


def test_agreement_figure():
    s = {"used_fraction": [0.2, 0.5], "mass_on_used": [0.9, 0.4], "used_auc": [0.8, 0.5]}
    fig = pixels_figs.agreement_figure(s)
    assert list(fig.data[0].x) == [0.2, 0.5] and list(fig.data[0].y) == [0.9, 0.4]
    assert list(fig.data[1].x) == [0, 1] and list(fig.data[1].y) == [0, 1]
    json.loads(fig.to_json())


def test_pixel_table_and_csv():
    side = 14
    T = side * side
    u = _mask(T)
    p = np.linspace(0, 1, T)
    a = np.arange(T, dtype=float)
    rows = pixels_figs.pixel_table(_digit(), side, u, p, a)
    assert len(rows) == T
    assert rows[side + 2] == {"row": 1, "col": 2, "step": side + 2,
                              "pixel": pytest.approx(common.ink(_digit(), side)[1, 2]),
                              "used": int(u[side + 2]), "u_tilde": pytest.approx(p[side + 2], abs=1e-6),
                              "attribution": float(side + 2)}
    text = common.to_csv(rows)
    lines = text.splitlines()
    assert lines[0] == "row,col,step,pixel,used,u_tilde,attribution" and len(lines) == T + 1
    no_attr = common.to_csv(pixels_figs.pixel_table(_digit(), side, u, p))
    assert no_attr.splitlines()[1].endswith(",")
    assert common.to_csv([]) == ""


# --- Speed lab figures --------------------------------------------------------------------------
def _row(cell, T, B, ms, p=1.0, backend="", mode="inference"):
    return {"cell": cell, "label": cell, "backend": backend, "seq_len": T, "batch": B,
            "hidden": 8, "mode": mode, "device": "cpu", "ms": ms, "flops": 1e6,
            "gflops_per_s": 1e6 / (ms / 1e3) / 1e9, "update_rate": p, "status": "ok"}


SPEED_ROWS = [_row("lstm", T, B, T * B * 0.01) for T in (10, 100) for B in (1, 4)] + [
    _row("sru", T, B, T * B * 0.001, backend="cpp") for T in (10, 100) for B in (1, 4)] + [
    dict(_row("gru", 1000, 1, float("nan")), status="skipped: total time cap reached")]


def test_latency_figure_lines_per_cell_log_axes():
    fig = speed.latency_figure(SPEED_ROWS, x="seq_len")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert len(fig.data) == 2  # the skipped gru point draws nothing
    lstm = [t for t in fig.data if t.name.startswith("lstm")][0]
    assert list(lstm.x) == [10, 100] and list(lstm.y) == [0.1, 1.0]  # the batch-1 slice
    fig_b = speed.latency_figure(SPEED_ROWS, x="batch")
    sru = [t for t in fig_b.data if t.name.startswith("sru")][0]
    assert list(sru.x) == [1, 4] and list(sru.y) == pytest.approx([0.01, 0.04])
    assert all("(C++)" in c for c in sru.customdata)  # the loop that ran it, in the hover
    assert fig.layout.legend.orientation == "h" and fig.layout.margin.t >= 20  # legend above
    with pytest.raises(ValueError):
        speed.latency_figure(SPEED_ROWS, x="hidden")
    assert len(speed.latency_figure([]).data) == 0


def test_gflops_figure_bars():
    fig = speed.gflops_figure(SPEED_ROWS)
    # one bar group per cell (two short tick labels), one colour per (steps, batch) point
    assert len(fig.data) == 4 and sum(len(t.y) for t in fig.data) == 8
    assert {x for t in fig.data for x in t.x} == {"lstm", "sru"}
    assert fig.data[0].name == "10 steps, batch 1"
    assert fig.data[0].y[0] == pytest.approx(SPEED_ROWS[0]["gflops_per_s"])


def test_speedup_points_and_figure():
    rows = [_row("skip-gru", 50, 1, 10.0, 1.0), _row("skip-gru", 50, 1, 3.0, 0.25),
            _row("skip-gru", 50, 1, 6.0, 0.5), _row("skip-gru", 60, 1, 1.0, 0.5),
            _row("lstm", 50, 1, 2.0)]
    pts = speed.skip_speedup_points(rows)
    assert [(p["update_rate"], round(p["speedup"], 4)) for p in pts] == [
        (0.25, round(10 / 3, 4)), (0.5, round(10 / 6, 4)), (1.0, 1.0)]  # T=60 has no dense run
    assert [p["theory"] for p in pts] == [4.0, 2.0, 1.0]
    fig = speed.speedup_figure(pts)
    bound, measured = fig.data[0], fig.data[1]
    assert "1/p" in bound.name
    assert np.allclose(np.array(bound.y) * np.array(bound.x), 1.0)
    assert list(measured.x) == [0.25, 0.5, 1.0]
    assert fig.layout.xaxis.type == "log"
    json.loads(fig.to_json())
    assert len(speed.speedup_figure([]).data) == 1  # the bound alone


# --- trade-off dashboard ---------------------------------------------------------------------------
def _tradeoff_points():
    from ui import dashboard as D

    cards = [
        {"name": "skip-x", "task": "mnist-pixels", "config": {"cell": "gru", "skip": True,
                                                               "hidden_size": 110},
         "input": {"seq_len": 784},
         "metrics": {"valid_accuracy": 0.9, "valid_updates_mean": 400,
                     "flops_per_sequence_mean": 3e7},
         "threshold_sweep": [{"threshold": 0.5, "accuracy": 0.9, "updates": 400, "flops": 3e7},
                             {"threshold": 0.8, "accuracy": 0.8, "updates": 250,
                              "flops": 2e7}]},
        {"name": "gru-x", "task": "mnist-pixels", "config": {"cell": "gru", "skip": False},
         "metrics": {"valid_accuracy": 0.95, "flops_per_sequence_mean": 5.9e7}},
        {"name": "other", "task": "text-task", "config": {"cell": "gru", "skip": True},
         "metrics": {"valid_accuracy": 0.7, "flops_per_sequence_mean": 1e6}},
    ]
    return D.points_from_cards(cards), D.sweep_curves(cards)


def test_tradeoff_one_panel_per_task_dense_and_paper_marked():
    points, curves = _tradeoff_points()
    fig = tradeoff.tradeoff_figure(points, curves=curves)
    metas = [(t.meta["task"], t.meta["source"], t.meta["kind"]) for t in fig.data]
    assert ("mnist-pixels", "ours", "skip") in metas and ("mnist-pixels", "ours", "dense") in metas
    assert ("mnist-pixels", "paper", "skip") in metas and ("text-task", "ours", "skip") in metas
    assert ("mnist-pixels", "ours", "sweep") in metas
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["MNIST pixel by pixel", "text-task"]
    by = {(t.meta["task"], t.meta["source"], t.meta["kind"]): t for t in fig.data}
    dense = by[("mnist-pixels", "ours", "dense")]
    skip = by[("mnist-pixels", "ours", "skip")]
    paper = by[("mnist-pixels", "paper", "skip")]
    assert dense.marker.symbol == "square" and skip.marker.symbol == "circle"
    assert paper.marker.symbol not in ("square", "circle")
    assert list(dense.x) == [5.9e7] and list(dense.y) == [0.95]
    assert all("paper Table 3" in s for s in paper.text)
    assert all("paper Table 3" in s for s in paper.customdata)
    # the text task's panel has its own axes
    other = by[("text-task", "ours", "skip")]
    assert other.xaxis == "x2" and skip.xaxis == "x"
    assert fig.layout.xaxis.type == "log"
    sweep = by[("mnist-pixels", "ours", "sweep")]
    assert list(sweep.x) == [3e7, 2e7] and list(sweep.customdata) == [0.5, 0.8]
    json.loads(fig.to_json())


def test_tradeoff_latency_axis_only_measured_points():
    from ui import dashboard as D

    points, curves = _tradeoff_points()
    fig = tradeoff.tradeoff_figure(D.with_latency(points, {"gru-x": 3.5}), x="latency_ms", curves=curves)
    assert [(t.meta["source"], t.meta["kind"], list(t.x)) for t in fig.data] == [
        ("ours", "dense", [3.5])]
    assert fig.layout.xaxis.type == "log"  # times span 0.2 to 60 ms across the models
    with pytest.raises(ValueError):
        tradeoff.tradeoff_figure(points, x="seconds")


def test_tradeoff_empty_and_enlarge():
    fig = tradeoff.tradeoff_figure([])
    assert len(fig.data) == 0 and "no checkpoints" in fig.layout.annotations[0].text
    fig = common.enlarge(pixels_figs.used_skipped_figure(_digit(), _mask(784), 28, height=300))
    assert fig.layout.height == int(300 * 1.35) and fig.layout.font.size == 18


# --- Skip RNN on signals and clips ----------------------------------------------------------------
def _colors_of(fig, name_part):
    return [t for t in fig.data if name_part in (t.name or "")]


def test_adding_figure_used_red_skipped_blue_markers_ringed():
    T = 50
    x = np.zeros((T, 2))
    x[:, 0] = np.linspace(-0.5, 0.5, T)
    x[[2, 40], 1] = 1
    u = _mask(T, 2)
    p = np.where(u > 0, 0.6, 0.3)
    fig = signals_figs.adding_figure(x, u, p, theta=0.5)
    used, skipped = _colors_of(fig, "used")[0], _colors_of(fig, "skipped")[0]
    assert used.marker.color == common.USED_COLOR and skipped.marker.color == common.SKIPPED_COLOR
    assert len(used.x) == int(u.sum()) and len(skipped.x) == T - int(u.sum())
    assert list(_colors_of(fig, "marked")[0].x) == [2, 40]
    saw = _colors_of(fig, "ũ_t")[0]
    assert np.allclose(saw.y, p) and saw.yaxis == "y2"
    theta = _colors_of(fig, "θ")[0]
    assert list(theta.y) == [0.5, 0.5]
    with pytest.raises(ValueError):
        signals_figs.adding_figure(x[:, :1], u)
    with pytest.raises(ValueError):
        signals_figs.adding_figure(x, u[:10])


def test_sine_and_sawtooth_figures():
    u = _mask(200, 4)
    fig = signals_figs.sine_figure(np.sin(np.arange(200) / 5), u, np.full(200, 0.2), sampling_ms=0.5)
    used = _colors_of(fig, "used")[0]
    assert used.x[1] == pytest.approx(2.0)  # every 4th sample, 0.5 ms apart
    assert fig.layout.xaxis2.title.text == "time (ms)"
    fig = signals_figs.sawtooth_figure([1.0, 0.3, 0.6, 0.2], [1, 0, 1, 0], theta=0.5)
    assert list(_colors_of(fig, "ũ_t")[0].marker.color) == [common.USED_COLOR, common.SKIPPED_COLOR,
                                                            common.USED_COLOR, common.SKIPPED_COLOR]


def test_filmstrip_used_bright_skipped_dim():
    frames = np.ones((5, 4, 4))
    img = signals_figs.filmstrip(frames, [1, 0, 0, 1, 0], cols=3, pad=2)
    assert img.shape == (2 * 8, 3 * 8, 3) and img.dtype == np.uint8
    assert (img[2:6, 2:6] == 255).all()                        # used frame: full brightness
    assert (img[2:6, 10:14] == int(signals_figs.FILM_DIM * 255)).all()    # skipped: dimmed
    assert tuple(img[0, 0]) == (0xd6, 0x27, 0x28)              # red border around a used frame
    assert tuple(img[1, 9]) == (0x1f, 0x77, 0xb4)              # blue border around a skipped one
    fig = signals_figs.filmstrip_figure(frames, [1, 0, 0, 1, 0])
    assert "2 of 5 frames used" in fig.layout.title.text
    with pytest.raises(ValueError):
        signals_figs.filmstrip(frames, [1, 0])


def test_lambda_points_and_figure():
    cards = [
        {"name": "a", "task": "adding", "config": {"skip": True, "cell": "gru"},
         "training": {"lambda": 1e-5}, "metrics": {"valid_mse": 1e-3, "valid_update_rate": 0.5,
                                                     "valid_updates_mean": 25}},
        {"name": "b", "task": "adding", "config": {"skip": True, "cell": "gru"},
         "training": {"lambda": 0.0}, "metrics": {"valid_mse": 2e-3, "valid_update_rate": 0.9,
                                                    "valid_updates_mean": 45}},
        {"name": "c", "task": "frequency", "config": {"skip": True},
         "training": {"lambda": 0.0}, "metrics": {"valid_accuracy": 0.9}},
        {"name": "d", "task": "adding", "config": {"skip": False}, "training": {"lambda": 0.0},
         "metrics": {"valid_mse": 1e-3}},
    ]
    pts = tradeoff.lambda_points(cards, "adding")
    assert [p["name"] for p in pts] == ["b", "a"] and pts[1]["metric"] == "mse"
    fig = tradeoff.lambda_figure(pts)
    assert list(fig.data[0].x) == ["0", "1e-05"] and list(fig.data[0].y) == [90.0, 50.0]
    assert list(fig.data[1].hovertext) == list(fig.data[0].text)         # names: left, hover
    assert tuple(fig.layout.xaxis.range) == (-0.7, 1.7)                  # room at both ends
    assert fig.layout.yaxis2.type == "log"
    assert tradeoff.lambda_points(cards, "frequency")[0]["metric"] == "accuracy"


def test_lambda_points_keep_one_sampling_period():
    def card(name, ms):
        return {"name": name, "task": "frequency", "config": {"skip": True},
                "input": {"sampling_ms": ms}, "training": {"lambda": 1e-4},
                "metrics": {"valid_accuracy": 0.99, "valid_update_rate": 0.2}}
    cards = [card("one", 1.0), card("half", 0.5), {**card("old", 1.0), "input": {}}]
    assert [p["name"] for p in tradeoff.lambda_points(cards, "frequency", sampling_ms=0.5)] == \
        ["half", "old"]
    assert [p["name"] for p in tradeoff.lambda_points(cards, "frequency", sampling_ms=1.0)] == \
        ["old", "one"]
    assert len(tradeoff.lambda_points(cards, "frequency")) == 3


def test_training_curves_regression_panels():
    hist = [{"step": i + 1, "loss": 0.2, "mse": 0.2, "update_rate": 1.0} for i in range(5)]
    fig = curves_figs.training_curves_figure(hist, curves=curves_figs.REGRESSION_CURVES)
    assert fig.layout.annotations[1].text == "batch MSE"
    assert fig.layout.yaxis2.range is None  # MSE is not squeezed into [0, 1]


# --- the MNIST page's θ labels, the paper's Fig. 3 and Fig. 4 ----------------------------------
def test_spaced_labels_never_overlap():
    # the shipped card's sweep: θ = 0.7 … 1.0 crowd into one corner
    xs = [718.1, 622.3, 551.3, 431.1, 364.2, 344.9, 330.0, 311.7]
    ys = [0.872, 0.902, 0.913, 0.834, 0.487, 0.418, 0.412, 0.412]
    labels = common.spaced_labels(xs, ys, ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"])
    assert labels[:5] == ["0.3", "0.4", "0.5", "0.6", "0.7"]
    assert labels[6] == ""  # 0.9 sits on top of 0.8
    kept = [i for i, t in enumerate(labels) if t]
    wx, wy = max(xs) - min(xs), max(ys) - min(ys)
    for a in kept:
        for b in kept:
            if a < b:
                assert abs(xs[a] - xs[b]) >= 0.08 * wx or abs(ys[a] - ys[b]) >= 0.08 * wy
    assert common.spaced_labels([1.0, 1.0], [2.0, 2.0], ["a", "b"]) == ["a", ""]


def test_sweep_figure_legend_on_top_and_labels_spaced():
    sweep = [{"threshold": t, "accuracy": a, "updates": u} for t, a, u in
             ((0.7, 0.487, 364.2), (0.8, 0.418, 344.9), (0.9, 0.412, 330.0), (1.0, 0.412, 311.7),
              (0.3, 0.872, 718.1))]
    fig = tradeoff.threshold_sweep_figure(sweep, 0.5)
    assert fig.layout.legend.y > 1 and fig.layout.legend.orientation == "h"
    assert "" in fig.data[0].text and "0.3" in fig.data[0].text


def test_epoch_accuracy_figure_one_line_per_model():
    skip = {"epoch": [1, 2, 3], "accuracy": [0.4, 0.7, 0.9]}
    dense = {"epoch": [1, 2], "accuracy": [0.3, 0.5]}
    fig = curves_figs.epoch_accuracy_figure([("Skip GRU", skip), ("GRU", dense), ("none", {"epoch": []})])
    assert [t.name for t in fig.data] == ["Skip GRU", "GRU"]
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [0.4, 0.7, 0.9]
    assert list(fig.data[1].x) == [1, 2] and list(fig.data[1].y) == [0.3, 0.5]
    assert fig.data[0].line.color == common.USED_COLOR and fig.data[1].line.color != common.USED_COLOR
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.legend.y > 1
    empty = curves_figs.epoch_accuracy_figure([("Skip GRU", {"epoch": [], "accuracy": []})])
    assert len(empty.data) == 0 and "no accuracy per epoch" in empty.layout.annotations[0].text


@pytest.mark.parametrize("side", [28, 14])
def test_pixel_map_grid_masks_counts_and_titles(side):
    imgs = [_digit(s) for s in range(4)]
    masks = [_mask(side * side, every) for every in (1, 2, 3, 5)]
    fig = pixels_figs.pixel_map_grid_figure(imgs, masks, side, titles=["a", "b", "c", "d"], cols=3)
    maps = [t for t in fig.data if (t.name or "").startswith("digit")]
    assert len(maps) == 4 and len(fig.data) == 8
    for k, (trace, m) in enumerate(zip(maps, masks)):
        np.testing.assert_array_equal(np.asarray(trace.z), m.reshape(side, side))
        axis = fig.layout["xaxis" + ("" if k == 0 else str(k + 1))]
        assert axis.title.text == f"{int(m.sum())} used"
        assert fig.layout["yaxis" + ("" if k == 0 else str(k + 1))].scaleanchor == \
            "x" + ("" if k == 0 else str(k + 1))
    scale = maps[0].colorscale
    assert scale[0][1] == common.SKIPPED_COLOR and scale[-1][1] == common.USED_COLOR
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c", "d"]
    json.loads(fig.to_json())
    with pytest.raises(ValueError):
        pixels_figs.pixel_map_grid_figure(imgs, masks[:3], side)
    with pytest.raises(ValueError):
        pixels_figs.pixel_map_grid_figure(imgs[:1], [np.full(side * side, 0.5)], side)
