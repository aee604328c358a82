// CUDA indexing kernels (indexing.h): gathers, deterministic scatter-adds, masked fill and where.
// Pure data movement dispatches on the element SIZE, as the CPU kernels do
// (tensor/cpu/indexing.cpp): one instantiation moves every dtype of that width. Index checks raise
// a device-side flag that the host reads back after the kernel (a synchronisation, only in the ops
// that check indices).
#include <cstring>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/indexing.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/dtype.h"
#include "tensor/index_dispatch.h"

namespace cxr::cuda {

namespace {

using detail::dispatch_by_size;
using detail::dispatch_index;

// A device int that kernels set to 1 on a bad index; raised() reads it back (synchronising).
class DeviceFlag {
 public:
  explicit DeviceFlag(Device device)
      : device_(device), storage_(raw::empty({int64_t(sizeof(int))}, kUInt8, device)) {
    DeviceGuard guard(device);
    CXR_CUDA_CHECK(cudaMemsetAsync(storage_.data_ptr(), 0, sizeof(int), stream(device.index)));
  }
  int* get() const { return static_cast<int*>(storage_.data_ptr()); }
  bool raised() const {
    int host = 0;
    copy_device_to_host(&host, storage_.data_ptr(), sizeof(int), device_.index);
    return host != 0;
  }

 private:
  Device device_;
  Tensor storage_;
};

template <typename I>
struct RangeCheckFn {
  int64_t size;
  int* flag;
  __device__ void operator()(const std::array<char*, 1>& p) const {
    const int64_t i = *reinterpret_cast<const I*>(p[0]);
    if (i < 0 || i >= size) *flag = 1;
  }
};

template <typename U, typename I>
struct GatherFn {
  int64_t size, dim_stride;
  int* flag;
  __device__ void operator()(const std::array<char*, 3>& p) const {
    int64_t i = *reinterpret_cast<const I*>(p[1]);
    if (i < 0 || i >= size) {  // never dereferenced: the op throws afterwards
      *flag = 1;
      i = 0;
    }
    *reinterpret_cast<U*>(p[0]) = reinterpret_cast<const U*>(p[2])[i * dim_stride];
  }
};

// One row: p points at the target (stride 0 along dim), index and src elements of dim position 0;
// the row walks dim in order, adding in the compute type and rounding after each step as the CPU.
template <typename T, typename I>
struct ScatterAddRowFn {
  int64_t inner, index_stride, src_stride, size, dim_stride;
  int* flag;
  __device__ void operator()(const std::array<char*, 3>& p) const {
    using C = compute_t<T>;
    T* t = reinterpret_cast<T*>(p[0]);
    const I* ix = reinterpret_cast<const I*>(p[1]);
    const T* x = reinterpret_cast<const T*>(p[2]);
    for (int64_t k = 0; k < inner; ++k) {
      const int64_t i = ix[k * index_stride];
      if (i < 0 || i >= size) {
        *flag = 1;
        continue;
      }
      T& dst = t[i * dim_stride];
      dst = convert<T>(C(C(dst) + C(x[k * src_stride])));
    }
  }
};

template <typename U>
struct MaskedFillFn {
  U fill;
  __device__ void operator()(const std::array<char*, 3>& p) const {
    *reinterpret_cast<U*>(p[0]) =
        *reinterpret_cast<const uint8_t*>(p[2]) ? fill : *reinterpret_cast<const U*>(p[1]);
  }
};

template <typename U>
struct WhereFn {
  __device__ void operator()(const std::array<char*, 4>& p) const {
    *reinterpret_cast<U*>(p[0]) = *reinterpret_cast<const uint8_t*>(p[1])
                                      ? *reinterpret_cast<const U*>(p[2])
                                      : *reinterpret_cast<const U*>(p[3]);
  }
};

// `t` seen with `shape` and its own strides and offset (a view the public API cannot express:
// stride 0 or a collapsed dim).
Tensor restride(const Tensor& t, const Shape& shape) {
  return Tensor(t.storage(), shape, t.strides(), t.offset(), t.dtype());
}

}  // namespace

bool index_in_range(const Tensor& index, int64_t size) {
  if (index.numel() == 0) return true;
  DeviceFlag flag(index.device());
  dispatch_index(index, "CUDA indexing", [&]<typename I>() {
    launch_strided<1>(index.sizes(), {&index}, RangeCheckFn<I>{size, flag.get()},
                      "index range check");
  });
  return !flag.raised();
}

bool gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t size,
            int64_t dim_stride) {
  if (out.numel() == 0) return true;
  DeviceFlag flag(out.device());
  dispatch_by_size(out.element_size(), "CUDA indexing", [&]<typename U>() {
    dispatch_index(index, "CUDA indexing", [&]<typename I>() {
      launch_strided<3>(out.sizes(), {&out, &index, &src},
                        GatherFn<U, I>{size, dim_stride, flag.get()}, "gather");
    });
  });
  return !flag.raised();
}

bool scatter_add(const Tensor& target, int64_t dim, const Tensor& index, const Tensor& src,
                 const Shape& shape, int64_t size, int64_t dim_stride) {
  if (shape_numel(shape) == 0) return true;
  // The rows: every position of the other dims, dim collapsed to its first element.
  Shape rows = shape;
  rows[size_t(dim)] = 1;
  const Tensor tr = restride(target, rows), ir = restride(index, rows), sr = restride(src, rows);
  const int64_t inner = shape[size_t(dim)];
  const int64_t index_stride = index.strides()[size_t(dim)];
  const int64_t src_stride = src.strides()[size_t(dim)];
  DeviceFlag flag(target.device());
  CXR_DISPATCH_ALL(target.dtype(), "scatter_add", [&]<typename T>() {
    dispatch_index(index, "CUDA indexing", [&]<typename I>() {
      launch_strided<3>(
          rows, {&tr, &ir, &sr},
          ScatterAddRowFn<T, I>{inner, index_stride, src_stride, size, dim_stride, flag.get()},
          "scatter_add");
    });
  });
  return !flag.raised();
}

void masked_fill(const Tensor& out, const Tensor& t, const Tensor& mask, uint64_t fill_bits) {
  dispatch_by_size(out.element_size(), "CUDA indexing", [&]<typename U>() {
    U fill;
    std::memcpy(&fill, &fill_bits, sizeof(U));
    launch_strided<3>(out.sizes(), {&out, &t, &mask}, MaskedFillFn<U>{fill}, "masked_fill");
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_by_size(out.element_size(), "CUDA indexing", [&]<typename U>() {
    launch_strided<4>(out.sizes(), {&out, &cond, &a, &b}, WhereFn<U>{}, "where");
  });
}

}  // namespace cxr::cuda
