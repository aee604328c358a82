// CUDA matrix products (tensor/linalg.h) through cuBLAS. cuBLAS is column-major, so the row-major
// product C = A·B is computed as the column-major Cᵀ = Bᵀ·Aᵀ: a row-major matrix, read in place, is
// its own transpose in column-major terms. Each operand is read where it lies: a view with a unit
// column stride goes in untransposed (leading dimension = its row stride), one with a unit row
// stride transposed (leading dimension = its column stride); any other view is made contiguous
// first. A batch whose operands advance by constant strides runs as one strided-batched call
// (stride 0 for a broadcast operand; otherwise one call per run of such batch entries); when the
// right operand is the same for the whole batch and the left one's batch dims collapse into its
// rows, the batch becomes one taller GEMM instead (as torch folds [B, M, K] · [K, N]).
// float32 runs on TF32 tensor cores, float16/bfloat16 accumulate in float32, float64 on DGEMM.
#include <algorithm>  // std::max
#include <limits>
#include <optional>

#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/linalg.h"

namespace cxr::cuda {
namespace {

cudaDataType data_type(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return CUDA_R_32F;
    case kFloat64:
      return CUDA_R_64F;
    case kFloat16:
      return CUDA_R_16F;
    case kBFloat16:
      return CUDA_R_16BF;
    default:
      CXR_FAIL("matmul on CUDA: no cuBLAS type for dtype ", dtype_name(dtype));
  }
}

// float32 on TF32 tensor cores, the half types with float32 accumulation, float64 in float64.
cublasComputeType_t compute_type(DType dtype) {
  if (dtype == kFloat64) return CUBLAS_COMPUTE_64F;
  if (dtype == kFloat32) return CUBLAS_COMPUTE_32F_FAST_TF32;
  return CUBLAS_COMPUTE_32F;
}

// cuBLAS takes sizes and leading dimensions as int.
int as_int(int64_t v, const char* what) {
  CXR_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), "matmul on CUDA: ", what, " ", v,
            " is outside cuBLAS's 32-bit range");
  return int(v);
}

// How cuBLAS reads a row-major rows x cols view (element (i, j) at i*rs + j*cs) as the column-major
// cols x rows matrix, its transpose, that Cᵀ = Bᵀ·Aᵀ needs.
struct Operand {
  cublasOperation_t op;
  int64_t ld;
};

std::optional<Operand> operand_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // With a unit column stride the view, as it lies, is column-major cols x rows with leading
  // dimension rs (a single row: any leading dimension >= cols).
  if (cs == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : rs;
    if (ld >= std::max<int64_t>(cols, 1)) return Operand{CUBLAS_OP_N, ld};
  }
  // With a unit row stride it is column-major rows x cols with leading dimension cs, read
  // transposed.
  if (rs == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : cs;
    if (ld >= std::max<int64_t>(rows, 1)) return Operand{CUBLAS_OP_T, ld};
  }
  return std::nullopt;
}

// The trailing matrix of an operand: [..., rows, cols], or a 1-D tensor as torch.matmul promotes it
// (one row on the left, one column on the right).
struct Matrix {
  Tensor t;
  int64_t matrix_dims;  // 2, or 1 for a vector
  int64_t rows, cols, rs, cs;
  Operand layout;
};

Matrix matrix_of(Tensor t, bool left) {
  Matrix m{};
  if (t.dim() == 1) {
    m.matrix_dims = 1;
    m.rows = left ? 1 : t.size(0);
    m.cols = left ? t.size(0) : 1;
    m.rs = left ? 0 : t.stride(0);
    m.cs = left ? t.stride(0) : 0;
  } else {
    m.matrix_dims = 2;
    m.rows = t.size(-2), m.cols = t.size(-1);
    m.rs = t.stride(-2), m.cs = t.stride(-1);
  }
  if (m.rows == 0 || m.cols == 0) {  // never handed to cuBLAS (the product returns before)
    m.layout = Operand{CUBLAS_OP_N, 1};
    m.t = std::move(t);
    return m;
  }
  const std::optional<Operand> layout = operand_layout(m.rows, m.cols, m.rs, m.cs);
  if (!layout) return matrix_of(raw::contiguous(t), left);  // contiguous: always readable
  m.layout = *layout;
  m.t = std::move(t);
  return m;
}

