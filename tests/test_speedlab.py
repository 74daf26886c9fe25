"""skimviz.bench.speedlab: the benchmark runner behind the Speed lab page and ``bench kernels``.

Tiny sizes only (a 2-core machine shared with trainings): these test the machinery, not speed.
"""
from __future__ import annotations

import math
import time

import pytest
import torch

from skimviz import cost
from skimviz.bench import speedlab
from skimviz.models.skim_rnn import SkimRNN
from skimviz.models.skip_rnn import SkipRNN

KEYS = {"cell", "backend", "seq_len", "batch", "hidden", "mode", "ms", "flops", "gflops_per_s",
        "update_rate", "status"}


@pytest.fixture(autouse=True)
def one_thread():
    with cost.threads(1):
        yield


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_rows_complete(mode):
    cells = list(speedlab.CELLS)
    rows = speedlab.run_grid(cells, [5, 9], [1, 3], 8, mode=mode, update_rate=0.5,
                             max_seconds_per_point=0.2, repeats=2)
    assert len(rows) == len(cells) * 4
    assert [(r["cell"], r["seq_len"], r["batch"]) for r in rows] == [
        (c, t, b) for c in cells for t in (5, 9) for b in (1, 3)]
    for r in rows:
        assert KEYS <= set(r)
        assert r["status"] in ("ok", "capped") and r["mode"] == mode and r["hidden"] == 8
        assert r["ms"] > 0 and r["flops"] > 0 and r["repeats"] >= 1
        assert r["gflops_per_s"] == pytest.approx(r["flops"] / (r["ms"] / 1e3) / 1e9)
    assert {r["backend"] for r in rows if r["cell"] == "sru-python"} == {"python"}
    assert {r["backend"] for r in rows if r["cell"] == "sru"} <= {"cpp", "python"}
    assert {r["backend"] for r in rows if r["cell"] in ("lstm", "gru")} == {""}
    assert {r["backend"] for r in rows if r["cell"] == "skip-gru"} <= {"cpp", "python"}


def test_flops_match_cost_functions():
    T, B, H, I = 7, 3, 8, 1
    rows = speedlab.run_grid(["lstm", "gru", "sru", "sru-python"], [T], [B], H,
                             max_seconds_per_point=0.1, repeats=1)
    want = {"lstm": cost.lstm_cell_flops(I, H), "gru": cost.gru_cell_flops(I, H),
            "sru": cost.sru_cell_flops(I, H), "sru-python": cost.sru_cell_flops(I, H)}
    for r in rows:
        assert r["flops"] == want[r["cell"]] * T * B
    train = speedlab.run_grid(["lstm"], [T], [B], H, mode="train", max_seconds_per_point=0.1,
                              repeats=1)
    assert train[0]["flops"] == 3 * cost.lstm_cell_flops(I, H) * T * B


def test_skip_flops_count_updates_and_skips():
    T, H = 20, 8
    r = speedlab.measure_point("skip-gru", T, 1, H, update_rate=0.25, max_seconds=0.1, repeats=1)
    m = SkipRNN(1, H, cell="gru")
    n_up = speedlab.expected_updates(T, 0.25)
    assert r["flops"] == n_up * m.flops_per_update() + (T - n_up) * cost.SKIP_STEP_FLOPS
    assert r["update_rate"] == pytest.approx(n_up / T)
    rt = speedlab.measure_point("skip-gru", T, 2, H, mode="train", update_rate=0.25,
                                max_seconds=0.1, repeats=1)
    assert rt["flops"] == 3 * m.flops_per_update() * T * 2


def test_skim_flops_and_read_rate():
    """Skim-RNN rows: exactly round(p·N) tokens read, FLOPs = read tokens × read_flops +
    skimmed × skim_flops (inference), every cell at every token in training."""
    T, H, I = 20, 20, 4
    m = SkimRNN(I, H, speedlab.skim_small_size(H))
    assert speedlab.skim_small_size(H) == 2 and speedlab.skim_small_size(8) == 1
    for batch in (1, 3):
        r = speedlab.measure_point("skim-rnn", T, batch, H, input_size=I, update_rate=0.25,
                                   max_seconds=0.1, repeats=1)
        n_read = round(0.25 * T * batch)
        assert r["update_rate"] == pytest.approx(n_read / (T * batch))
        assert r["requested_update_rate"] == 0.25 and r["label"] == "Skim-RNN"
        assert r["flops"] == n_read * m.read_flops() + (T * batch - n_read) * m.skim_flops()
    rt = speedlab.measure_point("skim-rnn", T, 2, H, input_size=I, mode="train",
                                update_rate=0.25, max_seconds=0.1, repeats=1)
    per_token = m.read_flops() + m.skim_flops() - m.decision_flops()
    assert rt["flops"] == 3 * per_token * T * 2


