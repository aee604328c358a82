// CUDA copy and fill kernels (elementwise.h): copies with broadcasting and dtype conversion, fills.
// Device code takes functor structs, not lambdas: nvcc does not allow __device__ lambdas inside
// the generic lambdas of CXR_DISPATCH.
#include "tensor/convert.h"
#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/dtype.h"

namespace cxr::cuda {

namespace {

// dst = convert<D>(src); load/store split for the contiguous kernel (loops.cuh).
template <typename D, typename S>
struct CopyFn {
  __device__ S load(const std::array<char*, 2>& p) const {
    return *reinterpret_cast<const S*>(p[1]);
  }
  __device__ void store(const std::array<char*, 2>& p, S v) const {
    *reinterpret_cast<D*>(p[0]) = convert<D>(v);
  }
  __device__ void operator()(const std::array<char*, 2>& p) const { store(p, load(p)); }
};

template <typename D>
struct FillFn {
  D value;
  __device__ void operator()(const std::array<char*, 1>& p) const {
    *reinterpret_cast<D*>(p[0]) = value;
  }
};

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  CXR_DISPATCH_ALL(dst.dtype(), "copy_", [&]<typename D>() {
    CXR_DISPATCH_ALL(src.dtype(), "copy_", [&]<typename S>() {
      launch_strided<2>(dst.sizes(), {&dst, &src}, CopyFn<D, S>{}, "copy_");
    });
  });
}

void fill_(const Tensor& dst, double value) {
  CXR_DISPATCH_ALL(dst.dtype(), "fill_", [&]<typename D>() {
    launch_strided<1>(dst.sizes(), {&dst}, FillFn<D>{convert<D>(value)}, "fill_");
  });
}

}  // namespace cxr::cuda
