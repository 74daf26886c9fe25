"""Measure the choices of the Transkimmer CPU engine (skimviz/csrc/transkimmer_cpu.cpp) one by
one, on a shipped model's first layer, one thread:

    python experiments/transkimmer_engine_parts.py [--name transkimmer-minilm-sst2] [--reps 60]

* a layer with ATen operators, its Linears as ``F.linear(x, W)`` (PyTorch's layout) and as
  ``addmm(b, x, Wᵀ)`` with Wᵀ stored K × N (the engine's), on n = 128, 54 and 9 tokens;
* attention as ``scaled_dot_product_attention`` and as baddbmm → softmax → bmm (the engine's);
* a layer on one token: the float32 kernel (``transkimmer_layer``);
* where the CPU has AVX-512: the whole model without predictors (every layer, as the dense twin runs) on n = 128, 54 and 9 tokens,
  with the engine's AVX-512 kernels off and on (``transkimmer_avx512``; on, layers on more than
  8 tokens multiply by int8 codes in panels where the weights are such codes).
Before every timed call a 40 MB buffer is written, so the weights come from the last-level
cache or memory, not L1/L2, as between the calls of ``bench transkimmer``. Medians in µs.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from skimviz import _ext
from skimviz.training import checkpoint  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="transkimmer-minilm-sst2")
    ap.add_argument("--reps", type=int, default=60)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, _ = checkpoint.load(args.name)
    L, d, H = model.layers[0], model.config["hidden"], model.config["heads"]
    lins = [L.query, L.key, L.value, L.attn_out, L.ffn_in, L.ffn_out]
    wt = [m.weight.detach().t().contiguous() for m in lins]
    junk = torch.empty(10 << 20)

    def us(fn) -> float:
        ts = []
        for _ in range(args.reps):
            junk.add_(1.0)
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(ts)

    def layer(h, lin, attn):
        n = h.shape[0]
        q, k, v = (lin(i, h).view(n, H, d // H).transpose(0, 1) for i in range(3))
        a = attn(q, k, v).transpose(0, 1).reshape(n, d)
        x = F.layer_norm(h + lin(3, a), (d,), L.attn_norm.weight, L.attn_norm.bias,
                         L.attn_norm.eps)
        return F.layer_norm(x + lin(5, F.gelu(lin(4, x))), (d,), L.ffn_norm.weight,
                            L.ffn_norm.bias, L.ffn_norm.eps)

    def by_w(i, x):
        return F.linear(x, lins[i].weight, lins[i].bias)

    def by_wt(i, x):
        return torch.addmm(lins[i].bias, x, wt[i])

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q[None], k[None], v[None])[0]

    def bmm(q, k, v):
        s = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1]), q,
                          k.transpose(1, 2), beta=0.0, alpha=1 / math.sqrt(d // H))
        return torch.bmm(s.softmax(-1), v)

    print(f"{args.name}: layer 0 (d = {d}, {H} heads), one thread, caches evicted before each "
          f"call; median µs of {args.reps}")
    with torch.inference_mode():
        for n in (128, 54, 9):
            h = torch.randn(n, d)
            a, b = us(lambda: layer(h, by_w, sdpa)), us(lambda: layer(h, by_wt, sdpa))
            q, k, v = (torch.randn(H, n, d // H) for _ in range(3))
            c, e = us(lambda: sdpa(q, k, v)), us(lambda: bmm(q, k, v))
            print(f"n = {n:3d}: layer, Linears on W {a:8.0f}, on Wt {b:8.0f} ({100 * (b / a - 1):+.0f} %)"
                  f"; attention, SDPA {c:6.0f}, baddbmm+softmax+bmm {e:6.0f} ({100 * (e / c - 1):+.0f} %)")
        ops = _ext.load()
        if ops is None:
            print("one token: the C++ extension is not built (python -m skimviz._ext build)")
            return 0
        k = model._kernel()
        h = torch.randn(1, d)
        f32 = us(lambda: ops.transkimmer_layer(h, L.weights(), H, L.attn_norm.eps))
        print(f"one token: float32 kernel {f32:.0f} ({k.int8_linears()} of "
              f"{6 * len(model.layers)} Linears as int8 codes in the engine)")
        was = ops.transkimmer_avx512(-1)
        if not ops.transkimmer_avx512(1):
            print("AVX-512: not on this CPU")
            return 0
        t = {}
        for n in (128, 54, 9):
            ids = torch.randint(5, model.config["vocab_size"], (n,))
            ids[0] = 1
            try:
                for on in (0, 1):
                    ops.transkimmer_avx512(on)
                    t[on] = us(lambda: k.infer(ids, False, False, -1))
            finally:
                ops.transkimmer_avx512(int(was))
            print(f"AVX-512 off → on: all {len(model.layers)} layers on {n:3d} tokens, no "
                  f"predictors: {t[0]:.0f} → {t[1]:.0f} ({100 * (t[1] / t[0] - 1):+.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
