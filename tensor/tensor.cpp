// Tensor handle: geometry accessors, element access for tests and debugging, printing.
#include "tensor/tensor.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "tensor/creation.h"  // to(device): element access on a device tensor reads a host copy

namespace cxr {

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape sizes, Shape strides, int64_t offset,
               DType dtype)
    : impl_(std::make_shared<TensorImpl>()) {
  CXR_CHECK(sizes.size() == strides.size(), "Tensor: ", sizes.size(), " sizes but ", strides.size(),
            " strides");
  impl_->storage = std::move(storage);
  impl_->sizes = std::move(sizes);
  impl_->strides = std::move(strides);
  impl_->offset = offset;
  impl_->dtype = dtype;
}

Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
  for (int64_t s : sizes) CXR_CHECK(s >= 0, "empty: negative size in shape ", shape_str(sizes));
  size_t nbytes = size_t(shape_numel(sizes)) * dtype_size(dtype);
  return Tensor(std::make_shared<Storage>(nbytes, device), sizes, contiguous_strides(sizes), 0,
                dtype);
}

int64_t Tensor::size(int64_t dim) const {
  return sizes()[normalize_dim(dim, this->dim(), "size")];
}
int64_t Tensor::stride(int64_t dim) const {
  return strides()[normalize_dim(dim, this->dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = sizes().size(); i-- > 0;) {
    if (sizes()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= sizes()[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(element_size());
}

namespace {
// Reads element `i` (row-major index) of any tensor as double.
double load_as_double(const Tensor& t, int64_t linear) {
  int64_t off = 0;
  for (size_t d = t.sizes().size(); d-- > 0;) {
    off += (linear % t.sizes()[d]) * t.strides()[d];
    linear /= t.sizes()[d];
  }
  return CXR_DISPATCH_ALL(t.dtype(), "to_vector", [&]<typename T>() {
    return double(compute_t<T>(static_cast<const T*>(t.data_ptr())[off]));
  });
}
}  // namespace

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if (!device().is_cpu()) return raw::to(*this, Device::cpu()).to_vector<T>();
  std::vector<T> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[size_t(i)] = T(load_as_double(*this, i));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  CXR_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ",
            shape_str(sizes()));
  if (!device().is_cpu()) return raw::to(*this, Device::cpu()).item();
  return load_as_double(*this, 0);
}

double Tensor::at(const std::vector<int64_t>& index) const {
  CXR_CHECK(int64_t(index.size()) == dim(), "at: ", index.size(), " indices for a tensor with ",
            dim(), " dims");
  int64_t linear = 0;
  for (size_t d = 0; d < index.size(); ++d) {
    CXR_CHECK(index[d] >= 0 && index[d] < sizes()[d], "at: index ", index[d],
              " out of range for dim ", d, " of size ", sizes()[d]);
    linear = linear * sizes()[d] + index[d];
  }
  if (!device().is_cpu()) return raw::to(*this, Device::cpu()).at(index);  // for tests: a copy
  return load_as_double(*this, linear);
}

AutogradMeta& Tensor::autograd_meta() const {
  auto& impl = this->impl();
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}

Tensor& Tensor::set_requires_grad(bool value) {
  CXR_CHECK(!value || is_floating(dtype()),
            "set_requires_grad: only floating tensors can require "
            "gradients, got ",
            dtype_name(dtype()));
  CXR_CHECK(is_leaf(),
            "set_requires_grad: can only be set on a leaf tensor (this one was produced "
            "by an op; use detach() first)");
  autograd_meta().requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const {
  if (!has_autograd_meta() || !impl_->autograd->grad) return Tensor();
  return *impl_->autograd->grad;
}

void Tensor::set_grad(const Tensor& g) const {
  autograd_meta().grad = g.defined() ? std::make_shared<Tensor>(g) : nullptr;
}

namespace {
void print_values(std::ostringstream& os, const Tensor& t, std::vector<int64_t>& index, size_t d,
                  bool floating) {
  constexpr int64_t kEdge = 3;  // values shown at each end of a long dim
  if (d == size_t(t.dim())) {
    double v = t.at(index);
    if (floating) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4g", v);
      os << buf;
    } else {
      os << int64_t(v);
    }
    return;
  }
  os << "[";
  int64_t n = t.sizes()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdge && i == kEdge) {
      os << "..., ";
      i = n - kEdge;
    }
    index[d] = i;
    print_values(os, t, index, d + 1, floating);
    if (i + 1 < n) os << (d + 1 == size_t(t.dim()) ? ", " : ",\n       ");
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  std::vector<int64_t> index(size_t(dim()), 0);
  print_values(os, device().is_cpu() ? *this : raw::to(*this, Device::cpu()), index, 0,
               is_floating(dtype()));
  os << ", ";
  os << "shape=" << shape_str(sizes()) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad=true";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return std::string(dtype_name(t.dtype())) + shape_str(t.sizes()) +
         (t.device().is_cpu() ? "" : "@" + t.device().str());
}

}  // namespace cxr
