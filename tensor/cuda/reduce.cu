// CUDA reductions (tensor/reduce.h). Every reduction reads the input as a contiguous [rows, n]
// matrix: the kept dims first, the reduced dims last (a permuted view made contiguous, a copy
// only when the layout is not that already). A group of G threads reduces one row, or one chunk
// of a long row: each thread combines its strided elements in order, then the group combines its
// threads as a fixed binary tree in shared memory. Rows of more than one chunk leave one partial
// result per chunk, reduced by the same kernel in a further pass. An input that is dense with the
// reduced dims first (a sum over the batch of [N, C], the sums of broadcasting backward) is read
// in place as columns instead: one thread per (column, chunk of rows) adds its chunk in order,
// adjacent threads reading adjacent columns, and the chunks' partial results are reduced as rows.
// The work split depends on the shape alone and no atomics are used, so the same input gives the
// same bits on every run. Semantics (dtypes, NaN, ties, accumulation types) follow
// tensor/cpu/reduce.cpp.
#include <cmath>
#include <limits>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/reduce.h"
#include "tensor/math.h"

namespace cxr::cuda {
namespace {

// Elements a thread combines sequentially per chunk: a chunk is G * kPerThread elements.
constexpr int64_t kPerThread = 32;
// Rows up to this length are reduced by groups of one warp (8 rows per block), longer ones by
// whole blocks.
constexpr int64_t kWarpRowMax = 32 * kPerThread;

// The sum type, as on the CPU: float for float32 and the half types, double for float64, int64
// for integers and bool.
template <typename T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, int64_t>;

// The rows to reduce: element i of row `row` is x[row * row_stride + i * step]. Row layout
// (step 1): the reduced dims last, a contiguous [rows, n] matrix. Column layout (row_stride 1,
// step rows): t is already dense with the reduced dims first and the kept dims last ([n, rows],
// e.g. a sum over the batch of [N, C]), read in place instead of copied into the row layout.
struct Rows {
  Tensor x;
  int64_t rows = 1, n = 1, row_stride = 1, step = 1;
  bool columns() const { return step != 1; }
};
Rows as_rows(const Tensor& t, const std::vector<bool>& reduced) {
  Rows r;
  for (int64_t d = 0; d < t.dim(); ++d) (reduced[size_t(d)] ? r.n : r.rows) *= t.size(d);
  const Tensor last = move_to_end(t, reduced);
  std::vector<bool> kept(reduced.size());
  for (size_t d = 0; d < reduced.size(); ++d) kept[d] = !reduced[d];
  const Tensor first = move_to_end(t, kept);
  if (!last.is_contiguous() && first.is_contiguous() && r.rows > 1 && r.n > 1) {
    r.x = first;
    r.step = r.rows;
  } else {
    r.x = raw::contiguous(last);
    r.row_stride = r.n;
  }
  return r;
}

template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// ---------------------------------------------------------------------------------------------
// The generic row reduction

// Task = row * splits + chunk. load(row, i) gives element i of a row as an Acc; store(task, acc)
// receives each task's result.
template <int G, typename Acc, typename Load, typename Combine, typename Store>
__global__ void reduce_kernel(int64_t rows, int64_t n, int64_t chunk, int64_t splits, Load load,
                              Combine combine, Store store) {
  constexpr int kGroups = kThreads / G;
  Acc* slots = shared_slots<Acc>();
  const int lane = int(threadIdx.x) % G;
  const int64_t tasks = rows * splits;
  // The loop bound is the same for all threads of a block, as group_reduce requires.
  for (int64_t base = int64_t(blockIdx.x) * kGroups; base < tasks;
       base += int64_t(gridDim.x) * kGroups) {
    const int64_t task = base + int64_t(threadIdx.x) / G;
    Acc acc = combine.identity();
    if (task < tasks) {
      const int64_t row = task / splits, begin = (task % splits) * chunk;
      const int64_t end = begin + chunk < n ? begin + chunk : n;
      for (int64_t i = begin + lane; i < end; i += G) acc = combine(acc, load(row, i));
    }
    acc = group_reduce<G>(acc, slots, combine);
    if (task < tasks && lane == 0) store(task, acc);
  }
}

template <typename Acc>
struct PartialStore {
  Acc* partial;
  __device__ void operator()(int64_t task, Acc acc) const { partial[task] = acc; }
};

template <typename Acc>
struct PartialLoad {
  const Acc* partial;
  int64_t n;
  __device__ Acc operator()(int64_t row, int64_t i) const { return partial[row * n + i]; }
};

template <int G, typename Acc, typename Load, typename Combine, typename Store>
void launch_reduce(int device, int64_t rows, int64_t n, int64_t chunk, int64_t splits,
                   const Load& load, const Combine& combine, const Store& store) {
  reduce_kernel<G, Acc><<<blocks_for(rows * splits, kThreads / G), kThreads, 0, stream(device)>>>(
      rows, n, chunk, splits, load, combine, store);
  CXR_CUDA_LAUNCH_CHECK("reduce_kernel");
}

// Reduces each of `rows` rows of n elements (n may be 0: the identity) and passes (row, result)
// to `finish`. Long rows are cut into chunks whose partial results are reduced by a further pass.
template <typename Acc, typename Load, typename Combine, typename Finish>
void reduce_rows(int device, int64_t rows, int64_t n, const Load& load, const Combine& combine,
                 const Finish& finish) {
  if (n <= kWarpRowMax) {
    launch_reduce<32, Acc>(device, rows, n, kWarpRowMax, 1, load, combine, finish);
    return;
  }
  const int64_t chunk = kThreads * kPerThread;
  const int64_t splits = (n + chunk - 1) / chunk;
  if (splits == 1) {
    launch_reduce<kThreads, Acc>(device, rows, n, chunk, 1, load, combine, finish);
    return;
  }
  // Scratch for the partial results; it returns to the pool in stream order when it dies.
  Tensor scratch = raw::empty({rows * splits * int64_t(sizeof(Acc))}, kUInt8, Device::cuda(device));
  Acc* partial = ptr<Acc>(scratch);
  launch_reduce<kThreads, Acc>(device, rows, n, chunk, splits, load, combine,
                               PartialStore<Acc>{partial});
  reduce_rows<Acc>(device, rows, splits, PartialLoad<Acc>{partial, splits}, combine, finish);
}

// Column layout: one thread per (row, chunk of the reduced elements), task = part * rows + row,
// so that adjacent threads read adjacent addresses; each combines its chunk's elements in order
// and store(row * splits + part, acc) receives the result.
template <typename Acc, typename Load, typename Combine, typename Store>
__global__ void column_kernel(int64_t rows, int64_t n, int64_t chunk, int64_t splits, Load load,
                              Combine combine, Store store) {
  for (int64_t task = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; task < rows * splits;
       task += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = task % rows, part = task / rows, begin = part * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    Acc acc = combine.identity();
    for (int64_t i = begin; i < end; ++i) acc = combine(acc, load(row, i));
    store(row * splits + part, acc);
  }
}

// Column chunks: as many as bring the thread count towards kColumnThreads, each of kColumnChunk
// to kColumnChunkMax elements (a thread adds its chunk sequentially: the bound keeps float32
// sums as accurate as the row kernels').
constexpr int64_t kColumnChunk = 32, kColumnChunkMax = 128, kColumnThreads = int64_t(1) << 16;

// reduce_rows for the column layout: with one chunk per row the threads finish the rows
// themselves; otherwise their partial results, a [rows, splits] matrix, are reduced as rows.
template <typename Acc, typename Load, typename Combine, typename Finish>
void reduce_columns(int device, int64_t rows, int64_t n, const Load& load, const Combine& combine,
                    const Finish& finish) {
  const int64_t wanted = (kColumnThreads + rows - 1) / rows;
  const int64_t fewest = (n + kColumnChunkMax - 1) / kColumnChunkMax;
  const int64_t most = (n + kColumnChunk - 1) / kColumnChunk;
  const int64_t parts = std::max<int64_t>(fewest, std::min(wanted, most));
  const int64_t chunk = (n + parts - 1) / parts, splits = (n + chunk - 1) / chunk;
  cudaStream_t s = stream(device);
  if (splits == 1) {
    column_kernel<Acc>
        <<<blocks_for(rows), kThreads, 0, s>>>(rows, n, chunk, 1, load, combine, finish);
    CXR_CUDA_LAUNCH_CHECK("column_kernel");
    return;
  }
  Tensor scratch = raw::empty({rows * splits * int64_t(sizeof(Acc))}, kUInt8, Device::cuda(device));
  Acc* partial = ptr<Acc>(scratch);
  column_kernel<Acc><<<blocks_for(rows * splits), kThreads, 0, s>>>(
      rows, n, chunk, splits, load, combine, PartialStore<Acc>{partial});
  CXR_CUDA_LAUNCH_CHECK("column_kernel");
  reduce_rows<Acc>(device, rows, splits, PartialLoad<Acc>{partial, splits}, combine, finish);
}

// Reduces the rows of r in its layout.
template <typename Acc, typename Load, typename Combine, typename Finish>
void reduce(const Rows& r, const Load& load, const Combine& combine, const Finish& finish) {
  const int device = r.x.device().index;
  if (r.columns())
    reduce_columns<Acc>(device, r.rows, r.n, load, combine, finish);
  else
    reduce_rows<Acc>(device, r.rows, r.n, load, combine, finish);
}

// Element i of row `row` of r, in the compute type, mapped by `pre` (pre(value, row) gives the
// Acc that is combined).
template <typename T, typename Pre>
struct ValueLoad {
  const T* x;
  int64_t row_stride, step;
  Pre pre;
  __device__ auto operator()(int64_t row, int64_t i) const {
    return pre(compute_t<T>(x[row * row_stride + i * step]), row);
  }
};

// ---------------------------------------------------------------------------------------------
// Sums, means, variances, log-sum-exp and norms

template <typename Acc>
struct Plain {
  template <typename C>
  __device__ Acc operator()(C v, int64_t) const {
    return Acc(v);
  }
};

// (x - mean)^2, as the CPU's var computes it in the (float32 or float64) working dtype.
template <typename Acc>
struct SquaredDeviation {
  const Acc* mean;
  template <typename C>
  __device__ Acc operator()(C v, int64_t row) const {
    const Acc d = Acc(v) - mean[row];
    return d * d;
  }
};

// The shift of logsumexp: the row's max, or 0 where that is infinite (so that all -inf gives
// -inf and +inf gives +inf), as on the CPU.
template <typename T, typename Acc>
__device__ Acc lse_shift(const T* max, int64_t row) {
  const Acc m = Acc(compute_t<T>(max[row]));
  return std::isinf(m) ? Acc(0) : m;
}

template <typename T, typename Acc>
struct ExpShifted {
  const T* max;
  template <typename C>
  __device__ Acc operator()(C v, int64_t row) const {
    return math::ExpFn{}(Acc(v) - lse_shift<T, Acc>(max, row));
  }
};

// The terms of a finite p-norm. The CPU materialises |x|, x^2 and |x|^p as tensors of the input's
// dtype before summing, so each term is rounded to T here too.
enum class NormKind { Count, Abs, Square, Pow };
template <typename T, typename Acc>
struct NormTerm {
  NormKind kind;
  Acc p;
  __device__ Acc operator()(compute_t<T> v, int64_t) const {
    using C = compute_t<T>;
    C r;
    switch (kind) {
      case NormKind::Count:
        return v != C(0) ? Acc(1) : Acc(0);
      case NormKind::Abs:
        r = math::AbsFn{}(v);
        break;
      case NormKind::Square:
        r = math::SquareFn{}(v);
        break;
      default:
        r = math::PowScalarFn<C>{C(p)}(math::AbsFn{}(v));
        break;
    }
    return Acc(compute_t<T>(convert<T>(r)));
  }
};

template <typename TO, typename Acc>
struct SumFinish {
  TO* out;
  double divisor;  // 1 for a sum
  __device__ void operator()(int64_t row, Acc v) const {
    if constexpr (std::is_floating_point_v<Acc>)
      out[row] = convert<TO>(divisor == 1.0 ? v : Acc(v / Acc(divisor)));
    else
      out[row] = convert<TO>(v);
  }
};

// var = sum / max(0, n - correction), rounded to T; std is the square root of that rounded value
// (the CPU takes the root of var's result).
template <typename T, typename Acc>
struct VarFinish {
  T* out;
  Acc denom;
  bool take_sqrt;
  __device__ void operator()(int64_t row, Acc v) const {
    const T var = convert<T>(v / denom);
    out[row] = take_sqrt ? convert<T>(math::SqrtFn{}(compute_t<T>(var))) : var;
  }
};

template <typename T, typename Acc>
struct LseFinish {
  T* out;
  const T* max;
  __device__ void operator()(int64_t row, Acc v) const {
    out[row] = convert<T>(math::LogFn{}(v) + lse_shift<T, Acc>(max, row));
  }
};

// The sum is rounded to T (the CPU's sum tensor), then the root is taken in the compute type.
template <typename T, typename Acc>
struct NormFinish {
  T* out;
  NormKind kind;
  double p;
  __device__ void operator()(int64_t row, Acc v) const {
    using C = compute_t<T>;
    const C s = C(convert<T>(v));
    if (kind == NormKind::Square)
      out[row] = convert<T>(math::SqrtFn{}(s));
    else if (kind == NormKind::Pow)
      out[row] = convert<T>(math::PowScalarFn<C>{C(1.0 / p)}(s));
    else
      out[row] = convert<T>(s);
  }
};

// ---------------------------------------------------------------------------------------------
// Max / min with the index of the first extreme

template <typename C>
struct Extreme {
  C v;
  int64_t i;  // -1: no element yet
};

// NaN wins over numbers (tensor/cpu/reduce.cpp `better`).
template <bool kMax, typename C>
__device__ bool better(C v, C best) {
  if constexpr (std::is_floating_point_v<C>) {
    if (best != best) return false;
    if (v != v) return true;
  }
  return kMax ? v > best : v < best;
}

// The extreme of two candidates; on equal values (or two NaNs) the smaller index, so the tree
// finds the first occurrence whatever order it combines in.
template <typename C, bool kMax>
struct ExtremeCombine {
  __device__ Extreme<C> identity() const { return {C(0), -1}; }
  __device__ Extreme<C> operator()(Extreme<C> a, Extreme<C> b) const {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    if (better<kMax>(b.v, a.v)) return b;
    if (better<kMax>(a.v, b.v)) return a;
    return a.i <= b.i ? a : b;
  }
};

// Element i of a row as a candidate; |x| for the infinity norms.
template <typename T, bool kAbs>
struct ExtremeLoad {
  const T* x;
  int64_t row_stride, step;
  __device__ Extreme<compute_t<T>> operator()(int64_t row, int64_t i) const {
    const compute_t<T> v = compute_t<T>(x[row * row_stride + i * step]);
    if constexpr (kAbs)
      return {math::AbsFn{}(v), i};
    else
      return {v, i};
  }
};

template <typename T>
struct ExtremeFinish {
  T* values;         // may be null
  int64_t* indices;  // may be null
  __device__ void operator()(int64_t row, Extreme<compute_t<T>> e) const {
    if (values) values[row] = convert<T>(e.v);
    if (indices) indices[row] = e.i;
  }
};

template <typename T, bool kAbs>
void extreme_rows(const Rows& r, bool is_max, T* values, int64_t* indices) {
  using C = compute_t<T>;
  const ExtremeLoad<T, kAbs> load{ptr<T>(r.x), r.row_stride, r.step};
  const ExtremeFinish<T> finish{values, indices};
  if (is_max)
    reduce<Extreme<C>>(r, load, ExtremeCombine<C, true>{}, finish);
  else
    reduce<Extreme<C>>(r, load, ExtremeCombine<C, false>{}, finish);
}

}  // namespace

void sum(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out, double divisor) {
  DeviceGuard guard(t.device());
  const Rows r = as_rows(t, reduced);
  CXR_DISPATCH_ALL(t.dtype(), "sum", ([&]<typename T>() {
                     using Acc = sum_acc_t<T>;
                     using TO = std::conditional_t<std::is_floating_point_v<Acc>, T, int64_t>;
                     reduce<Acc>(r, ValueLoad<T, Plain<Acc>>{ptr<T>(r.x), r.row_stride, r.step, {}},
                                 SumCombine<Acc>{}, SumFinish<TO, Acc>{ptr<TO>(out), divisor});
                   }));
}

void var(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out, int64_t correction,
         bool take_sqrt) {
  DeviceGuard guard(t.device());
  const Rows r = as_rows(t, reduced);
  CXR_DISPATCH_FLOAT(
      t.dtype(), "var", ([&]<typename T>() {
        using Acc = sum_acc_t<T>;
        // Pass 1: the means, in the working dtype (float32 or float64).
        Tensor mean = raw::empty({r.rows}, dtype_of<Acc>::value, t.device());
        const T* x = ptr<T>(r.x);
        reduce<Acc>(r, ValueLoad<T, Plain<Acc>>{x, r.row_stride, r.step, {}}, SumCombine<Acc>{},
                    SumFinish<Acc, Acc>{ptr<Acc>(mean), double(r.n)});
        // Pass 2: the sums of squared deviations.
        const Acc denom = Acc(double(std::max<int64_t>(0, r.n - correction)));
        reduce<Acc>(r,
                    ValueLoad<T, SquaredDeviation<Acc>>{x, r.row_stride, r.step, {ptr<Acc>(mean)}},
                    SumCombine<Acc>{}, VarFinish<T, Acc>{ptr<T>(out), denom, take_sqrt});
      }));
}

void minmax(const Tensor& t, const std::vector<bool>& reduced, bool is_max, const Tensor& values,
            const Tensor& indices) {
  DeviceGuard guard(t.device());
  const Rows r = as_rows(t, reduced);
  CXR_DISPATCH_ALL(t.dtype(), is_max ? "max" : "min", ([&]<typename T>() {
                     extreme_rows<T, false>(r, is_max, ptr<T>(values), ptr<int64_t>(indices));
                   }));
}

// m = the rows' max (in t's dtype: exact), then m' + log(sum(exp(x - m'))) with m' = m, or 0
// where m is infinite.
void logsumexp(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out) {
  DeviceGuard guard(t.device());
  const Rows r = as_rows(t, reduced);
  CXR_DISPATCH_FLOAT(
      t.dtype(), "logsumexp", ([&]<typename T>() {
        using Acc = sum_acc_t<T>;
        Tensor max = raw::empty({r.rows}, t.dtype(), t.device());
        extreme_rows<T, false>(r, true, ptr<T>(max), nullptr);
        reduce<Acc>(
            r, ValueLoad<T, ExpShifted<T, Acc>>{ptr<T>(r.x), r.row_stride, r.step, {ptr<T>(max)}},
            SumCombine<Acc>{}, LseFinish<T, Acc>{ptr<T>(out), ptr<T>(max)});
      }));
}

void norm(const Tensor& t, double p, const std::vector<bool>& reduced, const Tensor& out) {
  DeviceGuard guard(t.device());
  const Rows r = as_rows(t, reduced);
  CXR_DISPATCH_FLOAT(
      t.dtype(), "norm", ([&]<typename T>() {
        using Acc = sum_acc_t<T>;
        if (std::isinf(p)) {
          extreme_rows<T, true>(r, p > 0, ptr<T>(out), nullptr);
          return;
        }
        const NormKind kind = p == 0   ? NormKind::Count
                              : p == 1 ? NormKind::Abs
                              : p == 2 ? NormKind::Square
                                       : NormKind::Pow;
        reduce<Acc>(
            r, ValueLoad<T, NormTerm<T, Acc>>{ptr<T>(r.x), r.row_stride, r.step, {kind, Acc(p)}},
            SumCombine<Acc>{}, NormFinish<T, Acc>{ptr<T>(out), kind, p});
      }));
}

// ---------------------------------------------------------------------------------------------
// Cumulative sums

namespace {

constexpr int kScanItems = 8;  // consecutive elements per thread in a scan tile

// One block per row of the contiguous [rows, n] matrix: tiles of kThreads * kScanItems elements,
// each thread scanning its consecutive items, the threads' totals scanned in shared memory
// (Hillis-Steele), and a carry from tile to tile. Floating sums accumulate in double and integer
// sums in int64, as on the CPU.
template <typename T, typename TO>
__global__ void cumsum_kernel(const T* x, TO* y, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
  Acc* slots = shared_slots<Acc>();
  const int t = int(threadIdx.x);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    TO* yr = y + row * n;
    Acc carry = 0;
    for (int64_t tile = 0; tile < n; tile += int64_t(kThreads) * kScanItems) {
      const int64_t first = tile + int64_t(t) * kScanItems;
      Acc local[kScanItems];
      Acc run = 0;
      for (int j = 0; j < kScanItems; ++j) {
        if (first + j < n) run += Acc(C(xr[first + j]));
        local[j] = run;
      }
      slots[t] = run;
      __syncthreads();
      for (int w = 1; w < kThreads; w *= 2) {
        const Acc add = t >= w ? slots[t - w] : Acc(0);
        __syncthreads();
        slots[t] += add;
        __syncthreads();
      }
      const Acc before = carry + (t > 0 ? slots[t - 1] : Acc(0));
      for (int j = 0; j < kScanItems; ++j)
        if (first + j < n) yr[first + j] = convert<TO>(before + local[j]);
      carry += slots[kThreads - 1];
      __syncthreads();
    }
  }
}

}  // namespace