Shape batch_dims(const Matrix& m) {
  return Shape(m.t.sizes().begin(), m.t.sizes().end() - m.matrix_dims);
}

// Element strides of m's batch dims broadcast to `batch`: 0 where m lacks the dim or has size 1.
Shape batch_strides(const Matrix& m, const Shape& batch) {
  const int64_t mb = m.t.dim() - m.matrix_dims, nb = int64_t(batch.size());
  Shape s(batch.size(), 0);
  for (int64_t d = 0; d < mb; ++d)
    if (m.t.size(d) != 1) s[size_t(nb - mb + d)] = m.t.stride(d);
  return s;
}

// Row-major C_i [m, n] = A_i [m, k] · B_i [k, n] (+ C_i when accumulating) for i < batch, with
// A_i = a + i * stride_a elements (likewise B_i, C_i); C is contiguous.
struct Gemm {
  DType dtype;
  int64_t m, n, k;
  const char* a;
  Operand la;
  int64_t stride_a;
  const char* b;
  Operand lb;
  int64_t stride_b;
  char* c;
  int64_t stride_c;
  int64_t batch;
  bool accumulate;
};

void run(int device, const Gemm& g) {
  cublasHandle_t handle = cublas_handle(device);
  // alpha and beta have the compute type's precision: double for DGEMM, else float.
  const double alpha_d = 1.0, beta_d = g.accumulate ? 1.0 : 0.0;
  const float alpha_f = 1.0f, beta_f = g.accumulate ? 1.0f : 0.0f;
  const bool dbl = g.dtype == kFloat64;
  const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = dbl ? static_cast<const void*>(&beta_d) : &beta_f;
  const cudaDataType type = data_type(g.dtype);
  const int m = as_int(g.m, "rows"), n = as_int(g.n, "columns"), k = as_int(g.k, "inner size");
  const int lda = as_int(g.la.ld, "leading dimension"), ldb = as_int(g.lb.ld, "leading dimension");
  // Column-major Cᵀ [n, m] (leading dimension n) = Bᵀ [n, k] · Aᵀ [k, m].
  if (g.batch == 1) {
    CXR_CUBLAS_CHECK(cublasGemmEx(handle, g.lb.op, g.la.op, n, m, k, alpha, g.b, type, ldb, g.a,
                                  type, lda, beta, g.c, type, n, compute_type(g.dtype),
                                  CUBLAS_GEMM_DEFAULT));
  } else {
    CXR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle, g.lb.op, g.la.op, n, m, k, alpha, g.b, type, ldb, g.stride_b, g.a, type, lda,
        g.stride_a, beta, g.c, type, n, g.stride_c, as_int(g.batch, "batch count"),
        compute_type(g.dtype), CUBLAS_GEMM_DEFAULT));
  }
}

