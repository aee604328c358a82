// CUDA embedding lookup and its backward (norm.h). The lookup copies table rows by element size
// (any dtype). The backward is deterministic without float atomics: the caller groups the indices
// by table row on the host (rows, offsets, positions: a stable counting sort, so each row's
// positions are increasing), and one block column per present row adds its gradient rows in that
// order in compute_t, exactly the CPU's order of additions.
#include <algorithm>

#include "tensor/convert.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/norm.h"
#include "tensor/dtype.h"

namespace cxr::cuda {

namespace {

// out[i, j] = weight[idx[i], j] with E an unsigned type of the element size.
template <typename E, typename I>
__global__ void gather_rows_kernel(const E* weight, const I* idx, E* out, int64_t total,
                                   int64_t dim) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / dim, j = e % dim;
    out[e] = weight[int64_t(idx[i]) * dim + j];
  }
}

template <typename E, typename I>
void launch_gather(const Tensor& weight, const Tensor& indices, const Tensor& out) {
  const int64_t total = out.numel(), dim = weight.size(1);
  gather_rows_kernel<E, I><<<blocks_for(total), kThreads, 0, stream(out.device().index)>>>(
      static_cast<const E*>(weight.data_ptr()), static_cast<const I*>(indices.data_ptr()),
      static_cast<E*>(out.data_ptr()), total, dim);
  CXR_CUDA_LAUNCH_CHECK("gather_rows_kernel");
}

template <typename I>
void gather_by_size(const Tensor& weight, const Tensor& indices, const Tensor& out) {
  switch (weight.element_size()) {
    case 1:
      return launch_gather<uint8_t, I>(weight, indices, out);
    case 2:
      return launch_gather<uint16_t, I>(weight, indices, out);
    case 4:
      return launch_gather<uint32_t, I>(weight, indices, out);
    case 8:
      return launch_gather<uint64_t, I>(weight, indices, out);
    default:
      CXR_FAIL("embedding: unsupported element size ", weight.element_size(), " of ",
               describe(weight));
  }
}

// Block (q, y): table row rows[q], columns y * blockDim.x + threadIdx.x (grid stride over y).
template <typename T>
__global__ void embedding_backward_kernel(const T* grad, const int64_t* rows,
                                          const int64_t* offsets, const int64_t* positions,
                                          int64_t dim, T* out) {
  using C = compute_t<T>;
  const int64_t q = blockIdx.x, row = rows[q], k0 = offsets[q], k1 = offsets[q + 1];
  for (int64_t j = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; j < dim;
       j += int64_t(gridDim.y) * blockDim.x) {
    C acc = C(0);
    for (int64_t k = k0; k < k1; ++k) acc += C(grad[positions[k] * dim + j]);
    out[row * dim + j] = convert<T>(acc);
  }
}

template <typename T>
void launch_embedding_backward(const Tensor& grad, const Tensor& rows, const Tensor& offsets,
                               const Tensor& positions, const Tensor& out) {
  const int64_t present = rows.numel(), dim = out.size(1);
  CXR_CHECK(present <= 0x7fffffff, "embedding_backward: ", present,
            " distinct indices exceed the CUDA grid limit");
  const int64_t col_blocks = std::min<int64_t>((dim + kThreads - 1) / kThreads, 64);
  const dim3 blocks{unsigned(present), unsigned(col_blocks)};
  embedding_backward_kernel<T><<<blocks, kThreads, 0, stream(out.device().index)>>>(
      static_cast<const T*>(grad.data_ptr()), static_cast<const int64_t*>(rows.data_ptr()),
      static_cast<const int64_t*>(offsets.data_ptr()),
      static_cast<const int64_t*>(positions.data_ptr()), dim, static_cast<T*>(out.data_ptr()));
  CXR_CUDA_LAUNCH_CHECK("embedding_backward_kernel");
}

}  // namespace

void embedding(const Tensor& weight, const Tensor& indices, const Tensor& out) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  if (indices.dtype() == kInt64) {
    gather_by_size<int64_t>(weight, indices, out);
  } else {
    CXR_CHECK(indices.dtype() == kInt32, "embedding: indices must be int64 or int32, got ",
              describe(indices));
    gather_by_size<int32_t>(weight, indices, out);
  }
}

void embedding_backward(const Tensor& grad, const Tensor& rows, const Tensor& offsets,
                        const Tensor& positions, const Tensor& out) {
  if (rows.numel() == 0 || out.size(1) == 0) return;
  DeviceGuard guard(out.device());
  CXR_DISPATCH_FLOAT(grad.dtype(), "embedding_backward", [&]<typename T>() {
    launch_embedding_backward<T>(grad, rows, offsets, positions, out);
  });
}

}  // namespace cxr::cuda