void cumsum(const Tensor& t, int64_t dim, const Tensor& out) {
  DeviceGuard guard(t.device());
  std::vector<bool> last(size_t(t.dim()), false);
  if (t.dim() > 0) last[size_t(dim)] = true;
  const Tensor x = raw::contiguous(move_to_end(t, last));
  const Tensor out_view = move_to_end(out, last);
  // The kernel writes rows with `dim` last: into out itself when that is its layout already.
  const bool direct = out_view.is_contiguous();
  const Tensor y = direct ? out_view : raw::empty(out_view.sizes(), out.dtype(), t.device());
  const int64_t n = t.dim() == 0 ? 1 : t.size(dim), rows = t.numel() / n;
  const unsigned blocks = unsigned(std::min<int64_t>(rows, 65535 * 8));
  CXR_DISPATCH_ALL(t.dtype(), "cumsum", ([&]<typename T>() {
                     using TO =
                         std::conditional_t<std::is_floating_point_v<compute_t<T>>, T, int64_t>;
                     cumsum_kernel<<<blocks, kThreads, 0, stream(t.device().index)>>>(
                         ptr<T>(x), ptr<TO>(y), rows, n);
                     CXR_CUDA_LAUNCH_CHECK("cumsum_kernel");
                   }));
  if (!direct) copy_(out_view, y);
}

}  // namespace cxr::cuda
