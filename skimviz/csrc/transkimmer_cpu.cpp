// Transkimmer inference at batch 1 on the CPU, in one call.
//
// Guan et al., "Transkimmer: Transformer Learns to Layer-wise Skim" (ACL 2022). Once the skim
// predictors have pruned most tokens (Eq. 1), the layers run on 1–8 tokens, and there PyTorch's
// per-operator cost (~10 µs for each of ~15 small GEMMs, LayerNorms and adds, plus the Python
// bookkeeping of the gather) is many times the arithmetic. So at batch 1 the whole forward is one
// C++ call (TranskimmerWeights.infer → transkimmer_infer): embeddings, then per layer the skim
// predictor on the kept tokens (predict_keep, Eq. 2, fused per token), the gather of the kept
// rows (Eq. 1) with pruned tokens leaving with their state (Eq. 3), and the layer — on at most
// `small` tokens the fused kernel transkimmer_layer, above that ATen operators in the order of
// the Python code (layer_aten) — then the pooler and classifier. The Python reference is
// TranskimmerClassifier._forward_pruned in skimviz/models/transkimmer.py (tests/
// test_transkimmer_cpp.py: the same decisions, logits to 1e-5). One layer, post-LN BERT:
//
//   q, k, v = W_q h + b_q, W_k h + b_k, W_v h + b_v                 (per token, d → d)
//   a_head  = softmax(q_head k_headᵀ / √d_h) v_head                  (per head, over the n tokens)
//   h       = LN(h + W_o a + b_o)                                     (attention block, post-LN)
//   h       = LN(h + W_2 GELU(W_1 h + b_1) + b_2)                     (FFN block; exact erf GELU)
//
// At n = 1 the softmax over one key is 1, so a = v and q, k are not computed (as in Python).
// The dense twin runs through the same call (no predictors), so both are timed with one engine.
// transkimmer_layer is also an op (torch.ops.skimviz_sru.transkimmer_layer) for the Python
// pruning path's small layers (batches with padding). Same extension module as sru_cpu.cpp.
#include <ATen/ATen.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "kernels_common.h"

namespace {

using namespace skimviz_kernels;  // Vec, matvec, dot_simd

// Σ x[0:n] in Vec::size() float lanes (partial last vector zero-filled), then the lanes' sum.
float vsum(const float* x, int64_t n, float sub = 0.0f, bool square = false) {
  Vec acc(0.0f);
  const Vec m(sub);
  for (int64_t j = 0; j < n; j += Vec::size()) {
    const int64_t c = std::min<int64_t>(Vec::size(), n - j);
    Vec v = Vec::loadu(x + j, c) - m;
    if (c < Vec::size()) v = Vec::set(Vec(0.0f), v, c);  // lanes past the end count 0
    acc = square ? at::vec::fmadd(v, v, acc) : acc + v;
  }
  float lanes[Vec::size()];
  acc.store(lanes);
  float s = 0.0f;
  for (int64_t l = 0; l < Vec::size(); ++l) s += lanes[l];
  return s;
}

// x ← LN(x) · γ + β over d values (two-pass mean and biased variance, as torch.layer_norm), in
// place, in float SIMD lanes.
void layer_norm(float* x, const float* g, const float* b, int64_t d, double eps) {
  const float mean = vsum(x, d) / d;
  const float var = vsum(x, d, mean, true) / d;
  const Vec m(mean), inv(static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps)));
  for (int64_t j = 0; j < d; j += Vec::size()) {
    const int64_t c = std::min<int64_t>(Vec::size(), d - j);
    at::vec::fmadd((Vec::loadu(x + j, c) - m) * inv, Vec::loadu(g + j, c), Vec::loadu(b + j, c))
        .store(x + j, c);
  }
}

// x ← x · Φ(x) = x · (1 + erf(x / √2)) / 2, in place (torch's default, exact GELU).
void gelu(float* x, int64_t n) {
  const Vec half(0.5f), one(1.0f), rsqrt2(static_cast<float>(M_SQRT1_2));
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    const Vec v = Vec::loadu(x + j);
    (v * half * (one + (v * rsqrt2).erf())).store(x + j);
  }
  for (; j < n; ++j) x[j] = 0.5f * x[j] * (1.0f + std::erf(x[j] * static_cast<float>(M_SQRT1_2)));
}

