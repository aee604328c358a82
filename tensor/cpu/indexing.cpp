// Indexing and joining on the CPU. Pure data movement (gather, index_select, where, masked_fill)
// dispatches on the element SIZE, not the dtype: one instantiation moves every dtype of that
// width. Joins and pads are built from views plus copy_ (which is parallel and converts dtypes).
// CUDA tensors share the validation: the joins, pads, flips and repeats run on CUDA through copy_
// and fill_ as they are; the element kernels route to tensor/cuda/indexing.cu.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/cpu/loops.h"
#include "tensor/creation.h"
#include "tensor/cuda/indexing.h"
#include "tensor/index_dispatch.h"
#include "tensor/indexing.h"
#include "tensor/views.h"

namespace cxr::raw {

namespace {

using detail::dispatch_by_size;
using detail::dispatch_index;

void check_defined(const Tensor& t, const char* op) {
  CXR_CHECK(t.defined(), op, ": undefined tensor");
}

void check_index(const Tensor& index, const char* op) {
  check_defined(index, op);
  CXR_CHECK(index.dtype() == kInt64 || index.dtype() == kInt32, op,
            ": index must be int64 or int32, got ", describe(index));
}

// Throws, naming the op, when a value of `index` (int64 or int32) lies outside [0, size). The
// gather/scatter kernels check their indices as they go (a bad index is never dereferenced) and
// call this on failure for a message that does not depend on which thread saw what. A CUDA index
// is checked on the device first and copied to the host only to name the bad value.
void check_index_range(const Tensor& index, int64_t size, int64_t dim, const Tensor& t,
                       const char* op) {
  if constexpr (kCudaBuilt)
    if (index.device().is_cuda() && cuda::index_in_range(index, size)) return;
  Tensor idx = contiguous(to(index, Device::cpu()));
  const int64_t n = idx.numel();
  if (n == 0) return;
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  dispatch_index(idx, op, [&]<typename I>() {
    const I* p = idx.data<I>();
#pragma omp parallel for reduction(min : lo) reduction(max : hi) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min<int64_t>(lo, p[i]);
      hi = std::max<int64_t>(hi, p[i]);
    }
  });
  CXR_CHECK(lo >= 0 && hi < size, op, ": index ", lo < 0 ? lo : hi, " out of range for dim ", dim,
            " of size ", size, " of ", describe(t), " (expected 0..", size - 1, ")");
}

// `t` seen with shape `shape` (dims no larger than t's) and stride 0 along `dim`.
Tensor zero_stride_view(const Tensor& t, const Shape& shape, int64_t dim) {
  Shape strides = t.strides();
  strides[size_t(dim)] = 0;
  return Tensor(t.storage(), shape, strides, t.offset(), t.dtype());
}

// `index` (1-D) seen with shape `shape`: stride 0 everywhere except along `dim`.
Tensor index_along(const Tensor& index, const Shape& shape, int64_t dim) {
  Shape strides(shape.size(), 0);
  strides[size_t(dim)] = index.dim() == 0 ? 0 : index.strides()[0];
  return Tensor(index.storage(), shape, strides, index.offset(), index.dtype());
}

// out[p] = src[p with p[dim] replaced by index[p]], for every p in out's shape. `index` has out's
// shape (any strides). src is viewed with stride 0 along dim, so the index term is the only
// dependence on p[dim]. `t` and `dim_arg` only name the input in the error message.
void gather_kernel(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& index,
                   int64_t dim_arg, const char* op) {
  const int64_t size = src.sizes()[size_t(dim)];
  const int64_t dim_stride = src.strides()[size_t(dim)];
  if (size == 0) return check_index_range(index, size, dim_arg, src, op);  // any index is bad
  Tensor sv = zero_stride_view(src, out.sizes(), dim);
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) {
      if (!cuda::gather(out, sv, index, size, dim_stride))
        check_index_range(index, size, dim_arg, src, op);
      return;
    }
  std::atomic<bool> bad{false};
  dispatch_by_size(out.element_size(), "indexing", [&]<typename U>() {
    dispatch_index(index, op, [&]<typename I>() {
      cpu::for_each_row<3>(
          out.sizes(), {&out, &index, &sv},
          [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
            U* o = reinterpret_cast<U*>(p[0]);
            const I* ix = reinterpret_cast<const I*>(p[1]);
            const U* x = reinterpret_cast<const U*>(p[2]);
            if (s[1] == 0) {  // one index for the row (index_select): a copy
              const int64_t i = ix[0];
              if (i < 0 || i >= size) return bad.store(true);
              const U* row = x + i * dim_stride;
              if (s[0] == 1 && s[2] == 1) {
                std::memcpy(o, row, size_t(n) * sizeof(U));
              } else {
                for (int64_t k = 0; k < n; ++k) o[k * s[0]] = row[k * s[2]];
              }
              return;
            }
            for (int64_t k = 0; k < n; ++k) {
              int64_t i = ix[k * s[1]];
              if (i < 0 || i >= size) {
                bad.store(true, std::memory_order_relaxed);
                i = 0;
              }
              o[k * s[0]] = x[k * s[2] + i * dim_stride];
            }
          });
    });
  });
  if (bad) check_index_range(index, size, dim_arg, src, op);
}

