// Skip RNN training on the CPU: a fused forward over all T steps (every step computed and blended,
// Eq. 3, as the straight-through gradient needs) and a hand-written backward through time.
//
// Campos et al., "Skip RNN: Learning to Skip State Updates in Recurrent Neural Networks" (ICLR
// 2018); equation numbers refer to that paper. The Python reference is SkipRNN._forward_blend in
// skimviz/models/skip_rnn.py (one layer, GRU or LSTM cell, learned or given s_0); per step t
//   u_t      = [ũ_t ≥ θ] (or 1 with force_update), ũ_1 = 1          (Eq. 2, round() for θ = 0.5)
//   s_t      = u_t · S(s_{t-1}, x_t) + (1 − u_t) · s_{t-1}           (Eq. 3)
//   Δũ_t     = σ(W_p s_t + b_p), s = h (GRU) or [h; c] (LSTM)        (Eq. 4)
//   ũ_{t+1}  = u_t · Δũ_t + (1 − u_t) · (ũ_t + min(Δũ_t, 1 − ũ_t))   (Eq. 5)
// and the outputs are h_t (B, T, H), c_T (LSTM), ũ_t and u_t (B, T) — the trace's update_prob
// and update, both differentiable: the budget loss λ·Σ u_t (Eq. 8) reaches the gate through
// ∂u/∂ũ := 1 (straight-through, Eq. 7). Cells as at::gru_cell / at::lstm_cell compute them:
//   GRU:  [r, z, n] blocks of gi = W_ih x + b_ih and gh = W_hh h + b_hh
//         r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r·gh_n), h' = n + z·(h − n)
//   LSTM: [i, f, g, o] blocks of gi + gh; c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c')
//
// Backward, per step t from T down to 1, with g_s = ∂L/∂s_t (output, future, and the gate's share
// W_pᵀ·∂L/∂a_t added first) and g_ũ = ∂L/∂ũ_{t+1}:
//   ∂L/∂Δũ_t = g_ũ · (u + (1 − u)·[Δũ < 1 − ũ]),  ∂L/∂a_t = ∂L/∂Δũ_t · Δũ(1 − Δũ)
//   ∂L/∂u_t  = ∂L/∂update_t + g_s·(S(s_{t-1}, x_t) − s_{t-1}) + g_ũ · (Δũ − ũ − min(Δũ, 1 − ũ))
//   ∂L/∂ũ_t  = ∂L/∂update_prob_t + ∂L/∂u_t (Eq. 7) + (1 − u)·(1 − [1 − ũ < Δũ]) · g_ũ
//   the cell's backward on u·g_s, and (1 − u)·g_s carried to s_{t-1}
// (torch.minimum's gradient: a tie gives each side half, as here). S(s_{t-1}, x_t) − s_{t-1} is
// needed where u_t = 0 too, which is why training computes every step.
//
// Layout and threads. Batch rows are independent through time (only the weights are shared), so
// the batch is split into one block of rows per thread (`chunk` rows, the same split in the
// backward) and each thread runs all T steps on its block with no synchronisation: per step one
// GEMM h W_hhᵀ (forward) or dG W_hh (backward) on its rows, single-threaded inside the parallel
// region, and the elementwise work fused in one pass over each row (at::vec SIMD). States are
// time-major, S (T+1, B, H) with S[0] = s_0 (and C for the LSTM), so a block's rows at step t are
// contiguous. The forward saves per (t, b) the cell's activations in a row of A (K wide):
// [r, z, n, gh_n] (GRU, K = 4H) or [i, f, g, o, tanh c'] (LSTM, K = 5H); the backward writes the
// pre-activation gradients over them, [dr, dz, dn·r, dn] (GRU: dgh = the first 3H, dgi = dr, dz,
// dn) or [di, df, dg, do], and ∂L/∂W_hh = dghᵀ · h_{t-1} is then ONE GEMM per block over all its
// steps after the loop (MKL on all threads), not a GEMM per step.
// * I ≤ kSmallInput (pixel MNIST: I = 1): W_ih x is done in the row pass, and ∂L/∂W_ih, ∂L/∂x are
//   accumulated there. A block's rows of A are stored in the order the backward works through
//   them (t descending), so it can pack the rows of the steps that update, [dgh | h_{t-1}], at the
//   start of the block's region as it goes: a row that skips (u_t = 0) has dG = 0, and the
//   per-step GEMM and the ∂W_hh GEMM see only the updating rows. A trained Skip GRU updates at
//   ~50–70 % of the steps, so this saves a third to a half of the backward's GEMM work.
// * A larger I: one GEMM x (T·B, I) W_ihᵀ before the loop, A time-major (row t·B + b) and
//   GEMMs after it for ∂L/∂W_ih, ∂L/∂x and ∂L/∂W_hh over all T·B rows.
// Bias and gate gradients are summed per block in the row pass and added in row order afterwards
// (deterministic whatever thread ran which block).
//
// GEMMs call the BLAS that libtorch_cpu exports (MKL's sgemm_/dgemm_, weak symbols: no dispatcher
// call or tensor per step); without it, or with skip_rnn_train_blas(0), at::mm_out / addmm_ on
// from_blob views. float32 and float64 (gradcheck). Called as torch.ops.skimviz.
// skip_rnn_train_forward / _backward from skimviz/ops/skip_rnn.py (SkipRNNTrainFunction).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "kernels_common.h"

extern "C" {
// Fortran BLAS (LP64), exported by libtorch_cpu when torch is built with MKL; weak, so a torch
// without them still loads this library (gemm() then goes through ATen).
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*,
            const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*) __attribute__((weak));
}

