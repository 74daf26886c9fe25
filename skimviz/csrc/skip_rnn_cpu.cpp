// Skip RNN inference at batch 1 on the CPU: the loop jumps over skipped steps (Skip RNN Eq. 6).
//
// Campos et al., "Skip RNN: Learning to Skip State Updates in Recurrent Neural Networks" (ICLR
// 2018); equation numbers refer to that paper, and the Python reference is
// SkipRNN._forward_jump in skimviz/models/skip_rnn.py (one layer, GRU or LSTM cell). At an
// updating step t (u_t = 1):
//   s_t      = S(s_{t-1}, x_t)                                 (Eq. 3, the cell, see below)
//   Δũ_t     = σ(W_p s_t + b_p)                                (Eq. 4; s = h, or [h; c] for LSTM)
//   ũ_{t+1}  = Δũ_t                                            (Eq. 5 with u_t = 1)
// then, while ũ < θ, step t' is skipped: out[t'] = h_t (Eq. 3 with u = 0) and
//   ũ_{t'+1} = ũ_{t'} + min(Δũ_t, 1 − ũ_{t'})                  (Eq. 5 with u_t' = 0)
// so skipped steps cost one float32 addition each (Eq. 6), exactly as in the Python loop (same
// float32 operations in the same order, so both take the same decisions). ũ_1 = 1 forces the
// first update; force_update makes every step update (the "own dense run" of the benchmarks).
//
// Cells, with PyTorch's gate order and formulas (at::gru_cell / at::lstm_cell):
//   GRU:  [r, z, n] blocks of W_ih x + b_ih (gi) and W_hh h + b_hh (gh)
//         r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r·gh_n), h' = n + z·(h − n)
//   LSTM: [i, f, g, o] blocks of gi + gh
//         c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c')
// The matrix-vector products are done here (no dispatcher call, no allocation per step), on
// PyTorch's (gates·H, in) layout as SIMD dot products of 8 rows at a time (copying Wᵀ per call
// cost ~50 µs, as much as 15 updates); only W_ih with a small input size (I = 1 for pixel MNIST)
// is transposed, cheaply, so that y += x_j · Wᵀ[j, :] runs over contiguous rows in blocks of
// kAcc SIMD vectors kept in registers. W_ih x is computed only at updating steps (with T = 784 and input size 1 a (T, I) × (I, 3H) GEMM for all steps would do
// more work than the per-update products, and write a (T, 3H) buffer).
//
// Called as torch.ops.skimviz.skip_rnn_forward (same extension module as sru_cpu.cpp).
#include <ATen/ATen.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "kernels_common.h"

