// Reductions on the CPU. Every reduction is planned the same way: the kept dims index the output,
// the reduced dims (coalesced into one strided run of R elements) are reduced. Two layouts:
//   rows:    the reduced run is one strided row per output element (sum over the last dim, ...);
//   columns: the innermost kept dim is contiguous and the reduced run strides over it (sum over
//            dim 0 of a row-major matrix), so K outputs are accumulated side by side.
// Reduced dims that do not coalesce into one run are first copied into a contiguous
// (kept..., reduced...) layout. Results never depend on the thread count: a row is cut into fixed
// chunks of kChunk elements whose partial results are combined in a fixed order, and sums are
// pairwise (a binary-counter tree over blocks of kLeaf elements summed in 16 interleaved lanes),
// so the rounding error of a float32 sum grows with log(n), not n.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/reduce.h"
#include "tensor/elementwise.h"
#include "tensor/reduce.h"

#define CXR_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define CXR_ALWAYS_INLINE inline __attribute__((always_inline))

namespace cxr::raw {
namespace {

constexpr int64_t kLanes = 16;            // interleaved partial sums in a leaf block
constexpr int64_t kLeaf = 256;            // elements per leaf block of the pairwise tree
constexpr int64_t kChunk = 1 << 16;       // row chunk: the unit of parallel work on long rows
constexpr int64_t kColTile = 1024;        // outputs accumulated side by side in the column layout
constexpr int64_t kColLeafRows = 16;      // rows summed sequentially in a column leaf
constexpr int64_t kParallelWork = 32768;  // below this many input elements stay on one thread

// Reductions take one tensor, so there is no device to agree on; CUDA tensors route to
// tensor/cuda/reduce.cu after the shared validation.
void check_defined(const Tensor& t, const char* op) {
  CXR_CHECK(t.defined(), op, ": undefined tensor");
}

void check_floating(const Tensor& t, const char* op) {
  CXR_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (float32, float64, float16, ",
            "bfloat16), got ", describe(t));
}

// ---------------------------------------------------------------------------------------------
// Pairwise summation

// The sum type: float for float32/half types, double for float64, int64 for integers and bool.
template <typename T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, int64_t>;

// Sum of one leaf block (n <= kLeaf) in kLanes interleaved lanes combined as a tree.
template <typename T, typename Acc, bool kContig>
CXR_ALWAYS_INLINE Acc leaf_sum(const T* x, int64_t n, int64_t stride) {
  Acc lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j)
      lanes[j] += Acc(compute_t<T>(x[kContig ? i + j : (i + j) * stride]));
  for (int64_t j = 0; i + j < n; ++j)
    lanes[j] += Acc(compute_t<T>(x[kContig ? i + j : (i + j) * stride]));
  for (int64_t w = kLanes / 2; w >= 1; w /= 2)
    for (int64_t j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  return lanes[0];
}

// Pairwise sum over leaf blocks: a binary counter merges equal-level partials as they appear,
// which builds the same balanced tree as recursive halving over the blocks.
template <typename T, typename Acc, bool kContig>
CXR_ALWAYS_INLINE Acc pairwise_sum(const T* x, int64_t n, int64_t stride) {
  Acc stack[64];
  int level[64];
  int sp = 0;
  for (int64_t b = 0; b < n; b += kLeaf) {
    Acc v =
        leaf_sum<T, Acc, kContig>(x + (kContig ? b : b * stride), std::min(kLeaf, n - b), stride);
    int lv = 0;
    while (sp > 0 && level[sp - 1] == lv) {
      v = stack[--sp] + v;
      ++lv;
    }
    stack[sp] = v;
    level[sp++] = lv;
  }
  if (sp == 0) return Acc(0);
  Acc v = stack[sp - 1];
  for (int k = sp - 2; k >= 0; --k) v = stack[k] + v;
  return v;
}

CXR_VECTOR_CLONES float sum_f32(const float* x, int64_t n) {
  return pairwise_sum<float, float, true>(x, n, 1);
}

// cur[k] = sum of rows r < `rows` (at most kColLeafRows) of x[r * rs + k], in row order. Columns
// go in register blocks of 64 so the running sums stay in registers: accumulating in memory, the
// loads from x and the stores into cur (4 KiB apart for 1024-wide rows) alias in the store buffer.
template <typename T, typename Acc>
CXR_ALWAYS_INLINE void column_leaf(const T* x, int64_t rows, int64_t rs, int64_t kt, Acc* cur) {
  constexpr int64_t kBlock = 64;
  int64_t k0 = 0;
  for (; k0 + kBlock <= kt; k0 += kBlock) {
    Acc a[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = x + r * rs + k0;
      for (int64_t j = 0; j < kBlock; ++j) a[j] += Acc(compute_t<T>(row[j]));
    }
    for (int64_t j = 0; j < kBlock; ++j) cur[k0 + j] = a[j];
  }
  for (; k0 < kt; ++k0) {
    Acc a = Acc(0);
    for (int64_t r = 0; r < rows; ++r) a += Acc(compute_t<T>(x[r * rs + k0]));
    cur[k0] = a;
  }
}

// Column sums: out[k] = sum_r x[r * rs + k] for k < kt (kt <= kColTile), pairwise over blocks of
// kColLeafRows rows with the same binary counter, `stack` holding one tile per tree level.
template <typename T, typename Acc>
CXR_ALWAYS_INLINE void column_sum(const T* x, int64_t rows, int64_t rs, int64_t kt, Acc* out,
                                  Acc* stack) {
  int level[64];
  int sp = 0;
  Acc cur[kColTile];
  for (int64_t r0 = 0; r0 < rows; r0 += kColLeafRows) {
    column_leaf<T, Acc>(x + r0 * rs, std::min(kColLeafRows, rows - r0), rs, kt, cur);
    int lv = 0;
    while (sp > 0 && level[sp - 1] == lv) {
      Acc* top = stack + (sp - 1) * kColTile;
      for (int64_t k = 0; k < kt; ++k) cur[k] = top[k] + cur[k];
      --sp;
      ++lv;
    }
    std::copy(cur, cur + kt, stack + sp * kColTile);
    level[sp++] = lv;
  }
  for (int64_t k = 0; k < kt; ++k) out[k] = Acc(0);
  if (sp == 0) return;
  for (int64_t k = 0; k < kt; ++k) out[k] = stack[(sp - 1) * kColTile + k];
  for (int s = sp - 2; s >= 0; --s)
    for (int64_t k = 0; k < kt; ++k) out[k] = stack[s * kColTile + k] + out[k];
}

CXR_VECTOR_CLONES void column_sum_f32(const float* x, int64_t rows, int64_t rs, int64_t kt,
                                      float* out, float* stack) {
  column_sum<float, float>(x, rows, rs, kt, out, stack);
}

// ---------------------------------------------------------------------------------------------
// Planning

struct Run {
  int64_t size, stride;
};

// Drops size-1 dims and merges neighbours that form one strided run (row-major order kept).
std::vector<Run> coalesce(const std::vector<Run>& dims) {
  std::vector<Run> out;
  for (const Run& d : dims) {
    if (d.size == 1) continue;
    if (!out.empty() && out.back().stride == d.stride * d.size) {
      out.back().size *= d.size;
      out.back().stride = d.stride;
    } else {
      out.push_back(d);
    }
  }
  return out;
}

struct Plan {
  Tensor src;              // the tensor read: the input or a contiguous permuted copy
  std::vector<Run> outer;  // kept dims that index output rows (columns: without the inner run)
  int64_t outer_count = 1;
  int64_t R = 1, rstride = 0;  // the reduced run
  bool columns = false;
  int64_t K = 1;  // columns: the contiguous innermost kept run

