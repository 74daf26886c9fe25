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
// within a block the units are processed in SIMD vectors (at::vec::Vectorized, whose exp/tanh are
// torch's SLEEF when built for AVX2, see skimviz/_ext.py; plain std::exp/tanh otherwise).
//
// Built ahead of time by `python -m skimviz._ext build`; loaded with torch.ops.load_library and
// called as torch.ops.skimviz_sru.forward / .backward from skimviz/models/sru.py.
//
// TODO(cuda): a CUDA kernel (one thread per (b, j) column, as in the paper's Sec. 2.3) would be
// registered with TORCH_LIBRARY_IMPL(skimviz_sru, CUDA, m). There is no GPU to build or test it
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

using skimviz_kernels::sigmoid;  // kernels_common.h

struct Sizes {
  int64_t T, B, H, k;
};

Sizes check_inputs(const at::Tensor& U, const std::optional<at::Tensor>& x, const at::Tensor& c0,
                   const at::Tensor& bias, const std::optional<at::Tensor>& v) {
  TORCH_CHECK(U.dim() == 3 && c0.dim() == 2, "sru: U must be (T, B, kH) and c0 (B, H)");
  const int64_t T = U.size(0), B = U.size(1), H = c0.size(1);
  TORCH_CHECK(T > 0 && H > 0 && c0.size(0) == B, "sru: c0 must be (B, H) with B = U.size(1)");
  TORCH_CHECK(U.size(2) == 3 * H || U.size(2) == 4 * H, "sru: U must have 3H or 4H columns");
  const int64_t k = U.size(2) / H;
  TORCH_CHECK(bias.numel() == 2 * H, "sru: bias must have 2H elements [b_f; b_r]");
  std::vector<const at::Tensor*> all = {&U, &c0, &bias};
  if (k == 3) {
    TORCH_CHECK(x.has_value() && x->dim() == 3 && x->size(0) == T && x->size(1) == B &&
                    x->size(2) == H,
                "sru: with 3 blocks in U the highway input x must be (T, B, H)");
    all.push_back(&*x);
  }
  if (v.has_value()) {
    TORCH_CHECK(v->numel() == 2 * H, "sru: peephole weights must have 2H elements [v_f; v_r]");
    all.push_back(&*v);
  }
  for (const at::Tensor* t : all) {
    TORCH_CHECK(t->is_contiguous(), "sru: all tensors must be contiguous");
    TORCH_CHECK(t->scalar_type() == U.scalar_type(), "sru: all tensors must share one dtype");
  }
  return {T, B, H, k};
}

