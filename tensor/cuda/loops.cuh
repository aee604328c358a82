// The strided N-operand launch behind the CUDA elementwise kernels, the device counterpart of
// tensor/cpu/loops.h: operands are broadcast to one shape and coalesced on the host (the same
// cpu::make_geometry), the geometry travels to the kernel by value, and a grid-stride loop covers
// any size. Two kernels, picked on the host: when every operand is dense in the same order
// (contiguous), each thread takes kUnroll elements a block width apart (coalesced) with no index
// math beyond the linear index, and functors that split into load/store (MapFn, CopyFn) load all
// of them before computing and storing; otherwise each thread maps a linear index to one element
// offset per operand, dividing by the dims' sizes in 32 bits (multiply-high, int_divider.cuh)
// when the shape has fewer than 2^31 elements and in 64 bits beyond. Every element goes through
// the same functor either way, so results do not depend on the path.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "tensor/convert.h"
#include "tensor/cpu/loops.h"  // broadcast_strides, make_geometry (host-side geometry)
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/int_divider.cuh"

namespace cxr::cuda {

inline constexpr int kMaxDims = 8;

// The host-side geometry: coalesced sizes and per-operand strides.
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

// Elements per thread and grid-stride step of the contiguous kernel.
inline constexpr int kUnroll = 4;

// A functor that splits into v = f.load(p) (the operands of one element into registers) and
// f.store(p, v) (compute and write), as f(p) does in one step.
template <typename F, int N>
concept SplitFunctor = requires(const F& f, const std::array<char*, N>& p) {
  f.store(p, f.load(p));
};

// Every operand dense with stride 1: element `linear` of operand i is at base[i] + linear * size.
template <int N, typename F>
__global__ void contiguous_kernel(int64_t numel, std::array<char*, N> base,
                                  std::array<int, N> elem_size, F f) {
  const int64_t width = blockDim.x, step = int64_t(gridDim.x) * width * kUnroll;
  for (int64_t start = int64_t(blockIdx.x) * width * kUnroll + threadIdx.x; start < numel;
       start += step) {
    std::array<char*, N> p[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k)
      if (start + k * width < numel)
        for (int i = 0; i < N; ++i) p[k][i] = base[i] + (start + k * width) * elem_size[i];
    if constexpr (SplitFunctor<F, N>) {
      // All loads first, so that the kUnroll elements' memory accesses overlap.
      decltype(f.load(p[0])) v[kUnroll];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (start + k * width < numel) v[k] = f.load(p[k]);
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (start + k * width < numel) f.store(p[k], v[k]);
    } else {
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (start + k * width < numel) f(p[k]);
    }
  }
}

// The kernel-side geometry with index type I: the dims' sizes as divisors, strides in elements.
template <int N, typename I>
struct IndexGeometry {
  int ndim = 1;
  I numel = 0;
  Divider<I> sizes[kMaxDims];
  int64_t strides[N][kMaxDims] = {};
};

template <int N, typename I>
IndexGeometry<N, I> index_geometry(const StridedGeometry<N>& s) {
  IndexGeometry<N, I> g;
  g.ndim = s.ndim;
  g.numel = I(s.numel);
  for (int d = 0; d < s.ndim; ++d) {
    g.sizes[d] = Divider<I>(I(s.sizes[d]));
    for (int i = 0; i < N; ++i) g.strides[i][d] = s.strides[i][d];
  }
  return g;
}

// f(ptrs) with ptrs[i] pointing at operand i's element of the linear index: the index is split
// into per-dim indices from the innermost dim out (the outermost takes the remaining quotient).
template <int N, typename I, typename F>
__global__ void strided_kernel(IndexGeometry<N, I> g, std::array<char*, N> base,
                               std::array<int, N> elem_size, F f) {
  for (I linear = I(blockIdx.x) * blockDim.x + threadIdx.x; linear < g.numel;
       linear += I(gridDim.x) * blockDim.x) {
    int64_t off[N] = {};
    I rem = linear;
    for (int d = g.ndim - 1; d > 0; --d) {
      const I q = g.sizes[d].div(rem);
      const int64_t idx = int64_t(rem - q * g.sizes[d].divisor);
      rem = q;
      for (int i = 0; i < N; ++i) off[i] += idx * g.strides[i][d];
    }
    for (int i = 0; i < N; ++i) off[i] += int64_t(rem) * g.strides[i][0];
    std::array<char*, N> p;
    for (int i = 0; i < N; ++i) p[i] = base[i] + off[i] * elem_size[i];
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
  cudaStream_t s = stream(device.index);
  if (g.contiguous)
    contiguous_kernel<N>
        <<<blocks_for((n + kUnroll - 1) / kUnroll), kThreads, 0, s>>>(n, base, elem, f);
  else if (fits_fast_divider(n))
    strided_kernel<N, uint32_t>
        <<<blocks_for(n), kThreads, 0, s>>>(index_geometry<N, uint32_t>(g), base, elem, f);
  else
    strided_kernel<N, uint64_t>
        <<<blocks_for(n), kThreads, 0, s>>>(index_geometry<N, uint64_t>(g), base, elem, f);
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
  using C = compute_t<TI>;
  static constexpr int N = int(sizeof...(K)) + 1;
  F f;
  // The inputs of one element (the contiguous kernel's load/store split).
  __device__ std::array<C, sizeof...(K)> load(const std::array<char*, N>& p) const {
    return {C(*reinterpret_cast<const TI*>(p[K + 1]))...};
  }
  __device__ void store(const std::array<char*, N>& p,
                        const std::array<C, sizeof...(K)>& in) const {
    *reinterpret_cast<TO*>(p[0]) = convert<TO>(f(in[K]...));
  }
  __device__ void operator()(const std::array<char*, N>& p) const { store(p, load(p)); }
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