// The rows of scatter_add_kernel: each row runs along the scattered dim in order. Returns false
// when an index is out of [0, size) (that element is skipped).
template <typename T, typename I>
bool scatter_add_rows(const cpu::LoopGeometry<3>& g, const std::array<char*, 3>& base,
                      int64_t dim_stride, int64_t size) {
  using C = compute_t<T>;
  const int64_t ndim = int64_t(g.shape.size()), inner = g.shape.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < ndim; ++d) rows *= g.shape[size_t(d)];
  const int64_t s0 = g.strides[0].back(), s1 = g.strides[1].back(), s2 = g.strides[2].back();
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) \
    if (rows > 1 && rows * inner >= cpu::kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    std::array<int64_t, 3> off = {0, 0, 0};
    int64_t rem = r;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      int64_t c = rem % g.shape[size_t(d)];
      rem /= g.shape[size_t(d)];
      for (size_t i = 0; i < 3; ++i) off[i] += c * g.strides[i][size_t(d)];
    }
    T* t = reinterpret_cast<T*>(base[0]) + off[0];
    const I* ix = reinterpret_cast<const I*>(base[1]) + off[1];
    const T* x = reinterpret_cast<const T*>(base[2]) + off[2];
    for (int64_t k = 0; k < inner; ++k) {
      const int64_t i = ix[k * s1];
      if (i < 0 || i >= size) {
        ok = false;
        continue;
      }
      T& dst = t[k * s0 + i * dim_stride];
      dst = convert<T>(C(C(dst) + C(x[k * s2])));
    }
  }
  return ok;
}

// target[p with p[dim] replaced by index[p]] += src[p], for every p in `shape` (index and src are
// views of that shape). Elements that differ only along dim may hit the same target, so dim is
// the sequential inner loop and the other coordinates are split across threads: the sum order is
// fixed and there are no atomics. An out-of-range index throws after the other elements were
// added, so callers that must not leave a half-updated target check the index first.
void scatter_add_kernel(const Tensor& target, int64_t dim, const Tensor& index, const Tensor& src,
                        const Shape& shape, int64_t dim_arg, const char* op) {
  if (shape_numel(shape) == 0) return;
  Tensor tv = zero_stride_view(target, shape, dim);
  const int64_t size = target.sizes()[size_t(dim)];
  const int64_t dim_stride = target.strides()[size_t(dim)];
  if constexpr (kCudaBuilt)
    if (target.device().is_cuda()) {
      const bool ok = cuda::scatter_add(tv, dim, index, src, shape, size, dim_stride);
      target.storage()->bump_version();
      if (!ok) check_index_range(index, size, dim_arg, target, op);
      return;
    }
  // Dims in loop order: every dim but `dim`, then `dim` innermost.
  Shape order_shape;
  std::array<Shape, 3> order_strides;
  const std::array<const Tensor*, 3> ops = {&tv, &index, &src};
  auto push = [&](size_t d) {
    order_shape.push_back(shape[d]);
    for (size_t i = 0; i < 3; ++i)
      order_strides[i].push_back(shape[d] == 1 ? 0 : ops[i]->strides()[d]);
  };
  for (size_t d = 0; d < shape.size(); ++d)
    if (int64_t(d) != dim) push(d);
  push(size_t(dim));
  const cpu::LoopGeometry<3> g = cpu::make_geometry<3>(order_shape, order_strides);
  std::array<char*, 3> base;
  for (size_t i = 0; i < 3; ++i) base[i] = static_cast<char*>(ops[i]->data_ptr());
  bool ok = true;
  CXR_DISPATCH_ALL(target.dtype(), op, [&]<typename T>() {
    dispatch_index(index, op,
                   [&]<typename I>() { ok = scatter_add_rows<T, I>(g, base, dim_stride, size); });
  });
  target.storage()->bump_version();
  if (!ok) check_index_range(index, size, dim_arg, target, op);
}

