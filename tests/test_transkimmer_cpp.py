"""Transkimmer batch-1 inference in C++ (skimviz/csrc/transkimmer_cpu.cpp) against the Python
pruning path (``SKIMVIZ_TRANSKIMMER_BACKEND=python``), which test_transkimmer.py ties to the
masking path (Eq. 4) and to the plain encoder: the same prune layer for every token, the same
tokens per layer and FLOPs, logits to 1e-5 — for the skim model, its dense twin and the
force-keep oracle, at lengths on both sides of SMALL_TOKENS (where layers switch from ATen to the
fused small-layer kernel, and the predictor from a matvec per token to one GEMM: n − 1 tokens
> SMALL_TOKENS). The ``cpp`` fixture (conftest) builds the extension or skips.
"""
import pytest
import torch

from skimviz.models.transkimmer import SMALL_TOKENS, TranskimmerClassifier


@pytest.fixture(params=["avx2", "avx512"])
def isa(cpp, request):
    """Runs a test with the engine's AVX-512 kernels off and on (transkimmer_avx512); the second
    skips on a CPU without AVX-512."""
    was = cpp.transkimmer_avx512(-1)
    if cpp.transkimmer_avx512(int(request.param == "avx512")) != (request.param == "avx512"):
        cpp.transkimmer_avx512(int(was))
        pytest.skip("this CPU has no AVX-512")
    yield request.param
    cpp.transkimmer_avx512(int(was))


def pruning_model(seed=0, skim=True, d=32, heads=4, layers=3, pool="cls", predictor_hidden=None):
    """Random model whose predictors prune about half the remaining tokens per layer.
    ``predictor_hidden`` a multiple of 64: the engine's fused AVX-512 predictor applies."""
    torch.manual_seed(seed)
    m = TranskimmerClassifier(60, d, layers, heads, 2 * d, 48, dropout=0.0, skim=skim, pool=pool,
                              predictor_hidden=predictor_hidden)
    if skim:
        for g in m.gate:
            g.net[-1].weight.data.normal_(0, 1.0)
            g.net[-1].bias.data.zero_()
    return m.eval()


def run(m, x, backend, monkeypatch):
    monkeypatch.setenv("SKIMVIZ_TRANSKIMMER_BACKEND", backend)
    with torch.inference_mode():
        return m(x, return_trace=True)


def ids(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, 60, (1, n), generator=g)
    x[0, 0] = 2
    return x


def assert_same(a, b):
    (la, ta), (lb, tb) = a, b
    assert torch.equal(ta.prune_layer, tb.prune_layer)
    assert torch.equal(ta.kept_per_layer, tb.kept_per_layer)
    torch.testing.assert_close(ta.flops, tb.flops)
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-5)


def test_backend_switch(cpp, monkeypatch):
    calls = []
    m, x = pruning_model(), ids(12)
    real = m._kernel()
    def infer(*a):  # counts the calls that computed (with padding it declines: empty logits)
        out = real.infer(*a)
        calls.extend([1] * (out[0].numel() > 0))
        return out
    class K:  # the real object, with infer counted
        def __getattr__(self, name):
            return infer if name == "infer" else getattr(real, name)
    monkeypatch.setattr(m, "_kernel", K)
    real_run = real.run
    def run_(*a):  # forward's short path (counted when it computed)
        out = real_run(*a)
        calls.extend([1] * (out.numel() > 0))
        return out
    m.__dict__["_kw_run"] = run_               # the cached method, which forward's short path uses
    monkeypatch.delenv("SKIMVIZ_TRANSKIMMER_BACKEND", raising=False)
    with torch.inference_mode():
        m(x)
        assert calls == [1]
        m(torch.cat([x, torch.zeros(1, 3, dtype=torch.long)], 1))     # padding: Python path
        m(torch.cat([x, x]))                                           # batch 2: Python path
    m(x)                                                               # gradients on: Python
    m.train()
    with torch.inference_mode():
        m(x)                                                           # training: masking path
    m.eval()
    monkeypatch.setenv("SKIMVIZ_TRANSKIMMER_BACKEND", "python")
    with torch.inference_mode():
        m(x)
    assert calls == [1]


@pytest.mark.parametrize("hidden", [None, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 5, SMALL_TOKENS, SMALL_TOKENS + 1, SMALL_TOKENS + 2, 24, 48])
def test_cpp_equals_python_pruning(cpp, isa, monkeypatch, seed, n, hidden):
    m, x = pruning_model(seed, predictor_hidden=hidden), ids(n, seed)
    a, b = run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch)
    assert_same(a, b)
    if n >= 24:
        assert (a[1].kept_per_layer[0, 1:] < n).all()                  # it does prune


