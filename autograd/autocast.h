// Automatic mixed precision (torch.autocast): inside an AutocastGuard scope the differentiable ops
// that gain from lower precision (matmul, bmm, linear, conv2d, scaled_dot_product_attention) cast
// their floating inputs, weights and bias to the autocast dtype (float16 or bfloat16) before
// calling the raw kernel, and the numerically sensitive ones (softmax, log_softmax, layer_norm,
// group_norm, the losses) cast float16/bfloat16 inputs up to float32. The casts are the
// differentiable to() of autograd/views.h, so gradients reach float32 master parameters in
// float32. Applies on CUDA and CPU alike (the CPU stores half types and computes in float32).
//
// The lists follow PyTorch's autocast op lists (torch.amp documentation, "Autocast Op Reference"):
// batch_norm is in neither (its kernels keep float32 statistics and take half inputs with float32
// parameters), nor are elementwise ops, pooling, dropout and embedding: they run in whatever dtype
// they get. float64 tensors are never cast (gradient checks run unchanged inside a scope). The
// state is thread-local and off by default; backward passes need no scope (each cast's backward
// converts the gradient back to the dtype of the cast's input).
//
//   { AutocastGuard amp(kBFloat16); loss = cross_entropy(model.forward(x), y); }
//   backward({loss});
#pragma once

#include <optional>

#include "tensor/tensor.h"

namespace cxr {

// The dtype of the innermost active AutocastGuard on this thread; nullopt when autocast is off.
std::optional<DType> autocast_dtype();

// Sets this thread's autocast dtype for a scope and restores the previous one on exit (scopes
// nest). kFloat16 or kBFloat16 turn autocast on; std::nullopt turns it off (a float32 region inside
// an autocast one). Any other dtype throws.
class AutocastGuard {
 public:
  explicit AutocastGuard(std::optional<DType> dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  std::optional<DType> previous_;
};

// The casts of the two lists, for the ops that apply them (a loss calls autocast_upcast on its
// floating inputs first). Each returns `t` itself when autocast is off, `t` is undefined or not
// floating, is float64, or already has the target dtype.
// Lower-precision list: float32/float16/bfloat16 -> the autocast dtype.
Tensor autocast_lower(const Tensor& t);
// Float32 list: float16/bfloat16 -> float32.
Tensor autocast_upcast(const Tensor& t);

}  // namespace cxr
