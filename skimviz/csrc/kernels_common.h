// SIMD helpers shared by the CPU kernels (sru_cpu.cpp, skip_rnn_cpu.cpp, skim_rnn_cpu.cpp).
//
// Every file of the extension is compiled with the same flags (skimviz/_ext.py), so Vec is the
// same at::vec::Vectorized<float> everywhere: AVX2 when the build has CPU_CAPABILITY_AVX2, else
// its portable scalar version. This header is part of the hash in the library's file name
// (_ext.HEADERS), so editing it makes the extension "not built" until it is rebuilt.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>

namespace skimviz_kernels {

using Vec = at::vec::Vectorized<float>;

// σ(x) = 1 / (1 + exp(−x)), lane-wise (float for the RNN loops, float or double for the SRU).
template <typename T>
inline at::vec::Vectorized<T> sigmoid(const at::vec::Vectorized<T>& x) {
  const at::vec::Vectorized<T> one(T(1));
  return one / (one + x.neg().exp());
}

// Fast float lanes for the SRU only (sru_cpu.cpp); the Skip/Skim kernels keep sigmoid above,
// since a last-bit change there could move a decision near θ. exp is Cephes' expf (range
// reduction by ln 2 in two parts, then 1 + r + r²·P(r) with P of degree 5, see below; relative
// error ~2e-7) on x clamped to
// [-87, 87], so 1 + exp(±x) stays finite. Then, with 1/d from fast_recip_ps,
//   σ(x) = 1 / (1 + exp(−x)),   tanh(x) = 1 − 2 / (1 + exp(2x))   (absolute error ~3e-7)
// against torch's SLEEF (u10) versions, which cost about three times as much per lane. The double
// versions (gradcheck) and the non-AVX2 build keep the accurate functions.
template <typename T>
inline at::vec::Vectorized<T> fast_sigmoid(const at::vec::Vectorized<T>& x) {
  return sigmoid(x);
}
template <typename T>
inline at::vec::Vectorized<T> fast_tanh(const at::vec::Vectorized<T>& x) {
  return x.tanh();
}
// Cephes' expf: e^x = 2^n · e^r with n = ⌊x log2 e + ½⌋ and r = x − n ln 2 (ln 2 in two parts
// for accuracy), e^r ≈ 1 + r + r² · P(r), P of degree 5 (coefficients highest first); x clamped
// to ±kExpMax. Shared by fast_exp_ps and the AVX-512 exp of transkimmer_cpu.cpp.
constexpr float kExpMax = 87.0f, kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
#if defined(CPU_CAPABILITY_AVX2)
inline __m256 fast_exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-kExpMax)), _mm256_set1_ps(kExpMax));
  const __m256 fx = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Lo), r);
  __m256 y = _mm256_set1_ps(kExpP[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP[i]));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}
// 1 / d for d in [1, 1e38]: the 12-bit hardware estimate and one Newton step (~2e-7 relative).
inline __m256 fast_recip_ps(__m256 d) {
  const __m256 y = _mm256_rcp_ps(d);
  return _mm256_mul_ps(y, _mm256_fnmadd_ps(d, y, _mm256_set1_ps(2.0f)));
}
template <>
inline Vec fast_sigmoid<float>(const Vec& x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return Vec(fast_recip_ps(
      _mm256_add_ps(one, fast_exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x)))));
}
template <>
inline Vec fast_tanh<float>(const Vec& x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = fast_exp_ps(_mm256_add_ps(x, x));
  return Vec(_mm256_fnmadd_ps(_mm256_set1_ps(2.0f), fast_recip_ps(_mm256_add_ps(one, e)), one));
}
#endif

