// Differentiable indexing and joining. Each op runs its raw kernel and records a node; the backward
// functions are built from the differentiable ops of this file and autograd/views.h: gather <->
// scatter_add, index_select <-> index_add, cat -> narrow, pad -> pad with negated widths (constant)
// or index_add per dim (reflect/replicate, which are per-dim index_selects).
#include "autograd/indexing.h"

#include <algorithm>

#include "autograd/node.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/views.h"

namespace cxr {

namespace {

using Grads = std::vector<Tensor>;

// Slices of size `n` along `dim` at consecutive offsets, as differentiable narrows.
std::vector<Tensor> narrow_pieces(const Tensor& t, int64_t dim, const std::vector<int64_t>& sizes) {
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t n : sizes) {
    out.push_back(narrow(t, dim, start, n));
    start += n;
  }
  return out;
}

std::vector<int64_t> piece_sizes(const std::vector<Tensor>& pieces, int64_t dim) {
  std::vector<int64_t> sizes;
  for (const Tensor& p : pieces) sizes.push_back(p.sizes()[size_t(dim)]);
  return sizes;
}

// Where output position o of a reflect/replicate pad (before = b) reads along a dim of size n.
Tensor pad_source_index(int64_t out_size, int64_t b, int64_t n, PadMode mode) {
  Tensor index = raw::empty({out_size}, kInt64);
  int64_t* p = index.data<int64_t>();
  for (int64_t o = 0; o < out_size; ++o) {
    int64_t i = o - b;
    if (mode == PadMode::Replicate) {
      i = std::clamp<int64_t>(i, 0, n - 1);
    } else {  // reflect about the edge elements (not repeated)
      if (i < 0) i = -i;
      if (i >= n) i = 2 * (n - 1) - i;
    }
    p[o] = i;
  }
  return index;
}

}  // namespace

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor out = raw::index_select(t, dim, index);
  Shape in_shape = t.sizes();
  autograd::record("index_select", {t}, {out},
                   [=](const Grads& g) {
                     return Grads{index_add(raw::zeros(in_shape, g[0].dtype(), g[0].device()), dim,
                                            index, g[0])};
                   },
                   {index});
  return out;
}

Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = raw::clone(t);
  raw::index_add_(out, dim, index, src);
  autograd::record("index_add", {t, src}, {out},
                   [=](const Grads& g) {
                     return Grads{g[0], index_select(g[0], dim, index)};
                   },
                   {index});
  return out;
}

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor out = raw::gather(t, dim, index);
  Shape in_shape = t.sizes();
  autograd::record("gather", {t}, {out},
                   [=](const Grads& g) {
                     return Grads{scatter_add(raw::zeros(in_shape, g[0].dtype(), g[0].device()),
                                              dim, index, g[0])};
                   },
                   {index});
  return out;
}

Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = raw::scatter_add(t, dim, index, src);
  // Only the leading index-shaped block of src is read; the rest gets zero gradient.
  std::vector<int64_t> widths;
  for (int64_t d = src.dim(); d-- > 0;)
    widths.insert(widths.end(), {0, src.sizes()[size_t(d)] - index.sizes()[size_t(d)]});
  const bool padded = src.sizes() != index.sizes();
  autograd::record("scatter_add", {t, src}, {out},
                   [=](const Grads& g) {
                     Tensor grad_src = gather(g[0], dim, index);
                     return Grads{g[0], padded ? pad(grad_src, widths) : grad_src};
                   },
                   {index});
  return out;
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, double value) {
  Tensor out = raw::masked_fill(t, mask, value);
  autograd::record("masked_fill", {t}, {out},
                   [mask](const Grads& g) { return Grads{masked_fill(g[0], mask, 0.0)}; }, {mask});
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  // Promote and broadcast a and b differentiably first, so the node sees same-shaped operands.
  const DType dtype = promote_types(a.dtype(), b.dtype());
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  auto prepare = [&](const Tensor& x) {
    Tensor y = to(x, dtype);
    return y.sizes() == shape ? y : expand(y, shape);
  };
  Tensor x = prepare(a), y = prepare(b);
  Tensor out = raw::where(cond, x, y);
  autograd::record("where", {x, y}, {out},
                   [cond](const Grads& g) {
                     Tensor zero = raw::zeros({}, g[0].dtype(), g[0].device());
                     return Grads{where(cond, g[0], zero), where(cond, zero, g[0])};
                   },
                   {cond});
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = raw::cat(tensors, dim);  // validates
  if (out.dim() == 0 || !autograd::needs_grad(tensors)) return out;
  const int64_t d = normalize_dim(dim, out.dim(), "cat");
  std::vector<int64_t> sizes;
  std::vector<DType> dtypes;
  for (const Tensor& t : tensors) {
    bool skipped = t.dim() == 1 && t.numel() == 0;  // raw::cat's legacy rule
    sizes.push_back(skipped ? -1 : t.sizes()[size_t(d)]);
    dtypes.push_back(t.dtype());
  }
  autograd::record("cat", tensors, {out}, [=](const Grads& g) {
    Grads grads;
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0) {
        grads.emplace_back();
        continue;
      }
      grads.push_back(to(narrow(g[0], d, start, sizes[i]), dtypes[i]));
      start += sizes[i];
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = raw::stack(tensors, dim);  // validates
  const int64_t d = dim < 0 ? dim + out.dim() : dim;
  const size_t n = tensors.size();
  autograd::record("stack", tensors, {out}, [d, n](const Grads& g) {
    Grads grads;
    for (size_t i = 0; i < n; ++i) grads.push_back(select(g[0], d, int64_t(i)));
    return grads;
  });
  return out;
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  std::vector<Tensor> pieces = raw::split(t, split_size, dim);  // validates
  if (!autograd::needs_grad({t})) return pieces;
  const int64_t d = normalize_dim(dim, t.dim(), "split");
  return narrow_pieces(t, d, piece_sizes(pieces, d));
}

std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes,
                                     int64_t dim) {
  std::vector<Tensor> pieces = raw::split_with_sizes(t, sizes, dim);  // validates
  if (!autograd::needs_grad({t})) return pieces;
  return narrow_pieces(t, normalize_dim(dim, t.dim(), "split_with_sizes"), sizes);
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  std::vector<Tensor> pieces = raw::chunk(t, chunks, dim);  // validates
  if (!autograd::needs_grad({t})) return pieces;
  const int64_t d = normalize_dim(dim, t.dim(), "chunk");
  return narrow_pieces(t, d, piece_sizes(pieces, d));
}