@pytest.mark.parametrize("p", [1.0, 0.5, 0.1, 0.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_read_rate_knob(p, batch):
    """set_read_rate: round(p·N) tokens read, the ones with the smallest first feature."""
    torch.manual_seed(0)
    m = SkimRNN(3, 8, 2).eval()
    x = torch.randn(batch, 50, 3)
    got = speedlab.set_read_rate(m, x, p)
    n = batch * 50
    assert got == pytest.approx(round(p * n) / n)
    with torch.no_grad():
        _, _, tr = m(x, return_trace=True)
    assert int(tr.skim.sum()) == n - round(p * n)
    if 0 < p < 1:
        assert float(x[..., 0][tr.skim == 1].min()) > float(x[..., 0][tr.skim == 0].max())
    with pytest.raises(ValueError, match="read rate"):
        speedlab.set_read_rate(m, x, 1.5)
    m.skim_threshold = 0.0
    with pytest.raises(ValueError, match="threshold"):
        speedlab.set_read_rate(m, x, 0.5)


def test_own_dense_speedups():
    rows = [speedlab.measure_point("skim-rnn", 10, 1, 20, input_size=4, update_rate=p,
                                   max_seconds=0.1, repeats=1) for p in (1.0, 0.5, 0.1)]
    rows.append(speedlab.measure_point("lstm", 10, 1, 20, input_size=4, max_seconds=0.1,
                                       repeats=1))
    out = speedlab.own_dense_speedups(rows, "skim-rnn")
    assert [o["requested_update_rate"] for o in out] == [0.5, 0.1]
    for o, r in zip(out, rows[1:3]):
        assert o["theory_speedup_flops"] == pytest.approx(rows[0]["flops"] / r["flops"])
        assert o["measured_speedup"] == pytest.approx(rows[0]["ms"] / r["ms"])
    assert out[1]["theory_speedup_flops"] > out[0]["theory_speedup_flops"] > 1


def test_measure_interleaved_warm_calls(monkeypatch):
    """warm_calls = 1: every timed call of a point follows an untimed call of the same point."""
    calls = []
    real = speedlab._prepare_point

    def prepare(cell, *a):
        fn, dev, flops, rate = real(cell, *a)
        return (lambda: calls.append(cell) or fn()), dev, flops, rate

    monkeypatch.setattr(speedlab, "_prepare_point", prepare)
    points = [dict(cell="lstm", seq_len=4, batch=1, hidden=8),
              dict(cell="gru", seq_len=4, batch=1, hidden=8)]
    rows = speedlab.measure_interleaved(points, max_seconds=10.0, rounds=3, warm_calls=1)
    assert [r["repeats"] for r in rows] == [3, 3]
    # one warm-up call each, then per round: (warm, timed) of lstm, then of gru
    assert calls == ["lstm", "gru"] + ["lstm", "lstm", "gru", "gru"] * 3
    with pytest.raises(ValueError):
        speedlab.measure_interleaved(points, warm_calls=-1)


def test_measure_interleaved_rows():
    """Side-by-side timing: the same rows as measure_point, each from >= 3 interleaved calls."""
    points = [dict(cell="lstm", seq_len=6, batch=1, hidden=8),
              dict(cell="skim-rnn", seq_len=6, batch=1, hidden=20, input_size=3, update_rate=0.5),
              dict(cell="skip-gru", seq_len=6, batch=2, hidden=8, mode="train", update_rate=1.0)]
    rows = speedlab.measure_interleaved(points, max_seconds=0.05, rounds=4)
    assert [r["cell"] for r in rows] == ["lstm", "skim-rnn", "skip-gru"]
    for r, p in zip(rows, points):
        ref = speedlab.measure_point(**p, max_seconds=0.05, repeats=1)
        assert set(r) == set(ref) and 3 <= r["repeats"] <= 4 and r["ms"] > 0
        for k in ("flops", "update_rate", "requested_update_rate", "backend", "mode", "hidden"):
            assert r[k] == ref[k], k


@pytest.mark.parametrize("p", [1.0, 0.5, 0.3, 0.25, 0.1, 0.05])
@pytest.mark.parametrize("batch", [1, 3])
def test_update_rate_knob(p, batch):
    """The gate set from p updates every round(1/p) steps: p·T updates ± 1 step for p = 1/k,
    on the batch-1 jump path, the batched rows path and the training path alike."""
    T = 100
    torch.manual_seed(0)
    m = SkipRNN(1, 8, cell="gru")
    speedlab.set_update_rate(m, p)
    k = speedlab.update_period(p)
    x = torch.randn(batch, T, 1)
    m.eval()
    with torch.no_grad():
        _, _, tr = m(x, return_trace=True)
    m.train()
    _, _, tr_train = m(x, return_trace=True)
    for trace in (tr, tr_train):
        ups = trace.update.detach().sum(dim=1)
        assert torch.all(ups == speedlab.expected_updates(T, p))
        assert abs(float(ups[0]) - T / k) <= 1
        assert trace.update[0, ::k].eq(1).all()  # updates exactly at 0, k, 2k, ...
    if abs(1 / p - round(1 / p)) < 1e-9:
        assert abs(float(tr.update[0].sum()) - p * T) <= 1


def test_bad_inputs_raise_readable_errors():
    with pytest.raises(ValueError, match="cell"):
        speedlab.run_grid(["nope"], [5], [1], 8)
    with pytest.raises(ValueError, match="at least one cell"):
        speedlab.run_grid([], [5], [1], 8)
    with pytest.raises(ValueError, match="sequence length"):
        speedlab.run_grid(["lstm"], [0], [1], 8)
    with pytest.raises(ValueError, match="batch"):
        speedlab.run_grid(["lstm"], [5], [-2], 8)
    with pytest.raises(ValueError, match="hidden"):
        speedlab.run_grid(["lstm"], [5], [1], 0)
    with pytest.raises(ValueError, match="update rate"):
        speedlab.run_grid(["skip-gru"], [5], [1], 8, update_rate=0.0)
    with pytest.raises(ValueError, match="mode"):
        speedlab.run_grid(["lstm"], [5], [1], 8, mode="fast")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            speedlab.run_grid(["lstm"], [5], [1], 8, device="cuda")


def test_progress_callback_called():
    calls = []
    speedlab.run_grid(["lstm", "sru"], [5], [1, 2], 8, max_seconds_per_point=0.1, repeats=1,
                      progress=lambda f, msg: calls.append((f, msg)))
    assert len(calls) == 5
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[0] == 0.0 and fracs[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in calls)


def test_per_point_cap_respected():
    """A point whose first call already exceeds the cap is reported from that call alone."""
    r = speedlab.measure_point("skip-gru", 200, 1, 16, update_rate=1.0, max_seconds=1e-4)
    assert r["status"] == "capped" and r["repeats"] == 1 and r["ms"] > 0
    t0 = time.perf_counter()
    r = speedlab.measure_point("lstm", 50, 2, 16, max_seconds=0.05, repeats=1000)
    assert time.perf_counter() - t0 < 2.0
    assert r["repeats"] < 1000


def test_total_cap_skips_points():
    rows = speedlab.run_grid(["lstm", "gru"], [5, 10], [1], 8, max_seconds_per_point=0.05,
                             max_seconds_total=1e-9, repeats=1)
    assert all(r["status"].startswith("skipped") for r in rows)
    assert all(math.isnan(r["ms"]) for r in rows)


def test_threads_context_restores():
    old = torch.get_num_threads()
    with cost.threads(old + 1):
        assert torch.get_num_threads() == old + 1
    assert torch.get_num_threads() == old
    rows = speedlab.run_grid(["lstm"], [5], [1], 8, n_threads=old + 1, repeats=1,
                             max_seconds_per_point=0.05)
    assert rows and torch.get_num_threads() == old


def test_python_sru_matches_sru():
    torch.manual_seed(0)
    a = speedlab.build_model("sru", 3, 8)
    b = speedlab.build_model("sru-python", 3, 8)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(a(x)[0], b(x)[0], rtol=1e-5, atol=1e-6)


def test_module_does_not_import_streamlit():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(speedlab))
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("streamlit") for m in mods)
