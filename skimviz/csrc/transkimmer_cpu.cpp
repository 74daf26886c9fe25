// Transkimmer inference on the CPU at batch 1, in one call. (Batches run on PyTorch's operators:
// C++ predictors and one-token layers there were no faster, `python -m skimviz bench ops`.)
//
// Guan et al., "Transkimmer: Transformer Learns to Layer-wise Skim" (ACL 2022). Once the skim
// predictors have pruned most tokens (Eq. 1), the layers run on 1–8 tokens, and there PyTorch's
// per-operator cost (~10 µs for each of ~15 small GEMMs, LayerNorms and adds, plus the Python
// bookkeeping of the gather) is many times the arithmetic. So at batch 1 the whole forward is one
// C++ call (TranskimmerWeights.infer → transkimmer_infer): embeddings, then per layer the skim
// predictor on the kept tokens (predict_keep, Eq. 2), the gather of the kept rows (Eq. 1) with
// pruned tokens leaving with their state (Eq. 3), and the layer — on at most `small` tokens the
// fused kernel small_layer, above that ATen operators in the order of the Python code
// (layer_aten) — then the pooler and classifier. The Python reference is
// TranskimmerClassifier._forward_pruned in skimviz/models/transkimmer.py (tests/
// test_transkimmer_cpp.py: the same decisions, logits to 1e-5). One layer, post-LN BERT:
//
//   q, k, v = W_q h + b_q, W_k h + b_k, W_v h + b_v                 (per token, d → d)
//   a_head  = softmax(q_head k_headᵀ / √d_h) v_head                  (per head, over the n tokens)
//   h       = LN(h + W_o a + b_o)                                     (attention block, post-LN)
//   h       = LN(h + W_2 GELU(W_1 h + b_1) + b_2)                     (FFN block; exact erf GELU)
//
// At n = 1 the softmax over one key is 1, so a = v and q, k are not computed (as in Python).
//
// Weight layouts (Derived, built once per model and rebuilt when a weight changes in place):
// * where a Linear's weights are exactly int8 codes times a per-row scale (the shipped
//   checkpoints' encoding, checkpoint weights_encoding: every encoder Linear and each
//   predictor's first Linear), the engine multiplies by the 1-byte codes — the same products,
//   summed as s·Σ q_k x_k instead of Σ (q_k s) x_k (float rounding apart): layers on more than
//   `small` tokens and the predictors through an AVX-512 GEMM on code panels
//   (linear_int8_avx512), layers on ≤ `small` tokens (e.g. only [CLS] left) through
//   linear_small, which reads each weight row once for all the tokens. Weights then come from
//   memory at a quarter of the bytes, which is what layers on a few dozen tokens and one-token
//   layers wait on;
// * otherwise the GEMMs (layer_aten, the predictor's first Linear) multiply by Wᵀ stored K × N:
//   MKL then reads the weights without first copying them into its own layout on every call, a
//   cost per call that does not shrink with the tokens (measured: a MiniLM layer on 54 tokens
//   20 % faster, on 128 tokens 9 %; the same products).
// The AVX-512 kernels are chosen at run time (the library is built for AVX2); see that section.
// TranskimmerWeights.run is the model's `forward(ids)` for one text, with the input checks.
// The dense twin runs through the same engine (no predictors), so both are timed alike.
// transkimmer_layer is also an op (torch.ops.skimviz.transkimmer_layer) for the Python
// pruning path's small layers (batches with padding). Same extension module as sru_cpu.cpp.
#include <ATen/ATen.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "kernels_common.h"

namespace {

using namespace skimviz_kernels;  // Vec, matvec, dot_simd

// Σ x[0:n] in Vec::size() float lanes (partial last vector zero-filled), then the lanes' sum.
float vsum(const float* x, int64_t n, float sub = 0.0f, bool square = false) {
  Vec acc[2] = {Vec(0.0f), Vec(0.0f)};  // two chains: the adds of a short row overlap
  const Vec m(sub);
  for (int64_t j = 0, i = 0; j < n; j += Vec::size(), i ^= 1) {
    const int64_t c = std::min<int64_t>(Vec::size(), n - j);
    Vec v = Vec::loadu(x + j, c) - m;
    if (c < Vec::size()) v = Vec::set(Vec(0.0f), v, c);  // lanes past the end count 0
    acc[i] = square ? at::vec::fmadd(v, v, acc[i]) : acc[i] + v;
  }
  float lanes[Vec::size()];
  (acc[0] + acc[1]).store(lanes);
  float s = 0.0f;
  for (int64_t l = 0; l < Vec::size(); ++l) s += lanes[l];
  return s;
}

// y ← LN(x) · γ + β over d values (two-pass mean and biased variance, as torch.layer_norm), in
// float SIMD lanes; y may be x (in place).
void layer_norm(const float* x, float* y, const float* g, const float* b, int64_t d, double eps) {
  const float mean = vsum(x, d) / d;
  const float var = vsum(x, d, mean, true) / d;
  const Vec m(mean), inv(static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps)));
  for (int64_t j = 0; j < d; j += Vec::size()) {
    const int64_t c = std::min<int64_t>(Vec::size(), d - j);
    at::vec::fmadd((Vec::loadu(x + j, c) - m) * inv, Vec::loadu(g + j, c), Vec::loadu(b + j, c))
        .store(y + j, c);
  }
}
void layer_norm(float* x, const float* g, const float* b, int64_t d, double eps) {
  layer_norm(x, x, g, b, d, eps);
}

// erf(x) as at::vec's Vectorized<float>::erf computes it (Abramowitz & Stegun 7.1.26:
// 1 − (a1 t + … + a5 t⁵) e^{−x²}, t = 1 / (1 + p|x|), odd in x), but with the inline e^x of
// kernels_common.h (fast_exp_ps) where ATen calls SLEEF's out-of-line expf: the call was most of
// a skim predictor's per-token cost. Same formula; e^x differs by float rounding.
inline Vec erf(const Vec& x) {
#if defined(CPU_CAPABILITY_AVX2)
  const __m256 neg_zero = _mm256_set1_ps(-0.f), one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_and_ps(neg_zero, x), ax = _mm256_xor_ps(sign, x);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, one));
  __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(1.061405429f), t, _mm256_set1_ps(-1.453152027f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(1.421413741f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-0.284496736f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.254829592f));
  const __m256 e = fast_exp_ps(_mm256_xor_ps(neg_zero, _mm256_mul_ps(x, x)));  // e^{−x²}
  const __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_xor_ps(neg_zero, e), t), r, one);
  return Vec(_mm256_xor_ps(sign, y));
#else
  return x.erf();
#endif
}

// Φ(x) · x = x · (1 + erf(x / √2)) / 2 (torch's default, exact GELU), in float SIMD lanes.
inline Vec gelu(const Vec& v) {
  return v * Vec(0.5f) * (Vec(1.0f) + erf(v * Vec(static_cast<float>(M_SQRT1_2))));
}

// x ← GELU(x), in place.
void gelu(float* x, int64_t n) {
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) gelu(Vec::loadu(x + j)).store(x + j);
  for (; j < n; ++j) x[j] = 0.5f * x[j] * (1.0f + std::erf(x[j] * static_cast<float>(M_SQRT1_2)));
}

