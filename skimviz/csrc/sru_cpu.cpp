// SRU elementwise recurrence on the CPU: a fused forward and a hand-written backward.
//
// Lei et al., "Training RNNs as Fast as CNNs" (2017). The three matrix products of Eq. 3-5 (and
// the highway projection W_h x of Appendix A.1) are done by one matmul in Python, giving
//   U = [ x~ | f~ | r~ | (W_h x) ]   of shape (T, B, k*H), k = 3 or 4, time-major, contiguous.
// This file computes the rest, Algorithm 1 of the paper, with g = tanh:
//   f_t = sigma(f~_t + v_f . c_{t-1} + b_f)                    (Eq. 4; v_f only with a peephole)
//   r_t = sigma(r~_t + v_r . c_{t-1} + b_r)                    (Eq. 5; v_r only with a peephole)
//   c_t = f_t . c_{t-1} + (1 - f_t) . x~_t                     (Eq. 6)
//   h_t = r_t . tanh(c_t) + (1 - r_t) . x'_t                   (Eq. 7; x' = x, or W_h x when k=4)
// Every (batch row, hidden unit) is an independent scalar recurrence, so the work is split over
// batch x hidden with at::parallel_for (blocks of kBlock units) and each task loops over time;
// within a block the units are processed in SIMD vectors (at::vec::Vectorized): float lanes take
// Cephes' expf through fast_sigmoid/fast_tanh (kernels_common.h), double lanes torch's SLEEF,
// when built for AVX2 (see skimviz/_ext.py); plain std::exp/tanh otherwise.
//
// Built ahead of time by `python -m skimviz._ext build`; loaded with torch.ops.load_library and
// called as torch.ops.skimviz.sru_forward / .sru_backward from skimviz/models/sru.py.
//
// TODO(cuda): a CUDA kernel (one thread per (b, j) column, as in the paper's Sec. 2.3) would be
// registered with TORCH_LIBRARY_IMPL(skimviz, CUDA, m). There is no GPU to build or test it
// on here; CUDA tensors use the PyTorch fallback (_recurrence_python).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "kernels_common.h"