namespace {

using namespace skimviz_kernels;  // Vec, sigmoid, matvec, dot_seq
constexpr int64_t kAcc = 8;  // output vectors per register block (8 x 8 floats with AVX2)

// y[0:n] = b[0:n] + sum_j v[j] * WT[j, 0:n]   (WT: (m, n) row-major; y = W v + b for W = WTᵀ).
// For a small input size m (W_ih with I = 1 for pixel MNIST), where a row of W is too short for
// a SIMD dot product.
void matvec_t(const float* WT, const float* v, const float* b, int64_t m, int64_t n, float* y) {
  constexpr int64_t blk = kAcc * Vec::size();
  int64_t o = 0;
  for (; o + blk <= n; o += blk) {
    Vec acc[kAcc];
    for (int64_t k = 0; k < kAcc; ++k) acc[k] = Vec::loadu(b + o + k * Vec::size());
    for (int64_t j = 0; j < m; ++j) {
      const Vec vj(v[j]);
      const float* w = WT + j * n + o;
      for (int64_t k = 0; k < kAcc; ++k)
        acc[k] = at::vec::fmadd(Vec::loadu(w + k * Vec::size()), vj, acc[k]);
    }
    for (int64_t k = 0; k < kAcc; ++k) acc[k].store(y + o + k * Vec::size());
  }
  for (; o < n; o += Vec::size()) {  // the rest, one (possibly partial) vector at a time
    const int64_t c = std::min<int64_t>(Vec::size(), n - o);
    Vec acc = Vec::loadu(b + o, c);
    for (int64_t j = 0; j < m; ++j)
      acc = at::vec::fmadd(Vec::loadu(WT + j * n + o, c), Vec(v[j]), acc);
    acc.store(y + o, c);
  }
}

// One GRU (lstm = false) or LSTM step on h (and c), in place. gi, gh: gate pre-activations.
// The LSTM branch has the formulas of kernels_common.h's lstm_update, but is kept inline here:
// the compiler fuses its multiply-adds differently in this loop (GCC's default -ffp-contract=fast),
// and calling lstm_update instead changes h and c in the last bits, so possibly a decision near θ.
void cell_update(bool lstm, const float* gi, const float* gh, int64_t H, float* h, float* c) {
  for (int64_t j = 0; j < H; j += Vec::size()) {
    const int64_t n = std::min<int64_t>(Vec::size(), H - j);
    const auto ld = [n](const float* p) { return Vec::loadu(p, n); };
    if (!lstm) {
      const Vec r = sigmoid(ld(gi + j) + ld(gh + j));
      const Vec z = sigmoid(ld(gi + H + j) + ld(gh + H + j));
      const Vec nn = (ld(gi + 2 * H + j) + r * ld(gh + 2 * H + j)).tanh();
      (nn + z * (ld(h + j) - nn)).store(h + j, n);
    } else {
      const Vec i = sigmoid(ld(gi + j) + ld(gh + j));
      const Vec f = sigmoid(ld(gi + H + j) + ld(gh + H + j));
      const Vec g = (ld(gi + 2 * H + j) + ld(gh + 2 * H + j)).tanh();
      const Vec o = sigmoid(ld(gi + 3 * H + j) + ld(gh + 3 * H + j));
      const Vec c_new = f * ld(c + j) + i * g;
      c_new.store(c + j, n);
      (o * c_new.tanh()).store(h + j, n);
    }
  }
}

// x: (T, I); w_ih: (G·H, I); w_hh: (G·H, H); b_ih, b_hh: (G·H,), G = 3 (GRU) or 4 (LSTM);
// w_p: (1, S) with S = H (GRU) or 2H (LSTM, reading [h; c]); b_p: (1,); h0, c0: (H,).
// Returns {out (T, H), h_T (H), c_T (H; empty for the GRU), update (T,), ũ (T,)}.
std::vector<at::Tensor> skip_rnn_forward(const at::Tensor& x, const at::Tensor& w_ih,
                                         const at::Tensor& w_hh, const at::Tensor& b_ih,
                                         const at::Tensor& b_hh, const at::Tensor& w_p,
                                         const at::Tensor& b_p, const at::Tensor& h0,
                                         const std::optional<at::Tensor>& c0, double theta,
                                         bool force_update) {
  const bool lstm = c0.has_value();
  TORCH_CHECK(x.dim() == 2 && h0.dim() == 1, "skip_rnn: x must be (T, I) and h0 (H,)");
  const int64_t T = x.size(0), I = x.size(1), H = h0.size(0), G = lstm ? 4 : 3;
  const int64_t S = lstm ? 2 * H : H;
  TORCH_CHECK(w_ih.sizes() == at::IntArrayRef({G * H, I}) &&
                  w_hh.sizes() == at::IntArrayRef({G * H, H}) && b_ih.numel() == G * H &&
                  b_hh.numel() == G * H,
              "skip_rnn: cell weights must be (G*H, I), (G*H, H), biases (G*H,), G = 3 (GRU) "
              "or 4 (LSTM)");
  TORCH_CHECK(w_p.numel() == S && b_p.numel() == 1, "skip_rnn: gate must be (1, S), (1,)");
  TORCH_CHECK(!lstm || c0->sizes() == h0.sizes(), "skip_rnn: c0 must be (H,) like h0");
  std::vector<const at::Tensor*> all = {&x, &w_ih, &w_hh, &b_ih, &b_hh, &w_p, &b_p, &h0};
  if (lstm) all.push_back(&*c0);
  for (const at::Tensor* t : all)
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat,
                "skip_rnn: all tensors must be float32 CPU tensors");

