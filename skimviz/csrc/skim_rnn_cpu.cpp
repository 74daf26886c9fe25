// Skim-RNN (Skim-LSTM) inference at batch 1 on the CPU: skimmed tokens run only the small cell.
//
// Seo, Min, Farhadi & Hajishirzi, "Neural Speed Reading via Skim-RNN" (ICLR 2018). The labels
// [D], [R], [S] are those of skimviz/models/skim_rnn.py, whose eval-mode loop (SkimRNN._step_hard
// at batch 1) is the reference. Per token t, with the previous state (h, c) ∈ R^d × R^d:
//   p_t = softmax(W_d [x_t; h] + b_d), p_skim = p_t[1]                                      [D]
//   skim (p_skim > θ, or forced):  the small LSTM cell f' (d' units; W'_ih 4d'×I, W'_hh 4d'×d)
//         reads x_t and the whole h and writes h[0:d'], c[0:d']; h[d':], c[d':] are kept      [S]
//   read: the big LSTM cell f (W_ih 4d×I, W_hh 4d×d) updates all of (h, c)                   [R]
// The decision uses the same float32 operations as PyTorch's log_softmax followed by exp
// (max, log of the summed exps, subtract, exp) and compares p_skim > θ in float32, as the Python
// loop does. The dot products are summed in another order than PyTorch's GEMV, so a token whose
// p_skim lies within float32 rounding (~1e-7) of θ can in principle take the other branch; the
// tests count such mismatches on random weights (none seen).
//
// Cost: a skimmed token is the decision (2 dot products of length I + d) plus a 4d' × (I + d)
// product, ~1/(d/d') of a read token; nothing is allocated per token and no dispatcher call is
// made, so the time follows the FLOPs (the Python loop pays ~30 µs of framework overhead per
// step whichever cell runs). LSTM gate layout and formulas as at::lstm_cell: [i, f, g, o],
// c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').
//
// The SIMD helpers (matvec, dot_simd, lstm_update) are in kernels_common.h, shared with
// skip_rnn_cpu.cpp. Called as torch.ops.skimviz.skim_rnn_forward (same
// extension library as sru_cpu.cpp and skip_rnn_cpu.cpp).
#include <ATen/ATen.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels_common.h"

namespace {

using namespace skimviz_kernels;  // Vec, matvec, dot_simd, lstm_update

void check_shape(const at::Tensor& t, at::IntArrayRef sizes, const char* what) {
  TORCH_CHECK(t.sizes() == sizes, "skim_rnn: ", what, " must have shape ", sizes, ", got ",
              t.sizes());
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat,
              "skim_rnn: all tensors must be float32 CPU tensors (", what, ")");
}

