// Thread-local autocast state (AutocastGuard) and the differentiable casts of its two op lists.
#include "autograd/autocast.h"

#include "autograd/views.h"  // to(): the differentiable dtype conversion

namespace cxr {
namespace {

thread_local std::optional<DType> g_autocast_dtype;

// A tensor autocast may convert: defined, floating and not float64 (as PyTorch's is_eligible).
bool eligible(const Tensor& t) {
  return t.defined() && is_floating(t.dtype()) && t.dtype() != kFloat64;
}

}  // namespace

std::optional<DType> autocast_dtype() {
  return g_autocast_dtype;
}

AutocastGuard::AutocastGuard(std::optional<DType> dtype) : previous_(g_autocast_dtype) {
  CXR_CHECK(!dtype || *dtype == kFloat16 || *dtype == kBFloat16,
            "AutocastGuard: the autocast dtype must be float16 or bfloat16 (or none to turn "
            "autocast off), got ",
            dtype_name(*dtype));
  g_autocast_dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  g_autocast_dtype = previous_;
}

Tensor autocast_lower(const Tensor& t) {
  if (!g_autocast_dtype || !eligible(t)) return t;
  return to(t, *g_autocast_dtype);
}

Tensor autocast_upcast(const Tensor& t) {
  if (!g_autocast_dtype || !eligible(t)) return t;
  return to(t, kFloat32);
}

}  // namespace cxr