namespace {

constexpr int64_t kSmallInput = 8;  // I up to this: W_ih x in the row pass (no (T, B, GH) buffer)
std::atomic<bool> g_direct_blas{true};

template <typename T>
using Vec = at::vec::Vectorized<T>;

template <typename T>
bool blas_available();
template <>
bool blas_available<float>() { return sgemm_ != nullptr; }
template <>
bool blas_available<double>() { return dgemm_ != nullptr; }

template <typename T>
void fortran_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                  const T* alpha, const T* a, const int* lda, const T* b, const int* ldb,
                  const T* beta, T* c, const int* ldc);
template <>
void fortran_gemm<float>(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                         const float* alpha, const float* a, const int* lda, const float* b,
                         const int* ldb, const float* beta, float* c, const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
template <>
void fortran_gemm<double>(const char* ta, const char* tb, const int* m, const int* n,
                          const int* k, const double* alpha, const double* a, const int* lda,
                          const double* b, const int* ldb, const double* beta, double* c,
                          const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Row-major C (M×N, ldc) = op(A) op(B) + beta·C, op(A) M×K (stored K×M when ta), op(B) K×N
// (stored N×K when tb). Column-major BLAS sees Cᵀ = op(B)ᵀ op(A)ᵀ. Inside a parallel region it
// runs on the calling thread (torch's OpenMP has no nested parallelism).
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const bool fits = std::max({M, N, K, lda, ldb, ldc}) < INT_MAX;
  if (g_direct_blas.load(std::memory_order_relaxed) && blas_available<T>() && fits) {
    const char ca = tb ? 'T' : 'N', cb = ta ? 'T' : 'N';
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T one = 1;
    fortran_gemm<T>(&ca, &cb, &m, &n, &k, &one, B, &la, A, &lb, &beta, C, &lc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  auto view = [&](const T* p, int64_t r, int64_t c, int64_t ld, bool t) {
    return t ? at::from_blob(const_cast<T*>(p), {r, c}, {1, ld}, opts)
             : at::from_blob(const_cast<T*>(p), {r, c}, {ld, 1}, opts);
  };
  at::Tensor a = view(A, M, K, lda, ta), b = view(B, K, N, ldb, tb);
  at::Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (beta == T(0))
    at::mm_out(c, a, b);
  else
    c.addmm_(a, b, beta, 1);
}

// ---- small vector helpers over n elements (SIMD, partial last vector) ----------------------
template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  Vec<T> acc(T(0));
  for (int64_t j = 0; j < n; j += Vec<T>::size()) {
    const int64_t c = std::min<int64_t>(Vec<T>::size(), n - j);
    acc = at::vec::fmadd(Vec<T>::loadu(a + j, c), Vec<T>::loadu(b + j, c), acc);
  }
  T lanes[Vec<T>::size()];
  acc.store(lanes);
  T s = 0;
  for (int64_t l = 0; l < Vec<T>::size(); ++l) s += lanes[l];
  return s;
}

template <typename T>
void axpy(T a, const T* x, T* y, int64_t n) {  // y += a·x
  const Vec<T> va(a);
  for (int64_t j = 0; j < n; j += Vec<T>::size()) {
    const int64_t c = std::min<int64_t>(Vec<T>::size(), n - j);
    at::vec::fmadd(va, Vec<T>::loadu(x + j, c), Vec<T>::loadu(y + j, c)).store(y + j, c);
  }
}

template <typename T>
void add_to(const T* x, T* y, int64_t n) {  // y += x
  for (int64_t j = 0; j < n; j += Vec<T>::size()) {
    const int64_t c = std::min<int64_t>(Vec<T>::size(), n - j);
    (Vec<T>::loadu(y + j, c) + Vec<T>::loadu(x + j, c)).store(y + j, c);
  }
}

// Σ g[j]·(a[j] − b[j])
template <typename T>
T dot_diff(const T* g, const T* a, const T* b, int64_t n) {
  Vec<T> acc(T(0));
  for (int64_t j = 0; j < n; j += Vec<T>::size()) {
    const int64_t c = std::min<int64_t>(Vec<T>::size(), n - j);
    acc = at::vec::fmadd(Vec<T>::loadu(g + j, c), Vec<T>::loadu(a + j, c) - Vec<T>::loadu(b + j, c),
                         acc);
  }
  T lanes[Vec<T>::size()];
  acc.store(lanes);
  T s = 0;
  for (int64_t l = 0; l < Vec<T>::size(); ++l) s += lanes[l];
  return s;
}

// ---- the problem: read-only model, input and buffers ---------------------------------------
template <typename T>
struct Net {
  int64_t B = 0, T_ = 0, I = 0, H = 0, G = 0, K = 0;  // G gates (3 GRU, 4 LSTM), K saved width
  int64_t chunk = 1;  // batch rows per thread's block (the same in the forward and the backward)
  bool lstm = false, small_in = true;
  const T* x = nullptr;  // (B, T, I) with strides
  int64_t sxb = 0, sxt = 0, sxi = 0;
  const T* gi_all = nullptr;  // large I: (T, B, GH) = x W_ihᵀ + b_ih; else nullptr
  const T* wihT = nullptr;    // small I: (I, GH) = W_ihᵀ
  const T* bih = nullptr;     // (GH)
  const T* whh = nullptr;     // (GH, H) row-major (PyTorch's layout)
  const T* bhh = nullptr;     // (GH)
  const T* wp = nullptr;      // (S·H): W_p's h part, then its c part (LSTM)
  T bp = 0;
  int64_t GH() const { return G * H; }
  int64_t xoff(int64_t b, int64_t t) const { return b * sxb + t * sxt; }
  // The row of A that holds step t of batch row b. Large input: time-major, t·B + b (A's GEMMs
  // pair its rows with x's). Small input: each block of rows [b0, b0 + R) has the region
  // [b0·T, (b0 + R)·T) in the backward's order of work (t from T − 1 down, then the rows), so
  // that the backward can pack the gradients of the updating rows in place (see backward_rows).
  int64_t arow(int64_t t, int64_t b) const {
    if (!small_in) return t * B + b;
    const int64_t b0 = b / chunk * chunk, R = std::min(chunk, B - b0);
    return b0 * T_ + (T_ - 1 - t) * R + (b - b0);
  }
};

template <typename T>
struct Saved {  // written by the forward, read (A: overwritten) by the backward
  T* S = nullptr;      // (T+1, B, H) h_t, S[0] = h_0
  T* C = nullptr;      // (T+1, B, H) c_t (LSTM)
  T* A = nullptr;      // T·B rows of K (Net::arow): activations, then pre-activation gradients
  T* sc = nullptr;     // (T, B, 3): ũ_t, u_t, Δũ_t (time-major: a block's rows are adjacent)
};

// One cell step for one row: gh = W_hh h (without b_hh) and the input's gate pre-activations,
// gi (a large input: W_ih x + b_ih precomputed) or, from xp (row b, step t of x), b_ih + W_ih x
// here → the candidate h' (and c'), and the activations the backward needs into sv.
template <typename T>
void cell_forward(const Net<T>& n, const T* gi, const T* xp, const T* gh, const T* hp,
                  const T* cp, T* hout, T* cout, T* sv) {
  using V = Vec<T>;
  using skimviz_kernels::fast_sigmoid;
  using skimviz_kernels::fast_tanh;
  const int64_t H = n.H, GH = n.GH();
  const T* bh = n.bhh;
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t c = std::min<int64_t>(V::size(), H - j);
    const auto ld = [c](const T* p) { return V::loadu(p, c); };
    const auto in = [&](int64_t k) {  // block k of the input's pre-activation at j
      if (gi) return ld(gi + k * H + j);
      V acc = ld(n.bih + k * H + j);
      for (int64_t i = 0; i < n.I; ++i)
        acc = at::vec::fmadd(V(xp[i * n.sxi]), ld(n.wihT + i * GH + k * H + j), acc);
      return acc;
    };
    if (!n.lstm) {
      const V r = fast_sigmoid(in(0) + (ld(gh + j) + ld(bh + j)));
      const V z = fast_sigmoid(in(1) + (ld(gh + H + j) + ld(bh + H + j)));
      const V ghn = ld(gh + 2 * H + j) + ld(bh + 2 * H + j);
      const V nn = fast_tanh(in(2) + r * ghn);
      (nn + z * (ld(hp + j) - nn)).store(hout + j, c);
      r.store(sv + j, c);
      z.store(sv + H + j, c);
      nn.store(sv + 2 * H + j, c);
      ghn.store(sv + 3 * H + j, c);
    } else {
      const V i = fast_sigmoid(in(0) + (ld(gh + j) + ld(bh + j)));
      const V f = fast_sigmoid(in(1) + (ld(gh + H + j) + ld(bh + H + j)));
      const V g = fast_tanh(in(2) + (ld(gh + 2 * H + j) + ld(bh + 2 * H + j)));
      const V o = fast_sigmoid(in(3) + (ld(gh + 3 * H + j) + ld(bh + 3 * H + j)));
      const V cn = f * ld(cp + j) + i * g;
      const V tc = fast_tanh(cn);
      cn.store(cout + j, c);
      (o * tc).store(hout + j, c);
      i.store(sv + j, c);
      f.store(sv + H + j, c);
      g.store(sv + 2 * H + j, c);
      o.store(sv + 3 * H + j, c);
      tc.store(sv + 4 * H + j, c);
    }
  }
}

// The candidate S(s_{t-1}, x_t) rebuilt from the saved activations (backward, rows with u = 0).
template <typename T>
void cell_candidate(const Net<T>& n, const T* sv, const T* hp, const T* cp, T* hout, T* cout) {
  using V = Vec<T>;
  const int64_t H = n.H;
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t c = std::min<int64_t>(V::size(), H - j);
    const auto ld = [c](const T* p) { return V::loadu(p, c); };
    if (!n.lstm) {
      const V nn = ld(sv + 2 * H + j);
      (nn + ld(sv + H + j) * (ld(hp + j) - nn)).store(hout + j, c);
    } else {
      (ld(sv + H + j) * ld(cp + j) + ld(sv + j) * ld(sv + 2 * H + j)).store(cout + j, c);
      (ld(sv + 3 * H + j) * ld(sv + 4 * H + j)).store(hout + j, c);
    }
  }
}