// The bytes of `value` converted to `dtype`, for the size-dispatched fill kernels.
uint64_t value_bits(double value, DType dtype, const char* op) {
  uint64_t bits = 0;
  CXR_DISPATCH_ALL(dtype, op, [&]<typename T>() {
    T v = convert<T>(value);
    std::memcpy(&bits, &v, sizeof(T));
  });
  return bits;
}

}  // namespace

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  check_defined(t, "index_select");
  CXR_CHECK(t.dim() > 0, "index_select: expected a tensor with at least one dim, got ",
            describe(t));
  CXR_CHECK(index.defined() && index.dim() <= 1, "index_select: index must be 0-D or 1-D, got ",
            describe(index));
  int64_t d = normalize_dim(dim, t.dim(), "index_select");
  check_index(index, "index_select");
  common_device("index_select", {t, index});
  Shape shape = t.sizes();
  shape[size_t(d)] = index.numel();
  Tensor out = empty(shape, t.dtype(), t.device());
  if (out.numel() == 0) {  // nothing to move, but the index must still be valid
    check_index_range(index, t.sizes()[size_t(d)], dim, t, "index_select");
    return out;
  }
  gather_kernel(out, t, d, index_along(index, shape, d), dim, "index_select");
  return out;
}

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  check_defined(t, "gather");
  CXR_CHECK(t.dim() > 0, "gather: expected a tensor with at least one dim, got ", describe(t));
  CXR_CHECK(index.defined() && index.dim() == t.dim(), "gather: index ", describe(index),
            " must have as many dims as the input ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "gather");
  for (int64_t k = 0; k < t.dim(); ++k)
    CXR_CHECK(k == d || index.sizes()[size_t(k)] <= t.sizes()[size_t(k)], "gather: index ",
              describe(index), " is larger than the input ", describe(t), " in dim ", k);
  check_index(index, "gather");
  common_device("gather", {t, index});
  Tensor out = empty(index.sizes(), t.dtype(), t.device());
  if (out.numel() == 0) {  // nothing to move, but the index must still be valid
    check_index_range(index, t.sizes()[size_t(d)], dim, t, "gather");
    return out;
  }
  gather_kernel(out, t, d, index, dim, "gather");
  return out;
}

Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  check_defined(t, "scatter_add");
  check_defined(src, "scatter_add");
  CXR_CHECK(t.dim() > 0, "scatter_add: expected a tensor with at least one dim, got ", describe(t));
  CXR_CHECK(index.defined() && index.dim() == t.dim() && src.dim() == t.dim(),
            "scatter_add: input ", describe(t), ", index ", describe(index), " and src ",
            describe(src), " must have the same number of dims");
  CXR_CHECK(src.dtype() == t.dtype(), "scatter_add: src ", describe(src),
            " must have the dtype of the input ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "scatter_add");
  for (int64_t k = 0; k < t.dim(); ++k) {
    int64_t n = index.sizes()[size_t(k)];
    CXR_CHECK(n <= src.sizes()[size_t(k)] && (k == d || n <= t.sizes()[size_t(k)]),
              "scatter_add: index ", describe(index), " is larger than src ", describe(src),
              " or the input ", describe(t), " in dim ", k);
  }
  check_index(index, "scatter_add");
  common_device("scatter_add", {t, index, src});
  Tensor out = clone(t);
  Tensor sv(src.storage(), index.sizes(), src.strides(), src.offset(), src.dtype());
  scatter_add_kernel(out, d, index, sv, index.sizes(), dim, "scatter_add");
  return out;
}