  int64_t src_offset(int64_t o) const {  // element offset of output row o's first input
    int64_t off = 0;
    for (size_t d = outer.size(); d-- > 0;) {
      off += (o % outer[d].size) * outer[d].stride;
      o /= outer[d].size;
    }
    return off;
  }
};

// `reduced[d]` marks the reduced dims. Requires numel > 0.
Plan make_plan(const Tensor& t, const std::vector<bool>& reduced, bool allow_columns) {
  std::vector<Run> kept, red;
  for (int64_t d = 0; d < t.dim(); ++d)
    (reduced[size_t(d)] ? red : kept).push_back({t.size(d), t.stride(d)});
  std::vector<Run> kc = coalesce(kept), rc = coalesce(red);
  if (rc.size() > 1) {
    // Copy into (kept..., reduced...) order, where the reduced dims form one contiguous run.
    Shape sizes, strides;
    for (const Run& r : kept) sizes.push_back(r.size), strides.push_back(r.stride);
    for (const Run& r : red) sizes.push_back(r.size), strides.push_back(r.stride);
    Tensor permuted(t.storage(), sizes, strides, t.offset(), t.dtype());
    std::vector<bool> mask(kept.size(), false);
    mask.resize(kept.size() + red.size(), true);
    return make_plan(clone(permuted), mask, allow_columns);
  }
  Plan p;
  p.src = t;
  if (!rc.empty()) p.R = rc[0].size, p.rstride = rc[0].stride;
  if (allow_columns && p.R > 1 && p.rstride != 1 && !kc.empty() && kc.back().stride == 1) {
    p.columns = true;
    p.K = kc.back().size;
    kc.pop_back();
  }
  p.outer = kc;
  for (const Run& r : kc) p.outer_count *= r.size;
  return p;
}

// Output shape of a reduction, and the reduced mask.
struct ReduceShape {
  Shape out;   // with or without the reduced dims, per keepdim
  Shape keep;  // always with the reduced dims as size 1
  std::vector<bool> reduced;
  int64_t R = 1;  // number of reduced elements per output
};

ReduceShape reduce_shape(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim,
                         const char* op) {
  ReduceShape s;
  std::vector<int64_t> nd = normalize_dims(dims, t.dim(), op);
  s.reduced.assign(size_t(t.dim()), false);
  for (int64_t d : nd) s.reduced[size_t(d)] = true;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (s.reduced[size_t(d)]) {
      s.R *= t.size(d);
      s.keep.push_back(1);
      if (keepdim) s.out.push_back(1);
    } else {
      s.keep.push_back(t.size(d));
      s.out.push_back(t.size(d));
    }
  }
  return s;
}

bool run_parallel(int64_t work, int64_t tasks) {
  return work >= kParallelWork && tasks > 1;
}

// The work split of the column layout, fixed by the shape alone: tiles of at most kColTile
// outputs, and chunks of rows (a multiple of kColLeafRows, about 4 kChunk elements each) that are
// read as contiguous blocks when the tile spans whole rows. Task t = (o * tiles + tile) * chunks
// + chunk; each task leaves `width` partial results, combined over the chunks in order.
struct ColumnSplit {
  int64_t width, tiles, chunk_rows, chunks, tasks;
};
ColumnSplit column_split(const Plan& p) {
  ColumnSplit s;
  s.width = std::min(p.K, kColTile);
  s.tiles = (p.K + kColTile - 1) / kColTile;
  const int64_t rows = std::max(kColLeafRows, 4 * kChunk / s.width);
  s.chunk_rows = (rows + kColLeafRows - 1) / kColLeafRows * kColLeafRows;
  s.chunks = (p.R + s.chunk_rows - 1) / s.chunk_rows;
  s.tasks = p.outer_count * s.tiles * s.chunks;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Sum

// out (contiguous, dtype of the sum) <- sum over the plan, each result divided by `divisor`.
template <typename T, typename TO>
void sum_kernel(const Plan& p, TO* out, double divisor) {
  using Acc = sum_acc_t<T>;
  const T* base = static_cast<const T*>(p.src.data_ptr());
  auto store = [&](int64_t o, Acc v) {
    if constexpr (std::is_floating_point_v<Acc>)
      out[o] = convert<TO>(divisor == 1.0 ? v : Acc(v / Acc(divisor)));
    else
      out[o] = convert<TO>(v);
  };
  if (p.columns) {
    const ColumnSplit cs = column_split(p);
    const int levels = std::bit_width(uint64_t(cs.chunk_rows / kColLeafRows)) + 1;
    std::vector<Acc> partial(static_cast<size_t>(cs.tasks * cs.width));
#pragma omp parallel if (run_parallel(p.outer_count * p.K * p.R, cs.tasks))
    {
      std::vector<Acc> stack(static_cast<size_t>(levels * kColTile));
#pragma omp for schedule(static)
      for (int64_t task = 0; task < cs.tasks; ++task) {
        const int64_t c = task % cs.chunks, ot = task / cs.chunks;
        const int64_t o = ot / cs.tiles, k0 = (ot % cs.tiles) * kColTile;
        const int64_t kt = std::min(kColTile, p.K - k0);
        const int64_t r0 = c * cs.chunk_rows, rows = std::min(cs.chunk_rows, p.R - r0);
        const T* x = base + p.src_offset(o) + k0 + r0 * p.rstride;
        Acc* acc = partial.data() + task * cs.width;
        if constexpr (std::is_same_v<T, float>)
          column_sum_f32(x, rows, p.rstride, kt, acc, stack.data());
        else
          column_sum<T, Acc>(x, rows, p.rstride, kt, acc, stack.data());
      }
    }
    // The chunks' partial sums of each tile form a [chunks, width] matrix: its column sums (the
    // same pairwise tree, in chunk order) are the results.
    const int64_t outputs = p.outer_count * cs.tiles;
    const int combine_levels = std::bit_width(uint64_t(cs.chunks / kColLeafRows)) + 1;
#pragma omp parallel if (run_parallel(outputs * cs.chunks * cs.width, outputs))
    {
      std::vector<Acc> stack(static_cast<size_t>(combine_levels * kColTile));
      Acc acc[kColTile];
#pragma omp for schedule(static)
      for (int64_t ot = 0; ot < outputs; ++ot) {
        const int64_t o = ot / cs.tiles, k0 = (ot % cs.tiles) * kColTile;
        const int64_t kt = std::min(kColTile, p.K - k0);
        column_sum<Acc, Acc>(partial.data() + ot * cs.chunks * cs.width, cs.chunks, cs.width, kt,
                             acc, stack.data());
        for (int64_t k = 0; k < kt; ++k) store(o * p.K + k0 + k, acc[k]);
      }
    }
    return;
  }
  const int64_t chunks = std::max<int64_t>(1, (p.R + kChunk - 1) / kChunk);
  const int64_t tasks = p.outer_count * chunks;
  std::vector<Acc> partial(static_cast<size_t>(tasks));
#pragma omp parallel for schedule(static) if (run_parallel(p.outer_count * p.R, tasks))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t o = task / chunks, c = task % chunks;
    const int64_t n = std::min(kChunk, p.R - c * kChunk);
    const T* x = base + p.src_offset(o) + c * kChunk * p.rstride;
    if constexpr (std::is_same_v<T, float>) {
      if (p.rstride == 1) {
        partial[size_t(task)] = sum_f32(x, n);
        continue;
      }
    }
    partial[size_t(task)] = p.rstride == 1 ? pairwise_sum<T, Acc, true>(x, n, 1)
                                           : pairwise_sum<T, Acc, false>(x, n, p.rstride);
  }
  for (int64_t o = 0; o < p.outer_count; ++o)
    store(o, chunks == 1 ? partial[size_t(o)]
                         : pairwise_sum<Acc, Acc, true>(partial.data() + o * chunks, chunks, 1));
}

DType sum_dtype(DType t) {
  return is_floating(t) ? t : kInt64;
}

Tensor sum_impl(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim, bool mean,
                const char* op) {
  check_defined(t, op);
  if (mean) check_floating(t, op);
  ReduceShape s = reduce_shape(t, dims, keepdim, op);
  Tensor out = empty(s.out, sum_dtype(t.dtype()), t.device());
  if (out.numel() == 0) return out;
  if (s.R == 0) {  // empty sum is 0; the mean of nothing is NaN
    fill_(out, mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    return out;
  }
  const double divisor = mean ? double(s.R) : 1.0;
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      cuda::sum(t, s.reduced, out, divisor);
      return out;
    }
  }
  Plan p = make_plan(t, s.reduced, true);
  CXR_DISPATCH_ALL(t.dtype(), op, ([&]<typename T>() {
                     if constexpr (std::is_floating_point_v<compute_t<T>>)
                       sum_kernel<T, T>(p, out.data<T>(), divisor);
                     else
                       sum_kernel<T, int64_t>(p, out.data<int64_t>(), divisor);
                   }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Max / min with the index of the first extreme; NaN wins over numbers (the first NaN is kept).

template <bool kMax, typename C>
CXR_ALWAYS_INLINE bool better(C v, C best) {
  if constexpr (std::is_floating_point_v<C>) {
    if (best != best) return false;
    if (v != v) return true;
  }
  return kMax ? v > best : v < best;
}

// values and/or indices (either may be null) of the extreme over the plan.
template <typename T, bool kMax>
void minmax_kernel(const Plan& p, T* values, int64_t* indices) {
  using C = compute_t<T>;
  // Per-task partial results; bool in bytes, since the tasks write them from several threads and
  // std::vector<bool> packs bits (concurrent writes to one word would race).
  using Slot = std::conditional_t<std::is_same_v<C, bool>, uint8_t, C>;
  const T* base = static_cast<const T*>(p.src.data_ptr());
  auto store = [&](int64_t o, C v, int64_t i) {
    if (values) values[o] = convert<T>(v);
    if (indices) indices[o] = i;
  };
  if (p.columns) {
    const ColumnSplit cs = column_split(p);
    std::vector<Slot> pv(static_cast<size_t>(cs.tasks * cs.width));
    std::vector<int64_t> pi(static_cast<size_t>(cs.tasks * cs.width));
#pragma omp parallel for schedule(static) if (run_parallel(p.outer_count * p.K * p.R, cs.tasks))
    for (int64_t task = 0; task < cs.tasks; ++task) {
      const int64_t c = task % cs.chunks, ot = task / cs.chunks;
      const int64_t o = ot / cs.tiles, k0 = (ot % cs.tiles) * kColTile;
      const int64_t kt = std::min(kColTile, p.K - k0);
      const int64_t r0 = c * cs.chunk_rows, r1 = std::min(p.R, r0 + cs.chunk_rows);
      const T* x = base + p.src_offset(o) + k0;
      auto* best = pv.data() + task * cs.width;
      int64_t* idx = pi.data() + task * cs.width;
      for (int64_t k = 0; k < kt; ++k) best[k] = C(x[r0 * p.rstride + k]), idx[k] = r0;
      for (int64_t r = r0 + 1; r < r1; ++r) {
        const T* row = x + r * p.rstride;
        for (int64_t k = 0; k < kt; ++k) {
          const C v = C(row[k]);
          if (better<kMax, C>(v, C(best[k]))) best[k] = v, idx[k] = r;
        }
      }
    }
    // Chunks in order: a later chunk wins only when strictly better (first index on ties).
    for (int64_t ot = 0; ot < p.outer_count * cs.tiles; ++ot) {
      const int64_t o = ot / cs.tiles, k0 = (ot % cs.tiles) * kColTile;
      const int64_t kt = std::min(kColTile, p.K - k0);
      for (int64_t k = 0; k < kt; ++k) {
        size_t at = size_t(ot * cs.chunks * cs.width + k);
        C best = C(pv[at]);
        int64_t bi = pi[at];
        for (int64_t c = 1; c < cs.chunks; ++c) {
          at += size_t(cs.width);
          if (better<kMax, C>(C(pv[at]), best)) best = C(pv[at]), bi = pi[at];
        }
        store(o * p.K + k0 + k, best, bi);
      }
    }
    return;
  }
  const int64_t chunks = std::max<int64_t>(1, (p.R + kChunk - 1) / kChunk);
  const int64_t tasks = p.outer_count * chunks;
  std::vector<Slot> pv(static_cast<size_t>(tasks));
  std::vector<int64_t> pi(static_cast<size_t>(tasks));
#pragma omp parallel for schedule(static) if (run_parallel(p.outer_count * p.R, tasks))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t o = task / chunks, c = task % chunks;
    const int64_t r0 = c * kChunk, r1 = std::min(p.R, r0 + kChunk);
    const T* x = base + p.src_offset(o);
    C best = C(x[r0 * p.rstride]);
    int64_t bi = r0;
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const C v = C(x[r * p.rstride]);
      if (better<kMax>(v, best)) best = v, bi = r;
    }
    pv[size_t(task)] = best;
    pi[size_t(task)] = bi;
  }
  for (int64_t o = 0; o < p.outer_count; ++o) {
    size_t b = size_t(o * chunks);
    C best = C(pv[b]);
    int64_t bi = pi[b];
    for (int64_t c = 1; c < chunks; ++c)
      if (better<kMax>(C(pv[b + size_t(c)]), best))
        best = C(pv[b + size_t(c)]), bi = pi[b + size_t(c)];
    store(o, best, bi);
  }
}

// max/min have no identity: the reduction must not be empty.
void check_nonempty(const ReduceShape& s, const Tensor& t, const char* op) {
  CXR_CHECK(s.R > 0, op, ": cannot reduce over an empty dim of ", describe(t),
            " (the reduction has no identity)");
}

// Shared driver of amax/amin/max/min/argmax/argmin.
void minmax_impl(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim, bool is_max,
                 Tensor* values, Tensor* indices, const char* op) {
  check_defined(t, op);
  ReduceShape s = reduce_shape(t, dims, keepdim, op);
  check_nonempty(s, t, op);
  if (values) *values = empty(s.out, t.dtype(), t.device());
  if (indices) *indices = empty(s.out, kInt64, t.device());
  if (shape_numel(s.out) == 0) return;
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      cuda::minmax(t, s.reduced, is_max, values ? *values : Tensor(),
                   indices ? *indices : Tensor());
      return;
    }
  }
  Plan p = make_plan(t, s.reduced, true);
  CXR_DISPATCH_ALL(t.dtype(), op, ([&]<typename T>() {
                     T* v = values ? values->data<T>() : nullptr;
                     int64_t* i = indices ? indices->data<int64_t>() : nullptr;
                     if (is_max)
                       minmax_kernel<T, true>(p, v, i);
                     else
                       minmax_kernel<T, false>(p, v, i);
                   }));
}