template <typename T>
void forward_rows(const Net<T>& n, const Saved<T>& s, T* out, T theta, bool force, int64_t b0,
                  int64_t b1) {
  const int64_t R = b1 - b0, B = n.B, Tn = n.T_, H = n.H, GH = n.GH(), K = n.K;
  std::vector<T> gh(R * GH), hc(H), cc(H), ut(R, T(1));  // ũ_1 = 1
  const T one = 1;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hprev = s.S + (t * B + b0) * H;
    gemm<T>(false, true, R, GH, H, hprev, H, n.whh, H, T(0), gh.data(), GH);  // h W_hhᵀ
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = b0 + r, bt = b * Tn + t, row = t * B + b;  // row: of S, C, gi_all, sc
      const T u_tilde = ut[r];
      const bool up = force || u_tilde >= theta;  // Eq. 2
      T* sc = s.sc + row * 3;
      sc[0] = u_tilde;
      sc[1] = up ? one : T(0);
      const T* gir = n.gi_all ? n.gi_all + row * GH : nullptr;
      const T* hp = hprev + r * H;
      T* hs = s.S + (row + B) * H;
      const T* cp = n.lstm ? s.C + row * H : nullptr;
      T* cs = n.lstm ? s.C + (row + B) * H : nullptr;
      // S(s_{t-1}, x_t), written straight into s_t where u_t = 1 (Eq. 3)
      cell_forward(n, gir, n.x + n.xoff(b, t), gh.data() + r * GH, hp, cp, up ? hs : hc.data(),
                   up ? cs : cc.data(), s.A + n.arow(t, b) * K);
      if (!up) {
        std::copy(hp, hp + H, hs);
        if (n.lstm) std::copy(cp, cp + H, cs);
      }
      std::copy(hs, hs + H, out + bt * H);
      const T a = (n.lstm ? dot(n.wp, hs, H) + dot(n.wp + H, cs, H) : dot(n.wp, hs, H)) + n.bp;
      const T d = one / (one + std::exp(-a));  // Δũ_t (Eq. 4)
      sc[2] = d;
      ut[r] = up ? d : u_tilde + std::min(d, one - u_tilde);  // Eq. 5
    }
  }
}

