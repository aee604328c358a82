// Matrix products (matmul, bmm, linear) on the CPU through the packed GEMM of tensor/cpu/gemm.h.
// Matrices are handed to the GEMM as (pointer, row stride, column stride), so transposed and
// strided views are read in place; a matrix is copied only when neither of its strides is 1.
// float32 runs on sgemm, float64 on dgemm, float16/bfloat16 are converted to float32 and back.
// CUDA tensors are validated here and computed by tensor/cuda/linalg.cu (cuBLAS).
#include "tensor/linalg.h"

#include <omp.h>  // omp_get_max_threads

#include <type_traits>  // std::is_same_v
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/run_items.h"
#include "tensor/creation.h"
#include "tensor/cuda/linalg.h"

namespace cxr::raw {
namespace {

using cpu::gemm;

// Checks shared by every product: defined tensors on one device, of one floating dtype.
void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  CXR_CHECK(a.defined() && b.defined(), op, ": undefined input tensor");
  common_device(op, {a, b});
  CXR_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", describe(a), " and ", describe(b));
  CXR_CHECK(is_floating(a.dtype()), op, ": expected floating tensors, got ", describe(a), " and ",
            describe(b));
}

// True when a rows x cols matrix with these strides has no unit stride to pack from.
bool needs_copy(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  return rows > 1 && cols > 1 && rs != 1 && cs != 1;
}

// A batch of independent products C_b = A_b · B_b. Batch b's operands start at the given element
// offsets from the base pointers; the matrices inside share sizes and strides.
struct BatchedProblem {
  int64_t m, n, k;
  std::vector<int64_t> a_off, b_off, c_off;
  int64_t rsa, csa, rsb, csb, rsc, csc;
};

// Below this many multiply-adds per product, a batch is split across threads (each product then
// runs single-threaded inside the parallel region); above it, each product uses all threads.
constexpr double kBatchParallelMacs = 4.0 * 1024 * 1024;
// Below this many multiply-adds in all, waking a second thread costs more than it saves.
constexpr double kMinParallelMacs = 262144.0;

template <typename T>
void run_batched(const BatchedProblem& p, const T* a, const T* b, T* c) {
  const int64_t batch = int64_t(p.c_off.size());
  const double macs = double(p.m) * double(p.n) * double(p.k);
  const bool split_batch =
      batch > 1 && omp_get_max_threads() > 1 && macs * double(batch) >= kMinParallelMacs &&
      (macs < kBatchParallelMacs || batch >= 4 * int64_t(omp_get_max_threads()));
  // Every C element is computed by exactly one GEMM call, and the GEMM is deterministic for any
  // thread count, so splitting the batch does not change the result.
  cpu::run_items(batch, split_batch, [&](int64_t i) {
    gemm(p.m, p.n, p.k, a + p.a_off[i], p.rsa, p.csa, b + p.b_off[i], p.rsb, p.csb, T(0),
         c + p.c_off[i], p.rsc, p.csc);
  });
}

// Dispatches a batched product on a's dtype; half types go through float32 copies.
void dispatch_batched(const char* op, const BatchedProblem& p, const Tensor& a, const Tensor& b,
                      const Tensor& c) {
  if (p.m == 0 || p.n == 0 || p.c_off.empty()) return;
  if (p.k == 0) {
    fill_(c, 0.0);
    return;
  }
  CXR_DISPATCH_FLOAT(a.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      run_batched<T>(p, a.data<T>(), b.data<T>(), c.data<T>());
    } else {
      CXR_FAIL(op, ": internal error: half types must be converted before dispatch");
    }
  });
}

// Converts a half-precision tensor to float32 keeping its geometry (the copy is contiguous, so
// strides change; callers re-derive strides from the returned tensor).
Tensor as_compute(const Tensor& t) {
  return (t.dtype() == kFloat16 || t.dtype() == kBFloat16) ? to(t, kFloat32) : t;
}