const float* ptr(const at::Tensor& t, int64_t numel, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.numel() == numel,
              "transkimmer_layer: ", name, " must be a contiguous float32 tensor of ", numel,
              " values");
  return t.data_ptr<float>();
}

// Vec::size() weights of a row from column j (c of them, zero-filled past c), as floats: float32
// weights, or int8 codes (their row's scale is applied to the sum, see linear_small).
inline Vec load_w(const float* w, int64_t j, int64_t c) { return Vec::loadu(w + j, c); }
inline Vec load_w(const int8_t* w, int64_t j, int64_t c) {
#if defined(CPU_CAPABILITY_AVX2)
  if (c == 8)
    return Vec(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + j)))));
#endif
  float tmp[Vec::size()] = {};
  for (int64_t l = 0; l < c; ++l) tmp[l] = w[j + l];
  return Vec::loadu(tmp);
}

// Y (n, N) = X (n, K) Wᵀ + b for a few tokens n, W (N, K) row-major (PyTorch's Linear layout),
// float32 or int8 codes with a per-row scale (y_r = s_r · Σ_k q_rk x_k + b_r). Eight weight rows
// at a time are applied to every token before the next eight are read, so the weights are read
// once from memory however many tokens there are; per token the eight rows' vector
// accumulators are reduced together by hsum8 (as matvec).
template <typename T>
void linear_small(const T* W, const float* scale, const float* b, int64_t N, int64_t K,
                  const float* X, int64_t n, float* Y) {
  int64_t r = 0;
  for (; r + 8 <= N; r += 8) {
    const int64_t K8 = K - K % Vec::size();  // whole vectors, then a zero-filled tail
    for (int64_t t = 0; t < n; ++t) {
      const float* x = X + t * K;
      Vec acc[8];
      for (int k = 0; k < 8; ++k) acc[k] = Vec(0.0f);
      for (int64_t j = 0; j < K8; j += Vec::size()) {
        const Vec xj = Vec::loadu(x + j);
        for (int k = 0; k < 8; ++k)
          acc[k] = at::vec::fmadd(load_w(W + (r + k) * K, j, Vec::size()), xj, acc[k]);
      }
      if (K8 < K) {
        const Vec xj = Vec::loadu(x + K8, K - K8);
        for (int k = 0; k < 8; ++k)
          acc[k] = at::vec::fmadd(load_w(W + (r + k) * K, K8, K - K8), xj, acc[k]);
      }
      Vec y = hsum8(acc);
      if (scale) y = y * Vec::loadu(scale + r, 8);
      (y + Vec::loadu(b + r, 8)).store(Y + t * N + r, 8);
    }
  }
  for (; r < N; ++r) {  // the last N % 8 rows
    for (int64_t t = 0; t < n; ++t) {
      Vec acc(0.0f);
      for (int64_t j = 0; j < K; j += Vec::size()) {
        const int64_t c = std::min<int64_t>(Vec::size(), K - j);
        acc = at::vec::fmadd(load_w(W + r * K, j, c), Vec::loadu(X + t * K + j, c), acc);
      }
      float lanes[Vec::size()];
      acc.store(lanes);
      float y = 0.0f;
      for (int64_t l = 0; l < Vec::size(); ++l) y += lanes[l];
      Y[t * N + r] = (scale ? y * scale[r] : y) + b[r];
    }
  }
}

// ---------------------------------------------------------------- AVX-512 (chosen at run time)
// The library is built for AVX2 (skimviz/_ext.py), but where the CPU also has AVX-512 the
// kernels that are bound by instructions per weight or per value rather than by the GEMMs —
// linear_small (above all on int8 codes, where each weight is widened and converted before its
// multiply-add) and the predictor's per-row LayerNorms and GELU tail — run on 16 float lanes
// instead of 8 (functions compiled for AVX-512 with a target attribute, so the rest of the
// library still runs on any AVX2 CPU). The same formulas; sums are taken in another order, so
// results differ by float rounding (tests: both paths against the Python modules).
// transkimmer_avx512(mode) switches it (tests run both paths): −1 asks, 0 off, 1 on if the CPU
// has it; it returns whether it is on.
#if defined(CPU_CAPABILITY_AVX2) && defined(__GNUC__) && defined(__x86_64__)
#define SKIMVIZ_AVX512 1
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
bool g_avx512 = cpu_has_avx512();

AVX512_FN inline __m512 load16(const float* w) { return _mm512_loadu_ps(w); }
AVX512_FN inline __m512 load16(const int8_t* w) {  // 16 int8 codes → 16 floats
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))));
}

// linear_small on 16 lanes; N % 8 == 0 and K % 16 == 0 (else the caller takes linear_small).
// Per token the 8 rows' 16-lane sums are folded to 8 lanes and reduced together by hsum8.
template <typename T>
AVX512_FN void linear_small_avx512(const T* W, const float* scale, const float* b, int64_t N,
                                   int64_t K, const float* X, int64_t n, float* Y) {
  // The weights stream from beyond L2 (a layer left with a few tokens comes after layers that
  // evicted it): before each block of 8 rows, ask for the block kAhead bytes further on, so
  // the misses of the next blocks overlap this block's work (a MiniLM one-token layer on cold
  // caches: 420 → 340 µs; scripts/transkimmer_engine_parts.py).
  constexpr int64_t kAhead = 4096;
  const char* base = reinterpret_cast<const char*>(W);
  const int64_t bytes = N * K * static_cast<int64_t>(sizeof(T));
  const int64_t block = 8 * K * static_cast<int64_t>(sizeof(T));
  for (int64_t o = 0; o < std::min(bytes, kAhead); o += 64) _mm_prefetch(base + o, _MM_HINT_T0);
  for (int64_t r = 0; r < N; r += 8) {
    for (int64_t o = r * block / 8 + kAhead; o < std::min(bytes, r * block / 8 + kAhead + block);
         o += 64)
      _mm_prefetch(base + o, _MM_HINT_T0);
    for (int64_t t = 0; t < n; ++t) {
      const float* x = X + t * K;
      __m512 acc[8];
      for (int k = 0; k < 8; ++k) acc[k] = _mm512_setzero_ps();
      for (int64_t j = 0; j < K; j += 16) {
        const __m512 xj = _mm512_loadu_ps(x + j);
        for (int k = 0; k < 8; ++k)
          acc[k] = _mm512_fmadd_ps(load16(W + (r + k) * K + j), xj, acc[k]);
      }
      Vec half[8];
      for (int k = 0; k < 8; ++k)
        half[k] = Vec(_mm256_add_ps(_mm512_castps512_ps256(acc[k]),
                                    _mm512_extractf32x8_ps(acc[k], 1)));
      Vec y = hsum8(half);
      if (scale) y = y * Vec::loadu(scale + r, 8);
      (y + Vec::loadu(b + r, 8)).store(Y + t * N + r, 8);
    }
  }
}