// Per-thread sums of the parameter gradients that the row pass accumulates.
template <typename T>
struct Partial {
  int64_t b0 = 0, packed = 0;  // small input: rows of dG packed at the block's region start
  std::vector<T> gwp, gbi, gbhn, gwihT;  // W_p (S·H); Σ dgi (GH); Σ dn·r (GRU, H); W_ihᵀ (I·GH)
  T gbp = 0;
};

template <typename T>
struct Upstream {  // gradients arriving at the outputs (nullptr: none)
  const T* out = nullptr;     // (B, T, H)
  const T* cn = nullptr;      // (B, H)
  const T* probs = nullptr;   // (B, T)
  const T* update = nullptr;  // (B, T)
};

// The cell's backward for one row with u_t = 1: g_h = ∂L/∂h' (and g_c = ∂L/∂c', updated in place
// to ∂L/∂c_{t-1}); sv: the saved activations; dg: where the pre-activation gradients go, sv itself
// or a row before it (each vector of sv is read before dg is written). gsn = ∂L/∂h_{t-1} before
// the W_hh product (z·g_h for the GRU, 0 for the LSTM). Also the bias sums and, for a small
// input, ∂L/∂W_ih and ∂L/∂x (gx: I values, or nullptr).
template <typename T>
void cell_backward(const Net<T>& n, const T* gs, T* gc, const T* hp, const T* cp, const T* sv,
                   T* dg, T* gsn, Partial<T>& p, const T* xp, T* gx) {
  using V = Vec<T>;
  const int64_t H = n.H, GH = n.GH(), I = n.small_in ? n.I : 0;
  const V one(T(1));
  V gx_acc[kSmallInput];
  for (int64_t i = 0; i < I; ++i) gx_acc[i] = V(T(0));
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t c = std::min<int64_t>(V::size(), H - j);
    const auto ld = [c](const T* q) { return V::loadu(q, c); };
    const auto acc = [c](T* q, const V& v) { (V::loadu(q, c) + v).store(q, c); };
    const V gh = ld(gs + j);
    V d[4];  // dgi blocks
    if (!n.lstm) {
      const V r = ld(sv + j), z = ld(sv + H + j), nn = ld(sv + 2 * H + j),
              ghn = ld(sv + 3 * H + j);
      const V gz = gh * (ld(hp + j) - nn);
      const V gnp = gh * (one - z) * (one - nn * nn);
      (gh * z).store(gsn + j, c);
      d[0] = gnp * ghn * r * (one - r);
      d[1] = gz * z * (one - z);
      d[2] = gnp;
      const V gnr = gnp * r;
      d[0].store(dg + j, c);
      d[1].store(dg + H + j, c);
      gnr.store(dg + 2 * H + j, c);  // dgh_n
      gnp.store(dg + 3 * H + j, c);  // dgi_n
      acc(p.gbhn.data() + j, gnr);
    } else {
      const V i = ld(sv + j), f = ld(sv + H + j), g = ld(sv + 2 * H + j), o = ld(sv + 3 * H + j),
              tc = ld(sv + 4 * H + j);
      const V gcc = ld(gc + j) + gh * o * (one - tc * tc);
      (gcc * f).store(gc + j, c);
      V(T(0)).store(gsn + j, c);
      d[0] = gcc * g * i * (one - i);
      d[1] = gcc * ld(cp + j) * f * (one - f);
      d[2] = gcc * i * (one - g * g);
      d[3] = gh * tc * o * (one - o);
      for (int k = 0; k < 4; ++k) d[k].store(dg + k * H + j, c);
    }
    for (int64_t k = 0; k < n.G; ++k) {
      acc(p.gbi.data() + k * H + j, d[k]);
      for (int64_t ii = 0; ii < I; ++ii) {
        T* w = p.gwihT.data() + ii * GH + k * H + j;
        at::vec::fmadd(V(xp[ii * n.sxi]), d[k], V::loadu(w, c)).store(w, c);
        if (gx) gx_acc[ii] = at::vec::fmadd(V::loadu(n.wihT + ii * GH + k * H + j, c), d[k],
                                            gx_acc[ii]);
      }
    }
  }
  for (int64_t ii = 0; gx && ii < I; ++ii) {
    T lanes[V::size()];
    gx_acc[ii].store(lanes);
    T sum = 0;
    for (int64_t l = 0; l < V::size(); ++l) sum += lanes[l];
    gx[ii] = sum;
  }
}