void index_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  check_defined(t, "index_add_");
  check_defined(src, "index_add_");
  CXR_CHECK(t.dim() > 0, "index_add_: expected a tensor with at least one dim, got ", describe(t));
  CXR_CHECK(index.defined() && index.dim() <= 1, "index_add_: index must be 0-D or 1-D, got ",
            describe(index));
  CXR_CHECK(src.dtype() == t.dtype(), "index_add_: src ", describe(src),
            " must have the dtype of the input ", describe(t));
  int64_t d = normalize_dim(dim, t.dim(), "index_add_");
  Shape expected = t.sizes();
  expected[size_t(d)] = index.numel();
  CXR_CHECK(src.sizes() == expected, "index_add_: src ", describe(src), " must have shape ",
            shape_str(expected), " (the input ", describe(t), " with dim ", dim, " of size ",
            index.numel(), ")");
  for (int64_t k = 0; k < t.dim(); ++k)
    CXR_CHECK(t.strides()[size_t(k)] != 0 || t.sizes()[size_t(k)] <= 1,
              "index_add_: cannot write into ", describe(t),
              " whose elements overlap (an expanded view); clone it first");
  // Checked first: an in-place op must not leave `t` half updated.
  check_index(index, "index_add_");
  common_device("index_add_", {t, index, src});
  check_index_range(index, t.sizes()[size_t(d)], dim, t, "index_add_");
  scatter_add_kernel(t, d, index_along(index, expected, d), src, expected, dim, "index_add_");
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, double value) {
  check_defined(t, "masked_fill");
  check_defined(mask, "masked_fill");
  common_device("masked_fill", {t, mask});
  CXR_CHECK(mask.dtype() == kBool, "masked_fill: mask must be bool, got ", describe(mask));
  CXR_CHECK(broadcast_shapes(t.sizes(), mask.sizes(), "masked_fill") == t.sizes(),
            "masked_fill: mask ", describe(mask), " must broadcast to the shape of the input ",
            describe(t));
  Tensor out = empty(t.sizes(), t.dtype(), t.device());
  const uint64_t bits = value_bits(value, t.dtype(), "masked_fill");
  if constexpr (kCudaBuilt)
    if (t.device().is_cuda()) {
      cuda::masked_fill(out, t, mask, bits);
      return out;
    }
  dispatch_by_size(t.element_size(), "indexing", [&]<typename U>() {
    U fill;
    std::memcpy(&fill, &bits, sizeof(U));
    cpu::for_each_row<3>(
        t.sizes(), {&out, &t, &mask},
        [fill](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
          U* o = reinterpret_cast<U*>(p[0]);
          const U* x = reinterpret_cast<const U*>(p[1]);
          const uint8_t* m = reinterpret_cast<const uint8_t*>(p[2]);
          for (int64_t k = 0; k < n; ++k) o[k * s[0]] = m[k * s[2]] ? fill : x[k * s[1]];
        });
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where");
  check_defined(a, "where");
  check_defined(b, "where");
  common_device("where", {cond, a, b});
  const DType dtype = promote_types(a.dtype(), b.dtype());
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  Tensor c = to(cond, kBool), x = to(a, dtype), y = to(b, dtype);
  Tensor out = empty(shape, dtype, a.device());
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) {
      cuda::where(out, c, x, y);
      return out;
    }
  dispatch_by_size(out.element_size(), "indexing", [&]<typename U>() {
    cpu::for_each_row<4>(
        shape, {&out, &c, &x, &y},
        [](const std::array<char*, 4>& p, const std::array<int64_t, 4>& s, int64_t n) {
          U* o = reinterpret_cast<U*>(p[0]);
          const uint8_t* m = reinterpret_cast<const uint8_t*>(p[1]);
          const U* xa = reinterpret_cast<const U*>(p[2]);
          const U* xb = reinterpret_cast<const U*>(p[3]);
          for (int64_t k = 0; k < n; ++k) o[k * s[0]] = m[k * s[1]] ? xa[k * s[2]] : xb[k * s[3]];
        });
  });
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  CXR_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  // Mixed dtypes promote (promote_types), as torch.cat. 1-D tensors with no elements are skipped
  // whatever the other shapes (torch.cat's legacy rule, handy for accumulating from empty).
  DType dtype = tensors[0].defined() ? tensors[0].dtype() : kFloat32;
  const Tensor* ref = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    CXR_CHECK(tensors[i].defined(), "cat: tensor ", i, " is undefined");
    common_device("cat", {tensors[0], tensors[i]});
    dtype = promote_types(dtype, tensors[i].dtype());
    bool skipped = tensors[i].dim() == 1 && tensors[i].numel() == 0;
    if (!skipped && !ref) ref = &tensors[i];
  }
  if (!ref) return empty({0}, dtype, tensors[0].device());
  CXR_CHECK(ref->dim() > 0, "cat: a 0-dim tensor ", describe(*ref), " cannot be concatenated");
  const int64_t d = normalize_dim(dim, ref->dim(), "cat");
  Shape shape = ref->sizes();
  shape[size_t(d)] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dim() == 1 && t.numel() == 0) continue;
    bool match = t.dim() == ref->dim();
    for (int64_t k = 0; match && k < t.dim(); ++k)
      match = k == d || t.sizes()[size_t(k)] == ref->sizes()[size_t(k)];
    CXR_CHECK(match, "cat: tensor ", i, " ", describe(t), " does not match ", describe(*ref),
              " in the dims other than dim ", dim);
    shape[size_t(d)] += t.sizes()[size_t(d)];
  }
  Tensor out = empty(shape, dtype, ref->device());
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.dim() == 1 && t.numel() == 0) continue;
    int64_t n = t.sizes()[size_t(d)];
    if (n > 0) copy_(narrow(out, d, offset, n), t);
    offset += n;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  CXR_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    CXR_CHECK(tensors[i].defined(), "stack: tensor ", i, " is undefined");
    CXR_CHECK(tensors[i].sizes() == tensors[0].sizes(), "stack: tensor ", i, " ",
              describe(tensors[i]), " has a different shape than tensor 0 ", describe(tensors[0]));
  }
  const int64_t n = tensors[0].dim();
  CXR_CHECK(dim >= -(n + 1) && dim <= n, "stack: dim ", dim, " out of range for tensors ",
            describe(tensors[0]), " (expected ", -(n + 1), "..", n, ")");
  const int64_t d = dim < 0 ? dim + n + 1 : dim;
  std::vector<Tensor> pieces;
  pieces.reserve(tensors.size());
  for (const Tensor& t : tensors) pieces.push_back(unsqueeze(t, d));
  return cat(pieces, d);
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  CXR_CHECK(t.dim() > 0, "split: cannot split a 0-dim tensor ", describe(t));
  const int64_t d = normalize_dim(dim, t.dim(), "split");
  const int64_t size = t.sizes()[size_t(d)];
  CXR_CHECK(split_size > 0 || (split_size == 0 && size == 0),
            "split: split_size must be positive, got ", split_size, " for dim ", dim, " of ",
            describe(t));
  if (size == 0) return {t};
  std::vector<Tensor> out;
  for (int64_t start = 0; start < size; start += split_size)
    out.push_back(narrow(t, d, start, std::min(split_size, size - start)));
  return out;
}

