// The fused optimizer-side updates of tensor/optim_ops.h: argument checks shared by both
// backends, routing to tensor/cuda/optim_ops.cu for cuda tensors, and the CPU loops. Each loop is
// one strided pass (tensor/cpu/loops.h) calling the shared functor of tensor/optim_math.h on
// every element; rows are split across OpenMP threads, so results never depend on the thread
// count.
#include "tensor/optim_ops.h"

#include <array>
#include <atomic>
#include <utility>  // std::index_sequence

#include "tensor/backend.h"
#include "tensor/cpu/loops.h"
#include "tensor/cuda/optim_ops.h"
#include "tensor/optim_math.h"

namespace cxr::raw {

namespace {

// f(e0, e1, ...) with a reference to each same-shaped operand's element, for every element.
template <typename T, size_t N, typename F>
void for_each_element(const std::array<const Tensor*, N>& ts, const F& f) {
  cpu::for_each_row<int(N)>(
      ts[0]->sizes(), ts,
      [&](const std::array<char*, N>& ptrs, const std::array<int64_t, N>& strides, int64_t n) {
        [&]<size_t... I>(std::index_sequence<I...>) {
          if (((strides[I] == 1) && ...)) {  // the common case: contiguous rows, vectorisable
            for (int64_t j = 0; j < n; ++j) f(reinterpret_cast<T*>(ptrs[I])[j]...);
          } else {
            for (int64_t j = 0; j < n; ++j) f(reinterpret_cast<T*>(ptrs[I])[j * strides[I]]...);
          }
        }
        (std::make_index_sequence<N>{});
      });
}

// `t` (named `what`) is a defined tensor of the shape and dtype of `param`; the device is checked
// by common_device.
void check_like(const char* op, const char* what, const Tensor& t, const Tensor& param) {
  CXR_CHECK(t.defined() && t.sizes() == param.sizes() && t.dtype() == param.dtype(), op, ": ", what,
            " is ", describe(t), " but the parameter is ", describe(param));
}

void check_param(const char* op, const Tensor& param) {
  CXR_CHECK(param.defined() && is_floating(param.dtype()), op,
            ": expected a floating parameter tensor, got ", describe(param));
}

}  // namespace

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const SgdParams& p, bool first_step) {
  const char* op = "sgd_update_";
  check_param(op, param);
  check_like(op, "the gradient", grad, param);
  const bool momentum = p.momentum != 0.0;
  if (momentum) check_like(op, "the momentum buffer", momentum_buffer, param);
  common_device(op, {param, grad, momentum ? momentum_buffer : Tensor()});
  if constexpr (kCudaBuilt)
    if (param.device().is_cuda())
      return cuda::sgd_update_(param, grad, momentum_buffer, p, first_step);
  auto kernel = [&]<typename T>() {
    const auto f = optim_math::SgdStep<T>::make(p.lr, p.weight_decay, p.momentum, p.dampening,
                                                p.nesterov, first_step);
    if (momentum)
      for_each_element<T, 3>({&param, &grad, &momentum_buffer}, f);
    else
      for_each_element<T, 2>({&param, &grad}, f);
  };
  CXR_DISPATCH_FLOAT(param.dtype(), op, kernel);
}

void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, const AdamParams& p,
                  int64_t step) {
  const char* op = "adam_update_";
  check_param(op, param);
  check_like(op, "the gradient", grad, param);
  check_like(op, "exp_avg", exp_avg, param);
  check_like(op, "exp_avg_sq", exp_avg_sq, param);
  if (p.amsgrad) check_like(op, "max_exp_avg_sq", max_exp_avg_sq, param);
  CXR_CHECK(step >= 1, op, ": step must be >= 1 (counted before the update), got ", step);
  common_device(op, {param, grad, exp_avg, exp_avg_sq, p.amsgrad ? max_exp_avg_sq : Tensor()});
  if constexpr (kCudaBuilt)
    if (param.device().is_cuda())
      return cuda::adam_update_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, p, step);
  // Without AMSGrad the fifth operand is the second moment again and is only read.
  const Tensor& vmax = p.amsgrad ? max_exp_avg_sq : exp_avg_sq;
  auto kernel = [&]<typename T>() {
    const auto f = optim_math::AdamStep<T>::make(p.lr, p.beta1, p.beta2, p.eps, p.weight_decay,
                                                 p.decoupled_weight_decay, p.amsgrad, step);
    for_each_element<T, 5>({&param, &grad, &exp_avg, &exp_avg_sq, &vmax}, f);
  };
  CXR_DISPATCH_FLOAT(param.dtype(), op, kernel);
}

bool unscale_and_check_finite_(const std::vector<Tensor>& grads, float inv_scale) {
  const char* op = "unscale_and_check_finite_";
  if (grads.empty()) return false;
  for (const Tensor& g : grads)
    CXR_CHECK(g.defined() && is_floating(g.dtype()), op, ": expected floating gradients, got ",
              describe(g));
  const Device device = grads[0].device();
  for (const Tensor& g : grads) common_device(op, {grads[0], g});
  if constexpr (kCudaBuilt)
    if (device.is_cuda()) return cuda::unscale_and_check_finite_(grads, inv_scale);
  std::atomic<bool> found{false};  // set (never cleared) by any thread that sees inf/NaN
  for (const Tensor& g : grads) {
    auto kernel = [&]<typename T>() {
      const auto f = optim_math::UnscaleStep<T>::make(inv_scale);
      for_each_element<T, 1>({&g}, [&](T& v) {
        if (f(v)) found.store(true, std::memory_order_relaxed);
      });
    };
    CXR_DISPATCH_FLOAT(g.dtype(), op, kernel);
  }
  return found.load();
}

void ema_update_(const Tensor& shadow, const Tensor& param, double decay) {
  const char* op = "ema_update_";
  check_param(op, param);
  check_like(op, "the average", shadow, param);
  common_device(op, {shadow, param});
  if constexpr (kCudaBuilt)
    if (param.device().is_cuda()) return cuda::ema_update_(shadow, param, decay);
  auto kernel = [&]<typename T>() {
    for_each_element<T, 2>({&shadow, &param}, optim_math::EmaStep<T>::make(decay));
  };
  CXR_DISPATCH_FLOAT(param.dtype(), op, kernel);
}

}  // namespace cxr::raw
