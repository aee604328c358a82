// Embedding lookup (rows of a [num, dim] table gathered by integer indices) and its backward (rows
// of the gradient added into a zero table), on the CPU. The backward splits the work over columns,
// so every row of the table is accumulated in index order by one thread: deterministic.
#include <cstring>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/nn_ops.h"

namespace cxr::raw {
namespace {

// The indices as a contiguous int64 vector, each checked against [0, num).
std::vector<int64_t> checked_indices(const Tensor& indices, int64_t num, const char* op) {
  CXR_CHECK(indices.defined() && (indices.dtype() == kInt64 || indices.dtype() == kInt32), op,
            ": indices must be int64 or int32, got ",
            indices.defined() ? describe(indices) : std::string("undefined"));
  std::vector<int64_t> idx = indices.to_vector<int64_t>();
  for (size_t i = 0; i < idx.size(); ++i)
    CXR_CHECK(idx[i] >= 0 && idx[i] < num, op, ": index ", idx[i], " at position ", i,
              " is out of range for ", num, " embeddings");
  return idx;
}

template <typename T>
void embedding_backward_kernel(const T* g, T* out, const std::vector<int64_t>& idx, int64_t num,
                               int64_t dim) {
  using C = compute_t<T>;
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (dim + kChunk - 1) / kChunk;
  const int64_t n = int64_t(idx.size());
  std::vector<C> acc(size_t(num * dim), C(0));
#pragma omp parallel for schedule(static) if (n * dim >= 32768 && chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t j0 = ch * kChunk, j1 = std::min(dim, j0 + kChunk);
    for (int64_t i = 0; i < n; ++i) {
      C* row = acc.data() + idx[size_t(i)] * dim;
      const T* gr = g + i * dim;
      for (int64_t j = j0; j < j1; ++j) row[j] += C(gr[j]);
    }
  }
  for (int64_t e = 0; e < num * dim; ++e) out[e] = convert<T>(acc[size_t(e)]);
}

}  // namespace

Tensor embedding(const Tensor& weight_in, const Tensor& indices) {
  CXR_CHECK(weight_in.defined() && weight_in.dim() == 2,
            "embedding: weight must be a 2-D table [num, dim], got ",
            weight_in.defined() ? describe(weight_in) : std::string("undefined"));
  const int64_t num = weight_in.size(0), dim = weight_in.size(1);
  const std::vector<int64_t> idx = checked_indices(indices, num, "embedding");
  Tensor weight = contiguous(weight_in);
  Shape shape = indices.sizes();
  shape.push_back(dim);
  Tensor out = empty(shape, weight.dtype());
  const size_t row_bytes = size_t(dim) * weight.element_size();
  const char* src = static_cast<const char*>(weight.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  const int64_t n = int64_t(idx.size());
#pragma omp parallel for schedule(static) if (n * dim >= 32768)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + size_t(i) * row_bytes, src + size_t(idx[size_t(i)]) * row_bytes, row_bytes);
  return out;
}

Tensor embedding_backward(const Tensor& grad_in, const Tensor& indices, int64_t num_weights) {
  CXR_CHECK(num_weights >= 0, "embedding_backward: num_weights must be >= 0, got ", num_weights);
  const std::vector<int64_t> idx = checked_indices(indices, num_weights, "embedding_backward");
  CXR_CHECK(grad_in.defined() && is_floating(grad_in.dtype()) && grad_in.dim() == indices.dim() + 1,
            "embedding_backward: grad must be floating with shape indices.shape + [dim], got ",
            grad_in.defined() ? describe(grad_in) : std::string("undefined"), " for indices ",
            describe(indices));
  for (int64_t d = 0; d < indices.dim(); ++d)
    CXR_CHECK(grad_in.size(d) == indices.size(d), "embedding_backward: grad ", describe(grad_in),
              " does not match indices ", describe(indices));
  const int64_t dim = grad_in.size(-1);
  Tensor grad = contiguous(grad_in);
  Tensor out = empty({num_weights, dim}, grad.dtype());
  CXR_DISPATCH_FLOAT(grad.dtype(), "embedding_backward", [&]<typename T>() {
    embedding_backward_kernel<T>(grad.data<T>(), out.data<T>(), idx, num_weights, dim);
  });
  return out;
}

}  // namespace cxr::raw