// A contiguous tensor seen with another shape of the same numel.
Tensor reshaped(const Tensor& t, const Shape& shape) {
  return Tensor(t.storage(), shape, contiguous_strides(shape), t.offset(), t.dtype());
}

Tensor as_dtype(const Tensor& t, DType d) {
  return t.dtype() == d ? t : to(t, d);
}

}  // namespace

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(t, dims, keepdim, false, "sum");
}

Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(t, dims, keepdim, true, "mean");
}

namespace {
// var (or std when `take_sqrt`) of a CUDA tensor, validated by var_shape: two kernel passes, the
// root taken in the second one's epilogue. An undefined result for CPU tensors.
Tensor cuda_var(const Tensor& t, const ReduceShape& s, int64_t correction, bool take_sqrt) {
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      Tensor out = empty(s.out, t.dtype(), t.device());
      if (out.numel() == 0) return out;
      if (s.R == 0) {  // 0 / max(0, -correction): NaN, as the CPU's empty sums give
        fill_(out, std::numeric_limits<double>::quiet_NaN());
        return out;
      }
      cuda::var(t, s.reduced, out, correction, take_sqrt);
      return out;
    }
  }
  (void)s, (void)correction, (void)take_sqrt;
  return Tensor();
}

ReduceShape var_shape(const Tensor& t, const std::vector<int64_t>& dims, int64_t correction,
                      bool keepdim) {
  check_defined(t, "var");
  check_floating(t, "var");
  CXR_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  return reduce_shape(t, dims, keepdim, "var");
}
}  // namespace