const float* ptr(const at::Tensor& t, int64_t numel, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.numel() == numel,
              "transkimmer_layer: ", name, " must be a contiguous float32 tensor of ", numel,
              " values");
  return t.data_ptr<float>();
}

// h: (n, d) float32; w: [W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o, γ_1, β_1, W_1, b_1, W_2, b_2,
// γ_2, β_2] (PyTorch's Linear/LayerNorm parameters of one layer). Returns the new (n, d).
at::Tensor transkimmer_layer(const at::Tensor& h_in, at::TensorList w, int64_t heads,
                             double eps) {
  TORCH_CHECK(w.size() == 16, "transkimmer_layer: expects 16 weight tensors");
  TORCH_CHECK(h_in.dim() == 2 && h_in.scalar_type() == at::kFloat, "h must be (n, d) float32");
  const at::Tensor h = h_in.contiguous();
  const int64_t n = h.size(0), d = h.size(1), f = w[10].size(0);
  TORCH_CHECK(heads > 0 && d % heads == 0, "transkimmer_layer: heads must divide d");
  const int64_t dh = d / heads;
  const float *Wq = ptr(w[0], d * d, "W_q"), *bq = ptr(w[1], d, "b_q");
  const float *Wk = ptr(w[2], d * d, "W_k"), *bk = ptr(w[3], d, "b_k");
  const float *Wv = ptr(w[4], d * d, "W_v"), *bv = ptr(w[5], d, "b_v");
  const float *Wo = ptr(w[6], d * d, "W_o"), *bo = ptr(w[7], d, "b_o");
  const float *g1 = ptr(w[8], d, "gamma_1"), *be1 = ptr(w[9], d, "beta_1");
  const float *W1 = ptr(w[10], f * d, "W_1"), *b1 = ptr(w[11], f, "b_1");
  const float *W2 = ptr(w[12], d * f, "W_2"), *b2 = ptr(w[13], d, "b_2");
  const float *g2 = ptr(w[14], d, "gamma_2"), *be2 = ptr(w[15], d, "beta_2");

  at::Tensor out = at::empty({n, d}, h.options());
  const float* x = h.data_ptr<float>();
  float* y = out.data_ptr<float>();
  std::vector<float> q(n * d), k(n * d), v(n * d), a(n * d), tmp(d), ff(f), p(n);
  for (int64_t t = 0; t < n; ++t) {
    matvec<dot_simd>(Wv, x + t * d, bv, d, d, v.data() + t * d);
    if (n > 1) {
      matvec<dot_simd>(Wq, x + t * d, bq, d, d, q.data() + t * d);
      matvec<dot_simd>(Wk, x + t * d, bk, d, d, k.data() + t * d);
    }
  }
  if (n == 1) {
    a = v;  // softmax over one key is 1
  } else {
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
  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * d;
    matvec<dot_simd>(Wo, a.data() + t * d, bo, d, d, tmp.data());
    for (int64_t j = 0; j < d; ++j) yt[j] = x[t * d + j] + tmp[j];
    layer_norm(yt, g1, be1, d, eps);
    matvec<dot_simd>(W1, yt, b1, f, d, ff.data());
    gelu(ff.data(), f);
    matvec<dot_simd>(W2, ff.data(), b2, d, f, tmp.data());
    for (int64_t j = 0; j < d; ++j) yt[j] += tmp[j];
    layer_norm(yt, g2, be2, d, eps);
  }
  return out;
}

// The same layer with ATen operators, in the order of EncoderLayer.forward (so its results are
// those of the Python path): for layers on more than `small` tokens.
at::Tensor layer_aten(const at::Tensor& h, at::TensorList w, int64_t heads, double eps) {
  const int64_t n = h.size(0), d = h.size(1);
  const auto split = [&](const at::Tensor& t) {  // (n, d) → (1, heads, n, d / heads)
    return t.view({1, n, heads, d / heads}).transpose(1, 2);
  };
  const at::Tensor q = split(at::linear(h, w[0], w[1])), k = split(at::linear(h, w[2], w[3]));
  const at::Tensor v = split(at::linear(h, w[4], w[5]));
  const at::Tensor a = at::scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape({n, d});
  at::Tensor x = at::layer_norm(h + at::linear(a, w[6], w[7]), {d}, w[8], w[9], eps);
  return at::layer_norm(x + at::linear(at::gelu(at::linear(x, w[10], w[11])), w[12], w[13]),
                        {d}, w[14], w[15], eps);
}