// C = A·B over the broadcast `batch` as a new contiguous tensor batch + [m, n]; with `bias`
// defined, C starts as the bias broadcast over its rows and the products are added onto it.
Tensor product(const Matrix& a, const Matrix& b, const Shape& batch, const Tensor& bias) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int device = a.t.device().index;
  Shape full = batch;
  full.push_back(m);
  full.push_back(n);
  Tensor c = raw::empty(full, a.t.dtype(), a.t.device());
  if (c.numel() == 0) return c;
  if (bias.defined())
    raw::copy_(c, bias);
  else if (k == 0)
    raw::fill_(c, 0.0);
  if (k == 0) return c;

  const size_t es = c.element_size();
  const char* ap = static_cast<const char*>(a.t.data_ptr());
  const char* bp = static_cast<const char*>(b.t.data_ptr());
  char* cp = static_cast<char*>(c.data_ptr());
  const Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
  const int64_t nb = int64_t(batch.size()), count = shape_numel(batch);

  // The innermost batch dims [split, nb) over which both operands advance by constant strides
  // (stride_a, stride_b per entry) form runs of `inner` entries: one strided-batched call each.
  int64_t inner = 1, stride_a = 0, stride_b = 0, split = nb;
  for (int64_t d = nb - 1; d >= 0; --d) {
    const size_t i = size_t(d);
    if (batch[i] == 1) {
      split = d;
      continue;
    }
    if (inner == 1) {
      stride_a = sa[i], stride_b = sb[i];
    } else if (sa[i] != stride_a * inner || sb[i] != stride_b * inner) {
      break;
    }
    inner *= batch[i];
    split = d;
  }

  // One right operand for the whole batch and a left operand whose batch entries follow each other
  // at `m` rows' distance: a single [count·m, k] · [k, n] GEMM.
  if (inner == count && count > 1 && stride_b == 0 && a.matrix_dims == 2) {
    const int64_t rs = m == 1 ? stride_a : a.rs;
    const std::optional<Operand> tall = operand_layout(count * m, k, rs, a.cs);
    if ((m == 1 || stride_a == m * a.rs) && tall) {
      run(device, Gemm{c.dtype(), count * m, n, k, ap, *tall, 0, bp, b.layout, 0, cp, 0, 1,
                       bias.defined()});
      return c;
    }
  }

  for (int64_t o = 0; o < count / inner; ++o) {
    int64_t rem = o, off_a = 0, off_b = 0;
    for (int64_t d = split - 1; d >= 0; --d) {
      const size_t i = size_t(d);
      off_a += (rem % batch[i]) * sa[i];
      off_b += (rem % batch[i]) * sb[i];
      rem /= batch[i];
    }
    run(device, Gemm{c.dtype(), m, n, k, ap + off_a * int64_t(es), a.layout, stride_a,
                     bp + off_b * int64_t(es), b.layout, stride_b,
                     cp + o * inner * m * n * int64_t(es), m * n, inner, bias.defined()});
  }
  return c;
}

// torch.matmul's result shape: the product's batch + [m, n] without the dims of vector operands.
Tensor matmul_with_bias(const Tensor& a, const Tensor& b, const Tensor& bias) {
  DeviceGuard guard(a.device());
  const Matrix ma = matrix_of(a, true), mb = matrix_of(b, false);
  const Shape batch = broadcast_shapes(batch_dims(ma), batch_dims(mb), "matmul");
  const Tensor c = product(ma, mb, batch, bias);
  Shape shape = batch;
  if (a.dim() > 1) shape.push_back(ma.rows);
  if (b.dim() > 1) shape.push_back(mb.cols);
  return Tensor(c.storage(), shape, contiguous_strides(shape), 0, c.dtype());
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  return matmul_with_bias(a, b, Tensor());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  // weightᵀ [in, out] as a view: x [..., in] · weightᵀ is a matmul whose right operand is the same
  // for every batch entry, so x's leading dims fold into the GEMM's rows where they collapse.
  const Tensor wt(weight.storage(), {weight.size(1), weight.size(0)},
                  {weight.stride(1), weight.stride(0)}, weight.offset(), weight.dtype());
  return matmul_with_bias(x, wt, bias);
}

void reference_gemm(int device, DType dtype, int64_t m, int64_t n, int64_t k, const void* a,
                    const void* b, void* c) {
  DeviceGuard guard(device);
  const double alpha_d = 1.0, beta_d = 0.0;
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const bool dbl = dtype == kFloat64;
  const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = dbl ? static_cast<const void*>(&beta_d) : &beta_f;
  const int mi = as_int(m, "rows"), ni = as_int(n, "columns"), ki = as_int(k, "inner size");
  // Row-major C = A·B as column-major Cᵀ = Bᵀ·Aᵀ.
  CXR_CUBLAS_CHECK(cublasGemmEx(cublas_handle(device), CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, alpha,
                                b, data_type(dtype), ni, a, data_type(dtype), ki, beta, c,
                                data_type(dtype), ni, compute_type(dtype), CUBLAS_GEMM_DEFAULT));
}

}  // namespace cxr::cuda