// e^x on 16 lanes: fast_exp_ps of kernels_common.h (Cephes' expf, its constants) on AVX-512.
AVX512_FN inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-kExpMax)), _mm512_set1_ps(kExpMax));
  const __m512 fx = _mm512_roundscale_ps(
      _mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), _mm512_set1_ps(0.5f)),
      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Lo), r);
  __m512 y = _mm512_set1_ps(kExpP[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP[i]));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

// GELU(v) = v · (1 + erf(v / √2)) / 2 on 16 lanes, erf as the AVX2 erf above (A&S 7.1.26).
AVX512_FN inline __m512 gelu16(__m512 v) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 x = _mm512_mul_ps(v, _mm512_set1_ps(static_cast<float>(M_SQRT1_2)));
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f),
                                                       _mm512_abs_ps(x), one));
  __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(1.061405429f), t, _mm512_set1_ps(-1.453152027f));
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(1.421413741f));
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-0.284496736f));
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.254829592f));
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(x, x)));  // e^{−x²}
  const __m512 erf_abs = _mm512_fnmadd_ps(_mm512_mul_ps(e, t), r, one);             // erf(|x|)
  const __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(      // the sign of x back on
      _mm512_castps_si512(erf_abs),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(one, erf));
}

// Mean and 1/√(biased variance + eps) of x[0:d], d % 16 == 0 (two passes, as layer_norm).
AVX512_FN inline std::pair<__m512, __m512> moments16(const float* x, int64_t d, double eps) {
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < d; j += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(x + j));
  const __m512 mu = _mm512_set1_ps(_mm512_reduce_add_ps(s) / d);
  __m512 q = _mm512_setzero_ps();
  for (int64_t j = 0; j < d; j += 16) {
    const __m512 c = _mm512_sub_ps(_mm512_loadu_ps(x + j), mu);
    q = _mm512_fmadd_ps(c, c, q);
  }
  const double var = _mm512_reduce_add_ps(q) / d;
  return {mu, _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(var + eps)))};
}

// y ← LN(x) · γ + β for `rows` rows of d values (d % 16 == 0).
AVX512_FN void layer_norm_rows_avx512(const float* x, int64_t rows, int64_t d, const float* g,
                                      const float* b, double eps, float* y) {
  for (int64_t t = 0; t < rows; ++t, x += d, y += d) {
    const auto [mu, inv] = moments16(x, d, eps);
    for (int64_t j = 0; j < d; j += 16)
      _mm512_storeu_ps(y + j, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j),
                                                                          mu), inv),
                                              _mm512_loadu_ps(g + j), _mm512_loadu_ps(b + j)));
  }
}

// The predictor's tail on m rows z (m, hid), hid % 16 == 0: keep[t] = (W' GELU(LN(z_t)) + b')
// has its "keep" logit above its "skim" logit (predict_rows' loop, on 16 lanes).
AVX512_FN void predictor_tail_avx512(const float* z, int64_t m, int64_t hid, const float* g,
                                     const float* b, const float* W2, const float* bo,
                                     double eps, char* keep) {
  for (int64_t t = 0; t < m; ++t, z += hid) {
    const auto [mu, inv] = moments16(z, hid, eps);
    __m512 skim = _mm512_setzero_ps(), keep_ = _mm512_setzero_ps();
    for (int64_t j = 0; j < hid; j += 16) {
      const __m512 u = gelu16(_mm512_fmadd_ps(
          _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(z + j), mu), inv),
          _mm512_loadu_ps(g + j), _mm512_loadu_ps(b + j)));
      skim = _mm512_fmadd_ps(u, _mm512_loadu_ps(W2 + j), skim);
      keep_ = _mm512_fmadd_ps(u, _mm512_loadu_ps(W2 + hid + j), keep_);
    }
    keep[t] = bo[1] + _mm512_reduce_add_ps(keep_) > bo[0] + _mm512_reduce_add_ps(skim);
  }
}

// The register block of the panel GEMMs: Y[r, 0:64] = (first ? 0 : Y[r, 0:64]) +
// Σ_k X[r, k] · P[k, 0:64] for R rows r (X rows K apart, Y rows N apart), P a panel of kc rows
// of 64 floats in a row (Derived.pp, or int8 codes widened by linear_int8_avx512): R × 64
// sums in 4R registers while k runs.
template <int R>
AVX512_FN inline void panel_block(const float* P, int64_t kc, const float* X, int64_t K,
                                  float* Y, int64_t N, bool first) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j)
      acc[r][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(Y + r * N + 16 * j);
  for (int64_t k = 0; k < kc; ++k, P += 64) {
    const __m512 w0 = _mm512_loadu_ps(P), w1 = _mm512_loadu_ps(P + 16);
    const __m512 w2 = _mm512_loadu_ps(P + 32), w3 = _mm512_loadu_ps(P + 48);
    for (int r = 0; r < R; ++r) {
      const __m512 xr = _mm512_set1_ps(X[r * K + k]);
      acc[r][0] = _mm512_fmadd_ps(w0, xr, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(w1, xr, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(w2, xr, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(w3, xr, acc[r][3]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) _mm512_storeu_ps(Y + r * N + 16 * j, acc[r][j]);
}

// The whole skim predictor on 16 lanes for `rows` rows at h (d floats apart), 4 rows at a time:
// LN → the d → hid Linear (Wᵀ in panels of 64 columns, Derived.pp, read front to back; 4 rows ×
// 64 outputs held in 16 registers while k runs over d) → the tail, with x and z in small buffers
// that stay in L1 — where
// predict_rows otherwise writes x, calls addmm (which first copies the bias into every row) and
// reads z back. d % 16 == 0, hid % 64 == 0, both ≤ 1024 (else predict_rows' general path).
AVX512_FN void predict_fused_avx512(const float* h, int64_t rows, int64_t d, int64_t hid,
                                    const float* g1, const float* b1, const float* Wp,
                                    const float* b, const float* g2, const float* b2,
                                    const float* W2, const float* bo, double eps, char* keep) {
  constexpr int R = 4;
  alignas(64) float x[R * 1024], z[R * 1024];
  for (int64_t t0 = 0; t0 < rows; t0 += R) {
    const int64_t nr = std::min<int64_t>(R, rows - t0);
    layer_norm_rows_avx512(h + t0 * d, nr, d, g1, b1, eps, x);
    std::fill(x + nr * d, x + R * d, 0.0f);  // rows past the end: computed, not used
    for (int r = 0; r < R; ++r) std::copy(b, b + hid, z + r * hid);  // z = b + x Wᵀ
    for (int64_t c = 0; c < hid; c += 64)  // panel c / 64: Wᵀ[:, c:c+64], d rows of 64
      panel_block<R>(Wp + c * d, d, x, d, z + c, hid, false);
    predictor_tail_avx512(z, nr, hid, g2, b2, W2, bo, eps, keep + t0);
  }
}

// Y (M, N) = X (M, K) Wᵀ + b for a layer on many tokens, where W (N, K) is exactly int8 codes q
// times a per-row scale s (Derived.q8): y_rn = s_n · Σ_k x_rk q_nk + b_n, the codes read in
// panels of 64 outputs (Qp: (N / 64, K, 64), each panel front to back). Per panel, 128 k at a
// time, the codes are widened to floats once into a buffer that stays in L1, then every block
// of 6 tokens runs over it with 6 × 64 sums in 24 registers. So the weights come from memory
// as 1 byte each instead of 4: a layer on a few dozen tokens, after other layers evicted it,
// waited on its float32 weights more than it computed (N % 64 == 0).
AVX512_FN void linear_int8_avx512(const int8_t* Qp, const float* sc, const float* b, int64_t K,
                                  int64_t N, const float* X, int64_t M, float* Y) {
  constexpr int64_t KC = 128;
  alignas(64) float Wf[KC * 64];  // 32 KiB: one chunk of one panel, as floats
  for (int64_t c = 0; c < N; c += 64) {
    const int8_t* panel = Qp + c * K;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      for (int64_t k = 0; k < kc; ++k) {
        const __m512i raw = _mm512_loadu_si512(panel + (k0 + k) * 64);
        _mm512_store_ps(Wf + k * 64, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                         _mm512_castsi512_si128(raw))));
        for (int j = 1; j < 4; ++j)
          _mm512_store_ps(Wf + k * 64 + 16 * j, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                    _mm512_extracti32x4_epi32(raw, j))));
      }
      for (int64_t r0 = 0; r0 < M; r0 += 6) {
        const float* x = X + r0 * K + k0;
        float* y = Y + r0 * N + c;
        switch (std::min<int64_t>(6, M - r0)) {
          case 6: panel_block<6>(Wf, kc, x, K, y, N, k0 == 0); break;
          case 5: panel_block<5>(Wf, kc, x, K, y, N, k0 == 0); break;
          case 4: panel_block<4>(Wf, kc, x, K, y, N, k0 == 0); break;
          case 3: panel_block<3>(Wf, kc, x, K, y, N, k0 == 0); break;
          case 2: panel_block<2>(Wf, kc, x, K, y, N, k0 == 0); break;
          default: panel_block<1>(Wf, kc, x, K, y, N, k0 == 0);
        }
      }
    }
    for (int64_t r = 0; r < M; ++r)  // the row scales and the bias: y = s ⊙ Σ + b
      for (int j = 0; j < 4; ++j) {
        float* y = Y + r * N + c + 16 * j;
        _mm512_storeu_ps(y, _mm512_fmadd_ps(_mm512_loadu_ps(y), _mm512_loadu_ps(sc + c + 16 * j),
                                            _mm512_loadu_ps(b + c + 16 * j)));
      }
  }
}
#else
bool cpu_has_avx512() { return false; }
bool g_avx512 = false;
#endif