namespace {

constexpr int64_t kBlock = 64;  // hidden units per parallel task (the innermost, contiguous loop)
constexpr int64_t kMaxFusedInput = 8;  // layer_forward/backward: input sizes I done in the loop

using skimviz_kernels::fast_sigmoid;  // kernels_common.h: SIMD exp for float, SLEEF for double
using skimviz_kernels::fast_tanh;

// Where the loop gets U = [x~ | f~ | r~ | x'] of step (t, b):
// * not fused: U (T, B, kH) contiguous (the matmul done by the caller); the highway input x' is
//   the 4th block (k = 4) or xhw (T, B, H) contiguous (k = 3);
// * fused (layer_forward/backward, k = 4, I <= kMaxFusedInput): U = x Wᵀ computed in the loop
//   from x[t, b, i] (any strides) and wt = Wᵀ (I, 4H) contiguous: 4·I multiply-adds a unit, no
//   (T, B, 4H) buffer written or read (at batch 32, T = 784 that is 51 MB each way).
template <typename scalar_t>
struct Args {
  int64_t T, B, H, k, I;
  const scalar_t* u = nullptr;
  const scalar_t* xhw = nullptr;
  const scalar_t* x = nullptr;
  int64_t sxt = 0, sxb = 0, sxi = 0;
  const scalar_t* wt = nullptr;
  const scalar_t* c0 = nullptr;
  const scalar_t* bias = nullptr;  // [b_f; b_r]
  const scalar_t* v = nullptr;     // [v_f; v_r] or nullptr
};

// hp: (T, B, H) outputs; call: (T, B, H) every c_t, or nullptr (inference); cn: (B, H) c_T.
template <typename scalar_t, bool Fused>
void forward_impl(const Args<scalar_t>& a, scalar_t* hp, scalar_t* call, scalar_t* cn) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t T = a.T, B = a.B, H = a.H, k = a.k, I = a.I, kH = k * a.H;
  const int64_t nblk = (H + kBlock - 1) / kBlock;
  const scalar_t *bf = a.bias, *br = a.bias + H;
  const scalar_t *vf = a.v, *vr = a.v ? a.v + H : nullptr;
  at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
    // This thread's units: blocks begin..end-1 of (batch row, kBlock hidden units). Time is the
    // outer loop so that each step reads one contiguous stretch of U, x, h and c.
    std::vector<scalar_t> cs((end - begin) * kBlock);  // c_{t-1} of each unit
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
      const int64_t j1 = std::min(H, j0 + kBlock);
      std::copy(a.c0 + b * H + j0, a.c0 + b * H + j1, cs.data() + (task - begin) * kBlock);
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
        const int64_t j1 = std::min(H, j0 + kBlock);
        const int64_t row = t * B + b;
        const scalar_t* ut = Fused ? nullptr : a.u + row * kH;
        const scalar_t* xt = Fused ? nullptr : (k == 4 ? ut + 3 * H : a.xhw + row * H);
        scalar_t xs[kMaxFusedInput];
        if constexpr (Fused) {
          const scalar_t* xr = a.x + t * a.sxt + b * a.sxb;
          for (int64_t i = 0; i < I; ++i) xs[i] = xr[i * a.sxi];
        }
        scalar_t* ht = hp + row * H;
        scalar_t* cst = cs.data() + (task - begin) * kBlock - j0;  // cst[j]: unit j's state
        for (int64_t j = j0; j < j1; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), j1 - j);
          const auto ld = [n](const scalar_t* p) { return Vec::loadu(p, n); };
          Vec ux, uf, ur, uh;
          if constexpr (Fused) {
            ux = uf = ur = uh = Vec(scalar_t(0));
            for (int64_t i = 0; i < I; ++i) {
              const Vec xi(xs[i]);
              const scalar_t* w = a.wt + i * kH + j;
              ux = at::vec::fmadd(xi, ld(w), ux);
              uf = at::vec::fmadd(xi, ld(w + H), uf);
              ur = at::vec::fmadd(xi, ld(w + 2 * H), ur);
              uh = at::vec::fmadd(xi, ld(w + 3 * H), uh);
            }
          } else {
            ux = ld(ut + j), uf = ld(ut + H + j), ur = ld(ut + 2 * H + j), uh = ld(xt + j);
          }
          const Vec c_prev = ld(cst + j), one(scalar_t(1));
          Vec af = uf + ld(bf + j), ar = ur + ld(br + j);
          if (vf) {
            af = af + ld(vf + j) * c_prev;
            ar = ar + ld(vr + j) * c_prev;
          }
          const Vec f = fast_sigmoid(af), r = fast_sigmoid(ar);             // Eq. 4, 5
          const Vec c_new = f * c_prev + (one - f) * ux;                    // Eq. 6
          (r * fast_tanh(c_new) + (one - r) * uh).store(ht + j, n);         // Eq. 7
          if (call) c_new.store(call + row * H + j, n);
          c_new.store(cst + j, n);
        }
      }
    }
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
      const int64_t nj = std::min(H, j0 + kBlock) - j0;
      const scalar_t* src = cs.data() + (task - begin) * kBlock;
      std::copy(src, src + nj, cn + b * H + j0);
    }
  });
}

// Outputs of backward_impl. Not fused: gu (T, B, kH) and, for k = 3, gx (T, B, H) (the highway
// input's gradient). Fused: gwrows (B, I, 4H), dL/dWᵀ per batch row (summed by the caller), and
// gxparts (nblk, T, B, I), dL/dx per hidden block (summed by the caller), or nullptr.
template <typename scalar_t>
struct Grads {
  const scalar_t* gh;        // dL/dh at (t, b, j): gh[t * sgt + b * sgb + j * sgj], sgj 0 or 1
  int64_t sgt, sgb, sgj;
  const scalar_t* gcn;       // (B, H)
  const scalar_t* c;         // (T, B, H) every c_t
  scalar_t* gu = nullptr;
  scalar_t* gx = nullptr;
  scalar_t* gwrows = nullptr;
  scalar_t* gxparts = nullptr;
  scalar_t* gc0;             // (B, H)
  scalar_t* gbrows;          // (B, 2H)
  scalar_t* gvrows = nullptr;  // (B, 2H) with a peephole
};

