// Differentiable reductions: the raw kernel computes the result, the backward broadcasts the
// output gradient back over the reduced dims (unsqueeze + expand, no copy) and scales it by the
// local derivative. Derivatives that need the op's own output read raw::alias(out) in a plain
// backward pass and recompute it with differentiable ops under create_graph.
#include "autograd/reduce.h"

#include <algorithm>
#include <cmath>

#include "autograd/elementwise.h"
#include "autograd/grad_mode.h"
#include "autograd/indexing.h"
#include "autograd/node.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/views.h"

namespace cxr {
namespace {

using Grads = std::vector<Tensor>;

// What the backward of a reduction over `dims` needs: the input shape, the normalised reduced
// dims, keepdim, and the result's shape with the reduced dims kept as size 1.
struct Reduction {
  Shape shape;
  std::vector<int64_t> dims;
  bool keepdim;
  Shape keep_shape;
  int64_t count = 1;  // reduced elements per output
};

Reduction describe_reduction(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim,
                             const char* op) {
  Reduction r{t.sizes(), normalize_dims(dims, t.dim(), op), keepdim, t.sizes()};
  for (int64_t d : r.dims) {
    r.count *= t.size(d);
    r.keep_shape[size_t(d)] = 1;
  }
  return r;
}

// g (shaped like the result) with the reduced dims restored as size 1.
Tensor unsqueeze_reduced(const Tensor& g, const Reduction& r) {
  Tensor out = g;
  if (!r.keepdim)
    for (int64_t d : r.dims) out = unsqueeze(out, d);
  return out;
}

// g broadcast back to the input's shape.
Tensor expand_reduced(const Tensor& g, const Reduction& r) {
  return expand(unsqueeze_reduced(g, r), r.shape);
}

// The result of a reduction, seen with the reduced dims kept (no history; for masks).
Tensor keep_view(const Tensor& out_alias, const Reduction& r) {
  return raw::reshape(out_alias, r.keep_shape);
}

// A constant weight that shares each output's gradient evenly among the elements of `t` equal
// to it (ties of max/min): mask / count.
Tensor tie_weights(const Tensor& t, const Tensor& extreme_keep, const Reduction& r) {
  Tensor mask = raw::to(raw::compare(CompareOp::Eq, t, extreme_keep), t.dtype());
  return raw::binary(BinaryOp::Div, mask, raw::sum(mask, r.dims, true));
}

Tensor amax_amin(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  Tensor out = is_max ? raw::amax(t, dims, keepdim) : raw::amin(t, dims, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const char* name = is_max ? "amax" : "amin";
  const Reduction r = describe_reduction(t, dims, keepdim, name);
  autograd::record(
      name, {t}, {out},
      [t, r, o = raw::alias(out)](const Grads& g) {
        return Grads{mul(unsqueeze_reduced(g[0], r), tie_weights(t, keep_view(o, r), r))};
      },
      {t});
  return out;
}

ValuesIndices max_min(const Tensor& t, int64_t dim, bool keepdim, bool is_max) {
  ValuesIndices vi = is_max ? raw::max(t, dim, keepdim) : raw::min(t, dim, keepdim);
  if (!autograd::needs_grad({t})) return vi;
  const int64_t d = normalize_dim(dim, t.dim(), is_max ? "max" : "min");
  const Shape shape = t.sizes();
  const DType dtype = t.dtype();
  autograd::record(is_max ? "max" : "min", {t}, {vi.values},
                   [d, keepdim, shape, dtype, idx = vi.indices](const Grads& g) {
                     if (shape.empty()) return Grads{g[0]};
                     // The gradient goes to the selected element of each reduced line.
                     Tensor gk = keepdim ? g[0] : unsqueeze(g[0], d);
                     Tensor ik = keepdim ? idx : raw::unsqueeze(idx, d);
                     return Grads{scatter_add(raw::zeros(shape, dtype, gk.device()), d, ik, gk)};
                   });
  return vi;
}

}  // namespace

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = raw::sum(t, dims, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const Reduction r = describe_reduction(t, dims, keepdim, "sum");
  autograd::record("sum", {t}, {out},
                   [r](const Grads& g) { return Grads{expand_reduced(g[0], r)}; });
  return out;
}

Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = raw::mean(t, dims, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const Reduction r = describe_reduction(t, dims, keepdim, "mean");
  autograd::record("mean", {t}, {out}, [r](const Grads& g) {
    return Grads{div(expand_reduced(g[0], r), double(r.count))};
  });
  return out;
}

// d var / dx = 2 (x - mean) / (n - correction).
Tensor var(const Tensor& t, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  Tensor out = raw::var(t, dims, correction, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const Reduction r = describe_reduction(t, dims, keepdim, "var");
  const double scale = 2.0 / double(std::max<int64_t>(0, r.count - correction));
  autograd::record("var", {t}, {out},
                   [t, r, scale](const Grads& g) {
                     Tensor centred = sub(t, mean(t, r.dims, true));
                     return Grads{mul(mul(unsqueeze_reduced(g[0], r), centred), scale)};
                   },
                   {t});
  return out;
}

Tensor std(const Tensor& t, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  return sqrt(var(t, dims, correction, keepdim));
}

Tensor amax(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return amax_amin(t, dims, keepdim, true);
}
Tensor amin(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return amax_amin(t, dims, keepdim, false);
}
ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim) {
  return max_min(t, dim, keepdim, true);
}
ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim) {
  return max_min(t, dim, keepdim, false);
}
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) {
  return raw::argmax(t, dim, keepdim);
}
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim) {
  return raw::argmin(t, dim, keepdim);
}