// torch.ops.skimviz.transkimmer_avx512(mode): see the section's header.
bool transkimmer_avx512(int64_t mode) {
  if (mode >= 0) g_avx512 = mode > 0 && cpu_has_avx512();
  return g_avx512;
}

// One Linear of a layer for linear_small: float32 weights, or (q non-null) int8 codes q with
// per-row scales s.
struct SmallLinear {
  const float* w;
  const int8_t* q;
  const float* s;
  const float* b;
  int64_t N, K;
  void operator()(const float* X, int64_t n, float* Y) const {
#ifdef SKIMVIZ_AVX512
    if (g_avx512 && N % 8 == 0 && K % 16 == 0) {
      if (q)
        linear_small_avx512(q, s, b, N, K, X, n, Y);
      else
        linear_small_avx512(w, nullptr, b, N, K, X, n, Y);
      return;
    }
#endif
    if (q)
      linear_small(q, s, b, N, K, X, n, Y);
    else
      linear_small(w, nullptr, b, N, K, X, n, Y);
  }
};

// The 16 tensors of one layer, checked: [W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o, γ_1, β_1, W_1,
// b_1, W_2, b_2, γ_2, β_2] (PyTorch's Linear/LayerNorm parameters).
struct LayerPtrs {
  SmallLinear q, k, v, o, f1, f2;
  const float *g1, *be1, *g2, *be2;
  int64_t d, f;
  LayerPtrs(at::TensorList w, int64_t d_) : d(d_) {
    TORCH_CHECK(w.size() == 16, "transkimmer_layer: expects 16 weight tensors");
    f = w[10].size(0);
    const auto lin = [&](int i, int64_t N, int64_t K, const char* name) {
      return SmallLinear{ptr(w[i], N * K, name), nullptr, nullptr, ptr(w[i + 1], N, name), N, K};
    };
    q = lin(0, d, d, "W_q");
    k = lin(2, d, d, "W_k");
    v = lin(4, d, d, "W_v");
    o = lin(6, d, d, "W_o");
    f1 = lin(10, f, d, "W_1");
    f2 = lin(12, d, f, "W_2");
    g1 = ptr(w[8], d, "gamma_1"), be1 = ptr(w[9], d, "beta_1");
    g2 = ptr(w[14], d, "gamma_2"), be2 = ptr(w[15], d, "beta_2");
  }
};

// The layer on n tokens x (n, d) → y (n, d), every weight read once (linear_small).
void small_layer(const LayerPtrs& L, const float* x, int64_t n, int64_t heads, double eps,
                 float* y) {
  const int64_t d = L.d, f = L.f, dh = d / heads;
  std::vector<float> q(n * d), k(n * d), v(n * d), a(n * d), tmp(n * d), ff(n * f), p(n);
  L.v(x, n, v.data());
  if (n == 1) {
    a = v;  // softmax over one key is 1
  } else {
    L.q(x, n, q.data());
    L.k(x, n, k.data());
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t hd = 0; hd < heads; ++hd) {
        const int64_t o = hd * dh;
        float mx = -INFINITY, sum = 0.0f;
        for (int64_t s = 0; s < n; ++s) {
          p[s] = dot_simd(q.data() + t * d + o, k.data() + s * d + o, dh) * scale;
          mx = std::max(mx, p[s]);
        }
        for (int64_t s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - mx));
        float* at_ = a.data() + t * d + o;
        for (int64_t j = 0; j < dh; ++j) at_[j] = 0.0f;
        for (int64_t s = 0; s < n; ++s) {
          const float ps = p[s] / sum;
          const float* vs = v.data() + s * d + o;
          for (int64_t j = 0; j < dh; ++j) at_[j] += ps * vs[j];
        }
      }
    }
  }
  L.o(a.data(), n, tmp.data());
  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * d;
    for (int64_t j = 0; j < d; ++j) yt[j] = x[t * d + j] + tmp[t * d + j];
    layer_norm(yt, L.g1, L.be1, d, eps);
  }
  L.f1(y, n, ff.data());
  gelu(ff.data(), n * f);
  L.f2(ff.data(), n, tmp.data());
  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * d;
    for (int64_t j = 0; j < d; ++j) yt[j] += tmp[t * d + j];
    layer_norm(yt, L.g2, L.be2, d, eps);
  }
}