// Skim predictor (Eq. 2) on rows 1 … n−1 of h (n, d): LayerNorm → Linear(d → p) → LayerNorm →
// GELU → Linear(p → 2); keep[t] = logit_keep > logit_skim (argmax at inference). The
// Linear(d → p) is one GEMM over all the rows when there are more than `small` (ATen's: it reads
// W once, where a matrix–vector product per row rereads it for every row), else a SIMD
// matrix–vector product per row; the rest is per row.
// q: [γ, β, W (p, d), b, γ', β', W' (2, p), b'] (SkimPredictor.net's parameters).
void predict_keep(const float* h, int64_t n, int64_t d, at::TensorList q, double eps,
                  int64_t small, std::vector<char>& keep) {
  const int64_t hid = q[2].size(0), m = n - 1;
  const float *g1 = ptr(q[0], d, "pred gamma"), *b1 = ptr(q[1], d, "pred beta");
  const float *W = ptr(q[2], hid * d, "pred W"), *b = ptr(q[3], hid, "pred b");
  const float *g2 = ptr(q[4], hid, "pred gamma'"), *b2 = ptr(q[5], hid, "pred beta'");
  const float *W2 = ptr(q[6], 2 * hid, "pred W'"), *bo = ptr(q[7], 2, "pred b'");
  at::Tensor x = at::empty({m, d}, q[0].options());
  float* xp = x.data_ptr<float>();
  std::copy(h + d, h + n * d, xp);
  for (int64_t t = 0; t < m; ++t) layer_norm(xp + t * d, g1, b1, d, eps);
  at::Tensor z = m > small ? at::linear(x, q[2], q[3]) : at::empty({m, hid}, x.options());
  float* zp = z.data_ptr<float>();
  if (m <= small)
    for (int64_t t = 0; t < m; ++t) matvec<dot_simd>(W, xp + t * d, b, hid, d, zp + t * hid);
  float logit[2];
  for (int64_t t = 0; t < m; ++t) {
    float* zt = zp + t * hid;
    layer_norm(zt, g2, b2, hid, eps);
    gelu(zt, hid);
    matvec<dot_simd>(W2, zt, bo, 2, hid, logit);
    keep[t + 1] = logit[1] > logit[0];
  }
}

// Transkimmer inference at batch 1 (TranskimmerClassifier._forward_pruned, Eq. 1 and 3): before
// layer i, predictor i (when given) decides on every kept token but [CLS] (argmax of
// LN → Linear → LN → GELU → Linear(2), Eq. 2); pruned tokens leave with their state H^i into
// `out` at their original position (Eq. 3); the kept rows are gathered and the layer runs on them
// (this file's kernel on ≤ small tokens, ATen above). h: (T, d) embedded tokens (no padding);
// w: 16 tensors per layer; p: 8 per layer ([γ, β, W, b, γ', β', W', b']) or none (dense twin);
// force_keep: the predictors run but every token is kept. Returns (out (T, d), prune layer per
// token (T,) with L for tokens kept to the end, tokens entering each layer (L,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor> transkimmer_forward(
    const at::Tensor& h_in, at::TensorList w, at::TensorList p, int64_t heads, double eps,
    double pred_eps, int64_t small, bool force_keep) {
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
      predict_keep(h.data_ptr<float>(), n, d, p.slice(8 * i, 8), pred_eps, small, kb);
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
    kp[i] = h.size(0);
    const at::TensorList wi = w.slice(16 * i, 16);
    h = h.size(0) <= small ? transkimmer_layer(h, wi, heads, eps) : layer_aten(h, wi, heads, eps);
  }
  const float* src = h.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t r = 0; r < h.size(0); ++r)
    std::copy(src + r * d, src + (r + 1) * d, dst + pos[r] * d);
  return {out, prune, kept};
}