// d lse / dx = exp(x - lse) (the softmax over the reduced dims).
Tensor logsumexp(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = raw::logsumexp(t, dims, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const Reduction r = describe_reduction(t, dims, keepdim, "logsumexp");
  autograd::record("logsumexp", {t}, {out},
                   [t, r, o = raw::alias(out)](const Grads& g) {
                     Tensor lse = autograd::GradMode::is_enabled() ? logsumexp(t, r.dims, true)
                                                                   : keep_view(o, r);
                     return Grads{mul(unsqueeze_reduced(g[0], r), exp(sub(t, lse)))};
                   },
                   {t});
  return out;
}

// d ||x||_p / dx = sign(x) |x|^(p-1) / ||x||^(p-1) (x / ||x|| for p = 2, sign(x) for p = 1, the
// tied extremes' signs for p = +-inf), taken as 0 where the norm is 0.
Tensor norm(const Tensor& t, double p, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = raw::norm(t, p, dims, keepdim);
  if (!autograd::needs_grad({t})) return out;
  const Reduction r = describe_reduction(t, dims, keepdim, "norm");
  autograd::record(
      "norm", {t}, {out},
      [t, p, r, o = raw::alias(out)](const Grads& g) {
        Tensor ge = unsqueeze_reduced(g[0], r);
        if (p == 0) return Grads{mul(expand(ge, r.shape), 0.0)};
        if (p == 1) return Grads{mul(ge, sign(t))};
        Tensor nk = autograd::GradMode::is_enabled() ? norm(t, p, r.dims, true) : keep_view(o, r);
        if (std::isinf(p))
          return Grads{mul(ge, mul(sign(t), tie_weights(raw::abs(t), raw::alias(nk), r)))};
        Tensor safe = add(nk, raw::to(raw::compare(CompareOp::Eq, nk, 0.0), nk.dtype()));
        if (p == 2) return Grads{mul(ge, div(t, safe))};
        return Grads{mul(ge, div(mul(sign(t), pow(abs(t), p - 1)), pow(safe, p - 1)))};
      },
      {t});
  return out;
}

// The gradient of a running sum is the reversed running sum of the gradient.
Tensor cumsum(const Tensor& t, int64_t dim) {
  Tensor out = raw::cumsum(t, dim);
  if (!autograd::needs_grad({t})) return out;
  const int64_t d = normalize_dim(dim, t.dim(), "cumsum");
  const bool scalar = t.dim() == 0;
  autograd::record("cumsum", {t}, {out}, [d, scalar](const Grads& g) {
    if (scalar) return Grads{g[0]};
    return Grads{flip(cumsum(flip(g[0], {d}), d), {d})};
  });
  return out;
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.sizes() == shape) return t;
  Tensor out = raw::sum_to(t, shape);
  const Shape in_shape = t.sizes();
  autograd::record("sum_to", {t}, {out},
                   [in_shape](const Grads& g) { return Grads{expand(g[0], in_shape)}; });
  return out;
}

}  // namespace cxr