// The 8 lane sums of a[0..7], in order: {Σ a[0], ..., Σ a[7]} (AVX2: a tree of horizontal adds).
inline Vec hsum8(const Vec* a) {
#if defined(CPU_CAPABILITY_AVX2)
  static_assert(Vec::size() == 8);
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return Vec(_mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                           _mm256_permute2f128_ps(u0, u1, 0x31)));
#else
  float s[8], lanes[Vec::size()];
  for (int k = 0; k < 8; ++k) {
    a[k].store(lanes);
    s[k] = 0.0f;
    for (int64_t l = 0; l < Vec::size(); ++l) s[k] += lanes[l];
  }
  return Vec::loadu(s, 8);
#endif
}

// Σ a[j]·b[j] over j < n, one product at a time in order (float accumulation). The Skip RNN's
// gate uses this order; changing it would change which steps are skipped near θ.
inline float dot_seq(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// Σ a[j]·b[j] over j < n, SIMD (float accumulation in Vec::size() lanes, then their sum).
inline float dot_simd(const float* a, const float* b, int64_t n) {
  Vec acc(0.0f);
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size())
    acc = at::vec::fmadd(Vec::loadu(a + j), Vec::loadu(b + j), acc);
  if (j < n) acc = at::vec::fmadd(Vec::loadu(a + j, n - j), Vec::loadu(b + j, n - j), acc);
  float lanes[Vec::size()];
  acc.store(lanes);
  float s = 0.0f;
  for (int64_t l = 0; l < Vec::size(); ++l) s += lanes[l];
  return s;
}

// y[0:n] = b[0:n] + W v, W: (n, m) row-major (PyTorch's layout, no copy): dot products of 8 rows
// at a time with v, their 8 vector accumulators reduced together by hsum8. The last n % 8 rows
// use RowDot (dot_seq or dot_simd: each kernel keeps the summation order it was tested with).
template <float (*RowDot)(const float*, const float*, int64_t)>
inline void matvec(const float* W, const float* v, const float* b, int64_t n, int64_t m,
                   float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Vec acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = Vec(0.0f);
    int64_t j = 0;
    for (; j + Vec::size() <= m; j += Vec::size()) {
      const Vec vj = Vec::loadu(v + j);
      for (int k = 0; k < 8; ++k)
        acc[k] = at::vec::fmadd(Vec::loadu(W + (i + k) * m + j), vj, acc[k]);
    }
    if (j < m) {  // partial vector (zero-filled past the end)
      const int64_t c = m - j;
      const Vec vj = Vec::loadu(v + j, c);
      for (int k = 0; k < 8; ++k)
        acc[k] = at::vec::fmadd(Vec::loadu(W + (i + k) * m + j, c), vj, acc[k]);
    }
    (hsum8(acc) + Vec::loadu(b + i, 8)).store(y + i, 8);
  }
  for (; i < n; ++i) y[i] = b[i] + RowDot(W + i * m, v, m);  // the last n % 8 rows
}

// One LSTM step writing h[0:H], c[0:H] in place from the pre-activations gi = W_ih x + b_ih and
// gh = W_hh h_prev + b_hh (both 4H, [i, f, g, o]; at::lstm_cell's layout and formulas):
// c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'). Reads c[0:H] before writing it.
inline void lstm_update(const float* gi, const float* gh, int64_t H, float* h, float* c) {
  for (int64_t j = 0; j < H; j += Vec::size()) {
    const int64_t n = std::min<int64_t>(Vec::size(), H - j);
    const auto ld = [n](const float* p) { return Vec::loadu(p, n); };
    const Vec i = sigmoid(ld(gi + j) + ld(gh + j));
    const Vec f = sigmoid(ld(gi + H + j) + ld(gh + H + j));
    const Vec g = (ld(gi + 2 * H + j) + ld(gh + 2 * H + j)).tanh();
    const Vec o = sigmoid(ld(gi + 3 * H + j) + ld(gh + 3 * H + j));
    const Vec c_new = f * ld(c + j) + i * g;
    c_new.store(c + j, n);
    (o * c_new.tanh()).store(h + j, n);
  }
}

}  // namespace skimviz_kernels