// Two passes: the mean, then the sum of squared deviations (no cancellation as in E[x^2]-E[x]^2).
Tensor var(const Tensor& t, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  ReduceShape s = var_shape(t, dims, correction, keepdim);
  if (Tensor c = cuda_var(t, s, correction, false); c.defined()) return c;
  const Tensor x = t.dtype() == kFloat16 || t.dtype() == kBFloat16 ? to(t, kFloat32) : t;
  Tensor d = binary(BinaryOp::Sub, x, sum_impl(x, dims, true, true, "var"));
  unary_(UnaryOp::Square, d);
  Tensor v = sum_impl(d, dims, keepdim, false, "var");
  binary_(BinaryOp::Div, v, double(std::max<int64_t>(0, s.R - correction)));
  return as_dtype(v, t.dtype());
}

Tensor std(const Tensor& t, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  if (Tensor c = cuda_var(t, var_shape(t, dims, correction, keepdim), correction, true);
      c.defined())
    return c;
  Tensor v = var(t, dims, correction, keepdim);
  unary_(UnaryOp::Sqrt, v);
  return v;
}

Tensor amax(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor v;
  minmax_impl(t, dims, keepdim, true, &v, nullptr, "amax");
  return v;
}

Tensor amin(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor v;
  minmax_impl(t, dims, keepdim, false, &v, nullptr, "amin");
  return v;
}

ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim) {
  ValuesIndices r;
  minmax_impl(t, {dim}, keepdim, true, &r.values, &r.indices, "max");
  return r;
}

ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim) {
  ValuesIndices r;
  minmax_impl(t, {dim}, keepdim, false, &r.values, &r.indices, "min");
  return r;
}

Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) {
  Tensor i;
  minmax_impl(t, {dim}, keepdim, true, nullptr, &i, "argmax");
  return i;
}