template <typename scalar_t, bool Fused>
void backward_impl(const Args<scalar_t>& a, const Grads<scalar_t>& g) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t T = a.T, B = a.B, H = a.H, k = a.k, I = a.I, kH = k * a.H;
  const int64_t nblk = (H + kBlock - 1) / kBlock;
  const scalar_t *bf = a.bias, *br = a.bias + H;
  const scalar_t *vf = a.v, *vr = a.v ? a.v + H : nullptr;
  const int64_t wslot = Fused ? I * 4 * kBlock : 0;  // per task: dL/dWᵀ[i, q·H + j] of its units
  at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
    // Same split as the forward. gc: dL/dc_t flowing back through the recurrence; gbf, gbr,
    // gvf, gvr: dL/db_f, dL/db_r, dL/dv_f, dL/dv_r of each unit, summed over time.
    const int64_t m = (end - begin) * kBlock;
    std::vector<scalar_t> gc(m), acc(4 * m, scalar_t(0)), gw((end - begin) * wslot, scalar_t(0));
    scalar_t *gbf = acc.data(), *gbr = gbf + m, *gvf = gbr + m, *gvr = gvf + m;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
      const int64_t j1 = std::min(H, j0 + kBlock);
      std::copy(g.gcn + b * H + j0, g.gcn + b * H + j1, gc.data() + (task - begin) * kBlock);
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / nblk, blk = task % nblk, j0 = blk * kBlock;
        const int64_t j1 = std::min(H, j0 + kBlock);
        const int64_t row = t * B + b;
        const scalar_t* ut = Fused ? nullptr : a.u + row * kH;
        const scalar_t* xt = Fused ? nullptr : (k == 4 ? ut + 3 * H : a.xhw + row * H);
        scalar_t* gut = Fused ? nullptr : g.gu + row * kH;
        scalar_t* gxt = Fused ? nullptr : (k == 4 ? gut + 3 * H : g.gx + row * H);
        scalar_t xs[kMaxFusedInput];
        Vec gxacc[kMaxFusedInput];
        if constexpr (Fused) {
          const scalar_t* xr = a.x + t * a.sxt + b * a.sxb;
          for (int64_t i = 0; i < I; ++i) xs[i] = xr[i * a.sxi], gxacc[i] = Vec(scalar_t(0));
        }
        const scalar_t* c_prev_row = t > 0 ? g.c + (row - B) * H : a.c0 + b * H;
        const scalar_t* c_row = g.c + row * H;
        const scalar_t* gh_row = g.gh + t * g.sgt + b * g.sgb;
        const int64_t o = (task - begin) * kBlock - j0;  // unit j's slot in gc and acc: o + j
        scalar_t* gwt = gw.data() + (task - begin) * wslot - j0;  // gwt[(i·4 + q)·kBlock + j]
        for (int64_t j = j0; j < j1; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), j1 - j), i = o + j;
          const auto ld = [n](const scalar_t* p) { return Vec::loadu(p, n); };
          Vec ux, uf, ur, uh;
          if constexpr (Fused) {
            ux = uf = ur = uh = Vec(scalar_t(0));
            for (int64_t q = 0; q < I; ++q) {
              const Vec xq(xs[q]);
              const scalar_t* w = a.wt + q * kH + j;
              ux = at::vec::fmadd(xq, ld(w), ux);
              uf = at::vec::fmadd(xq, ld(w + H), uf);
              ur = at::vec::fmadd(xq, ld(w + 2 * H), ur);
              uh = at::vec::fmadd(xq, ld(w + 3 * H), uh);
            }
          } else {
            ux = ld(ut + j), uf = ld(ut + H + j), ur = ld(ut + 2 * H + j), uh = ld(xt + j);
          }
          const Vec c_prev = ld(c_prev_row + j), one(scalar_t(1));
          Vec af = uf + ld(bf + j), ar = ur + ld(br + j);
          if (vf) {
            af = af + ld(vf + j) * c_prev;
            ar = ar + ld(vr + j) * c_prev;
          }
          const Vec f = fast_sigmoid(af), r = fast_sigmoid(ar), gt = fast_tanh(ld(c_row + j));
          const Vec gh = g.sgj == 0 ? Vec(gh_row[0]) : ld(gh_row + j);
          // Eq. 7: h = r g(c) + (1 - r) x'
          const Vec gar = gh * (gt - uh) * r * (one - r);  // dL/d(pre-activation of r)
          const Vec ghw = gh * (one - r);                  // dL/dx'
          const Vec gct = ld(&gc[i]) + gh * r * (one - gt * gt);  // dL/dc_t, total
          // Eq. 6: c = f c_prev + (1 - f) x~
          const Vec gaf = gct * (c_prev - ux) * f * (one - f);
          const Vec gux = gct * (one - f);
          if constexpr (Fused) {  // U = x Wᵀ: dL/dWᵀ[q, :] += x_q dL/dU, dL/dx_q += dL/dU · Wᵀ[q, :]
            for (int64_t q = 0; q < I; ++q) {
              const Vec xq(xs[q]);
              scalar_t* p = gwt + q * 4 * kBlock + j;
              at::vec::fmadd(xq, gux, ld(p)).store(p, n);
              at::vec::fmadd(xq, gaf, ld(p + kBlock)).store(p + kBlock, n);
              at::vec::fmadd(xq, gar, ld(p + 2 * kBlock)).store(p + 2 * kBlock, n);
              at::vec::fmadd(xq, ghw, ld(p + 3 * kBlock)).store(p + 3 * kBlock, n);
              if (g.gxparts) {
                const scalar_t* w = a.wt + q * kH + j;
                gxacc[q] = at::vec::fmadd(gux, ld(w), gxacc[q]);
                gxacc[q] = at::vec::fmadd(gaf, ld(w + H), gxacc[q]);
                gxacc[q] = at::vec::fmadd(gar, ld(w + 2 * H), gxacc[q]);
                gxacc[q] = at::vec::fmadd(ghw, ld(w + 3 * H), gxacc[q]);
              }
            }
          } else {
            gux.store(gut + j, n);
            gaf.store(gut + H + j, n);
            gar.store(gut + 2 * H + j, n);
            ghw.store(gxt + j, n);
          }
          Vec gc_prev = gct * f;
          (ld(gbf + i) + gaf).store(gbf + i, n);
          (ld(gbr + i) + gar).store(gbr + i, n);
          if (vf) {  // Eq. 4, 5 with the peephole: c_prev also enters through v . c_prev
            gc_prev = gc_prev + gaf * ld(vf + j) + gar * ld(vr + j);
            (ld(gvf + i) + gaf * c_prev).store(gvf + i, n);
            (ld(gvr + i) + gar * c_prev).store(gvr + i, n);
          }
          gc_prev.store(&gc[i], n);
        }
        if constexpr (Fused) {
          if (g.gxparts) {
            scalar_t* gxp = g.gxparts + ((blk * T + t) * B + b) * I;
            for (int64_t q = 0; q < I; ++q) {
              scalar_t lanes[Vec::size()];
              gxacc[q].store(lanes);
              scalar_t s = 0;
              for (int64_t l = 0; l < Vec::size(); ++l) s += lanes[l];
              gxp[q] = s;
            }
          }
        }
      }
    }
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
      const int64_t nj = std::min(H, j0 + kBlock) - j0, i = (task - begin) * kBlock;
      std::copy(&gc[i], &gc[i] + nj, g.gc0 + b * H + j0);
      std::copy(gbf + i, gbf + i + nj, g.gbrows + b * 2 * H + j0);
      std::copy(gbr + i, gbr + i + nj, g.gbrows + b * 2 * H + H + j0);
      if (g.gvrows) {
        std::copy(gvf + i, gvf + i + nj, g.gvrows + b * 2 * H + j0);
        std::copy(gvr + i, gvr + i + nj, g.gvrows + b * 2 * H + H + j0);
      }
      if constexpr (Fused) {
        for (int64_t q = 0; q < I; ++q)
          for (int64_t blkq = 0; blkq < 4; ++blkq) {
            const scalar_t* src = gw.data() + (task - begin) * wslot + (q * 4 + blkq) * kBlock;
            std::copy(src, src + nj, g.gwrows + (b * I + q) * kH + blkq * H + j0);
          }
      }
    }
  });
}

