// Element types of a Tensor, their sizes and names, and CXR_DISPATCH, which turns a run-time DType
// into a compile-time C++ type for a kernel.
#pragma once

#include <cstdint>      // fixed-width integer types
#include <string_view>  // dtype names

#include "tensor/half.h"

namespace cxr {

enum class DType : uint8_t { Float32, Float64, Float16, BFloat16, Int32, Int64, UInt8, Bool };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kFloat16 = DType::Float16;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kBool = DType::Bool;

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "float32", "int64", ...
bool is_floating(DType t);             // float32/64/16, bfloat16
bool is_integral(DType t);             // int32/64, uint8, bool
// The dtype that arithmetic between a and b produces (PyTorch's type promotion among categories:
// bool < integers < floating; within a category the wider type).
DType promote_types(DType a, DType b);

// C++ type <-> DType.
template <typename T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = kFloat32; };
template <> struct dtype_of<double> { static constexpr DType value = kFloat64; };
template <> struct dtype_of<Half> { static constexpr DType value = kFloat16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = kBFloat16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = kInt32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = kInt64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = kUInt8; };
template <> struct dtype_of<bool> { static constexpr DType value = kBool; };

// The type arithmetic is done in: float for the half types, the type itself otherwise.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <typename T>
using compute_t = typename compute_type<T>::type;

}  // namespace cxr

// CXR_DISPATCH_ALL(dtype, "op", [&]<typename T>() { ... }) calls the lambda with T bound to the
// C++ type of `dtype`. The _FLOAT variant accepts the floating types only and throws otherwise.
#define CXR_DISPATCH_CASE(DT, TYPE, FN) \
  case DT:                              \
    return FN.template operator()<TYPE>();

#define CXR_DISPATCH_ALL(DTYPE, OPNAME, FN)                                               \
  [&]() {                                                                                 \
    switch (DTYPE) {                                                                      \
      CXR_DISPATCH_CASE(::cxr::kFloat32, float, FN)                                       \
      CXR_DISPATCH_CASE(::cxr::kFloat64, double, FN)                                      \
      CXR_DISPATCH_CASE(::cxr::kFloat16, ::cxr::Half, FN)                                 \
      CXR_DISPATCH_CASE(::cxr::kBFloat16, ::cxr::BFloat16, FN)                            \
      CXR_DISPATCH_CASE(::cxr::kInt32, int32_t, FN)                                       \
      CXR_DISPATCH_CASE(::cxr::kInt64, int64_t, FN)                                       \
      CXR_DISPATCH_CASE(::cxr::kUInt8, uint8_t, FN)                                       \
      CXR_DISPATCH_CASE(::cxr::kBool, bool, FN)                                           \
    }                                                                                     \
    CXR_FAIL(OPNAME, ": unknown dtype");                                                  \
  }()

#define CXR_DISPATCH_FLOAT(DTYPE, OPNAME, FN)                                             \
  [&]() {                                                                                 \
    switch (DTYPE) {                                                                      \
      CXR_DISPATCH_CASE(::cxr::kFloat32, float, FN)                                       \
      CXR_DISPATCH_CASE(::cxr::kFloat64, double, FN)                                      \
      CXR_DISPATCH_CASE(::cxr::kFloat16, ::cxr::Half, FN)                                 \
      CXR_DISPATCH_CASE(::cxr::kBFloat16, ::cxr::BFloat16, FN)                            \
      default:                                                                            \
        break;                                                                            \
    }                                                                                     \
    CXR_FAIL(OPNAME, ": expected a floating dtype (float32, float64, float16, bfloat16), got ", \
             ::cxr::dtype_name(DTYPE));                                                   \
  }()
