// Size2: a (height, width) pair that also accepts one number for both, like the int-or-tuple
// arguments of torch.nn (kernel_size=3 or kernel_size=(3, 1)).
#pragma once

#include <cstdint>
#include <string>

#include "tensor/conv.h"  // Int2

namespace cxr::nn {

struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose (kernel_size=3)
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  Int2 pair() const { return {h, w}; }
  // "(3, 3)", as PyTorch prints a tuple.
  std::string str() const { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; }
  bool operator==(const Size2&) const = default;
};

}  // namespace cxr::nn