struct Sizes {
  int64_t T, B, H, k;
};

void check_common(const at::Tensor& ref, const at::Tensor& c0, const at::Tensor& bias,
                  const std::optional<at::Tensor>& v, int64_t B, int64_t H) {
  TORCH_CHECK(c0.dim() == 2 && c0.size(0) == B && c0.size(1) == H && H > 0,
              "sru: c0 must be (B, H)");
  TORCH_CHECK(bias.numel() == 2 * H, "sru: bias must have 2H elements [b_f; b_r]");
  TORCH_CHECK(!v.has_value() || v->numel() == 2 * H,
              "sru: peephole weights must have 2H elements [v_f; v_r]");
  std::vector<const at::Tensor*> all = {&c0, &bias};
  if (v.has_value()) all.push_back(&*v);
  for (const at::Tensor* t : all) {
    TORCH_CHECK(t->is_contiguous(), "sru: c0, bias and v must be contiguous");
    TORCH_CHECK(t->scalar_type() == ref.scalar_type() && t->device().is_cpu(),
                "sru: all tensors must be CPU tensors of one dtype");
  }
}

Sizes check_inputs(const at::Tensor& U, const std::optional<at::Tensor>& x, const at::Tensor& c0,
                   const at::Tensor& bias, const std::optional<at::Tensor>& v) {
  TORCH_CHECK(U.dim() == 3 && c0.dim() == 2, "sru: U must be (T, B, kH) and c0 (B, H)");
  const int64_t T = U.size(0), B = U.size(1), H = c0.size(1);
  TORCH_CHECK(T > 0 && H > 0 && c0.size(0) == B, "sru: c0 must be (B, H) with B = U.size(1)");
  TORCH_CHECK(U.size(2) == 3 * H || U.size(2) == 4 * H, "sru: U must have 3H or 4H columns");
  const int64_t k = U.size(2) / H;
  check_common(U, c0, bias, v, B, H);
  TORCH_CHECK(U.is_contiguous(), "sru: U must be contiguous");
  if (k == 3) {
    TORCH_CHECK(x.has_value() && x->dim() == 3 && x->size(0) == T && x->size(1) == B &&
                    x->size(2) == H && x->is_contiguous() &&
                    x->scalar_type() == U.scalar_type(),
                "sru: with 3 blocks in U the highway input x must be contiguous (T, B, H)");
  }
  return {T, B, H, k};
}