template <typename T>
void backward_rows(const Net<T>& n, const Saved<T>& s, const Upstream<T>& g, bool straight,
                   T* gx, T* gh0, T* gc0, Partial<T>& p, int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, B = n.B, Tn = n.T_, H = n.H, GH = n.GH(), K = n.K;
  const int64_t SH = n.lstm ? 2 * H : H;
  p.b0 = b0;
  p.gwp.assign(SH, T(0));
  p.gbi.assign(GH, T(0));
  p.gbhn.assign(n.lstm ? 0 : H, T(0));
  p.gwihT.assign(n.small_in ? n.I * GH : 0, T(0));
  std::vector<T> gS(R * H, T(0)), gSn(R * H), gC(n.lstm ? R * H : 0, T(0)), gU(R, T(0));
  std::vector<T> hc(H), cc(H), tmp(R * H);
  std::vector<int64_t> ups(R);  // the block's rows that update at step t
  T* const packed = s.A + b0 * Tn * K;  // small input: this block's region of A
  if (n.lstm && g.cn)
    for (int64_t r = 0; r < R; ++r) std::copy(g.cn + (b0 + r) * H, g.cn + (b0 + r + 1) * H, &gC[r * H]);
  const T one = 1, half = T(0.5);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const int64_t first = p.packed;
    int64_t nup = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = b0 + r, bt = b * Tn + t, row = t * B + b;
      T* gs = gS.data() + r * H;
      T* gsn = gSn.data() + r * H;
      T* gc = n.lstm ? gC.data() + r * H : nullptr;
      const T* hp = s.S + row * H;
      const T* hs = hp + B * H;
      const T* cp = n.lstm ? s.C + row * H : nullptr;
      const T* cs = n.lstm ? cp + B * H : nullptr;
      T* sv = s.A + n.arow(t, b) * K;
      if (g.out) add_to(g.out + bt * H, gs, H);
      const T* sc = s.sc + row * 3;
      const T u_tilde = sc[0], d = sc[2], m = one - u_tilde;
      const bool up = sc[1] != T(0);
      // torch.minimum(Δũ, 1 − ũ): the smaller side gets the gradient, a tie half each
      const T to_d = d < m ? one : (d > m ? T(0) : half);
      const T gun = gU[r];  // ∂L/∂ũ_{t+1}
      const T ga = gun * (up ? one : to_d) * d * (one - d);  // ∂L/∂a_t, a = W_p s_t + b_p
      p.gbp += ga;
      axpy(ga, hs, p.gwp.data(), H);
      axpy(ga, n.wp, gs, H);
      if (n.lstm) {
        axpy(ga, cs, p.gwp.data() + H, H);
        axpy(ga, n.wp + H, gc, H);
      }
      T gut = (g.probs ? g.probs[bt] : T(0)) + (up ? T(0) : to_d * gun);  // ∂L/∂ũ_t
      if (straight) {  // ∂L/∂u_t, passed to ũ_t unchanged (Eq. 7)
        T gu = (g.update ? g.update[bt] : T(0)) + gun * (d - (u_tilde + std::min(d, m)));
        const T* hn = hs;  // S(s_{t-1}, x_t): s_t itself where u = 1
        const T* cn = cs;
        if (!up) {
          cell_candidate(n, sv, hp, cp, hc.data(), cc.data());
          hn = hc.data();
          cn = cc.data();
        }
        gu += dot_diff(gs, hn, hp, H);
        if (n.lstm) gu += dot_diff(gc, cn, cp, H);
        gut += gu;
      }
      gU[r] = gut;
      T* gxr = gx && n.small_in ? gx + bt * n.I : nullptr;
      if (up) {
        // small input: packed as row p.packed of the region (≤ this row's own, all of which
        // before it are read), with h_{t-1} after dgh for the ∂W_hh GEMM
        T* dg = n.small_in ? packed + p.packed * K : sv;
        cell_backward(n, gs, gc, hp, cp, sv, dg, gsn, p, n.x + n.xoff(b, t), gxr);
        if (n.small_in) std::copy(hp, hp + H, dg + GH), ++p.packed;
        ups[nup++] = r;
      } else {  // s_t = s_{t-1}: the gradient passes unchanged, the cell gets none
        if (!n.small_in) std::fill(sv, sv + 4 * H, T(0));  // dG (and the GRU's dgi_n)
        std::copy(gs, gs + H, gsn);
        if (gxr) std::fill(gxr, gxr + n.I, T(0));
      }
    }
    // ∂L/∂h_{t-1} += dgh W_hh (dgh: the first GH of each saved row): for all the block's rows,
    // or only the updating ones, packed (a skipped row's dgh is 0)
    if (!n.small_in) {
      gemm<T>(false, false, R, H, GH, s.A + (t * B + b0) * K, K, n.whh, H, T(1), gSn.data(), H);
    } else if (nup == R) {
      gemm<T>(false, false, R, H, GH, packed + first * K, K, n.whh, H, T(1), gSn.data(), H);
    } else if (nup > 0) {
      gemm<T>(false, false, nup, H, GH, packed + first * K, K, n.whh, H, T(0), tmp.data(), H);
      for (int64_t i = 0; i < nup; ++i) add_to(tmp.data() + i * H, gSn.data() + ups[i] * H, H);
    }
    std::swap(gS, gSn);
  }
  std::copy(gS.begin(), gS.end(), gh0 + b0 * H);
  if (n.lstm) std::copy(gC.begin(), gC.end(), gc0 + b0 * H);
}

// Chunks of whole batch rows, one per thread; small problems (fewer than kMinRows rows a thread
// or ~1M multiply-adds of W_hh products in all) on one thread, where waking the others would
// cost more than it saves.
constexpr int64_t kMinRows = 4, kMinWork = 1 << 20;
int64_t chunk_rows(int64_t B, int64_t T, int64_t GH, int64_t H) {
  const int64_t nt = std::max<int64_t>(1, at::get_num_threads());
  if (B * T * GH * H < kMinWork) return B;
  return std::max<int64_t>(kMinRows, (B + nt - 1) / nt);
}

void check_float_cpu(const std::vector<const at::Tensor*>& ts, at::ScalarType st) {
  for (const at::Tensor* t : ts)
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == st,
                "skip_rnn_train: all tensors must be CPU tensors of the input's dtype "
                "(float32 or float64)");
}

struct Dims {
  int64_t B, T, I, H, G;
  bool lstm;
};

