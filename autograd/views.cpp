// Differentiable views: each op runs its raw view and records a node whose backward maps the output
// gradient back to the input's geometry with differentiable ops (reshape for reshapes, the inverse
// permutation, slice_backward for slices, reduce_to for expand).
#include "autograd/views.h"

#include "autograd/node.h"
#include "tensor/creation.h"
#include "tensor/reduce.h"
#include "tensor/views.h"

namespace cxr {

namespace {

using Grads = std::vector<Tensor>;

// Marks `out` as a view of `in`'s base, when `in` requires grad (see autograd::record_inplace).
void mark_view(const Tensor& out, const Tensor& in) {
  if (!in.requires_grad() || out.storage() != in.storage()) return;
  const std::shared_ptr<Tensor>& base = in.autograd_meta().view_base;
  out.autograd_meta().view_base = base ? base : std::make_shared<Tensor>(in);
}

// Records a view op with input `in` and output `out`, and marks `out` as a view.
Tensor record_view(const char* name, const Tensor& in, const Tensor& out,
                   autograd::BackwardFn backward) {
  autograd::record(name, {in}, {out}, std::move(backward));
  mark_view(out, in);
  return out;
}

int64_t wrap(int64_t index, int64_t size) {
  return index < 0 ? index + size : index;
}

// The gradient of slice: zeros of `shape` with `g` written at [start:end:step] along dim.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end,
                      int64_t step) {
  Tensor out = raw::zeros(shape, g.dtype(), g.device());
  raw::copy_(raw::slice(out, dim, start, end, step), g);
  autograd::record("slice_backward", {g}, {out},
                   [=](const Grads& gs) { return Grads{slice(gs[0], dim, start, end, step)}; });
  return out;
}

// The gradient of expand: `g` summed down to `shape`; its own gradient is an expand.
Tensor reduce_to(const Tensor& g, const Shape& shape) {
  if (g.sizes() == shape) return g;
  Tensor out = raw::sum_to(g, shape);
  Shape g_shape = g.sizes();
  autograd::record("expand_backward", {g}, {out},
                   [g_shape](const Grads& gs) { return Grads{expand(gs[0], g_shape)}; });
  return out;
}

// Views whose gradient is the output gradient reshaped to the input's shape.
Tensor reshaping_view(const char* name, const Tensor& t, const Tensor& out) {
  Shape in_shape = t.sizes();
  auto backward = [in_shape](const Grads& g) { return Grads{reshape(g[0], in_shape)}; };
  if (out.storage() == t.storage()) return record_view(name, t, out, backward);
  autograd::record(name, {t}, {out}, backward);  // reshape had to copy
  return out;
}

}  // namespace

Tensor view(const Tensor& t, const Shape& shape) {
  return reshaping_view("view", t, raw::view(t, shape));
}
Tensor reshape(const Tensor& t, const Shape& shape) {
  return reshaping_view("reshape", t, raw::reshape(t, shape));
}
Tensor squeeze(const Tensor& t) {
  return reshaping_view("squeeze", t, raw::squeeze(t));
}
Tensor squeeze(const Tensor& t, int64_t dim) {
  return reshaping_view("squeeze", t, raw::squeeze(t, dim));
}
Tensor unsqueeze(const Tensor& t, int64_t dim) {
  return reshaping_view("unsqueeze", t, raw::unsqueeze(t, dim));
}
Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  return reshaping_view("flatten", t, raw::flatten(t, start_dim, end_dim));
}
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes) {
  return reshaping_view("unflatten", t, raw::unflatten(t, dim, sizes));
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  Tensor out = raw::permute(t, dims);
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[size_t(normalize_dim(dims[i], t.dim(), "permute"))] = int64_t(i);
  return record_view("permute", t, out,
                     [inverse](const Grads& g) { return Grads{permute(g[0], inverse)}; });
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  return record_view("transpose", t, raw::transpose(t, dim0, dim1),
                     [dim0, dim1](const Grads& g) { return Grads{transpose(g[0], dim0, dim1)}; });
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = raw::slice(t, dim, start, end, step);
  Shape in_shape = t.sizes();
  return record_view("slice", t, out, [=](const Grads& g) {
    return Grads{slice_backward(g[0], in_shape, dim, start, end, step)};
  });
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Tensor out = raw::narrow(t, dim, start, length);  // validates
  const int64_t d = normalize_dim(dim, t.dim(), "narrow");
  const int64_t s = wrap(start, t.sizes()[size_t(d)]);
  Shape in_shape = t.sizes();
  return record_view("narrow", t, out, [=](const Grads& g) {
    return Grads{slice_backward(g[0], in_shape, d, s, s + length, 1)};
  });
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  Tensor out = raw::select(t, dim, index);  // validates
  const int64_t d = normalize_dim(dim, t.dim(), "select");
  const int64_t i = wrap(index, t.sizes()[size_t(d)]);
  Shape in_shape = t.sizes();
  return record_view("select", t, out, [=](const Grads& g) {
    return Grads{slice_backward(unsqueeze(g[0], d), in_shape, d, i, i + 1, 1)};
  });
}

Tensor expand(const Tensor& t, const Shape& shape) {
  Shape in_shape = t.sizes();
  return record_view("expand", t, raw::expand(t, shape),
                     [in_shape](const Grads& g) { return Grads{reduce_to(g[0], in_shape)}; });
}

Tensor expand_as(const Tensor& t, const Tensor& other) {
  return expand(t, other.sizes());
}

Tensor detach(const Tensor& t) {
  return raw::alias(t);
}

Tensor clone(const Tensor& t) {
  Tensor out = raw::clone(t);
  autograd::record("clone", {t}, {out}, [](const Grads& g) { return Grads{g[0]}; });
  return out;
}

Tensor contiguous(const Tensor& t) {
  return t.is_contiguous() ? t : clone(t);
}

Tensor to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = raw::to(t, dtype);
  const DType in_dtype = t.dtype();
  if (is_floating(dtype))
    autograd::record("to", {t}, {out},
                     [in_dtype](const Grads& g) { return Grads{to(g[0], in_dtype)}; });
  return out;
}

}  // namespace cxr
