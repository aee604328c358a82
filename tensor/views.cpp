// Views: new sizes/strides/offset over the same Storage. Nothing here copies data, except
// reshape() when the strides make a view impossible (then it returns a contiguous copy).
#include "tensor/views.h"

#include <algorithm>
#include <optional>

#include "tensor/creation.h"

namespace cxr::raw {

namespace {

Tensor make_view(const Tensor& t, Shape sizes, Shape strides, int64_t offset) {
  return Tensor(t.storage(), std::move(sizes), std::move(strides), offset, t.dtype());
}

// Replaces a single -1 in `shape` by the size that keeps `numel` elements.
Shape infer_shape(const Shape& shape, int64_t numel, const Tensor& t, const char* op) {
  Shape out = shape;
  int64_t known = 1;
  std::optional<size_t> infer;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      CXR_CHECK(!infer, op, ": only one dim of shape ", shape_str(shape), " can be -1");
      infer = i;
    } else {
      CXR_CHECK(shape[i] >= 0, op, ": invalid size ", shape[i], " in shape ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer) {
    CXR_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape),
              " is invalid for input ", describe(t), " of ", numel, " elements");
    out[*infer] = numel / known;
  }
  CXR_CHECK(shape_numel(out) == numel, op, ": shape ", shape_str(shape), " is invalid for input ",
            describe(t), " of ", numel, " elements");
  return out;
}

// Strides that let a tensor of (sizes, strides) be read as `shape` without a copy, if any.
// The old dims are grouped into chunks whose elements are evenly spaced (stride[i] ==
// stride[i+1] * size[i+1]); each chunk must be covered exactly by a run of new dims, which then
// take strides base * (product of the sizes inside the chunk that follow them).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape) {
  if (shape_numel(shape) == 0) return contiguous_strides(shape);
  std::vector<std::pair<int64_t, int64_t>> old;  // (size, stride) of dims with size != 1
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] != 1) old.emplace_back(sizes[i], strides[i]);
  Shape out(shape.size(), 0);
  int64_t ni = int64_t(shape.size()) - 1;
  int64_t oi = int64_t(old.size()) - 1;
  while (oi >= 0) {
    // The chunk ending at old dim oi.
    int64_t base = old[size_t(oi)].second, chunk = old[size_t(oi)].first;
    int64_t prev_stride = base, prev_size = chunk;
    --oi;
    while (oi >= 0 && old[size_t(oi)].second == prev_stride * prev_size) {
      prev_stride = old[size_t(oi)].second;
      prev_size = old[size_t(oi)].first;
      chunk *= prev_size;
      --oi;
    }
    // New dims (from the back) that cover exactly `chunk` elements.
    int64_t covered = 1;
    while (ni >= 0 && covered < chunk) {
      out[size_t(ni)] = base * covered;
      covered *= shape[size_t(ni)];
      --ni;
    }
    if (covered != chunk) return std::nullopt;
    while (ni >= 0 && shape[size_t(ni)] == 1) {  // size-1 dims take any stride
      out[size_t(ni)] = base * covered;
      --ni;
    }
  }
  while (ni >= 0) {  // only size-1 dims are left (numel matches)
    out[size_t(ni)] = 1;
    --ni;
  }
  return out;
}

int64_t wrap_index(int64_t index, int64_t size) {
  return index < 0 ? index + size : index;
}

}  // namespace

Tensor view(const Tensor& t, const Shape& shape) {
  Shape sizes = infer_shape(shape, t.numel(), t, "view");
  auto strides = view_strides(t.sizes(), t.strides(), sizes);
  CXR_CHECK(strides.has_value(), "view: cannot view ", describe(t), " with strides ",
            shape_str(t.strides()), " as shape ", shape_str(sizes),
            " without a copy (its elements are not evenly spaced); use reshape");
  return make_view(t, std::move(sizes), std::move(*strides), t.offset());
}