// x: (T, I); big cell w_ih (4d, I), w_hh (4d, d), b_ih, b_hh (4d,); small cell ws_ih (4d', I),
// ws_hh (4d', d), bs_ih, bs_hh (4d',); decision w_d (2, I + d), b_d (2,); h0, c0 (d,);
// skim when p_skim > theta; force: 0 = decide, 1 = read every token, 2 = skim every token.
// Returns {out (T, d), h_T (d,), c_T (d,), skim (T,) in {0, 1}, p_skim (T,)}.
std::vector<at::Tensor> skim_rnn_forward(
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
    const at::Tensor& b_hh, const at::Tensor& ws_ih, const at::Tensor& ws_hh,
    const at::Tensor& bs_ih, const at::Tensor& bs_hh, const at::Tensor& w_d,
    const at::Tensor& b_d, const at::Tensor& h0, const at::Tensor& c0, double theta,
    int64_t force) {
  TORCH_CHECK(x.dim() == 2 && h0.dim() == 1, "skim_rnn: x must be (T, I) and h0 (d,)");
  TORCH_CHECK(ws_hh.dim() == 2 && ws_hh.size(0) % 4 == 0,
              "skim_rnn: ws_hh must be (4d', d)");
  TORCH_CHECK(force >= 0 && force <= 2, "skim_rnn: force must be 0 (none), 1 (read), 2 (skim)");
  const int64_t T = x.size(0), I = x.size(1), d = h0.size(0), d2 = ws_hh.size(0) / 4;
  TORCH_CHECK(0 < d2 && d2 < d, "skim_rnn: the small size d' must be in 1..d-1");
  check_shape(x, {T, I}, "x");
  check_shape(w_ih, {4 * d, I}, "w_ih");
  check_shape(w_hh, {4 * d, d}, "w_hh");
  check_shape(b_ih, {4 * d}, "b_ih");
  check_shape(b_hh, {4 * d}, "b_hh");
  check_shape(ws_ih, {4 * d2, I}, "ws_ih");
  check_shape(ws_hh, {4 * d2, d}, "ws_hh");
  check_shape(bs_ih, {4 * d2}, "bs_ih");
  check_shape(bs_hh, {4 * d2}, "bs_hh");
  check_shape(w_d, {2, I + d}, "w_d");
  check_shape(b_d, {2}, "b_d");
  check_shape(h0, {d}, "h0");
  check_shape(c0, {d}, "c0");

  const at::Tensor xc = x.contiguous(), wi = w_ih.contiguous(), wh = w_hh.contiguous(),
                   bi = b_ih.contiguous(), bh = b_hh.contiguous(), wsi = ws_ih.contiguous(),
                   wsh = ws_hh.contiguous(), bsi = bs_ih.contiguous(), bsh = bs_hh.contiguous(),
                   wd = w_d.contiguous(), bd = b_d.contiguous();
  at::Tensor out = at::empty({T, d}, x.options());
  at::Tensor h = h0.clone(at::MemoryFormat::Contiguous);
  at::Tensor c = c0.clone(at::MemoryFormat::Contiguous);
  at::Tensor skim = at::empty({T}, x.options());
  at::Tensor p_skim = at::empty({T}, x.options());
  std::vector<float> gi(4 * d), gh(4 * d);

  const float* xp = xc.data_ptr<float>();
  const float *wip = wi.data_ptr<float>(), *whp = wh.data_ptr<float>();
  const float *bip = bi.data_ptr<float>(), *bhp = bh.data_ptr<float>();
  const float *wsip = wsi.data_ptr<float>(), *wshp = wsh.data_ptr<float>();
  const float *bsip = bsi.data_ptr<float>(), *bshp = bsh.data_ptr<float>();
  const float *wdp = wd.data_ptr<float>(), *bdp = bd.data_ptr<float>();
  float *hp = h.data_ptr<float>(), *cp = c.data_ptr<float>(), *op = out.data_ptr<float>();
  float *sp = skim.data_ptr<float>(), *pp = p_skim.data_ptr<float>();
  const float th = static_cast<float>(theta);

  for (int64_t t = 0; t < T; ++t) {
    const float* xt = xp + t * I;
    // [D]: logits a_k = W_d[k] · [x_t; h] + b_d[k]; p_skim = exp(log_softmax(a)[1]) computed as
    // PyTorch does: a_1 − max − log(Σ_k exp(a_k − max)), then exp
    const float a0 = dot_simd(wdp, xt, I) + dot_simd(wdp + I, hp, d) + bdp[0];
    const float a1 = dot_simd(wdp + I + d, xt, I) + dot_simd(wdp + 2 * I + d, hp, d) + bdp[1];
    const float mx = std::max(a0, a1);
    const float lse = std::log(std::exp(a0 - mx) + std::exp(a1 - mx));
    const float p = std::exp((a1 - mx) - lse);
    pp[t] = p;
    const bool skimmed = force == 0 ? p > th : force == 2;
    sp[t] = skimmed ? 1.0f : 0.0f;
    if (skimmed) {  // [S]: small cell on x_t and the whole h; writes h[0:d'], c[0:d']
      matvec<dot_simd>(wsip, xt, bsip, 4 * d2, I, gi.data());
      matvec<dot_simd>(wshp, hp, bshp, 4 * d2, d, gh.data());
      lstm_update(gi.data(), gh.data(), d2, hp, cp);
    } else {        // [R]: the big cell
      matvec<dot_simd>(wip, xt, bip, 4 * d, I, gi.data());
      matvec<dot_simd>(whp, hp, bhp, 4 * d, d, gh.data());
      lstm_update(gi.data(), gh.data(), d, hp, cp);
    }
    std::copy(hp, hp + d, op + t * d);
  }
  return {out, h, c, skim, p_skim};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(skimviz, m) {
  m.def("skim_rnn_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, "
        "Tensor ws_ih, Tensor ws_hh, Tensor bs_ih, Tensor bs_hh, Tensor w_d, Tensor b_d, "
        "Tensor h0, Tensor c0, float theta, int force) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(skimviz, CPU, m) { m.impl("skim_rnn_forward", &skim_rnn_forward); }