std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes,
                                     int64_t dim) {
  CXR_CHECK(t.dim() > 0, "split_with_sizes: cannot split a 0-dim tensor ", describe(t));
  const int64_t d = normalize_dim(dim, t.dim(), "split_with_sizes");
  int64_t total = 0;
  for (int64_t s : sizes) {
    CXR_CHECK(s >= 0, "split_with_sizes: negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  CXR_CHECK(total == t.sizes()[size_t(d)], "split_with_sizes: sizes ", shape_str(sizes),
            " add up to ", total, " but dim ", dim, " of ", describe(t), " has size ",
            t.sizes()[size_t(d)]);
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(t, d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  CXR_CHECK(chunks > 0, "chunk: the number of chunks must be positive, got ", chunks);
  CXR_CHECK(t.dim() > 0, "chunk: cannot chunk a 0-dim tensor ", describe(t));
  const int64_t d = normalize_dim(dim, t.dim(), "chunk");
  const int64_t size = t.sizes()[size_t(d)];
  if (size == 0) return std::vector<Tensor>(size_t(chunks), t);  // as torch.chunk
  // Pieces of ceil(size / chunks), so there may be fewer than `chunks` (as torch.chunk).
  return split(t, (size + chunks - 1) / chunks, d);
}

Tensor pad(const Tensor& t, const std::vector<int64_t>& pad, PadMode mode, double value) {
  check_defined(t, "pad");
  const int64_t n = t.dim();
  const char* mode_name = mode == PadMode::Constant  ? "constant"
                          : mode == PadMode::Reflect ? "reflect"
                                                     : "replicate";
  CXR_CHECK(pad.size() % 2 == 0 && int64_t(pad.size()) <= 2 * n, "pad: expected (before, after) ",
            "pairs for at most ", n, " dims of ", describe(t), ", got ", pad.size(), " values");
  std::vector<int64_t> before(size_t(n), 0), after(size_t(n), 0);
  Shape shape = t.sizes();
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const size_t d = size_t(n) - 1 - i;
    const int64_t b = pad[2 * i], a = pad[2 * i + 1], size = t.sizes()[d];
    before[d] = b;
    after[d] = a;
    shape[d] = size + b + a;
    CXR_CHECK(shape[d] >= 0, "pad: padding (", b, ", ", a, ") makes dim ", d, " of ", describe(t),
              " negative");
    if (mode == PadMode::Constant) continue;
    CXR_CHECK(b >= 0 && a >= 0, "pad: ", mode_name, " padding must be non-negative, got (", b, ", ",
              a, ") for dim ", d);
    CXR_CHECK(mode != PadMode::Reflect || (b < size && a < size), "pad: reflect padding (", b, ", ",
              a, ") must be smaller than the size ", size, " of dim ", d, " of ", describe(t));
    CXR_CHECK(mode != PadMode::Replicate || size > 0 || (b == 0 && a == 0),
              "pad: replicate padding of the empty dim ", d, " of ", describe(t));
  }
  Tensor out = empty(shape, t.dtype(), t.device());
  if (out.numel() == 0) return out;

  // The interior: where `t` lands in `out` (negative constant pads crop `t` instead).
  std::vector<int64_t> lo(static_cast<size_t>(n)), len(static_cast<size_t>(n));
  Tensor dst = out, src = t;
  for (size_t d = 0; d < size_t(n); ++d) {
    lo[d] = std::max<int64_t>(before[d], 0);
    len[d] = t.sizes()[d] - std::max<int64_t>(-before[d], 0) - std::max<int64_t>(-after[d], 0);
    dst = narrow(dst, int64_t(d), lo[d], len[d]);
    src = narrow(src, int64_t(d), std::max<int64_t>(-before[d], 0), len[d]);
  }
  copy_(dst, src);

  if (mode == PadMode::Constant) {
    for (size_t d = 0; d < size_t(n); ++d) {
      fill_(narrow(out, int64_t(d), 0, lo[d]), value);
      fill_(narrow(out, int64_t(d), lo[d] + len[d], shape[d] - lo[d] - len[d]), value);
    }
    return out;
  }
  // Reflect / replicate, one dim at a time: the region grows to the full extent of the dims done
  // so far; its border slabs along the next dim are copied from its own interior slabs.
  auto region = [&](size_t dim, int64_t start, int64_t length) {
    Tensor r = out;
    for (size_t d = 0; d < size_t(n); ++d)
      r = d == dim ? narrow(r, int64_t(d), start, length) : narrow(r, int64_t(d), lo[d], len[d]);
    return r;
  };
  for (size_t d = size_t(n); d-- > 0;) {
    const int64_t b = before[d], a = after[d], first = lo[d], last = lo[d] + len[d] - 1;
    if (b == 0 && a == 0) continue;
    if (mode == PadMode::Replicate) {
      Shape slab = region(d, first, 1).sizes();
      slab[d] = b;
      copy_(region(d, 0, b), expand(region(d, first, 1), slab));
      slab[d] = a;
      copy_(region(d, last + 1, a), expand(region(d, last, 1), slab));
    } else {  // reflect about the edge element, which is not repeated
      for (int64_t k = 0; k < b; ++k)
        copy_(region(d, first - 1 - k, 1), region(d, first + 1 + k, 1));
      for (int64_t k = 0; k < a; ++k) copy_(region(d, last + 1 + k, 1), region(d, last - 1 - k, 1));
    }
    lo[d] = 0;
    len[d] = shape[d];
  }
  return out;
}

Tensor flip(const Tensor& t, const std::vector<int64_t>& dims) {
  check_defined(t, "flip");
  if (dims.empty()) return clone(t);
  // A view with negated strides (internal only) copied into a fresh tensor.
  Shape strides = t.strides();
  int64_t offset = t.offset();
  for (int64_t d : normalize_dims(dims, t.dim(), "flip")) {
    const int64_t size = t.sizes()[size_t(d)];
    if (size > 1) offset += (size - 1) * strides[size_t(d)];
    strides[size_t(d)] = -strides[size_t(d)];
  }
  return clone(Tensor(t.storage(), t.sizes(), strides, offset, t.dtype()));
}

Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  check_defined(t, "roll");
  if (dims.empty()) {
    CXR_CHECK(shifts.size() == 1, "roll: without dims, expected one shift, got ", shifts.size());
    return reshape(roll(flatten(t), shifts, {0}), t.sizes());
  }
  CXR_CHECK(shifts.size() == dims.size(), "roll: ", shifts.size(), " shifts for ", dims.size(),
            " dims");
  // Total shift per dim (a dim listed twice rolls twice), normalised into [0, size).
  std::vector<int64_t> shift(size_t(t.dim()), 0);
  for (size_t i = 0; i < dims.size(); ++i)
    shift[size_t(normalize_dim(dims[i], t.dim(), "roll"))] += shifts[i];
  Tensor out = empty(t.sizes(), t.dtype(), t.device());
  if (t.numel() == 0) return out;
  // out[.., j, ..] = t[.., j - s, ..]: per rolled dim the output splits into two blocks, so the
  // copy is 2^k block copies for k rolled dims.
  auto copy_blocks = [&](auto&& self, size_t d, const Tensor& dst, const Tensor& src) -> void {
    if (d == shift.size()) return copy_(dst, src);
    const int64_t size = t.sizes()[d], s = ((shift[d] % size) + size) % size;
    if (s == 0) return self(self, d + 1, dst, src);
    self(self, d + 1, narrow(dst, int64_t(d), 0, s), narrow(src, int64_t(d), size - s, s));
    self(self, d + 1, narrow(dst, int64_t(d), s, size - s), narrow(src, int64_t(d), 0, size - s));
  };
  copy_blocks(copy_blocks, 0, out, t);
  return out;
}

Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats) {
  check_defined(t, "repeat");
  const int64_t k = int64_t(repeats.size()), n = t.dim();
  CXR_CHECK(k >= n, "repeat: ", k, " repeats for ", describe(t),
            "; expected at least one per dim (", n, ")");
  // out viewed as [r0, s0, r1, s1, ...] receives t viewed as [1, s0, 1, s1, ...] by broadcasting.
  Shape out_shape, tiled, src_shape;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t r = repeats[size_t(i)], s = i < k - n ? 1 : t.sizes()[size_t(i - (k - n))];
    CXR_CHECK(r >= 0, "repeat: negative repeat count ", r, " in ", shape_str(repeats));
    out_shape.push_back(r * s);
    tiled.insert(tiled.end(), {r, s});
    src_shape.insert(src_shape.end(), {1, s});
  }
  Tensor out = empty(out_shape, t.dtype(), t.device());
  if (out.numel() > 0) copy_(view(out, tiled), reshape(t, src_shape));
  return out;
}

}  // namespace cxr::raw