Tensor reshape(const Tensor& t, const Shape& shape) {
  Shape sizes = infer_shape(shape, t.numel(), t, "reshape");
  if (auto strides = view_strides(t.sizes(), t.strides(), sizes))
    return make_view(t, std::move(sizes), std::move(*strides), t.offset());
  Tensor c = clone(t);
  return make_view(c, sizes, contiguous_strides(sizes), 0);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  const int64_t n = t.dim();
  CXR_CHECK(int64_t(dims.size()) == n, "permute: ", dims.size(), " dims given for tensor ",
            describe(t), " with ", n, " dims");
  Shape sizes(static_cast<size_t>(n)), strides(static_cast<size_t>(n));
  std::vector<bool> seen(size_t(n), false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = normalize_dim(dims[size_t(i)], n, "permute");
    CXR_CHECK(!seen[size_t(d)], "permute: dim ", dims[size_t(i)], " appears twice for tensor ",
              describe(t));
    seen[size_t(d)] = true;
    sizes[size_t(i)] = t.sizes()[size_t(d)];
    strides[size_t(i)] = t.strides()[size_t(d)];
  }
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  const int64_t n = t.dim();
  int64_t a = normalize_dim(dim0, n, "transpose"), b = normalize_dim(dim1, n, "transpose");
  Shape sizes = t.sizes(), strides = t.strides();
  if (n > 0) {
    std::swap(sizes[size_t(a)], sizes[size_t(b)]);
    std::swap(strides[size_t(a)], strides[size_t(b)]);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor squeeze(const Tensor& t) {
  Shape sizes, strides;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.sizes()[size_t(d)] == 1) continue;
    sizes.push_back(t.sizes()[size_t(d)]);
    strides.push_back(t.strides()[size_t(d)]);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  int64_t d = normalize_dim(dim, t.dim(), "squeeze");
  Shape sizes = t.sizes(), strides = t.strides();
  if (t.dim() > 0 && sizes[size_t(d)] == 1) {
    sizes.erase(sizes.begin() + d);
    strides.erase(strides.begin() + d);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  const int64_t n = t.dim();
  CXR_CHECK(dim >= -(n + 1) && dim <= n, "unsqueeze: dim ", dim, " out of range for tensor ",
            describe(t), " (expected ", -(n + 1), "..", n, ")");
  int64_t d = dim < 0 ? dim + n + 1 : dim;
  Shape sizes = t.sizes(), strides = t.strides();
  int64_t stride = d < n ? sizes[size_t(d)] * strides[size_t(d)] : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  CXR_CHECK(t.dim() > 0, "slice: cannot slice a 0-dim tensor ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "slice");
  CXR_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t size = t.sizes()[size_t(d)];
  // Python slicing: negative bounds count from the end, then both are clamped to [0, size].
  auto clamp_bound = [size](int64_t b) {
    return std::clamp<int64_t>(wrap_index(b, size), 0, size);
  };
  int64_t s = clamp_bound(start), e = std::max(clamp_bound(end), s);
  Shape sizes = t.sizes(), strides = t.strides();
  sizes[size_t(d)] = (e - s + step - 1) / step;
  strides[size_t(d)] *= step;
  int64_t offset = t.offset() + (sizes[size_t(d)] > 0 ? s * t.strides()[size_t(d)] : 0);
  return make_view(t, std::move(sizes), std::move(strides), offset);
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  CXR_CHECK(t.dim() > 0, "narrow: cannot narrow a 0-dim tensor ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "narrow");
  const int64_t size = t.sizes()[size_t(d)];
  int64_t s = wrap_index(start, size);
  CXR_CHECK(s >= 0 && s <= size && length >= 0 && s + length <= size, "narrow: start ", start,
            " and length ", length, " out of range for dim ", dim, " of ", describe(t));
  return slice(t, d, s, s + length, 1);
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  CXR_CHECK(t.dim() > 0, "select: cannot select from a 0-dim tensor ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "select");
  const int64_t size = t.sizes()[size_t(d)];
  int64_t i = wrap_index(index, size);
  CXR_CHECK(i >= 0 && i < size, "select: index ", index, " out of range for dim ", dim, " of ",
            describe(t));
  Shape sizes = t.sizes(), strides = t.strides();
  int64_t offset = t.offset() + i * strides[size_t(d)];
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  return make_view(t, std::move(sizes), std::move(strides), offset);
}

Tensor expand(const Tensor& t, const Shape& shape) {
  const int64_t n = int64_t(shape.size()), td = t.dim();
  CXR_CHECK(n >= td, "expand: target shape ", shape_str(shape), " has fewer dims than ",
            describe(t));
  Shape sizes(static_cast<size_t>(n)), strides(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = i - (n - td);  // the matching dim of t, if any
    int64_t want = shape[size_t(i)];
    if (k < 0) {
      CXR_CHECK(want >= 0, "expand: new leading dim ", i, " of ", shape_str(shape),
                " must have a size (not ", want, ") when expanding ", describe(t));
      sizes[size_t(i)] = want;
      strides[size_t(i)] = 0;
      continue;
    }
    int64_t have = t.sizes()[size_t(k)];
    if (want == -1) want = have;
    CXR_CHECK(want >= 0 && (want == have || have == 1), "expand: cannot expand ", describe(t),
              " to ", shape_str(shape), " (dim ", i, ": ", have, " -> ", shape[size_t(i)],
              "; only size-1 dims can grow)");
    sizes[size_t(i)] = want;
    strides[size_t(i)] = want == have ? t.strides()[size_t(k)] : 0;
  }
  return make_view(t, std::move(sizes), std::move(strides), t.offset());
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return reshape(t, {1});
  int64_t s = normalize_dim(start_dim, t.dim(), "flatten");
  int64_t e = normalize_dim(end_dim, t.dim(), "flatten");
  CXR_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim, " for ",
            describe(t));
  Shape shape(t.sizes().begin(), t.sizes().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= t.sizes()[size_t(d)];
  shape.push_back(merged);
  shape.insert(shape.end(), t.sizes().begin() + e + 1, t.sizes().end());
  return reshape(t, shape);
}

Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes) {
  CXR_CHECK(t.dim() > 0, "unflatten: cannot unflatten a 0-dim tensor ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "unflatten");
  CXR_CHECK(!sizes.empty(), "unflatten: sizes must not be empty");
  Shape inner = infer_shape(sizes, t.sizes()[size_t(d)], t, "unflatten");
  Shape shape(t.sizes().begin(), t.sizes().begin() + d);
  shape.insert(shape.end(), inner.begin(), inner.end());
  shape.insert(shape.end(), t.sizes().begin() + d + 1, t.sizes().end());
  return reshape(t, shape);
}

Tensor alias(const Tensor& t) {
  return make_view(t, t.sizes(), t.strides(), t.offset());
}

Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, int64_t offset) {
  CXR_CHECK(sizes.size() == strides.size(), "as_strided: ", sizes.size(), " sizes ",
            shape_str(sizes), " but ", strides.size(), " strides ", shape_str(strides));
  CXR_CHECK(offset >= 0, "as_strided: negative offset ", offset);
  int64_t last = offset;  // the highest element reached
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    CXR_CHECK(sizes[i] >= 0 && strides[i] >= 0, "as_strided: negative size or stride in sizes ",
              shape_str(sizes), " strides ", shape_str(strides));
    if (sizes[i] == 0)
      empty = true;
    else
      last += (sizes[i] - 1) * strides[i];
  }
  const int64_t capacity = int64_t(t.storage()->nbytes() / t.element_size());
  CXR_CHECK(empty || last < capacity, "as_strided: sizes ", shape_str(sizes), " strides ",
            shape_str(strides), " offset ", offset, " reach element ", last, " but the storage of ",
            describe(t), " holds ", capacity, " elements");
  return make_view(t, sizes, strides, offset);
}

}  // namespace cxr::raw