template <typename scalar_t>
Args<scalar_t> unfused_args(const Sizes& s, const at::Tensor& U,
                            const std::optional<at::Tensor>& x, const at::Tensor& c0,
                            const at::Tensor& bias, const std::optional<at::Tensor>& v) {
  Args<scalar_t> a{s.T, s.B, s.H, s.k, 0};
  a.u = U.data_ptr<scalar_t>();
  a.xhw = s.k == 3 ? x->data_ptr<scalar_t>() : nullptr;
  a.c0 = c0.data_ptr<scalar_t>();
  a.bias = bias.data_ptr<scalar_t>();
  a.v = v.has_value() ? v->data_ptr<scalar_t>() : nullptr;
  return a;
}

// dL/dh as the kernels read it: any strides over (t, b); over j stride 1, or 0 (broadcast, e.g.
// the gradient of out.sum(), which autograd passes as an expanded tensor: no copy then).
at::Tensor grad_h_view(const at::Tensor& grad_h, int64_t T, int64_t B, int64_t H,
                       const at::Tensor& ref) {
  TORCH_CHECK(grad_h.sizes() == at::IntArrayRef({T, B, H}) &&
                  grad_h.scalar_type() == ref.scalar_type(),
              "sru_backward: grad_h must be (T, B, H)");
  return (grad_h.stride(2) == 0 || grad_h.stride(2) == 1) ? grad_h : grad_h.contiguous();
}

template <typename scalar_t>
Grads<scalar_t> grads_in(const at::Tensor& gh, const at::Tensor& gcn, const at::Tensor& c) {
  Grads<scalar_t> g{};
  g.gh = gh.data_ptr<scalar_t>();
  g.sgt = gh.stride(0), g.sgb = gh.stride(1), g.sgj = gh.size(2) == 1 ? 1 : gh.stride(2);
  g.gcn = gcn.data_ptr<scalar_t>();
  g.c = c.data_ptr<scalar_t>();
  return g;
}