// The op: h (n, d) float32, w the layer's 16 tensors (float32 weights). Returns the new (n, d).
at::Tensor transkimmer_layer(const at::Tensor& h_in, at::TensorList w, int64_t heads,
                             double eps) {
  TORCH_CHECK(w.size() == 16, "transkimmer_layer: expects 16 weight tensors");
  TORCH_CHECK(h_in.dim() == 2 && h_in.scalar_type() == at::kFloat, "h must be (n, d) float32");
  const at::Tensor h = h_in.contiguous();
  const int64_t n = h.size(0), d = h.size(1);
  TORCH_CHECK(heads > 0 && d % heads == 0, "transkimmer_layer: heads must divide d");
  const LayerPtrs L(w, d);
  at::Tensor out = at::empty({n, d}, h.options());
  small_layer(L, h.data_ptr<float>(), n, heads, eps, out.data_ptr<float>());
  return out;
}

// What the engine derives from a model's weights (see the header): Wᵀ (K, N) of the six Linears
// of every layer (wt, 6 per layer) and of every predictor's first Linear (pt; and pp, the same
// in panels of 64 columns, each d × 64 contiguous, for predict_fused_avx512; pq8p/ps8: its int8
// codes in such panels and their scales where its weights are exactly such codes), and per-row int8
// codes and scales of the layers' Linears where the weights are exactly such codes (q8/s8, 6 per
// layer; undefined tensors where not; q8p: the codes in panels for linear_int8_avx512).
// counters/versions: the version counters of the tensors these are derived from (the layers'
// and the predictors' Linear weights; the other tensors are used as they are, not copied) and
// their values when this was built: an in-place update, e.g. an optimizer step, bumps them, and
// then it is rebuilt.
struct Derived {
  std::vector<at::Tensor> wt, pt, pp, pq8p, ps8, q8, s8, q8p;
  std::vector<c10::VariableVersion> counters;
  std::vector<uint32_t> versions;
  bool built = false;
  bool codes_only = false;  // built for the AVX-512 kernels (see derive)
};

constexpr int kLinear[6] = {0, 2, 4, 6, 10, 12};  // the Linear weights among a layer's 16

// (q, s) with W = q · s exactly, to float32 rounding (q int8 codes in [−127, 127], s =
// max_k |W_rk| / 127 per row, as checkpoint.quantize_rows), or undefined tensors when W is not of
// that form (weights trained in float32).
std::pair<at::Tensor, at::Tensor> exact_int8(const at::Tensor& W) {
  const at::Tensor s = W.abs().amax({1}) / 127.0f;
  const at::Tensor q =
      at::where(s.unsqueeze(1) > 0, W / s.unsqueeze(1), at::zeros_like(W)).round();
  if (!at::equal(q * s.unsqueeze(1), W)) return {};  // |q| ≤ 127 by the choice of s
  return {q.to(at::kChar).contiguous(), s.contiguous()};
}

// With the AVX-512 kernels on, the float32 copies (Wᵀ, predictor panels) are not built for
// weights that have int8 panels: those run on the codes (for MiniLM 50 MB of copies fewer per model
// instance — 10.6 M layer weights and 0.9 M predictor weights, 4 bytes each — and the app holds
// one per session). Turning the kernels off or on rebuilds it (TranskimmerWeights::current).
Derived derive(const std::vector<at::Tensor>& w, const std::vector<at::Tensor>& p) {
  Derived r;
  const bool codes_only = r.codes_only = g_avx512;
  for (size_t i = 0; i < w.size(); i += 16) {
    for (int j : kLinear) {
      const at::Tensor& W = w[i + j];
      auto [q, s] = exact_int8(W);
      r.q8.push_back(q);
      r.s8.push_back(s);
      const int64_t N = W.size(0), K = W.size(1);
      r.q8p.push_back(!q.defined() || N % 64 ? at::Tensor() :  // (N / 64, K, 64)
                      q.t().contiguous().view({K, N / 64, 64}).transpose(0, 1).contiguous());
      r.wt.push_back(codes_only && r.q8p.back().defined() ? at::Tensor() : W.t().contiguous());
    }
  }
  for (size_t i = 0; i < p.size(); i += 8) {
    auto [q, sc] = exact_int8(p[i + 2]);  // codes (hid, d) → panels (hid / 64, d, 64)
    const int64_t hid = p[i + 2].size(0), d = p[i + 2].size(1);
    const bool int8 = q.defined() && hid % 64 == 0;
    r.pq8p.push_back(int8 ? q.t().contiguous().view({d, hid / 64, 64}).transpose(0, 1).contiguous()
                          : at::Tensor());
    r.ps8.push_back(int8 ? sc : at::Tensor());
    const bool skip = codes_only && int8;
    const at::Tensor Wt = skip ? at::Tensor() : p[i + 2].t().contiguous();  // (d, hid)
    r.pt.push_back(Wt);
    r.pp.push_back(skip || hid % 64 ? at::Tensor() :  // (hid / 64, d, 64): 64 columns in a row
                   Wt.view({d, hid / 64, 64}).transpose(0, 1).contiguous());
  }
  for (size_t i = 0; i < w.size(); i += 16)
    for (int j : kLinear) r.counters.push_back(w[i + j].unsafeGetTensorImpl()->version_counter());
  for (size_t i = 0; i < p.size(); i += 8)
    r.counters.push_back(p[i + 2].unsafeGetTensorImpl()->version_counter());
  for (const auto& c : r.counters) r.versions.push_back(c.current_version());
  r.built = true;
  return r;
}


// Whether r must be rebuilt: it never was, or a tensor it was derived from changed in place.
// Run on every call, so it reads only the counters it kept (through Tensor._version() and the
// dispatcher, for all of a model's ~100 tensors, it had cost 14 µs a call on cold caches).
bool stale(const Derived& r) {
  if (!r.built) return true;
  for (size_t k = 0; k < r.counters.size(); ++k)
    if (r.counters[k].current_version() != r.versions[k]) return true;
  return false;
}

// Layer i's pointers for small_layer, with its int8 codes where it has them.
LayerPtrs layer_ptrs(at::TensorList w, const Derived& D, int64_t i, int64_t d) {
  LayerPtrs L(w.slice(16 * i, 16), d);
  SmallLinear* lins[6] = {&L.q, &L.k, &L.v, &L.o, &L.f1, &L.f2};
  for (int j = 0; j < 6; ++j) {
    const at::Tensor& q = D.q8[6 * i + j];
    if (q.defined()) {
      lins[j]->q = q.data_ptr<int8_t>();
      lins[j]->s = D.s8[6 * i + j].data_ptr<float>();
    }
  }
  return L;
}

// Y = X Wᵀ + b for Linear j of layer_aten: on int8 codes (linear_int8_avx512) where the layer has
// them and the CPU AVX-512, else ATen's addmm on the cached Wᵀ.
struct LayerLinears {
  at::TensorList w, wt;
  const Derived* D;
  int64_t layer;
  at::Tensor operator()(int j, const at::Tensor& x) const {
    const at::Tensor& b = w[kLinear[j] + 1];
#ifdef SKIMVIZ_AVX512
    const at::Tensor& qp = D->q8p[6 * layer + j];
    if (g_avx512 && qp.defined()) {
      const at::Tensor xc = x.contiguous();
      const int64_t M = xc.size(0), K = xc.size(1), N = qp.size(0) * 64;
      at::Tensor y = at::empty({M, N}, xc.options());
      linear_int8_avx512(qp.data_ptr<int8_t>(), D->s8[6 * layer + j].data_ptr<float>(),
                         b.data_ptr<float>(), K, N, xc.data_ptr<float>(), M, y.data_ptr<float>());
      return y;
    }
#endif
    return at::addmm(b, x, wt[j]);
  }
};