Dims check_weights(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh,
                   const at::Tensor& w_p, bool lstm) {
  TORCH_CHECK(x.dim() == 3, "skip_rnn_train: x must be (B, T, I)");
  const int64_t G = lstm ? 4 : 3, H = w_hh.size(-1);
  Dims d{x.size(0), x.size(1), x.size(2), H, G, lstm};
  TORCH_CHECK(d.T >= 1 && d.B >= 1, "skip_rnn_train: need at least one row and one step");
  TORCH_CHECK(w_ih.sizes() == at::IntArrayRef({G * H, d.I}) &&
                  w_hh.sizes() == at::IntArrayRef({G * H, H}),
              "skip_rnn_train: weights must be (G*H, I) and (G*H, H), G = 3 (GRU) or 4 (LSTM)");
  TORCH_CHECK(w_p.numel() == (lstm ? 2 : 1) * H, "skip_rnn_train: W_p must have S*H entries");
  return d;
}

template <typename T>
Net<T> make_net(const Dims& d, const at::Tensor& x, const at::Tensor& wihT,
                const at::Tensor& bih, const at::Tensor& whh, const at::Tensor& bhh,
                const at::Tensor& wp, T bp, const at::Tensor& gi_all, int64_t chunk) {
  Net<T> n;
  n.chunk = chunk;
  n.B = d.B, n.T_ = d.T, n.I = d.I, n.H = d.H, n.G = d.G, n.K = d.lstm ? 5 * d.H : 4 * d.H;
  n.lstm = d.lstm;
  n.small_in = d.I <= kSmallInput;
  n.x = x.data_ptr<T>();
  n.sxb = x.stride(0), n.sxt = x.stride(1), n.sxi = x.stride(2);
  n.gi_all = gi_all.defined() ? gi_all.data_ptr<T>() : nullptr;
  n.wihT = wihT.defined() ? wihT.data_ptr<T>() : nullptr;
  n.bih = bih.defined() ? bih.data_ptr<T>() : nullptr;
  n.whh = whh.data_ptr<T>();
  n.bhh = bhh.defined() ? bhh.data_ptr<T>() : nullptr;
  n.wp = wp.data_ptr<T>();
  n.bp = bp;
  return n;
}

// Returns {out (B, T, H), c_T (B, H; empty for the GRU), ũ (B, T), u (B, T), sc (T, B, 3: ũ, u,
// Δũ), S (T+1, B, H), C (T+1, B, H; empty for the GRU), A (T·B rows of K, see Net::arow),
// workspace, chunk (1,) int64}: sc, S, C, A and chunk are for the backward; sc, S, C, A are
// views of `workspace` (the one given if it is a large enough contiguous 1-D tensor of x's dtype, else a
// new one), which the caller may pass again once the backward has run.
std::vector<at::Tensor> skip_rnn_train_forward(
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
    const at::Tensor& b_hh, const at::Tensor& w_p, const at::Tensor& b_p, const at::Tensor& h0,
    const std::optional<at::Tensor>& c0, double theta, bool force_update,
    const std::optional<at::Tensor>& workspace) {
  const bool lstm = c0.has_value();
  const Dims d = check_weights(x, w_ih, w_hh, w_p, lstm);
  const int64_t B = d.B, Tn = d.T, H = d.H, GH = d.G * H, K = lstm ? 5 * H : 4 * H;
  TORCH_CHECK(b_ih.numel() == GH && b_hh.numel() == GH && b_p.numel() == 1,
              "skip_rnn_train: biases must be (G*H,), b_p (1,)");
  TORCH_CHECK(h0.sizes() == at::IntArrayRef({B, H}) && (!lstm || c0->sizes() == h0.sizes()),
              "skip_rnn_train: h0 (and c0) must be (B, H)");
  std::vector<const at::Tensor*> all = {&x, &w_ih, &w_hh, &b_ih, &b_hh, &w_p, &b_p, &h0};
  if (lstm) all.push_back(&*c0);
  check_float_cpu(all, x.scalar_type());

  const auto opts = x.options();
  at::Tensor out = at::empty({B, Tn, H}, opts);
  at::Tensor probs = at::empty({B, Tn}, opts), update = at::empty({B, Tn}, opts);
  // S, C, A and (ũ, u, Δũ) live in one flat buffer, the caller's if it is large enough: a fresh
  // one of ~180 MB (batch 128, 784 steps, H = 110) costs ~100 ms of page faults per call
  const int64_t nS = (Tn + 1) * B * H, nC = lstm ? nS : 0, nA = Tn * B * K, nD = Tn * B * 3;
  const int64_t need = nS + nC + nA + nD;
  at::Tensor ws;
  if (workspace.has_value() && workspace->defined() && workspace->dim() == 1 &&
      workspace->numel() >= need && workspace->is_contiguous() && workspace->device().is_cpu() &&
      workspace->scalar_type() == x.scalar_type())
    ws = *workspace;
  else
    ws = at::empty({need}, opts);
  at::Tensor S = ws.narrow(0, 0, nS).view({Tn + 1, B, H});
  at::Tensor C = ws.narrow(0, nS, nC).view({lstm ? Tn + 1 : 0, B, H});
  at::Tensor A = ws.narrow(0, nS + nC, nA).view({Tn, B, K});
  at::Tensor sc = ws.narrow(0, nS + nC + nA, nD).view({Tn, B, 3});
  S[0].copy_(h0);
  if (lstm) C[0].copy_(*c0);
  const bool small_in = d.I <= kSmallInput;
  const int64_t chunk = chunk_rows(B, Tn, GH, H);  // the backward gets it: A's layout uses it
  const at::Tensor bih = b_ih.contiguous(), whh = w_hh.contiguous(), bhh = b_hh.contiguous(),
                   wp = w_p.contiguous().view({-1});
  const at::Tensor wihT = small_in ? w_ih.t().contiguous() : at::Tensor();
  at::Tensor gi_all;  // large I: one GEMM for all steps, time-major
  if (!small_in)
    gi_all = at::addmm(bih, x.transpose(0, 1).reshape({Tn * B, d.I}), w_ih.t());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "skip_rnn_train_forward", [&] {
    using T = scalar_t;
    const Net<T> n = make_net<T>(d, x, wihT, bih, whh, bhh, wp, b_p.item<T>(), gi_all, chunk);
    Saved<T> s;
    s.S = S.data_ptr<T>(), s.C = lstm ? C.data_ptr<T>() : nullptr, s.A = A.data_ptr<T>();
    s.sc = sc.data_ptr<T>();
    T* op = out.data_ptr<T>();
    at::parallel_for(0, (B + n.chunk - 1) / n.chunk, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        forward_rows<T>(n, s, op, static_cast<T>(theta), force_update, c * n.chunk,
                        std::min(B, (c + 1) * n.chunk));
    });
  });
  at::Tensor c_n = lstm ? C[Tn].clone() : at::empty({0}, opts);
  probs.copy_(sc.select(2, 0).t());
  update.copy_(sc.select(2, 1).t());
  return {out, c_n, probs, update, sc, S, C, A, ws, at::full({1}, chunk, at::kLong)};
}