// Returns {h, c}, both (T, B, H): the outputs h_t and every cell state c_t (kept for backward).
std::vector<at::Tensor> sru_forward(const at::Tensor& U, const std::optional<at::Tensor>& x,
                                    const at::Tensor& c0, const at::Tensor& bias,
                                    const std::optional<at::Tensor>& v) {
  const Sizes s = check_inputs(U, x, c0, bias, v);
  at::Tensor h = at::empty({s.T, s.B, s.H}, U.options());
  at::Tensor c = at::empty({s.T, s.B, s.H}, U.options());
  at::Tensor cn = at::empty({s.B, s.H}, U.options());
  AT_DISPATCH_FLOATING_TYPES(U.scalar_type(), "sru_forward", [&] {
    forward_impl<scalar_t, false>(unfused_args<scalar_t>(s, U, x, c0, bias, v),
                                  h.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                                  cn.data_ptr<scalar_t>());
  });
  return {h, c};
}

// Backward of sru_forward through time. grad_h: dL/dh (T, B, H); grad_cn: dL/dc_T (B, H);
// c: the cell states saved by sru_forward. Returns {dU, dx, dc0, dbias, dv}; dx is empty (numel
// 0) when k = 4 (its gradient is then in the 4th block of dU) and dv is empty without a peephole.
std::vector<at::Tensor> sru_backward(const at::Tensor& grad_h, const at::Tensor& grad_cn,
                                     const at::Tensor& U, const std::optional<at::Tensor>& x,
                                     const at::Tensor& c0, const at::Tensor& bias,
                                     const std::optional<at::Tensor>& v, const at::Tensor& c) {
  const Sizes s = check_inputs(U, x, c0, bias, v);
  const auto [T, B, H, k] = s;
  TORCH_CHECK(c.sizes() == at::IntArrayRef({T, B, H}) && c.is_contiguous() &&
                  c.scalar_type() == U.scalar_type(),
              "sru_backward: c must be contiguous (T, B, H)");
  TORCH_CHECK(grad_cn.sizes() == c0.sizes() && grad_cn.is_contiguous() &&
                  grad_cn.scalar_type() == U.scalar_type(),
              "sru_backward: grad_cn must be contiguous (B, H)");
  const at::Tensor gh = grad_h_view(grad_h, T, B, H, U);
  const bool peep = v.has_value();
  at::Tensor gU = at::empty_like(U);
  at::Tensor gx = at::empty(k == 3 ? std::vector<int64_t>{T, B, H} : std::vector<int64_t>{0},
                            U.options());
  at::Tensor gc0 = at::empty_like(c0);
  at::Tensor gbias_rows = at::empty({B, 2 * H}, U.options());  // summed over B at the end
  at::Tensor gv_rows = at::empty({peep ? B : 0, 2 * H}, U.options());
  AT_DISPATCH_FLOATING_TYPES(U.scalar_type(), "sru_backward", [&] {
    Grads<scalar_t> g = grads_in<scalar_t>(gh, grad_cn, c);
    g.gu = gU.data_ptr<scalar_t>();
    g.gx = k == 3 ? gx.data_ptr<scalar_t>() : nullptr;
    g.gc0 = gc0.data_ptr<scalar_t>();
    g.gbrows = gbias_rows.data_ptr<scalar_t>();
    g.gvrows = peep ? gv_rows.data_ptr<scalar_t>() : nullptr;
    backward_impl<scalar_t, false>(unfused_args<scalar_t>(s, U, x, c0, bias, v), g);
  });
  at::Tensor gv = peep ? gv_rows.sum(0) : at::empty({0}, U.options());
  return {gU, gx, gc0, gbias_rows.sum(0), gv};
}

// --- one whole layer with a small input (k = 4, I <= kMaxFusedInput): U = x Wᵀ in the loop ------
Sizes check_layer(const at::Tensor& x, const at::Tensor& W, const at::Tensor& c0,
                  const at::Tensor& bias, const std::optional<at::Tensor>& v) {
  TORCH_CHECK(x.dim() == 3 && W.dim() == 2, "sru_layer: x must be (T, B, I) and W (4H, I)");
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = c0.size(-1);
  TORCH_CHECK(T > 0 && I >= 1 && I <= kMaxFusedInput,
              "sru_layer: needs T >= 1 and an input size of 1 to ", kMaxFusedInput);
  TORCH_CHECK(W.size(0) == 4 * H && W.size(1) == I,
              "sru_layer: W must be (4H, I) (the highway is projected: I != H)");
  check_common(x, c0, bias, v, B, H);
  TORCH_CHECK(x.scalar_type() == W.scalar_type() && x.device().is_cpu() && W.device().is_cpu(),
              "sru_layer: all tensors must be CPU tensors of one dtype");
  return {T, B, H, 4};
}