Tensor argmin(const Tensor& t, int64_t dim, bool keepdim) {
  Tensor i;
  minmax_impl(t, {dim}, keepdim, false, nullptr, &i, "argmin");
  return i;
}

// m + log(sum(exp(x - m))) with m the max (taken as 0 where it is infinite, so that all -inf
// gives -inf and +inf gives +inf). An empty reduction gives -inf (log of an empty sum).
Tensor logsumexp(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(t, "logsumexp");
  check_floating(t, "logsumexp");
  ReduceShape s = reduce_shape(t, dims, keepdim, "logsumexp");
  if (s.R == 0) return full(s.out, -std::numeric_limits<double>::infinity(), t.dtype(), t.device());
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      Tensor out = empty(s.out, t.dtype(), t.device());
      if (out.numel() > 0) cuda::logsumexp(t, s.reduced, out);
      return out;
    }
  }
  const Tensor x = t.dtype() == kFloat16 || t.dtype() == kBFloat16 ? to(t, kFloat32) : t;
  Tensor m = amax(x, dims, true);
  CXR_DISPATCH_FLOAT(m.dtype(), "logsumexp", ([&]<typename T>() {
                       T* pm = m.data<T>();
                       for (int64_t i = 0; i < m.numel(); ++i)
                         if (std::isinf(double(pm[i]))) pm[i] = T(0);
                     }));
  Tensor e = binary(BinaryOp::Sub, x, m);
  unary_(UnaryOp::Exp, e);
  Tensor out = sum_impl(e, dims, true, false, "logsumexp");
  unary_(UnaryOp::Log, out);
  binary_(BinaryOp::Add, out, m);
  return as_dtype(reshaped(out, s.out), t.dtype());
}

