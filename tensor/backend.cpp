// common_device (backend.h).
#include "tensor/backend.h"

#include <string>

namespace cxr {

Device common_device(const char* op, std::initializer_list<Tensor> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (first == nullptr) {
      first = &t;
      continue;
    }
    CXR_CHECK(t.device() == first->device(), op, ": expected all tensors on one device, got ",
              describe(*first), " on ", first->device().str(), " and ", describe(t), " on ",
              t.device().str());
  }
  return first ? first->device() : Device::cpu();
}

}  // namespace cxr