template <typename scalar_t>
Args<scalar_t> fused_args(const Sizes& s, const at::Tensor& x, const at::Tensor& wt,
                          const at::Tensor& c0, const at::Tensor& bias,
                          const std::optional<at::Tensor>& v) {
  Args<scalar_t> a{s.T, s.B, s.H, 4, x.size(2)};
  a.x = x.data_ptr<scalar_t>();
  a.sxt = x.stride(0), a.sxb = x.stride(1), a.sxi = x.stride(2);
  a.wt = wt.data_ptr<scalar_t>();
  a.c0 = c0.data_ptr<scalar_t>();
  a.bias = bias.data_ptr<scalar_t>();
  a.v = v.has_value() ? v->data_ptr<scalar_t>() : nullptr;
  return a;
}

// A layer with a larger input (or I = H, k = 3) at inference: U = x Wᵀ by one matmul here, then
// the loop, so the layer is still one call from Python. Returns {h, c_T}.
std::vector<at::Tensor> sru_layer_forward_matmul(const at::Tensor& x, const at::Tensor& W,
                                                 const at::Tensor& c0, const at::Tensor& bias,
                                                 const std::optional<at::Tensor>& v) {
  TORCH_CHECK(x.dim() == 3 && W.dim() == 2 && W.size(1) == x.size(2),
              "sru_layer: x must be (T, B, I) and W (kH, I)");
  const at::Tensor U = at::matmul(x, W.t()).contiguous();
  const at::Tensor xhw = W.size(0) == 3 * c0.size(-1) ? x.contiguous() : at::Tensor();
  const Sizes s = check_inputs(U, xhw.defined() ? std::optional<at::Tensor>(xhw) : std::nullopt,
                               c0, bias, v);
  at::Tensor h = at::empty({s.T, s.B, s.H}, x.options());
  at::Tensor cn = at::empty({s.B, s.H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sru_layer_forward", [&] {
    Args<scalar_t> a = unfused_args<scalar_t>(
        s, U, xhw.defined() ? std::optional<at::Tensor>(xhw) : std::nullopt, c0, bias, v);
    forward_impl<scalar_t, false>(a, h.data_ptr<scalar_t>(), nullptr, cn.data_ptr<scalar_t>());
  });
  return {h, at::empty({0}, x.options()), cn};
}

// x: (T, B, I), any strides (e.g. a transposed batch-first input); W: (4H, I). Returns
// {h (T, B, H), c (T, B, H) every c_t if keep_c else empty, c_T (B, H)}. Any other I (or
// W (3H, I = H)) with keep_c = false: the matmul, then the loop (sru_layer_forward_matmul).
std::vector<at::Tensor> sru_layer_forward(const at::Tensor& x, const at::Tensor& W,
                                          const at::Tensor& c0, const at::Tensor& bias,
                                          const std::optional<at::Tensor>& v, bool keep_c) {
  if (!keep_c && x.dim() == 3 && c0.dim() == 2 &&
      (x.size(2) > kMaxFusedInput || W.size(0) != 4 * c0.size(1)))
    return sru_layer_forward_matmul(x, W, c0, bias, v);
  const Sizes s = check_layer(x, W, c0, bias, v);
  const at::Tensor wt = W.t().contiguous();  // (I, 4H): 4H·I values
  at::Tensor h = at::empty({s.T, s.B, s.H}, x.options());
  at::Tensor c = at::empty(keep_c ? std::vector<int64_t>{s.T, s.B, s.H} : std::vector<int64_t>{0},
                           x.options());
  at::Tensor cn = at::empty({s.B, s.H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sru_layer_forward", [&] {
    forward_impl<scalar_t, true>(fused_args<scalar_t>(s, x, wt, c0, bias, v),
                                 h.data_ptr<scalar_t>(), keep_c ? c.data_ptr<scalar_t>() : nullptr,
                                 cn.data_ptr<scalar_t>());
  });
  return {h, c, cn};
}