@pytest.mark.parametrize("n", [1, 5, SMALL_TOKENS + 2, 30])
def test_forward_fast_path_gives_the_traced_logits(cpp, monkeypatch, n):
    """A plain call (no mask, no trace) takes forward's short path into the engine: the same
    logits as the traced call and as the Python path; with padding it falls back."""
    m, x = pruning_model(n), ids(n, n)
    monkeypatch.delenv("SKIMVIZ_TRANSKIMMER_BACKEND", raising=False)
    with torch.inference_mode():
        m(x, return_trace=True)                        # builds the engine (_kw_cache, _kw_run)
        assert m.__dict__.get("_kw_run") is not None
        fast = m(x)
        assert fast.shape == (1, 2)
        torch.testing.assert_close(fast, m(x, return_trace=True)[0], rtol=0, atol=0)
        padded = torch.cat([x, torch.zeros(1, 2, dtype=torch.long)], 1)
        torch.testing.assert_close(m(padded), m(padded, return_trace=True)[0], rtol=0, atol=0)
    torch.testing.assert_close(fast, run(m, x, "python", monkeypatch)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [1, 5, SMALL_TOKENS + 2, 30])
def test_cpp_equals_python_with_a_mean_pool_head(cpp, monkeypatch, n):
    m, x = pruning_model(n, pool="mean"), ids(n, n)
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))
    dense = TranskimmerClassifier(**{**m.config, "skim": False}).eval()
    dense.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("gate.")})
    assert_same(run(dense, x, "cpp", monkeypatch), run(dense, x, "python", monkeypatch))


@pytest.mark.parametrize("n", [1, 3, SMALL_TOKENS + 1, SMALL_TOKENS + 2, 30])
def test_cpp_dense_twin_and_force_keep(cpp, monkeypatch, n):
    m, x = pruning_model(7), ids(n, 7)
    dense = TranskimmerClassifier(**{**m.config, "skim": False}).eval()
    dense.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("gate.")})
    assert_same(run(dense, x, "cpp", monkeypatch), run(dense, x, "python", monkeypatch))
    m.force_keep = True
    a = run(m, x, "cpp", monkeypatch)
    assert_same(a, run(m, x, "python", monkeypatch))
    assert (a[1].kept_per_layer == n).all()
    torch.testing.assert_close(a[0], run(dense, x, "cpp", monkeypatch)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("d,heads", [(32, 4), (48, 12), (20, 5)])
@pytest.mark.parametrize("n", range(1, SMALL_TOKENS + 1))
def test_small_layer_kernel_equals_encoder_layer(cpp, isa, monkeypatch, d, heads, n):
    """The fused kernel (odd widths too: SIMD tails) against EncoderLayer's ATen code."""
    torch.manual_seed(n)
    layer = TranskimmerClassifier(10, d, 1, heads, 3 * d, 16, dropout=0.0).layers[0].eval()
    for p in layer.parameters():
        p.data.normal_(0, 0.3)
    h = torch.randn(1, n, d)
    with torch.inference_mode():
        monkeypatch.setenv("SKIMVIZ_TRANSKIMMER_BACKEND", "python")
        ref = layer(h)
        out = cpp.transkimmer_layer(h[0], layer.weights(), heads, layer.attn_norm.eps)
    torch.testing.assert_close(out, ref[0], rtol=0, atol=1e-5)


def test_weight_cache_follows_load_state_dict_and_dtype(cpp, monkeypatch):
    m, x = pruning_model(8), ids(20, 8)
    other = pruning_model(9)
    before = run(m, x, "cpp", monkeypatch)
    m.load_state_dict(other.state_dict())
    assert_same(run(m, x, "cpp", monkeypatch), run(other, x, "python", monkeypatch))
    m.double().float()                                   # _apply replaces the tensors' data
    assert_same(run(m, x, "cpp", monkeypatch), run(other, x, "python", monkeypatch))
    assert not torch.equal(before[0], run(m, x, "cpp", monkeypatch)[0])


def test_padding_makes_the_kernel_decline(cpp, monkeypatch):
    """infer(..., pad_id=0) computes nothing for a row with padding (empty logits); the model
    then takes the Python path, with the same results as the Python backend."""
    m, x = pruning_model(3), ids(12, 3)
    padded = torch.cat([x, torch.zeros(1, 3, dtype=torch.long)], 1)
    with torch.inference_mode():
        assert m._kernel().infer(padded[0], True, False, 0)[0].numel() == 0
        assert m._kernel().infer(x[0], True, False, 0)[0].shape == (2,)
    assert_same(run(m, padded, "cpp", monkeypatch), run(m, padded, "python", monkeypatch))
    mask = torch.ones_like(x)          # an all-ones mask: the kernel runs, and ignores pad_id
    with torch.inference_mode():
        torch.testing.assert_close(m(x, mask), m(x), rtol=0, atol=0)


def test_bad_token_id_is_an_error_not_a_crash(cpp):
    m = pruning_model()
    with pytest.raises(RuntimeError, match="out of range"):
        m._kernel().infer(torch.tensor([2, 999]), True, False, -1)
    with pytest.raises(RuntimeError, match="max_positions"):
        m._kernel().infer(torch.full((49,), 5), True, False, -1)          # 48 positions
    with pytest.raises(RuntimeError, match="16 weight tensors"):
        cpp.transkimmer_layer(torch.randn(2, 32), m.layers[0].weights()[:5], 4, 1e-12)


def test_kernel_sees_training_updates_and_survives_deepcopy(cpp, monkeypatch):
    """The C++ object holds references: an optimizer step (in place) is seen without a rebuild;
    a deep copy (the app copies models per session) gets its own."""
    import copy
    m, x = pruning_model(10), ids(30, 10)
    run(m, x, "cpp", monkeypatch)                              # builds the cached object
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    logits, tr = m(torch.cat([x, x]), return_trace=True)
    (logits.sum() + tr.skim_loss).backward()
    opt.step()
    m.eval()
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))
    c = copy.deepcopy(m)
    assert "_kw_cache" not in c.__dict__ and "_kw_run" not in c.__dict__
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(0.9)
    assert_same(run(c, x, "cpp", monkeypatch), run(c, x, "python", monkeypatch))
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))