std::optional<at::Tensor> contiguous_or_none(const std::optional<at::Tensor>& t,
                                             at::IntArrayRef sizes, const char* what) {
  if (!t.has_value() || !t->defined()) return std::nullopt;
  TORCH_CHECK(t->sizes() == sizes, "skip_rnn_train_backward: ", what, " has the wrong shape");
  return t->contiguous();
}

// Gradients of skip_rnn_train_forward's outputs out, c_T, ũ, u (each may be None) → {∂x (empty
// unless need_gx), ∂W_ih, ∂W_hh, ∂b_ih, ∂b_hh, ∂W_p (1, S·H), ∂b_p (1,), ∂h0 (B, H), ∂c0 (B, H;
// empty for the GRU)}. straight_through = false treats u as a constant (the exact derivative of
// the piecewise-constant forward, for gradcheck; also what force_update needs). Overwrites
// `saved` (A): call it once per forward.
std::vector<at::Tensor> skip_rnn_train_backward(
    const std::optional<at::Tensor>& grad_out, const std::optional<at::Tensor>& grad_cn,
    const std::optional<at::Tensor>& grad_probs, const std::optional<at::Tensor>& grad_update,
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& w_p,
    const at::Tensor& scalars, const at::Tensor& states, const std::optional<at::Tensor>& cells,
    const at::Tensor& saved,
    int64_t chunk, bool straight_through, bool need_gx) {
  const bool lstm = cells.has_value() && cells->defined() && cells->numel() > 0;
  const Dims d = check_weights(x, w_ih, w_hh, w_p, lstm);
  const int64_t B = d.B, Tn = d.T, H = d.H, I = d.I, GH = d.G * H, K = lstm ? 5 * H : 4 * H;
  TORCH_CHECK(states.sizes() == at::IntArrayRef({Tn + 1, B, H}) && states.is_contiguous() &&
                  saved.sizes() == at::IntArrayRef({Tn, B, K}) && saved.is_contiguous() &&
                  scalars.sizes() == at::IntArrayRef({Tn, B, 3}) && scalars.is_contiguous() &&
                  (!lstm || (cells->sizes() == states.sizes() && cells->is_contiguous())),
              "skip_rnn_train_backward: saved tensors do not match the forward's");
  TORCH_CHECK(chunk >= 1, "skip_rnn_train_backward: chunk must be the forward's");
  const auto g_out = contiguous_or_none(grad_out, {B, Tn, H}, "grad_out");
  const auto g_cn = contiguous_or_none(grad_cn, {B, H}, "grad_cn");
  const auto g_probs = contiguous_or_none(grad_probs, {B, Tn}, "grad_probs");
  const auto g_update = contiguous_or_none(grad_update, {B, Tn}, "grad_update");
  std::vector<const at::Tensor*> all = {&x, &w_ih, &w_hh, &w_p, &scalars, &states, &saved};
  for (const auto* o : {&g_out, &g_cn, &g_probs, &g_update})
    if (o->has_value()) all.push_back(&**o);
  if (lstm) all.push_back(&*cells);
  check_float_cpu(all, x.scalar_type());

  const auto opts = x.options();
  const bool small_in = I <= kSmallInput;
  const at::Tensor whh = w_hh.contiguous(), wp = w_p.contiguous().view({-1});
  const at::Tensor wihT = small_in ? w_ih.t().contiguous() : at::Tensor();
  at::Tensor gx = need_gx ? at::empty({B, Tn, I}, opts) : at::empty({0}, opts);
  at::Tensor gh0 = at::empty({B, H}, opts), gc0 = at::empty({lstm ? B : 0, H}, opts);
  at::Tensor gw_ih = at::empty({GH, I}, opts), gw_hh = at::empty({GH, H}, opts);
  at::Tensor gb_ih = at::empty({GH}, opts), gb_hh = at::empty({GH}, opts);
  at::Tensor gw_p = at::empty({1, (lstm ? 2 : 1) * H}, opts), gb_p = at::empty({1}, opts);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "skip_rnn_train_backward", [&] {
    using T = scalar_t;
    const Net<T> n = make_net<T>(d, x, wihT, at::Tensor(), whh, at::Tensor(), wp, T(0),
                                 at::Tensor(), chunk);
    Saved<T> s;
    s.S = states.data_ptr<T>(), s.C = lstm ? cells->data_ptr<T>() : nullptr;
    s.A = saved.data_ptr<T>(), s.sc = scalars.data_ptr<T>();
    Upstream<T> g;
    g.out = g_out ? g_out->data_ptr<T>() : nullptr;
    g.cn = g_cn ? g_cn->data_ptr<T>() : nullptr;
    g.probs = g_probs ? g_probs->data_ptr<T>() : nullptr;
    g.update = g_update ? g_update->data_ptr<T>() : nullptr;
    T* gxp = need_gx ? gx.data_ptr<T>() : nullptr;
    std::vector<Partial<T>> parts;
    std::mutex mu;
    at::parallel_for(0, (B + n.chunk - 1) / n.chunk, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        Partial<T> p;
        backward_rows<T>(n, s, g, straight_through, gxp, gh0.data_ptr<T>(),
                         lstm ? gc0.data_ptr<T>() : nullptr, p, c * n.chunk,
                         std::min(B, (c + 1) * n.chunk));
        std::lock_guard<std::mutex> lock(mu);
        parts.push_back(std::move(p));
      }
    });
    // per-thread sums, added in row order (the same result whatever thread ran which block)
    std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.b0 < b.b0; });
    T* gwp = gw_p.data_ptr<T>();
    T* gbi = gb_ih.data_ptr<T>();
    T* gbh = gb_hh.data_ptr<T>();
    std::fill(gwp, gwp + gw_p.numel(), T(0));
    std::fill(gbi, gbi + GH, T(0));
    std::vector<T> gbhn(lstm ? 0 : H, T(0)), gwihT(small_in ? I * GH : 0, T(0));
    T gbp = 0;
    for (const auto& p : parts) {
      for (int64_t j = 0; j < gw_p.numel(); ++j) gwp[j] += p.gwp[j];
      for (int64_t j = 0; j < GH; ++j) gbi[j] += p.gbi[j];
      for (size_t j = 0; j < gbhn.size(); ++j) gbhn[j] += p.gbhn[j];
      for (size_t j = 0; j < gwihT.size(); ++j) gwihT[j] += p.gwihT[j];
      gbp += p.gbp;
    }
    *gb_p.data_ptr<T>() = gbp;
    std::copy(gbi, gbi + GH, gbh);  // dgh = dgi except the GRU's n block (dn·r)
    if (!lstm) std::copy(gbhn.begin(), gbhn.end(), gbh + 2 * H);
    if (small_in) {
      T* gwi = gw_ih.data_ptr<T>();
      for (int64_t i = 0; i < I; ++i)
        for (int64_t j = 0; j < GH; ++j) gwi[j * I + i] = gwihT[i * GH + j];
    }
    // ∂W_hh = dghᵀ · h_{t-1} over all T·B rows: one GEMM (multi-threaded, outside the loop),
    // computed as its transpose h_{t-1}ᵀ · dgh (MKL: ~1.6× faster for this shape)
    // (small input: over each block's packed rows [dgh | h_{t-1}] only)
    const T* A = s.A;
    at::Tensor gw_hhT = at::zeros({H, GH}, opts);
    if (!small_in) {
      gemm<T>(true, false, H, GH, Tn * B, s.S, H, A, K, T(0), gw_hhT.data_ptr<T>(), GH);
    } else {
      for (const auto& p : parts)
        gemm<T>(true, false, H, GH, p.packed, A + (p.b0 * Tn) * K + GH, K, A + (p.b0 * Tn) * K,
                K, T(1), gw_hhT.data_ptr<T>(), GH);
    }
    gw_hh.copy_(gw_hhT.t());
    if (!small_in) {  // ∂W_ih = dgiᵀ x and ∂x = dgi W_ih (time-major rows), dgi = [dr, dz, dn]
      const at::Tensor xt = x.transpose(0, 1).reshape({Tn * B, I}).contiguous();
      const at::Tensor wih = w_ih.contiguous();
      const T* xp = xt.data_ptr<T>();
      T* gwi = gw_ih.data_ptr<T>();
      const int64_t first = lstm ? GH : 2 * H;  // dgi's columns that sit at the same place
      gemm<T>(true, false, first, I, Tn * B, A, K, xp, I, T(0), gwi, I);
      if (!lstm) gemm<T>(true, false, H, I, Tn * B, A + 3 * H, K, xp, I, T(0), gwi + 2 * H * I, I);
      if (need_gx) {
        at::Tensor gxt = at::empty({Tn * B, I}, opts);
        T* q = gxt.data_ptr<T>();
        gemm<T>(false, false, Tn * B, I, first, A, K, wih.data_ptr<T>(), I, T(0), q, I);
        if (!lstm)
          gemm<T>(false, false, Tn * B, I, H, A + 3 * H, K, wih.data_ptr<T>() + 2 * H * I, I,
                  T(1), q, I);
        gx.copy_(gxt.view({Tn, B, I}).transpose(0, 1));
      }
    }
  });
  return {gx, gw_ih, gw_hh, gb_ih, gb_hh, gw_p, gb_p, gh0, gc0};
}