// The whole batch-1 inference of TranskimmerClassifier.forward: embeddings (word + position +
// token type 0, LayerNorm), transkimmer_forward, then the head tanh(W_p x + b_p) → W_c · + b_c
// on x = h_[CLS], or with mean_pool on x = the mean of the T output rows (classify; dropout is
// the identity at inference). ids: (T,) int64 without padding; emb: [word, position,
// token_type, γ, β]; head: [W_p, b_p, W_c, b_c]. Returns (logits (C,), prune (T,), kept (L,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor> transkimmer_infer(
    const at::Tensor& ids_in, at::TensorList emb, at::TensorList w, at::TensorList p,
    at::TensorList head, int64_t heads, double eps, double pred_eps, int64_t small,
    bool force_keep, bool mean_pool) {
  TORCH_CHECK(ids_in.dim() == 1 && ids_in.scalar_type() == at::kLong, "ids must be (T,) int64");
  TORCH_CHECK(emb.size() == 5 && head.size() == 4, "transkimmer_infer: 5 embedding and 4 head "
              "tensors");
  const at::Tensor ids = ids_in.contiguous();
  const int64_t T = ids.size(0), V = emb[0].size(0), d = emb[0].size(1);
  TORCH_CHECK(T >= 1 && T <= emb[1].size(0), "transkimmer_infer: 1 to max_positions tokens");
  const float *word = ptr(emb[0], V * d, "word"), *posw = ptr(emb[1], emb[1].numel(), "position");
  const float *tt = ptr(emb[2], emb[2].numel(), "token_type");
  const float *g = ptr(emb[3], d, "gamma"), *b = ptr(emb[4], d, "beta");
  at::Tensor h = at::empty({T, d}, emb[0].options());
  float* hp = h.data_ptr<float>();
  const int64_t* id = ids.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t) {
    TORCH_CHECK(id[t] >= 0 && id[t] < V, "transkimmer_infer: token id out of range");
    float* x = hp + t * d;
    for (int64_t j = 0; j < d; ++j) x[j] = word[id[t] * d + j] + posw[t * d + j] + tt[j];
    layer_norm(x, g, b, d, eps);
  }
  auto [out, prune, kept] = transkimmer_forward(h, w, p, heads, eps, pred_eps, small, force_keep);
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

// The weights of one model, held once (references to the parameters' tensors, not copies), so a
// call from Python passes only the token ids: converting ~100 tensors to a Tensor[] argument on
// every call cost ~0.3 ms, more than a one-token layer. The Python model drops this object when
// its parameters are replaced (.to(), .half(), load_state_dict); in-place updates are seen.
struct TranskimmerWeights : torch::CustomClassHolder {
  std::vector<at::Tensor> emb, w, p, head;
  int64_t heads, small;
  double eps, pred_eps;
  bool mean_pool;
  TranskimmerWeights(std::vector<at::Tensor> emb_, std::vector<at::Tensor> w_,
                     std::vector<at::Tensor> p_, std::vector<at::Tensor> head_, int64_t heads_,
                     double eps_, double pred_eps_, int64_t small_, bool mean_pool_)
      : emb(std::move(emb_)), w(std::move(w_)), p(std::move(p_)), head(std::move(head_)),
        heads(heads_), small(small_), eps(eps_), pred_eps(pred_eps_), mean_pool(mean_pool_) {}
  // use_predictors = false: no predictors (the dense twin has none); force_keep: they run but
  // every token is kept (the model's own dense run, TranskimmerClassifier.force_keep).
  std::tuple<at::Tensor, at::Tensor, at::Tensor> infer(const at::Tensor& ids,
                                                       bool use_predictors, bool force_keep) {
    return transkimmer_infer(ids, emb, w, use_predictors ? at::TensorList(p) : at::TensorList(),
                             head, heads, eps, pred_eps, small, force_keep, mean_pool);
  }
};

}  // namespace

TORCH_LIBRARY_FRAGMENT(skimviz_sru, m) {
  m.def("transkimmer_layer(Tensor h, Tensor[] w, int heads, float eps) -> Tensor");
  m.class_<TranskimmerWeights>("TranskimmerWeights")
      .def(torch::init<std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
                       std::vector<at::Tensor>, int64_t, double, double, int64_t, bool>())
      .def("infer", &TranskimmerWeights::infer);
}

TORCH_LIBRARY_IMPL(skimviz_sru, CPU, m) {
  m.impl("transkimmer_layer", &transkimmer_layer);
}
