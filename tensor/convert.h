// Value conversion between element types (host and device): through the compute type, with
// bool meaning "nonzero" and float->int truncating toward zero, as C++ and PyTorch do.
#pragma once

#include "tensor/dtype.h"
#include "tensor/macros.h"

namespace cxr {

template <typename To, typename From>
CXR_HD To convert(From v) {
  using C = compute_t<From>;
  if constexpr (std::is_same_v<To, bool>) {
    return C(v) != C(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(float(C(v)));
  } else {
    return To(C(v));
  }
}

}  // namespace cxr