def int8_model(seed=0, d=32):
    """pruning_model with every encoder Linear's and every predictor's first Linear's weights
    exactly int8 codes × per-row scales (as the shipped models'), so the engine's small layers
    read the int8 codes; with d a multiple of 64 every such Linear also has panels for the int8
    GEMM of larger layers and of the predictors."""
    from skimviz.training.checkpoint import int8_roundtrip
    m = pruning_model(seed, d=d)
    with torch.no_grad():
        for layer in m.layers:
            for lin in (layer.query, layer.key, layer.value, layer.attn_out, layer.ffn_in,
                        layer.ffn_out):
                lin.weight.copy_(int8_roundtrip(lin.weight))
                lin.bias.normal_(0, 0.1)                   # (zeros would hide a bias left out)
        for g in m.gate:                                   # the predictors' first Linear too
            g.net[1].weight.copy_(int8_roundtrip(g.net[1].weight))
            g.net[1].bias.normal_(0, 0.1)
    return m


def test_int8_codes_are_found_only_where_exact(cpp):
    assert pruning_model(0)._kernel().int8_linears() == 0          # float32-trained weights
    m = int8_model(0)
    assert m._kernel().int8_linears() == 6 * len(m.layers)
    with torch.no_grad():                                          # one weight off the grid
        m.layers[1].ffn_in.weight[3, 5] += 1e-3
    assert m._kernel().int8_linears() == 6 * len(m.layers) - 1     # rebuilt: version moved


@pytest.mark.parametrize("d", [32, 64])
@pytest.mark.parametrize("n", [1, 2, SMALL_TOKENS, 30, 48])
def test_int8_layers_equal_python(cpp, isa, monkeypatch, n, d):
    """Small layers on int8 codes (linear_small) and, with d = 64, layers on many tokens with
    the int8 panel GEMM (linear_int8_avx512, 6 tokens a block: 30 and 48 leave tails), for the
    skim model and its dense twin."""
    m, x = int8_model(n, d), ids(n, n)
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))
    dense = TranskimmerClassifier(**{**m.config, "skim": False}).eval()
    dense.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("gate.")})
    assert_same(run(dense, x, "cpp", monkeypatch), run(dense, x, "python", monkeypatch))


def wide_predictor_model(seed):
    return pruning_model(seed, predictor_hidden=128)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batches_run_on_pytorch_and_equal_the_python_path(cpp, isa, monkeypatch, seed):
    """Batch > 1 (with padding) never enters the C++ engine (its batched pieces lost to
    PyTorch: bench ops) and gives the Python path's results — also when every row ends at [CLS]
    alone and under force_keep; batch 1 still does."""
    m = pruning_model(seed)
    x = torch.cat([ids(30, seed), ids(30, seed + 5), ids(30, seed + 9)])
    x[1, 17:] = 0
    x[2, 4:] = 0
    built = []
    real_kernel = type(m)._kernel
    monkeypatch.setattr(type(m), "_kernel", lambda self: built.append(1) or real_kernel(self))
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))
    with torch.no_grad():
        for g in m.gate:                                  # skim everything: [CLS] alone
            g.net[-1].bias.copy_(torch.tensor([50.0, -50.0]))
    a = run(m, x, "cpp", monkeypatch)
    assert (a[1].kept_per_layer[:, 1:] == 1).all()
    assert_same(a, run(m, x, "python", monkeypatch))
    m.force_keep = True
    assert_same(run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch))
    assert built == []
    run(m, x[:1], "cpp", monkeypatch)
    assert built


def test_switching_the_avx512_kernels_rebuilds_the_engine(cpp, monkeypatch):
    """The engine's copies depend on the kernels in use (none of float32 weights that run on int8
    codes under AVX-512): switching them between calls on the same model rebuilds it, and both
    give the Python path's result."""
    was = cpp.transkimmer_avx512(-1)
    if not cpp.transkimmer_avx512(1):
        pytest.skip("this CPU has no AVX-512")
    try:
        m, x = int8_model(3, d=64), ids(40, 3)
        ref = run(m, x, "python", monkeypatch)
        for on in (1, 0, 1):
            cpp.transkimmer_avx512(on)
            assert_same(run(m, x, "cpp", monkeypatch), ref)
    finally:
        cpp.transkimmer_avx512(int(was))
