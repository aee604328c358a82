// Device parsing and availability checks. The CUDA queries live in cuda/runtime.cu when the build
// has CUDA; otherwise every CUDA request is refused with a message saying so.
#include "tensor/device.h"

#include <charconv>  // std::from_chars for "cuda:N"

#include "tensor/cuda/runtime.h"
#include "tensor/error.h"

namespace cxr {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    auto digits = text.substr(5);
    int index = -1;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && ptr == digits.data() + digits.size() && index >= 0) return cuda(index);
  }
  CXR_FAIL("Device: cannot parse '", text, "'; expected 'cpu', 'cuda' or 'cuda:N'");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

int cuda_device_count() {
#ifdef CXR_WITH_CUDA
  return cuda::device_count_or_zero();
#else
  return 0;
#endif
}

void check_device_available(Device device) {
  if (device.is_cpu()) return;
#ifdef CXR_WITH_CUDA
  std::string problem = cuda::availability_problem();
  CXR_CHECK(problem.empty(), "device ", device.str(),
            " requested but CUDA is not usable: ", problem);
  int n = cuda::device_count_or_zero();
  CXR_CHECK(device.index < n, "device ", device.str(), " requested but only ", n,
            " CUDA device(s) are visible");
#else
  CXR_FAIL("device ", device.str(),
           " requested but SynthCXR was built without CUDA (configure with CXR_WITH_CUDA=ON)");
#endif
}

}  // namespace cxr
