// The strided N-operand launch behind the CUDA elementwise kernels, the device counterpart of
// tensor/cpu/loops.h: operands are broadcast to one shape and coalesced on the host (the same
// cpu::make_geometry), the geometry travels to the kernel by value, and each thread maps a linear
// index to one element offset per operand. A grid-stride loop covers any size.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "tensor/convert.h"
#include "tensor/cpu/loops.h"  // broadcast_strides, make_geometry (host-side geometry)
#include "tensor/cuda/context.cuh"

namespace cxr::cuda {

inline constexpr int kMaxDims = 8;

template <int N>
struct StridedGeometry {
  int ndim = 1;
  int64_t numel = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};  // elements, per operand; the last dim is innermost
  bool contiguous = false;            // every operand dense with stride 1 in one merged dim
};

// Geometry for operands viewed with `shape` (operand 0 is usually the output).
template <int N>
StridedGeometry<N> make_strided_geometry(const Shape& shape,
                                         const std::array<const Tensor*, N>& ts) {
  std::array<Shape, N> strides;
  for (int i = 0; i < N; ++i) strides[i] = cpu::broadcast_strides(*ts[i], shape);
  cpu::LoopGeometry<N> g = cpu::make_geometry<N>(shape, strides);
  CXR_CHECK(g.shape.size() <= size_t(kMaxDims), "CUDA elementwise: ", g.shape.size(),
            " non-mergeable dims; at most ", kMaxDims, " are supported");
  StridedGeometry<N> s;
  s.ndim = int(g.shape.size());
  s.numel = shape_numel(shape);
  s.contiguous = s.ndim == 1;
  for (int d = 0; d < s.ndim; ++d) s.sizes[d] = g.shape[size_t(d)];
  for (int i = 0; i < N; ++i) {
    for (int d = 0; d < s.ndim; ++d) s.strides[i][d] = g.strides[size_t(i)][size_t(d)];
    s.contiguous = s.contiguous && s.strides[i][0] == 1;
  }
  return s;
}

// f(ptrs) with ptrs[i] pointing at operand i's element of the linear index.
template <int N, typename F>
__global__ void strided_kernel(StridedGeometry<N> g, std::array<char*, N> base,
                               std::array<int, N> elem_size, F f) {
  for (int64_t linear = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; linear < g.numel;
       linear += int64_t(gridDim.x) * blockDim.x) {
    std::array<char*, N> p;
    if (g.contiguous) {
      for (int i = 0; i < N; ++i) p[i] = base[i] + linear * elem_size[i];
    } else {
      int64_t off[N] = {};
      int64_t rem = linear;
      for (int d = g.ndim - 1; d >= 0; --d) {
        const int64_t idx = rem % g.sizes[d];
        rem /= g.sizes[d];
        for (int i = 0; i < N; ++i) off[i] += idx * g.strides[i][d];
      }
      for (int i = 0; i < N; ++i) p[i] = base[i] + off[i] * elem_size[i];
    }
    f(p);
  }
}

// Runs f over every element of `shape` for the tensors `ts` (all on one CUDA device, broadcast to
// `shape`), on that device's stream.
template <int N, typename F>
void launch_strided(const Shape& shape, const std::array<const Tensor*, N>& ts, F f,
                    const char* name) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const Device device = ts[0]->device();
  DeviceGuard guard(device);
  StridedGeometry<N> g = make_strided_geometry<N>(shape, ts);
  std::array<char*, N> base;
  std::array<int, N> elem;
  for (int i = 0; i < N; ++i) {
    base[i] = static_cast<char*>(ts[i]->data_ptr());
    elem[i] = int(ts[i]->element_size());
  }
  strided_kernel<N><<<blocks_for(n), kThreads, 0, stream(device.index)>>>(g, base, elem, f);
  // A bad launch configuration is reported with the op's name (CXR_CUDA_LAUNCH_CHECK needs a
  // literal).
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) fail_cuda(status, name, __FILE__, __LINE__);
}

// out = f(in_0, ..., in_k) elementwise, the device twin of the CPU's map_kernel
// (tensor/cpu/elementwise.cpp): every input has dtype TI and is loaded as compute_t<TI>, f computes
// in that type, and the result is stored through convert<TO>, so both backends round identically.
template <typename TO, typename TI, typename F, typename Seq>
struct MapFn;
template <typename TO, typename TI, typename F, size_t... K>
struct MapFn<TO, TI, F, std::index_sequence<K...>> {
  F f;
  __device__ void operator()(const std::array<char*, sizeof...(K) + 1>& p) const {
    using C = compute_t<TI>;
    *reinterpret_cast<TO*>(p[0]) = convert<TO>(f(C(*reinterpret_cast<const TI*>(p[K + 1]))...));
  }
};

// Runs MapFn over `out`'s shape; the inputs broadcast to it and may alias it (in place).
template <typename TO, typename TI, size_t NIN, typename F>
void launch_map(const Tensor& out, const std::array<const Tensor*, NIN>& ins, const F& f,
                const char* name) {
  std::array<const Tensor*, NIN + 1> all;
  all[0] = &out;
  for (size_t k = 0; k < NIN; ++k) all[k + 1] = ins[k];
  launch_strided<int(NIN + 1)>(out.sizes(), all, MapFn<TO, TI, F, std::make_index_sequence<NIN>>{f},
                               name);
}

}  // namespace cxr::cuda
