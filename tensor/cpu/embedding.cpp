// Embedding lookup (rows of a [num, dim] table gathered by integer indices) and its backward (rows
// of the gradient added into a zero table), on the CPU. The backward splits the work over columns,
// so every row of the table is accumulated in index order by one thread: deterministic.
//
// On a CUDA device the indices are checked on the host (copied there, so the errors are the
// CPU's), the lookup gathers rows on the device, and the backward groups the positions by table
// row on the host (a stable counting sort) so that the kernels of tensor/cuda/embedding.cu add each
// row's gradients in index order too, without atomics.
#include <cstring>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/norm.h"
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

// The positions of `idx` grouped by table row for the CUDA backward, as int64 tensors on `device`:
// rows (the distinct indices, increasing), offsets (rows.size() + 1) and positions (each row's
// positions increasing; row rows[q] owns positions[offsets[q] .. offsets[q + 1])).
struct RowGroups {
  Tensor rows, offsets, positions;
};
RowGroups group_by_row(const std::vector<int64_t>& idx, int64_t num, Device device) {
  std::vector<int64_t> start(size_t(num) + 1, 0);
  for (int64_t i : idx) ++start[size_t(i) + 1];
  for (size_t r = 0; r < size_t(num); ++r) start[r + 1] += start[r];
  std::vector<int64_t> positions(idx.size()), rows, offsets;
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (size_t i = 0; i < idx.size(); ++i) positions[size_t(next[size_t(idx[i])]++)] = int64_t(i);
  for (int64_t r = 0; r < num; ++r)
    if (start[size_t(r) + 1] > start[size_t(r)]) {
      rows.push_back(r);
      offsets.push_back(start[size_t(r)]);
    }
  offsets.push_back(int64_t(idx.size()));
  auto upload = [&](const std::vector<int64_t>& v) {
    return to(from_vector(v, {int64_t(v.size())}), device);
  };
  return {upload(rows), upload(offsets), upload(positions)};
}

}  // namespace

Tensor embedding(const Tensor& weight_in, const Tensor& indices) {
  CXR_CHECK(weight_in.defined() && weight_in.dim() == 2,
            "embedding: weight must be a 2-D table [num, dim], got ",
            weight_in.defined() ? describe(weight_in) : std::string("undefined"));
  const int64_t num = weight_in.size(0), dim = weight_in.size(1);
  const Device dev = common_device("embedding", {weight_in, indices});
  const std::vector<int64_t> idx = checked_indices(indices, num, "embedding");
  Tensor weight = contiguous(weight_in);
  Shape shape = indices.sizes();
  shape.push_back(dim);
  Tensor out = empty(shape, weight.dtype(), dev);
  if constexpr (kCudaBuilt) {
    if (dev.is_cuda()) {
      cuda::embedding(weight, contiguous(indices), out);
      return out;
    }
  }
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
  const Device dev = common_device("embedding_backward", {grad_in, indices});
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
  if constexpr (kCudaBuilt) {
    if (dev.is_cuda()) {
      Tensor out = zeros({num_weights, dim}, grad.dtype(), dev);
      const RowGroups groups = group_by_row(idx, num_weights, dev);
      cuda::embedding_backward(grad, groups.rows, groups.offsets, groups.positions, out);
      return out;
    }
  }
  Tensor out = empty({num_weights, dim}, grad.dtype());
  CXR_DISPATCH_FLOAT(grad.dtype(), "embedding_backward", [&]<typename T>() {
    embedding_backward_kernel<T>(grad.data<T>(), out.data<T>(), idx, num_weights, dim);
  });
  return out;
}

}  // namespace cxr::raw