// The same layer with ATen operators, in the order of EncoderLayer.forward (so its results are
// those of the Python path): for layers on more than `small` tokens. lin: its six Linears.
at::Tensor layer_aten(const at::Tensor& h, at::TensorList w, const LayerLinears& lin,
                      int64_t heads, double eps) {
  const int64_t n = h.size(0), d = h.size(1);
  const auto split = [&](const at::Tensor& t) {  // (n, d) → (1, heads, n, d / heads)
    return t.view({1, n, heads, d / heads}).transpose(1, 2);
  };
  const at::Tensor q = split(lin(0, h)), k = split(lin(1, h)), v = split(lin(2, h));
  // softmax(q kᵀ / √d_h) v per head as two batched GEMMs (for the sizes here as fast as ATen's
  // fused scaled_dot_product_attention at 128 tokens, and faster below: 87 vs 124 µs at 54)
  const at::Tensor s = at::baddbmm(at::empty({heads, n, n}, h.options()), q[0], k[0].transpose(1, 2),
                                   0.0, 1.0 / std::sqrt(static_cast<double>(d / heads)));
  const at::Tensor a = at::bmm(s.softmax(-1), v[0]).transpose(0, 1).reshape({n, d});
  at::Tensor x = at::layer_norm(h + lin(3, a), {d}, w[8], w[9], eps);
  return at::layer_norm(x + lin(5, at::gelu(lin(4, x))), {d}, w[14], w[15], eps);
}

// Skim predictor (Eq. 2) on m rows h (m, d): LayerNorm → Linear(d → p) → LayerNorm → GELU → Linear(p → 2); keep[t] =
// logit_keep > logit_skim (argmax at inference). With the AVX-512 kernels: on int8 codes
// (D.pq8p[i]) LayerNorm → linear_int8_avx512 → predictor_tail_avx512; else, with p % 64 == 0,
// predict_fused_avx512. Otherwise the Linear(d → p) is one GEMM (with pt = Wᵀ) over all the
// rows when there are more than `small`, else linear_small; the rest is per row. D, i: the
// engine's derived weights and this predictor's index.
// q: [γ, β, W (p, d), b, γ', β', W' (2, p), b'] (SkimPredictor.net's parameters).
void predict_rows(const float* h, int64_t m, int64_t d, at::TensorList q, const Derived& D,
                  int64_t i, double eps, int64_t small, char* keep) {
  const at::Tensor &pt = D.pt[i], &pp = D.pp[i];
  const int64_t hid = q[2].size(0);
  const float *g1 = ptr(q[0], d, "pred gamma"), *b1 = ptr(q[1], d, "pred beta");
  const float *W = ptr(q[2], hid * d, "pred W"), *b = ptr(q[3], hid, "pred b");
  const float *g2 = ptr(q[4], hid, "pred gamma'"), *b2 = ptr(q[5], hid, "pred beta'");
  const float *W2 = ptr(q[6], 2 * hid, "pred W'"), *bo = ptr(q[7], 2, "pred b'");
#ifdef SKIMVIZ_AVX512
  if (g_avx512 && D.pq8p[i].defined() && d % 16 == 0) {  // int8 codes: LN, int8 GEMM, tail
    at::Tensor x = at::empty({m, d}, q[0].options()), z = at::empty({m, hid}, q[0].options());
    float *xp = x.data_ptr<float>(), *zp = z.data_ptr<float>();
    layer_norm_rows_avx512(h, m, d, g1, b1, eps, xp);
    linear_int8_avx512(D.pq8p[i].data_ptr<int8_t>(), D.ps8[i].data_ptr<float>(), b, d, hid, xp,
                       m, zp);
    return predictor_tail_avx512(zp, m, hid, g2, b2, W2, bo, eps, keep);
  }
  if (g_avx512 && pp.defined() && d % 16 == 0 && d <= 1024 && hid <= 1024) {
    predict_fused_avx512(h, m, d, hid, g1, b1, pp.data_ptr<float>(), b, g2, b2, W2, bo, eps,
                         keep);
    return;
  }
#endif
  at::Tensor x = at::empty({m, d}, q[0].options());
  float* xp = x.data_ptr<float>();
#ifdef SKIMVIZ_AVX512
  const bool wide = g_avx512 && d % 16 == 0 && hid % 16 == 0;
  if (wide)
    layer_norm_rows_avx512(h, m, d, g1, b1, eps, xp);
  else
#else
  const bool wide = false;
#endif
    for (int64_t t = 0; t < m; ++t) layer_norm(h + t * d, xp + t * d, g1, b1, d, eps);
  at::Tensor z = m > small ? at::addmm(q[3], x, pt) : at::empty({m, hid}, x.options());
  float* zp = z.data_ptr<float>();
  if (m <= small) linear_small(W, nullptr, b, hid, d, xp, m, zp);
#ifdef SKIMVIZ_AVX512
  if (wide) return predictor_tail_avx512(zp, m, hid, g2, b2, W2, bo, eps, keep);
#endif
  // per row, in one pass after the LayerNorm's statistics: u = GELU(LN(z)), then the two
  // logits W' u + b' (the larger decides)
  for (int64_t t = 0; t < m; ++t) {
    const float* zt = zp + t * hid;
    const float mean = vsum(zt, hid) / hid;
    const float var = vsum(zt, hid, mean, true) / hid;
    const Vec mu(mean), inv(static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps)));
    Vec skim[2] = {Vec(0.0f), Vec(0.0f)}, keep_[2] = {Vec(0.0f), Vec(0.0f)};  // two chains
    for (int64_t j = 0, i = 0; j < hid; j += Vec::size(), i ^= 1) {
      const int64_t c = std::min<int64_t>(Vec::size(), hid - j);
      Vec u = gelu(at::vec::fmadd((Vec::loadu(zt + j, c) - mu) * inv, Vec::loadu(g2 + j, c),
                                  Vec::loadu(b2 + j, c)));
      if (c < Vec::size()) u = Vec::set(Vec(0.0f), u, c);  // lanes past the end count 0
      skim[i] = at::vec::fmadd(u, Vec::loadu(W2 + j, c), skim[i]);
      keep_[i] = at::vec::fmadd(u, Vec::loadu(W2 + hid + j, c), keep_[i]);
    }
    float ls[Vec::size()], lk[Vec::size()];
    (skim[0] + skim[1]).store(ls);
    (keep_[0] + keep_[1]).store(lk);
    float l0 = bo[0], l1 = bo[1];
    for (int64_t l = 0; l < Vec::size(); ++l) l0 += ls[l], l1 += lk[l];
    keep[t] = l1 > l0;
  }
}

