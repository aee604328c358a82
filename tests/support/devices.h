// Tests on CUDA devices (DESIGN.md §6: GPU tests are the same tests run on `cuda`; they skip
// without a GPU). CXR_SKIP_WITHOUT_CUDA() ends the current test as skipped, saying why, when no
// device is usable; test_devices() lists the devices a table-driven test should run on.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "tensor/device.h"

#define CXR_SKIP_WITHOUT_CUDA()                                                          \
  do {                                                                                   \
    if (::cxr::cuda_device_count() == 0)                                                 \
      GTEST_SKIP() << "no CUDA device is usable here (build without CUDA, no driver or " \
                      "no GPU); this test runs on machines with one";                    \
  } while (0)

namespace cxr::test {

// cpu, then every visible CUDA device.
inline std::vector<Device> test_devices() {
  std::vector<Device> devices = {Device::cpu()};
  for (int i = 0; i < cuda_device_count(); ++i) devices.push_back(Device::cuda(i));
  return devices;
}

}  // namespace cxr::test
