"""Analytic FLOP counts, cross-checked against torch.utils.flop_counter where it counts, and the
latency timer."""
import pytest
import torch
from torch import nn

from skimviz import cost
from skimviz.models import SequenceClassifier, SkipRNN


@pytest.mark.parametrize("I,H", [(1, 110), (7, 32), (64, 64)])
def test_gru_cell_matmuls_match_flop_counter(I, H):
    cell, x, h = nn.GRUCell(I, H), torch.randn(1, I), torch.randn(1, H)
    assert cost.measured_matmul_flops(lambda: cell(x, h)) == cost.gru_cell_matmul_flops(I, H)


@pytest.mark.parametrize("I,H", [(1, 110), (7, 32)])
def test_lstm_cell_matmuls_match_flop_counter(I, H):
    cell, x = nn.LSTMCell(I, H), torch.randn(1, I)
    hc = (torch.randn(1, H), torch.randn(1, H))
    assert cost.measured_matmul_flops(lambda: cell(x, hc)) == cost.lstm_cell_matmul_flops(I, H)


def test_gate_and_linear_match_flop_counter():
    lin, s = nn.Linear(110, 1), torch.randn(1, 110)
    measured = cost.measured_matmul_flops(lambda: lin(s))
    assert measured == 2 * 110  # the counter sees the product, not the bias
    assert cost.skip_gate_flops(110) == 2 * 110 + 1 + 1


def test_elementwise_counts_are_added_on_top():
    assert cost.gru_cell_flops(1, 10) == cost.gru_cell_matmul_flops(1, 10) + 160
    assert cost.lstm_cell_flops(1, 10) == cost.lstm_cell_matmul_flops(1, 10) + 210
    with pytest.raises(ValueError):
        cost.cell_flops("rnn", 1, 1)


def test_skip_model_trace_flops_match_counter_on_updates():
    """The matmul FLOPs that FlopCounterMode sees for a batch-1 run equal, step for step, the
    matmul part of our per-update count times the number of updates."""
    torch.manual_seed(0)
    m = SkipRNN(1, 20).eval()
    with torch.no_grad():
        m.gate.bias.fill_(-1.5)
    x = torch.randn(1, 40, 1)
    measured = cost.measured_matmul_flops(lambda: m(x))  # eval mode: the jump path
    with torch.no_grad():
        _, _, tr = m(x, return_trace=True)
    n = int(tr.update.sum())
    assert 0 < n < 40
    assert measured == n * (cost.gru_cell_matmul_flops(1, 20) + 2 * 20)


def test_dense_classifier_flops():
    m = SequenceClassifier(1, 110, 10, "gru", skip=False)
    assert m.dense_flops(784) == 784 * cost.gru_cell_flops(1, 110) + cost.linear_flops(110, 10)
    _, tr = m(torch.randn(2, 5, 1), return_trace=True)
    assert tr.flops[0].sum().item() == 5 * cost.gru_cell_flops(1, 110) + cost.linear_flops(110, 10)


def test_measure_latency_cpu():
    calls = []
    lat = cost.measure_latency(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7 and lat.repeats == 5 and lat.device == "cpu"
    assert 0 <= lat.p10_ms <= lat.median_ms <= lat.p90_ms
    with pytest.raises(ValueError):
        cost.measure_latency(lambda: None, repeats=0)


def test_measure_latency_stops_at_time_budget():
    import time
    lat = cost.measure_latency(lambda: time.sleep(0.02), warmup=0, repeats=100, max_seconds=0.05)
    assert 3 <= lat.repeats < 100
    assert lat.median_ms >= 15


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_latency_cuda_events():
    a = torch.randn(512, 512, device="cuda")
    lat = cost.measure_latency(lambda: a @ a, device="cuda", repeats=5)
    assert lat.device.startswith("cuda") and lat.median_ms > 0


def test_devices():
    assert cost.available_devices()[0] == "cpu"
    assert cost.describe_device("cpu").startswith("CPU")


@pytest.mark.parametrize("I,H", [(1, 16), (16, 16)])
def test_sru_matmuls_match_flop_counter(I, H):
    from skimviz.models import SRUCell
    cell, x = SRUCell(I, H), torch.randn(1, I)
    hc = (torch.zeros(1, H), torch.zeros(1, H))
    assert cost.measured_matmul_flops(lambda: cell(x, hc)) == cost.sru_cell_matmul_flops(I, H)
    assert cost.sru_cell_flops(I, H) < cost.gru_cell_flops(I, H)


def test_retain_freed_memory_applies_on_glibc_linux():
    import platform
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert cost.retain_freed_memory() is expected
    assert cost.retain_freed_memory() is expected          # idempotent


def test_a_server_gives_freed_memory_back():
    """cost.return_freed_memory / trim_memory (the app's ui.memory): a freed 64 MiB tensor
    leaves the process's resident memory."""
    import platform
    from pathlib import Path

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")

    def rss_mib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    assert cost.return_freed_memory()
    before = rss_mib()
    big = torch.ones(16 << 20)                           # 64 MiB, written
    assert rss_mib() > before + 50
    del big
    cost.trim_memory()
    assert rss_mib() < before + 20