// The dims of `t` before its last `matrix_dims`.
Shape batch_dims(const Tensor& t, int64_t matrix_dims) {
  return Shape(t.sizes().begin(), t.sizes().end() - matrix_dims);
}

// Element offset of every batch entry of `t` (its first dims) broadcast to `batch`.
std::vector<int64_t> batch_offsets(const Tensor& t, int64_t matrix_dims, const Shape& batch) {
  const int64_t tb = t.dim() - matrix_dims;
  const int64_t nb = int64_t(batch.size());
  Shape strides(batch.size(), 0);
  for (int64_t d = 0; d < tb; ++d)
    if (t.size(d) != 1) strides[nb - tb + d] = t.stride(d);
  const int64_t count = shape_numel(batch);
  std::vector<int64_t> offs(size_t(count), 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, off = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      off += (rem % batch[d]) * strides[d];
      rem /= batch[d];
    }
    offs[size_t(i)] = off;
  }
  return offs;
}

// The broadcast batch dims of a product of a [..., M, K] or [K] (a row vector) and b [..., K, N]
// or [K] (a column vector), after checking that the inner sizes agree and the batch dims broadcast
// (on every device, before the CUDA routing).
Shape product_batch(const char* op, const Tensor& a, const Tensor& b) {
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  const int64_t ka = a.size(-1);
  const int64_t kb = b_vec ? b.size(0) : b.size(-2);
  CXR_CHECK(ka == kb, op, ": inner dimensions differ: ", describe(a), " and ", describe(b), " (",
            ka, " vs ", kb, ")");
  return broadcast_shapes(batch_dims(a, a_vec ? 1 : 2), batch_dims(b, b_vec ? 1 : 2), op);
}

// Matmul core on tensors already in the compute dtype (shapes checked by product_batch). Returns
// the product with torch.matmul's shape.
Tensor matmul_compute(const char* op, Tensor a, Tensor b) {
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  const int64_t m = a_vec ? 1 : a.size(-2);
  const int64_t ka = a.size(-1);
  const int64_t kb = b_vec ? b.size(0) : b.size(-2);
  const int64_t n = b_vec ? 1 : b.size(-1);
  const Shape batch = product_batch(op, a, b);

  int64_t rsa = a_vec ? 0 : a.stride(-2), csa = a.stride(-1);
  if (needs_copy(m, ka, rsa, csa)) {
    a = contiguous(a);
    rsa = a.stride(-2);
    csa = 1;
  }
  int64_t rsb = b_vec ? b.stride(0) : b.stride(-2), csb = b_vec ? 0 : b.stride(-1);
  if (needs_copy(kb, n, rsb, csb)) {
    b = contiguous(b);
    rsb = b.stride(-2);
    csb = 1;
  }

  Shape full = batch;
  full.push_back(m);
  full.push_back(n);
  Tensor c = empty(full, a.dtype());
  BatchedProblem p{m,
                   n,
                   ka,
                   batch_offsets(a, a_vec ? 1 : 2, batch),
                   batch_offsets(b, b_vec ? 1 : 2, batch),
                   {},
                   rsa,
                   csa,
                   rsb,
                   csb,
                   n,
                   1};
  p.c_off.resize(p.a_off.size());
  for (size_t i = 0; i < p.c_off.size(); ++i) p.c_off[i] = int64_t(i) * m * n;
  dispatch_batched(op, p, a, b, c);

  Shape shape = batch;
  if (!a_vec) shape.push_back(m);
  if (!b_vec) shape.push_back(n);
  return Tensor(c.storage(), shape, contiguous_strides(shape), 0, c.dtype());
}

// Converts a float32 result back to the half type the caller passed.
Tensor from_compute(const Tensor& result, DType dtype) {
  return result.dtype() == dtype ? result : to(result, dtype);
}

