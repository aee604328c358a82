// Tensor: a cheap handle (shared pointer) to shape, strides, offset, dtype and a shared Storage.
// Copying a Tensor copies the handle; views share storage. The tensor layer knows nothing of
// gradients: AutogradMeta below is plain data that autograd/ reads and writes.
#pragma once

#include <cstdint>
#include <memory>   // std::shared_ptr
#include <ostream>  // operator<<
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace cxr {

namespace autograd {
struct Node;
}
class Tensor;
// "float32[2, 3]" ("float32[2, 3]@cuda:0" off the CPU) for error messages.
std::string describe(const Tensor& t);

// Autograd bookkeeping attached to a tensor once it takes part in differentiation.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Tensor> grad;                    // accumulated gradient of a leaf (or retained)
  std::shared_ptr<autograd::Node> grad_fn;         // the node that produced this tensor (non-leaf)
  uint32_t output_nr = 0;                          // which output of grad_fn this tensor is
  std::shared_ptr<Tensor> view_base;               // set when this tensor is a differentiable view
  std::weak_ptr<autograd::Node> grad_accumulator;  // a leaf's AccumulateGrad node, while alive
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = kFloat32;
  std::shared_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor
  // A tensor viewing `storage` with the given geometry (no copy, no checks beyond bounds).
  Tensor(std::shared_ptr<Storage> storage, Shape sizes, Shape strides, int64_t offset, DType dtype);
  // A new, uninitialised, contiguous tensor.
  static Tensor empty(const Shape& sizes, DType dtype = kFloat32, Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return impl().sizes; }
  const Shape& shape() const { return impl().sizes; }
  const Shape& strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return int64_t(impl().sizes.size()); }
  int64_t numel() const { return shape_numel(impl().sizes); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  size_t element_size() const { return dtype_size(impl().dtype); }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Address of the first element.
  void* data_ptr() const;
  // Typed pointer to the first element, for host code; throws if T does not match the dtype or the
  // tensor is not in host memory (CUDA kernels take data_ptr() instead).
  template <typename T>
  T* data() const {
    CXR_CHECK(dtype_of<T>::value == dtype(), "Tensor::data<", dtype_name(dtype_of<T>::value),
              ">: tensor has dtype ", dtype_name(dtype()));
    CXR_CHECK(device().is_cpu(), "Tensor::data<", dtype_name(dtype()), ">: ", describe(*this),
              " is on ", device().str(), "; host code needs a cpu tensor (to(Device::cpu()))");
    return static_cast<T*>(data_ptr());
  }
  // The value of a one-element tensor, converted to double.
  double item() const;
  // All elements in row-major order, converted to T (any layout, any dtype).
  template <typename T>
  std::vector<T> to_vector() const;
  // Element at a multi-index, converted to double (for tests and debugging).
  double at(const std::vector<int64_t>& index) const;

  // True when both handles refer to the same TensorImpl.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* unsafe_impl() const { return impl_.get(); }

  // Autograd data (logic in autograd/).
  bool requires_grad() const { return impl_ && impl_->autograd && impl_->autograd->requires_grad; }
  // Marks a leaf as requiring grad; only floating tensors can. Returns *this.
  Tensor& set_requires_grad(bool value);
  // The accumulated gradient (undefined if none).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  bool is_leaf() const { return !(impl_ && impl_->autograd && impl_->autograd->grad_fn); }
  AutogradMeta& autograd_meta() const;  // creates it on first use
  bool has_autograd_meta() const { return impl_ && impl_->autograd != nullptr; }

  // "tensor([[1, 2], [3, 4]], shape=[2, 2], dtype=float32, device=cpu)", long dims clipped.
  std::string str() const;

 private:
  TensorImpl& impl() const {
    CXR_CHECK(impl_ != nullptr, "Tensor: operation on an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace cxr
