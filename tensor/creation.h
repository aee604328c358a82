// Creating tensors: constants, ranges, copies of host data, dtype conversion and copies.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::raw {

Tensor empty(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = kFloat32, Device device = Device::cpu());
Tensor scalar_tensor(double value, DType dtype = kFloat32, Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// [start, end) with `step` (as torch.arange); float dtypes use double arithmetic.
Tensor arange(double start, double end, double step = 1.0, DType dtype = kInt64);
// `steps` evenly spaced values from start to end inclusive (as torch.linspace).
Tensor linspace(double start, double end, int64_t steps, DType dtype = kFloat32);
// Copies host values into a new tensor of `shape` (numel must match); converts to `dtype`.
Tensor from_vector(const std::vector<float>& values, const Shape& shape, DType dtype = kFloat32);
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = kFloat64);
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, DType dtype = kInt64);
// Wraps (does not copy) a caller's buffer; the caller keeps it alive.
Tensor from_blob(void* data, const Shape& shape, DType dtype);

// dst <- src, broadcasting src to dst's shape and converting dtype; dst may be any view.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);
// A contiguous tensor with the same values (returns `t` itself when already contiguous).
Tensor contiguous(const Tensor& t);
// A new contiguous copy, always.
Tensor clone(const Tensor& t);
// Converts to `dtype` (returns `t` itself when the dtype already matches).
Tensor to(const Tensor& t, DType dtype);
// Copies to `device` (returns `t` itself when already there).
Tensor to(const Tensor& t, Device device);

}  // namespace cxr::raw
