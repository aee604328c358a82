// Where a tensor's storage lives: the CPU, or CUDA device N.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cxr {

struct Device {
  enum class Type : uint8_t { CPU, CUDA };
  Type type = Type::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {Type::CUDA, index}; }
  // Parses "cpu", "cuda" or "cuda:N"; throws cxr::Error otherwise.
  static Device parse(std::string_view text);

  bool is_cpu() const { return type == Type::CPU; }
  bool is_cuda() const { return type == Type::CUDA; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

// Number of usable CUDA devices: 0 on a build without CUDA or a machine without a GPU.
int cuda_device_count();
// Throws a clear cxr::Error when `device` is CUDA and cannot be used here (build without CUDA, no
// driver, no such device).
void check_device_available(Device device);

}  // namespace cxr