Tensor norm(const Tensor& t, double p, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(t, "norm");
  check_floating(t, "norm");
  CXR_CHECK(!std::isnan(p), "norm: p must not be NaN");
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      // The dims are validated under the name of the op the CPU path reports them with (norm for
      // p = +-inf, sum otherwise), and an empty min is amin's error.
      ReduceShape s = reduce_shape(t, dims, keepdim, std::isinf(p) ? "norm" : "sum");
      if (std::isinf(p) && p < 0) check_nonempty(s, t, "amin");
      Tensor out = empty(s.out, t.dtype(), t.device());
      if (out.numel() == 0) return out;
      if (s.R == 0 && std::isinf(p)) {
        fill_(out, 0.0);
        return out;
      }
      cuda::norm(t, p, s.reduced, out);  // an empty finite-p sum is 0, then its root
      return out;
    }
  }
  if (std::isinf(p)) {
    ReduceShape s = reduce_shape(t, dims, keepdim, "norm");
    if (s.R == 0 && p > 0) return zeros(s.out, t.dtype());
    Tensor a = unary(UnaryOp::Abs, t);
    return p > 0 ? amax(a, dims, keepdim) : amin(a, dims, keepdim);
  }
  if (p == 0) return as_dtype(sum(compare(CompareOp::Ne, t, 0.0), dims, keepdim), t.dtype());
  if (p == 1) return sum(unary(UnaryOp::Abs, t), dims, keepdim);
  if (p == 2) {
    Tensor s = sum(unary(UnaryOp::Square, t), dims, keepdim);
    unary_(UnaryOp::Sqrt, s);
    return s;
  }
  Tensor s = sum(pow(unary(UnaryOp::Abs, t), p), dims, keepdim);
  return pow(s, 1.0 / p);
}