// Transkimmer inference at batch 1 (TranskimmerClassifier._forward_pruned, Eq. 1 and 3): before
// layer i, predictor i (when given) decides on every kept token but [CLS] (argmax of
// LN → Linear → LN → GELU → Linear(2), Eq. 2); pruned tokens leave with their state H^i into
// `out` at their original position (Eq. 3); the kept rows are gathered and the layer runs on them
// (small_layer on ≤ small tokens, ATen above). h: (T, d) embedded tokens (no padding); w: 16
// tensors per layer; p: 8 per layer ([γ, β, W, b, γ', β', W', b']) or none (dense twin);
// force_keep: the predictors run but every token is kept. Returns (out (T, d), prune layer per
// token (T,) with L for tokens kept to the end, tokens entering each layer (L,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor> transkimmer_forward(
    const at::Tensor& h_in, at::TensorList w, at::TensorList p, const Derived& D, int64_t heads,
    double eps, double pred_eps, int64_t small, bool force_keep) {
  TORCH_CHECK(h_in.dim() == 2 && h_in.scalar_type() == at::kFloat, "h must be (T, d) float32");
  TORCH_CHECK(w.size() % 16 == 0 && !w.empty(), "transkimmer_forward: 16 tensors per layer");
  const int64_t L = w.size() / 16, T = h_in.size(0), d = h_in.size(1);
  TORCH_CHECK(p.empty() || p.size() == static_cast<size_t>(8 * L),
              "transkimmer_forward: 8 predictor tensors per layer, or none");
  at::Tensor h = h_in.contiguous();
  at::Tensor out = at::empty({T, d}, h.options());
  at::Tensor prune = at::full({T}, L, h.options().dtype(at::kLong));
  at::Tensor kept = at::empty({L}, h.options().dtype(at::kLong));
  int64_t* pr = prune.data_ptr<int64_t>();
  int64_t* kp = kept.data_ptr<int64_t>();
  std::vector<int64_t> pos(T);  // original position of each current row
  std::vector<char> kb(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = t;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t n = h.size(0);
    if (!p.empty() && n > 1) {
      predict_rows(h.data_ptr<float>() + d, n - 1, d, p.slice(8 * i, 8), D, i, pred_eps,
                   small, kb.data() + 1);
      if (force_keep) std::fill(kb.begin(), kb.end(), 1);  // run, but every token kept
      std::vector<int64_t> rows{0};  // [CLS] is always kept
      const float* src = h.data_ptr<float>();
      float* dst = out.data_ptr<float>();
      for (int64_t t = 1; t < n; ++t) {
        if (kb[t]) {
          rows.push_back(t);
        } else {  // Eq. 3: the token leaves with H^i
          std::copy(src + t * d, src + (t + 1) * d, dst + pos[t] * d);
          pr[pos[t]] = i;
        }
      }
      if (static_cast<int64_t>(rows.size()) < n) {
        at::Tensor g = at::empty({static_cast<int64_t>(rows.size()), d}, h.options());
        float* gp = g.data_ptr<float>();
        for (size_t r = 0; r < rows.size(); ++r) {
          std::copy(src + rows[r] * d, src + (rows[r] + 1) * d, gp + r * d);
          pos[r] = pos[rows[r]];
        }
        pos.resize(rows.size());
        h = g;
      }
    }
    const int64_t m = kp[i] = h.size(0);
    if (m <= small) {
      at::Tensor y = at::empty({m, d}, h.options());
      small_layer(layer_ptrs(w, D, i, d), h.data_ptr<float>(), m, heads, eps,
                  y.data_ptr<float>());
      h = y;
    } else {
      const at::TensorList wi = w.slice(16 * i, 16);
      h = layer_aten(h, wi, LayerLinears{wi, at::TensorList(D.wt).slice(6 * i, 6), &D, i}, heads,
                     eps);
    }
  }
  const float* src = h.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t r = 0; r < h.size(0); ++r)
    std::copy(src + r * d, src + (r + 1) * d, dst + pos[r] * d);
  return {out, prune, kept};
}

// TranskimmerClassifier.embed: ids (B, T) int64 → LN(word[id] + position[t] + token_type[0])
// (B, T, d), per token in one pass (dropout is the identity at inference). emb: [word, position,
// token_type, γ, β].
at::Tensor embed(const at::Tensor& ids_in, at::TensorList emb, double eps) {
  TORCH_CHECK(ids_in.dim() == 2 && ids_in.scalar_type() == at::kLong, "ids must be (B, T) int64");
  const at::Tensor ids = ids_in.contiguous();
  const int64_t B = ids.size(0), T = ids.size(1), V = emb[0].size(0), d = emb[0].size(1);
  TORCH_CHECK(T <= emb[1].size(0), "transkimmer: at most max_positions tokens");
  const float *word = ptr(emb[0], V * d, "word"), *posw = ptr(emb[1], emb[1].numel(), "position");
  const float *tt = ptr(emb[2], emb[2].numel(), "token_type");
  const float *g = ptr(emb[3], d, "gamma"), *b = ptr(emb[4], d, "beta");
  at::Tensor h = at::empty({B, T, d}, emb[0].options());
  float* hp = h.data_ptr<float>();
  const int64_t* id = ids.data_ptr<int64_t>();
  for (int64_t r = 0; r < B * T; ++r)
    TORCH_CHECK(id[r] >= 0 && id[r] < V, "transkimmer_infer: token id out of range");
  // the rows of a large word table are scattered: ask for the row kPrefetchAhead tokens on
  // while this one is summed, so their cache misses overlap (128 tokens on cold caches:
  // 143 → 97 µs with the small model's table, 199 → 161 µs with MiniLM's)
  constexpr int64_t kPrefetchAhead = 8;
  for (int64_t r = 0; r < std::min(B * T, kPrefetchAhead); ++r)
    for (int64_t j = 0; j < d; j += 16) __builtin_prefetch(word + id[r] * d + j);
  for (int64_t r = 0; r < B * T; ++r) {
    if (r + kPrefetchAhead < B * T)
      for (int64_t j = 0; j < d; j += 16) __builtin_prefetch(word + id[r + kPrefetchAhead] * d + j);
    float* x = hp + r * d;
    const float *wr = word + id[r] * d, *pr = posw + (r % T) * d;
    for (int64_t j = 0; j < d; ++j) x[j] = wr[j] + pr[j] + tt[j];
    layer_norm(x, g, b, d, eps);
  }
  return h;
}