// y [rows, out] = x [rows, in] · wᵀ (+ bias, written first so the GEMM accumulates onto it).
template <typename T>
void linear_kernel(const Tensor& x, int64_t rsx, int64_t csx, const Tensor& w, const Tensor& bias,
                   const Tensor& y, int64_t rows, int64_t in, int64_t out) {
  T* yp = y.data<T>();
  T beta = T(0);
  if (bias.defined()) {
    const T* bp = bias.data<T>();
#pragma omp parallel for schedule(static) if (rows * out >= 65536)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out; ++j) yp[r * out + j] = bp[j];
    beta = T(1);
  } else if (in == 0) {
    for (int64_t i = 0; i < rows * out; ++i) yp[i] = T(0);
  }
  if (in > 0)
    gemm(rows, out, in, x.data<T>(), rsx, csx, w.data<T>(), w.stride(1), w.stride(0), beta, yp, out,
         1);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands("matmul", a, b);
  CXR_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got ",
            describe(a), " and ", describe(b));
  product_batch("matmul", a, b);
  if constexpr (kCudaBuilt)
    if (a.device().is_cuda()) return cuda::matmul(a, b);
  return from_compute(matmul_compute("matmul", as_compute(a), as_compute(b)), a.dtype());
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b);
  CXR_CHECK(a.dim() == 3 && b.dim() == 3,
            "bmm: expected two 3-D tensors [B, M, K] and [B, K, N], got ", describe(a), " and ",
            describe(b));
  CXR_CHECK(a.size(0) == b.size(0), "bmm: batch sizes differ: ", describe(a), " and ", describe(b));
  product_batch("bmm", a, b);
  if constexpr (kCudaBuilt)
    if (a.device().is_cuda()) return cuda::matmul(a, b);
  return from_compute(matmul_compute("bmm", as_compute(a), as_compute(b)), a.dtype());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands("linear", x, weight);
  common_device("linear", {x, weight, bias});
  CXR_CHECK(x.dim() >= 1, "linear: input needs at least 1 dim, got ", describe(x));
  CXR_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", describe(weight));
  const int64_t in = x.size(-1), out = weight.size(0);
  CXR_CHECK(weight.size(1) == in, "linear: input ", describe(x), " has ", in,
            " features but weight ", describe(weight), " expects ", weight.size(1));
  if (bias.defined()) {
    CXR_CHECK(bias.dtype() == x.dtype(), "linear: bias ", describe(bias), " does not match input ",
              describe(x));
    CXR_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias must be [", out, "], got ",
              describe(bias));
  }
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) return cuda::linear(x, weight, bias);
  const DType dtype = x.dtype();
  Tensor xc = as_compute(x), w = as_compute(weight);

  // View x as a [rows, in] matrix: its leading dims must collapse into one row stride.
  const int64_t rows = in == 0 ? shape_numel(batch_dims(x, 1)) : x.numel() / in;
  int64_t rsx = 0, expect = -1;
  bool collapsible = true;
  for (int64_t d = xc.dim() - 2; d >= 0; --d) {
    if (xc.size(d) == 1) continue;
    if (expect < 0)
      rsx = xc.stride(d);
    else
      collapsible = collapsible && xc.stride(d) == expect;
    expect = xc.stride(d) * xc.size(d);
  }
  int64_t csx = xc.stride(-1);
  if (!collapsible || needs_copy(rows, in, rsx, csx)) {
    xc = contiguous(xc);
    rsx = in;
    csx = 1;
  }

  if (needs_copy(in, out, w.stride(1), w.stride(0))) w = contiguous(w);

  Shape out_shape = batch_dims(x, 1);
  out_shape.push_back(out);
  Tensor y = empty(out_shape, xc.dtype());
  if (rows == 0 || out == 0) return from_compute(y, dtype);
  Tensor bc = bias.defined() ? contiguous(as_compute(bias)) : Tensor();
  if (xc.dtype() == kFloat64)
    linear_kernel<double>(xc, rsx, csx, w, bc, y, rows, in, out);
  else
    linear_kernel<float>(xc, rsx, csx, w, bc, y, rows, in, out);
  return from_compute(y, dtype);
}

}  // namespace cxr::raw