namespace {
// Running sums of a contiguous [outer, len, inner] tensor along the middle dim, in blocks of
// inner elements; each line is summed in order.
template <typename T, typename TO>
void cumsum_kernel(const T* in, TO* o, int64_t outer, int64_t len, int64_t inner) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (run_parallel(outer * len * inner, outer * blocks))
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t b = task / blocks, i0 = (task % blocks) * kBlock;
    const int64_t n = std::min(kBlock, inner - i0);
    Acc acc[kBlock] = {};
    for (int64_t l = 0; l < len; ++l) {
      const int64_t off = (b * len + l) * inner + i0;
      for (int64_t i = 0; i < n; ++i) {
        acc[i] += Acc(C(in[off + i]));
        o[off + i] = convert<TO>(acc[i]);
      }
    }
  }
}
}  // namespace

// Running sums along `dim`. Floating inputs accumulate in double (as torch's CPU kernel does)
// and keep their dtype; integers and bool give int64.
Tensor cumsum(const Tensor& t, int64_t dim) {
  check_defined(t, "cumsum");
  const int64_t d = normalize_dim(dim, t.dim(), "cumsum");
  Tensor out = empty(t.sizes(), sum_dtype(t.dtype()), t.device());
  if (t.numel() == 0) return out;
  if constexpr (kCudaBuilt) {
    if (t.device().is_cuda()) {
      cuda::cumsum(t, d, out);
      return out;
    }
  }
  const Tensor x = contiguous(t);
  int64_t outer = 1, inner = 1;
  const int64_t len = t.dim() == 0 ? 1 : t.size(d);
  for (int64_t i = 0; i < d; ++i) outer *= t.size(i);
  for (int64_t i = d + 1; i < t.dim(); ++i) inner *= t.size(i);
  CXR_DISPATCH_ALL(t.dtype(), "cumsum", ([&]<typename T>() {
                     if constexpr (std::is_floating_point_v<compute_t<T>>)
                       cumsum_kernel(x.data<T>(), out.data<T>(), outer, len, inner);
                     else
                       cumsum_kernel(x.data<T>(), out.data<int64_t>(), outer, len, inner);
                   }));
  return out;
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  check_defined(t, "sum_to");
  const int64_t lead = t.dim() - int64_t(shape.size());
  CXR_CHECK(lead >= 0, "sum_to: cannot sum ", describe(t), " to the larger shape ",
            shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
      continue;
    }
    const int64_t want = shape[size_t(d - lead)];
    CXR_CHECK(want == t.size(d) || want == 1, "sum_to: ", describe(t),
              " is not a broadcast of shape ", shape_str(shape));
    if (want == 1 && t.size(d) != 1) dims.push_back(d);
  }
  if (dims.empty()) return t.dim() == int64_t(shape.size()) ? t : reshaped(contiguous(t), shape);
  return reshaped(sum(t, dims, true), shape);
}

}  // namespace cxr::raw