// Returns {h, c}, both (T, B, H): the outputs h_t and every cell state c_t (kept for backward).
std::vector<at::Tensor> sru_forward(const at::Tensor& U, const std::optional<at::Tensor>& x,
                                    const at::Tensor& c0, const at::Tensor& bias,
                                    const std::optional<at::Tensor>& v) {
  const auto [T, B, H, k] = check_inputs(U, x, c0, bias, v);
  at::Tensor h = at::empty({T, B, H}, U.options());
  at::Tensor c = at::empty({T, B, H}, U.options());
  const int64_t nblk = (H + kBlock - 1) / kBlock;

  AT_DISPATCH_FLOATING_TYPES(U.scalar_type(), "sru_forward", [&] {
    const scalar_t* u = U.data_ptr<scalar_t>();
    const scalar_t* xp = k == 3 ? x->data_ptr<scalar_t>() : nullptr;
    const scalar_t* c0p = c0.data_ptr<scalar_t>();
    const scalar_t* bf = bias.data_ptr<scalar_t>();
    const scalar_t* br = bf + H;
    const scalar_t* vf = v.has_value() ? v->data_ptr<scalar_t>() : nullptr;
    const scalar_t* vr = vf ? vf + H : nullptr;
    scalar_t* hp = h.data_ptr<scalar_t>();
    scalar_t* cp = c.data_ptr<scalar_t>();

    using Vec = at::vec::Vectorized<scalar_t>;
    at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
      // This thread's units: blocks begin..end-1 of (batch row, kBlock hidden units). Time is the
      // outer loop so that each step reads one contiguous stretch of U, x, h and c.
      std::vector<scalar_t> cs((end - begin) * kBlock);  // c_{t-1} of each unit
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
        const int64_t j1 = std::min(H, j0 + kBlock);
        std::copy(c0p + b * H + j0, c0p + b * H + j1, cs.data() + (task - begin) * kBlock);
      }
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
          const int64_t j1 = std::min(H, j0 + kBlock);
          const int64_t row = t * B + b;
          const scalar_t* ut = u + row * k * H;  // [x~ | f~ | r~ | (W_h x)] at (t, b)
          const scalar_t* xt = k == 4 ? ut + 3 * H : xp + row * H;
          scalar_t* ht = hp + row * H;
          scalar_t* ct = cp + row * H;
          scalar_t* cst = cs.data() + (task - begin) * kBlock - j0;  // cst[j]: unit j's state
          for (int64_t j = j0; j < j1; j += Vec::size()) {
            const int64_t n = std::min<int64_t>(Vec::size(), j1 - j);
            const auto ld = [n](const scalar_t* p) { return Vec::loadu(p, n); };
            const Vec c_prev = ld(cst + j), one(scalar_t(1));
            Vec af = ld(ut + H + j) + ld(bf + j), ar = ld(ut + 2 * H + j) + ld(br + j);
            if (vf) {
              af = af + ld(vf + j) * c_prev;
              ar = ar + ld(vr + j) * c_prev;
            }
            const Vec f = sigmoid(af), r = sigmoid(ar);                     // Eq. 4, 5
            const Vec c_new = f * c_prev + (one - f) * ld(ut + j);          // Eq. 6
            (r * c_new.tanh() + (one - r) * ld(xt + j)).store(ht + j, n);   // Eq. 7
            c_new.store(ct + j, n);
            c_new.store(cst + j, n);
          }
        }
      }
    });
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
  const auto [T, B, H, k] = check_inputs(U, x, c0, bias, v);
  for (const at::Tensor* t : {&grad_h, &c}) {
    TORCH_CHECK(t->sizes() == at::IntArrayRef({T, B, H}) && t->is_contiguous() &&
                    t->scalar_type() == U.scalar_type(),
                "sru_backward: grad_h and c must be contiguous (T, B, H)");
  }
  TORCH_CHECK(grad_cn.sizes() == c0.sizes() && grad_cn.is_contiguous() &&
                  grad_cn.scalar_type() == U.scalar_type(),
              "sru_backward: grad_cn must be contiguous (B, H)");
  const bool peep = v.has_value();
  at::Tensor gU = at::empty_like(U);
  at::Tensor gx = at::empty(k == 3 ? std::vector<int64_t>{T, B, H} : std::vector<int64_t>{0},
                            U.options());
  at::Tensor gc0 = at::empty_like(c0);
  at::Tensor gbias_rows = at::empty({B, 2 * H}, U.options());  // summed over B at the end
  at::Tensor gv_rows = at::empty({peep ? B : 0, 2 * H}, U.options());
  const int64_t nblk = (H + kBlock - 1) / kBlock;

  AT_DISPATCH_FLOATING_TYPES(U.scalar_type(), "sru_backward", [&] {
    const scalar_t* u = U.data_ptr<scalar_t>();
    const scalar_t* xp = k == 3 ? x->data_ptr<scalar_t>() : nullptr;
    const scalar_t* c0p = c0.data_ptr<scalar_t>();
    const scalar_t* bf = bias.data_ptr<scalar_t>();
    const scalar_t* br = bf + H;
    const scalar_t* vf = peep ? v->data_ptr<scalar_t>() : nullptr;
    const scalar_t* vr = vf ? vf + H : nullptr;
    const scalar_t* cp = c.data_ptr<scalar_t>();
    const scalar_t* ghp = grad_h.data_ptr<scalar_t>();
    const scalar_t* gcnp = grad_cn.data_ptr<scalar_t>();
    scalar_t* gup = gU.data_ptr<scalar_t>();
    scalar_t* gxp = k == 3 ? gx.data_ptr<scalar_t>() : nullptr;
    scalar_t* gc0p = gc0.data_ptr<scalar_t>();
    scalar_t* gbp = gbias_rows.data_ptr<scalar_t>();
    scalar_t* gvp = peep ? gv_rows.data_ptr<scalar_t>() : nullptr;

    using Vec = at::vec::Vectorized<scalar_t>;
    at::parallel_for(0, B * nblk, 1, [&](int64_t begin, int64_t end) {
      // Same split as the forward. gc: dL/dc_t flowing back through the recurrence; gbf, gbr,
      // gvf, gvr: dL/db_f, dL/db_r, dL/dv_f, dL/dv_r of each unit, summed over time.
      const int64_t m = (end - begin) * kBlock;
      std::vector<scalar_t> gc(m), acc(4 * m, scalar_t(0));
      scalar_t *gbf = acc.data(), *gbr = gbf + m, *gvf = gbr + m, *gvr = gvf + m;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
        const int64_t j1 = std::min(H, j0 + kBlock);
        std::copy(gcnp + b * H + j0, gcnp + b * H + j1, gc.data() + (task - begin) * kBlock);
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
          const int64_t j1 = std::min(H, j0 + kBlock);
          const int64_t row = t * B + b;
          const scalar_t* ut = u + row * k * H;
          const scalar_t* xt = k == 4 ? ut + 3 * H : xp + row * H;
          const scalar_t* c_prev_row = t > 0 ? cp + (row - B) * H : c0p + b * H;
          scalar_t* gut = gup + row * k * H;
          scalar_t* gxt = k == 4 ? gut + 3 * H : gxp + row * H;
          const int64_t o = (task - begin) * kBlock - j0;  // unit j's slot in gc and acc: o + j
          for (int64_t j = j0; j < j1; j += Vec::size()) {
            const int64_t n = std::min<int64_t>(Vec::size(), j1 - j), i = o + j;
            const auto ld = [n](const scalar_t* p) { return Vec::loadu(p, n); };
            const Vec c_prev = ld(c_prev_row + j), x_tilde = ld(ut + j), one(scalar_t(1));
            Vec af = ld(ut + H + j) + ld(bf + j), ar = ld(ut + 2 * H + j) + ld(br + j);
            if (vf) {
              af = af + ld(vf + j) * c_prev;
              ar = ar + ld(vr + j) * c_prev;
            }
            const Vec f = sigmoid(af), r = sigmoid(ar), g = ld(cp + row * H + j).tanh();
            const Vec gh = ld(ghp + row * H + j);
            // Eq. 7: h = r g(c) + (1 - r) x'
            const Vec gar = gh * (g - ld(xt + j)) * r * (one - r);  // dL/d(pre-activation of r)
            (gh * (one - r)).store(gxt + j, n);
            const Vec gct = ld(&gc[i]) + gh * r * (one - g * g);    // dL/dc_t, total
            // Eq. 6: c = f c_prev + (1 - f) x~
            const Vec gaf = gct * (c_prev - x_tilde) * f * (one - f);
            (gct * (one - f)).store(gut + j, n);
            gaf.store(gut + H + j, n);
            gar.store(gut + 2 * H + j, n);
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
        }
      }
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / nblk, j0 = (task % nblk) * kBlock;
        const int64_t nj = std::min(H, j0 + kBlock) - j0, i = (task - begin) * kBlock;
        std::copy(&gc[i], &gc[i] + nj, gc0p + b * H + j0);
        std::copy(gbf + i, gbf + i + nj, gbp + b * 2 * H + j0);
        std::copy(gbr + i, gbr + i + nj, gbp + b * 2 * H + H + j0);
        if (gvp) {
          std::copy(gvf + i, gvf + i + nj, gvp + b * 2 * H + j0);
          std::copy(gvr + i, gvr + i + nj, gvp + b * 2 * H + H + j0);
        }
      }
    });
  });
  at::Tensor gv = peep ? gv_rows.sum(0) : at::empty({0}, U.options());
  return {gU, gx, gc0, gbias_rows.sum(0), gv};
}

}  // namespace

TORCH_LIBRARY(skimviz_sru, m) {
  m.def("forward(Tensor U, Tensor? x, Tensor c0, Tensor bias, Tensor? v) -> Tensor[]");
  m.def("backward(Tensor grad_h, Tensor grad_cn, Tensor U, Tensor? x, Tensor c0, Tensor bias, "
        "Tensor? v, Tensor c) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(skimviz_sru, CPU, m) {
  m.impl("forward", &sru_forward);
  m.impl("backward", &sru_backward);
}