// Backward of sru_layer_forward (keep_c = true). Returns {dx (T, B, I) or empty if not need_gx,
// dW (4H, I), dc0, dbias, dv (empty without a peephole)}.
std::vector<at::Tensor> sru_layer_backward(const at::Tensor& grad_h, const at::Tensor& grad_cn,
                                           const at::Tensor& x, const at::Tensor& W,
                                           const at::Tensor& c0, const at::Tensor& bias,
                                           const std::optional<at::Tensor>& v,
                                           const at::Tensor& c, bool need_gx) {
  const Sizes s = check_layer(x, W, c0, bias, v);
  const auto [T, B, H, k] = s;
  const int64_t I = x.size(2), nblk = (H + kBlock - 1) / kBlock;
  TORCH_CHECK(c.sizes() == at::IntArrayRef({T, B, H}) && c.is_contiguous() &&
                  c.scalar_type() == x.scalar_type(),
              "sru_layer_backward: c must be contiguous (T, B, H)");
  const at::Tensor gcn = grad_cn.contiguous();
  TORCH_CHECK(gcn.sizes() == c0.sizes() && gcn.scalar_type() == x.scalar_type(),
              "sru_layer_backward: grad_cn must be (B, H)");
  const at::Tensor gh = grad_h_view(grad_h, T, B, H, x);
  const at::Tensor wt = W.t().contiguous();
  const bool peep = v.has_value();
  at::Tensor gw_rows = at::empty({B, I, 4 * H}, x.options());
  at::Tensor gx_parts = at::empty({need_gx ? nblk : 0, T, B, I}, x.options());
  at::Tensor gc0 = at::empty_like(c0);
  at::Tensor gbias_rows = at::empty({B, 2 * H}, x.options());
  at::Tensor gv_rows = at::empty({peep ? B : 0, 2 * H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sru_layer_backward", [&] {
    Grads<scalar_t> g = grads_in<scalar_t>(gh, gcn, c);
    g.gwrows = gw_rows.data_ptr<scalar_t>();
    g.gxparts = need_gx ? gx_parts.data_ptr<scalar_t>() : nullptr;
    g.gc0 = gc0.data_ptr<scalar_t>();
    g.gbrows = gbias_rows.data_ptr<scalar_t>();
    g.gvrows = peep ? gv_rows.data_ptr<scalar_t>() : nullptr;
    backward_impl<scalar_t, true>(fused_args<scalar_t>(s, x, wt, c0, bias, v), g);
  });
  at::Tensor gx = need_gx ? (nblk == 1 ? gx_parts[0] : gx_parts.sum(0))
                          : at::empty({0}, x.options());
  at::Tensor gW = (B == 1 ? gw_rows[0] : gw_rows.sum(0)).t().contiguous();
  at::Tensor gv = peep ? gv_rows.sum(0) : at::empty({0}, x.options());
  return {gx, gW, gc0, gbias_rows.sum(0), gv};
}

}  // namespace

TORCH_LIBRARY(skimviz, m) {
  m.def("sru_forward(Tensor U, Tensor? x, Tensor c0, Tensor bias, Tensor? v) -> Tensor[]");
  m.def("sru_backward(Tensor grad_h, Tensor grad_cn, Tensor U, Tensor? x, Tensor c0, Tensor bias, "
        "Tensor? v, Tensor c) -> Tensor[]");
  m.def("sru_layer_forward(Tensor x, Tensor W, Tensor c0, Tensor bias, Tensor? v, bool keep_c) "
        "-> Tensor[]");
  m.def("sru_layer_backward(Tensor grad_h, Tensor grad_cn, Tensor x, Tensor W, Tensor c0, "
        "Tensor bias, Tensor? v, Tensor c, bool need_gx) -> Tensor[]");
  m.def("sru_layer_max_input() -> int");
}

int64_t sru_layer_max_input() { return kMaxFusedInput; }

TORCH_LIBRARY_IMPL(skimviz, CPU, m) {
  m.impl("sru_forward", &sru_forward);
  m.impl("sru_backward", &sru_backward);
  m.impl("sru_layer_forward", &sru_layer_forward);
  m.impl("sru_layer_backward", &sru_layer_backward);
}

TORCH_LIBRARY_IMPL(skimviz, CompositeExplicitAutograd, m) {
  m.impl("sru_layer_max_input", &sru_layer_max_input);
}