// mode 0 / 1: GEMMs through ATen / the exported BLAS (when present); -1: ask. Returns whether
// the BLAS is used now (tests run both paths).
bool skip_rnn_train_blas(int64_t mode) {
  if (mode >= 0) g_direct_blas.store(mode != 0);
  return g_direct_blas.load() && blas_available<float>() && blas_available<double>();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(skimviz, m) {
  m.def("skip_rnn_train_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, "
        "Tensor w_p, Tensor b_p, Tensor h0, Tensor? c0, float theta, bool force_update, "
        "Tensor? workspace) -> Tensor[]");
  m.def("skip_rnn_train_backward(Tensor? grad_out, Tensor? grad_cn, Tensor? grad_probs, "
        "Tensor? grad_update, Tensor x, Tensor w_ih, Tensor w_hh, Tensor w_p, Tensor scalars, "
        "Tensor states, Tensor? cells, Tensor saved, int chunk, "
        "bool straight_through, bool need_gx) -> Tensor[]");
  m.def("skip_rnn_train_blas(int mode) -> bool", &skip_rnn_train_blas);
}

TORCH_LIBRARY_IMPL(skimviz, CPU, m) {
  m.impl("skip_rnn_train_forward", &skip_rnn_train_forward);
  m.impl("skip_rnn_train_backward", &skip_rnn_train_backward);
}