Tensor pad(const Tensor& t, const std::vector<int64_t>& widths, PadMode mode, double value) {
  Tensor out = raw::pad(t, widths, mode, value);  // validates
  if (mode == PadMode::Constant) {
    // Constant padding with negated widths crops the padding away again (and vice versa).
    std::vector<int64_t> negated;
    for (int64_t w : widths) negated.push_back(-w);
    autograd::record("pad", {t}, {out},
                     [negated](const Grads& g) { return Grads{pad(g[0], negated)}; });
    return out;
  }
  // Reflect/replicate = one index_select per padded dim, so the gradient is one index_add each.
  Shape in_shape = t.sizes();
  autograd::record("pad", {t}, {out}, [in_shape, widths, mode](const Grads& g) {
    Tensor grad = g[0];
    for (size_t i = 0; i < widths.size() / 2; ++i) {
      const int64_t d = int64_t(in_shape.size()) - 1 - int64_t(i);
      const int64_t b = widths[2 * i], n = in_shape[size_t(d)];
      if (b == 0 && widths[2 * i + 1] == 0) continue;
      // Built on the host (a few integers per padded dim) and moved to the gradient's device.
      Tensor index = raw::to(pad_source_index(grad.sizes()[size_t(d)], b, n, mode), grad.device());
      Shape shape = grad.sizes();
      shape[size_t(d)] = n;
      grad = index_add(raw::zeros(shape, grad.dtype(), grad.device()), d, index, grad);
    }
    return Grads{grad};
  });
  return out;
}

Tensor flip(const Tensor& t, const std::vector<int64_t>& dims) {
  Tensor out = raw::flip(t, dims);
  autograd::record("flip", {t}, {out}, [dims](const Grads& g) { return Grads{flip(g[0], dims)}; });
  return out;
}

Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  Tensor out = raw::roll(t, shifts, dims);
  std::vector<int64_t> back;
  for (int64_t s : shifts) back.push_back(-s);
  autograd::record("roll", {t}, {out},
                   [back, dims](const Grads& g) { return Grads{roll(g[0], back, dims)}; });
  return out;
}

Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats) {
  if (!autograd::needs_grad({t})) return raw::repeat(t, repeats);
  // repeat = reshape(expand(t as [1, s0, 1, s1, ...] to [r0, s0, r1, s1, ...])): its gradient sums
  // the tiles, through the differentiable expand.
  const int64_t k = int64_t(repeats.size()), n = t.dim();
  CXR_CHECK(k >= n, "repeat: ", k, " repeats for ", describe(t),
            "; expected at least one per dim (", n, ")");
  Shape src_shape, tiled, out_shape;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t r = repeats[size_t(i)], s = i < k - n ? 1 : t.sizes()[size_t(i - (k - n))];
    CXR_CHECK(r >= 0, "repeat: negative repeat count ", r, " in ", shape_str(repeats));
    src_shape.insert(src_shape.end(), {1, s});
    tiled.insert(tiled.end(), {r, s});
    out_shape.push_back(r * s);
  }
  return reshape(expand(reshape(t, src_shape), tiled), out_shape);
}

}  // namespace cxr