// The whole batch-1 inference of TranskimmerClassifier.forward: embeddings (word + position +
// token type 0, LayerNorm), transkimmer_forward, then the head tanh(W_p x + b_p) → W_c · + b_c
// on x = h_[CLS], or with mean_pool on x = the mean of the T output rows (classify; dropout is
// the identity at inference). ids: (T,) int64 without padding; emb: [word, position,
// token_type, γ, β]; head: [W_p, b_p, W_c, b_c]. Returns (logits (C,), prune (T,), kept (L,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor> transkimmer_infer(
    const at::Tensor& ids_in, at::TensorList emb, at::TensorList w, at::TensorList p,
    const Derived& D, at::TensorList head, int64_t heads, double eps, double pred_eps,
    int64_t small, bool force_keep, bool mean_pool) {
  TORCH_CHECK(ids_in.dim() == 1 && ids_in.scalar_type() == at::kLong, "ids must be (T,) int64");
  TORCH_CHECK(emb.size() == 5 && head.size() == 4, "transkimmer_infer: 5 embedding and 4 head "
              "tensors");
  const int64_t T = ids_in.size(0), d = emb[0].size(1);
  TORCH_CHECK(T >= 1 && T <= emb[1].size(0), "transkimmer_infer: 1 to max_positions tokens");
  const at::Tensor h = embed(ids_in.view({1, T}), emb, eps).view({T, d});
  auto [out, prune, kept] =
      transkimmer_forward(h, w, p, D, heads, eps, pred_eps, small, force_keep);
  const int64_t C = head[2].size(0);
  const float *Wp = ptr(head[0], d * d, "W_pooler"), *bp = ptr(head[1], d, "b_pooler");
  const float *Wc = ptr(head[2], C * d, "W_classifier"), *bc = ptr(head[3], C, "b_classifier");
  std::vector<float> x(out.data_ptr<float>(), out.data_ptr<float>() + d), pooled(d);  // [CLS]
  if (mean_pool) {  // Σ over rows in order, then ÷ T (as torch's sum(1) / T, to float rounding)
    const float* o = out.data_ptr<float>();
    for (int64_t t = 1; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) x[j] += o[t * d + j];
    for (auto& v : x) v /= static_cast<float>(T);
  }
  matvec<dot_simd>(Wp, x.data(), bp, d, d, pooled.data());
  for (auto& v : pooled) v = std::tanh(v);
  at::Tensor logits = at::empty({C}, h.options());
  matvec<dot_simd>(Wc, pooled.data(), bc, C, d, logits.data_ptr<float>());
  return {logits, prune, kept};
}

// The weights of one model, held once (references to the parameters' tensors, not copies, plus
// the Derived layouts), so a call from Python passes only the token ids: converting ~100 tensors
// to a Tensor[] argument on every call cost ~0.3 ms, more than a one-token layer. The Python
// model drops this object when its parameters are replaced (.to(), .half(), load_state_dict);
// in-place updates are seen (Derived is rebuilt when a version counter moved).
struct TranskimmerWeights : torch::CustomClassHolder {
  std::vector<at::Tensor> emb, w, p, head;
  int64_t heads, small;
  double eps, pred_eps;
  bool mean_pool;
  Derived derived;
  TranskimmerWeights(std::vector<at::Tensor> emb_, std::vector<at::Tensor> w_,
                     std::vector<at::Tensor> p_, std::vector<at::Tensor> head_, int64_t heads_,
                     double eps_, double pred_eps_, int64_t small_, bool mean_pool_)
      : emb(std::move(emb_)), w(std::move(w_)), p(std::move(p_)), head(std::move(head_)),
        heads(heads_), small(small_), eps(eps_), pred_eps(pred_eps_), mean_pool(mean_pool_) {
    TORCH_CHECK(!w.empty() && w.size() % 16 == 0, "TranskimmerWeights: 16 tensors per layer");
    TORCH_CHECK(p.empty() || p.size() == w.size() / 2, "TranskimmerWeights: 8 predictor "
                "tensors per layer, or none");
  }
  const Derived& current() {
    if (stale(derived) || derived.codes_only != g_avx512) derived = derive(w, p);
    return derived;
  }
  // use_predictors = false: no predictors (the dense twin has none); force_keep: they run but
  // every token is kept (the model's own dense run, TranskimmerClassifier.force_keep). pad_id ≥ 0:
  // if an id is pad_id (the input has padding), nothing is computed and the logits are empty
  // (the caller then takes the Python path), so the caller need not check first.
  // ids (T,), or (1, T): then every result has a leading batch dimension of 1 (the model's
  // forward returns its logits (1, C) as they come).
  std::tuple<at::Tensor, at::Tensor, at::Tensor> infer(const at::Tensor& ids_in,
                                                       bool use_predictors, bool force_keep,
                                                       int64_t pad_id) {
    const bool batch = ids_in.dim() == 2 && ids_in.size(0) == 1;
    const at::Tensor ids = batch ? ids_in[0] : ids_in;
    if (pad_id >= 0 && ids.dim() == 1 && ids.scalar_type() == at::kLong) {
      const at::Tensor c = ids.contiguous();
      const int64_t* id = c.data_ptr<int64_t>();
      if (std::find(id, id + c.numel(), pad_id) != id + c.numel()) {
        const at::Tensor none = at::empty({0}, c.options());
        return {none.to(at::kFloat), none, none};
      }
    }
    const Derived& D = current();
    auto r = transkimmer_infer(ids, emb, w, use_predictors ? at::TensorList(p) : at::TensorList(),
                               D, head, heads, eps, pred_eps, small, force_keep, mean_pool);
    if (batch)
      return {std::get<0>(r).unsqueeze(0), std::get<1>(r).unsqueeze(0), std::get<2>(r).unsqueeze(0)};
    return r;
  }
  // TranskimmerClassifier.forward's short path, `model(ids)` for one text at inference: the
  // logits (1, C) of ids (1, T), or an empty tensor where the Python code must run instead —
  // ids not (1, T) int64 on the CPU, padding (id 0) in them, gradients on, or
  // SKIMVIZ_TRANSKIMMER_BACKEND=python. These checks cost next to nothing here; in Python, on
  // the cold caches of a call after another model's, they had cost about as much as a layer on
  // one token.
  at::Tensor run(const at::Tensor& ids, bool force_keep) {
    const char* be = std::getenv("SKIMVIZ_TRANSKIMMER_BACKEND");
    if (ids.dim() != 2 || ids.size(0) != 1 || ids.size(1) < 1 || ids.size(1) > emb[1].size(0) ||
        ids.scalar_type() != at::kLong || !ids.device().is_cpu() || at::GradMode::is_enabled() ||
        (be && std::string(be) == "python"))
      return at::empty({0}, emb[0].options());
    const at::Tensor logits = std::get<0>(infer(ids, !p.empty(), force_keep, 0));
    return logits.numel() ? logits : at::empty({0}, emb[0].options());
  }
  // How many of the layers' Linears run on int8 codes in small layers (for the bench's report).
  int64_t int8_linears() {
    int64_t c = 0;
    for (const auto& q : current().q8) c += q.defined();
    return c;
  }
};

}  // namespace

TORCH_LIBRARY_FRAGMENT(skimviz, m) {
  m.def("transkimmer_layer(Tensor h, Tensor[] w, int heads, float eps) -> Tensor");
  m.def("transkimmer_avx512(int mode) -> bool", &transkimmer_avx512);
  m.class_<TranskimmerWeights>("TranskimmerWeights")
      .def(torch::init<std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
                       std::vector<at::Tensor>, int64_t, double, double, int64_t, bool>())
      .def("infer", &TranskimmerWeights::infer)
      .def("run", &TranskimmerWeights::run)
      .def("int8_linears", &TranskimmerWeights::int8_linears);
}

TORCH_LIBRARY_IMPL(skimviz, CPU, m) {
  m.impl("transkimmer_layer", &transkimmer_layer);
}
