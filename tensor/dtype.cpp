// DType metadata and type promotion.
#include "tensor/dtype.h"

#include "tensor/error.h"

namespace cxr {

size_t dtype_size(DType t) {
  switch (t) {
    case kFloat32: case kInt32: return 4;
    case kFloat64: case kInt64: return 8;
    case kFloat16: case kBFloat16: return 2;
    case kUInt8: case kBool: return 1;
  }
  CXR_FAIL("dtype_size: unknown dtype");
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case kFloat32: return "float32";
    case kFloat64: return "float64";
    case kFloat16: return "float16";
    case kBFloat16: return "bfloat16";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kUInt8: return "uint8";
    case kBool: return "bool";
  }
  return "unknown";
}

bool is_floating(DType t) {
  return t == kFloat32 || t == kFloat64 || t == kFloat16 || t == kBFloat16;
}
bool is_integral(DType t) { return !is_floating(t); }

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  auto rank = [](DType t) {  // category first, then width
    switch (t) {
      case kBool: return 0;
      case kUInt8: return 1;
      case kInt32: return 2;
      case kInt64: return 3;
      case kBFloat16: return 4;
      case kFloat16: return 4;
      case kFloat32: return 6;
      case kFloat64: return 7;
    }
    return 0;
  };
  // float16 with bfloat16 promotes to float32, as in PyTorch.
  if ((a == kFloat16 && b == kBFloat16) || (a == kBFloat16 && b == kFloat16)) return kFloat32;
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace cxr