  const at::Tensor xc = x.contiguous(), wp = w_p.contiguous(), bi = b_ih.contiguous(),
                   bh = b_hh.contiguous();
  // W_ih x: a small I uses the transposed product (copying Wᵀ costs next to nothing then; for
  // I = 1 W_ih (G·H, 1) already is Wᵀ in memory). At a low update rate the loop itself is short,
  // so the fixed cost here is kept to a few allocations (no fills, no extra dispatcher calls).
  const bool small_in = I < 2 * Vec::size();
  const at::Tensor wi_c = small_in && I > 1 ? w_ih.t().contiguous() : w_ih.contiguous();
  const at::Tensor wh_c = w_hh.contiguous();
  at::Tensor out = at::empty({T, H}, x.options());
  at::Tensor h = at::empty({H}, x.options());
  at::Tensor c = at::empty({lstm ? H : 0}, x.options());
  at::Tensor update = at::empty({T}, x.options());
  at::Tensor probs = at::empty({T}, x.options());
  std::vector<float> gi(G * H), gh(G * H);
  {
    const at::Tensor h0c = h0.contiguous();
    std::copy(h0c.data_ptr<float>(), h0c.data_ptr<float>() + H, h.data_ptr<float>());
    if (lstm) {
      const at::Tensor c0c = c0->contiguous();
      std::copy(c0c.data_ptr<float>(), c0c.data_ptr<float>() + H, c.data_ptr<float>());
    }
  }

  const float* xp = xc.data_ptr<float>();
  const float* wi = wi_c.data_ptr<float>();
  const float* wh = wh_c.data_ptr<float>();
  const float* bip = bi.data_ptr<float>();
  const float* bhp = bh.data_ptr<float>();
  const float* wpp = wp.data_ptr<float>();
  const float bp = *b_p.contiguous().data_ptr<float>();
  float* hp = h.data_ptr<float>();
  float* cp = lstm ? c.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  float* up = update.data_ptr<float>();
  float* pp = probs.data_ptr<float>();
  const float th = static_cast<float>(theta), one = 1.0f;

  float u_tilde = one;  // ũ_1 = 1 (float32 SSE arithmetic, no fast-math: rounded like numpy's)
  int64_t t = 0;
  while (t < T) {
    pp[t] = u_tilde;
    if (small_in)
      matvec_t(wi, xp + t * I, bip, I, G * H, gi.data());  // W_ih x_t + b_ih
    else
      matvec<dot_seq>(wi, xp + t * I, bip, G * H, I, gi.data());
    matvec<dot_seq>(wh, hp, bhp, G * H, H, gh.data());     // W_hh h + b_hh
    cell_update(lstm, gi.data(), gh.data(), H, hp, cp);    // s_t = S(s_{t-1}, x_t)   (Eq. 3)
    const float a =
        lstm ? dot_seq(wpp, hp, H) + dot_seq(wpp + H, cp, H) : dot_seq(wpp, hp, H);
    const float delta = one / (one + std::exp(-(a + bp)));  // Δũ_t (Eq. 4)
    up[t] = one;
    u_tilde = delta;
    const int64_t t0 = t++;
    while (t < T && !(force_update || u_tilde >= th)) {      // u_t = 0: skipped (Eq. 6)
      pp[t] = u_tilde;
      u_tilde = u_tilde + std::min(delta, one - u_tilde);    // Eq. 5
      ++t;
    }
    for (int64_t s = t0; s < t; ++s) std::copy(hp, hp + H, op + s * H);
    std::fill(up + t0 + 1, up + t, 0.0f);
  }
  return {out, h, c, update, probs};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(skimviz, m) {
  m.def("skip_rnn_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, "
        "Tensor w_p, Tensor b_p, Tensor h0, Tensor? c0, float theta, bool force_update) "
        "-> Tensor[]");
}

TORCH_LIBRARY_IMPL(skimviz, CPU, m) { m.impl("skip_rnn_forward", &skip_rnn_forward); }
