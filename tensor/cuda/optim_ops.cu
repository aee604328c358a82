// CUDA kernels of the optimizer-side updates (tensor/optim_ops.h): one fused strided pass per
// parameter tensor (tensor/cuda/loops.cuh) calling the functors of tensor/optim_math.h, the same
// ones the CPU loops call, so a step rounds exactly as on the CPU. Device code takes functor
// structs, not lambdas (nvcc does not allow __device__ lambdas inside CXR_DISPATCH's lambdas).
#include <utility>  // std::index_sequence

#include "tensor/creation.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/optim_ops.h"
#include "tensor/dtype.h"
#include "tensor/optim_math.h"

namespace cxr::cuda {

namespace {

// Calls f with a T& to each operand's element.
template <typename T, int N, typename F>
struct EachElement {
  F f;
  template <size_t... I>
  __device__ void call(const std::array<char*, N>& p, std::index_sequence<I...>) const {
    f(*reinterpret_cast<T*>(p[I])...);
  }
  __device__ void operator()(const std::array<char*, N>& p) const {
    call(p, std::make_index_sequence<N>{});
  }
};

template <typename T, int N, typename F>
void launch_each(const std::array<const Tensor*, N>& ts, const F& f, const char* name) {
  launch_strided<N>(ts[0]->sizes(), ts, EachElement<T, N, F>{f}, name);
}

// Unscales one element and raises the flag when it was inf/NaN. Every writer stores the same
// value 1, so the unsynchronised stores are benign and the result is deterministic.
template <typename T>
struct UnscaleFn {
  optim_math::UnscaleStep<T> f;
  int32_t* flag;
  __device__ void operator()(const std::array<char*, 1>& p) const {
    if (f(*reinterpret_cast<T*>(p[0]))) *flag = 1;
  }
};

}  // namespace

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const raw::SgdParams& p, bool first_step) {
  DeviceGuard guard(param.device());
  auto kernel = [&]<typename T>() {
    const auto f = optim_math::SgdStep<T>::make(p.lr, p.weight_decay, p.momentum, p.dampening,
                                                p.nesterov, first_step);
    if (p.momentum != 0.0)
      launch_each<T, 3>({&param, &grad, &momentum_buffer}, f, "sgd_update_");
    else
      launch_each<T, 2>({&param, &grad}, f, "sgd_update_");
  };
  CXR_DISPATCH_FLOAT(param.dtype(), "sgd_update_", kernel);
}

void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, const raw::AdamParams& p,
                  int64_t step) {
  DeviceGuard guard(param.device());
  // Without AMSGrad the fifth operand is the second moment again and is only read.
  const Tensor& vmax = p.amsgrad ? max_exp_avg_sq : exp_avg_sq;
  auto kernel = [&]<typename T>() {
    const auto f = optim_math::AdamStep<T>::make(p.lr, p.beta1, p.beta2, p.eps, p.weight_decay,
                                                 p.decoupled_weight_decay, p.amsgrad, step);
    launch_each<T, 5>({&param, &grad, &exp_avg, &exp_avg_sq, &vmax}, f, "adam_update_");
  };
  CXR_DISPATCH_FLOAT(param.dtype(), "adam_update_", kernel);
}

bool unscale_and_check_finite_(const std::vector<Tensor>& grads, float inv_scale) {
  const Device device = grads[0].device();
  DeviceGuard guard(device);
  // One flag for all gradients, read back once after the last kernel.
  const Tensor flag = raw::zeros({1}, kInt32, device);
  int32_t* flag_ptr = static_cast<int32_t*>(flag.data_ptr());
  for (const Tensor& g : grads) {
    auto kernel = [&]<typename T>() {
      launch_strided<1>(g.sizes(), {&g},
                        UnscaleFn<T>{optim_math::UnscaleStep<T>::make(inv_scale), flag_ptr},
                        "unscale_and_check_finite_");
    };
    CXR_DISPATCH_FLOAT(g.dtype(), "unscale_and_check_finite_", kernel);
  }
  return flag.item() != 0.0;
}

void ema_update_(const Tensor& shadow, const Tensor& param, double decay) {
  DeviceGuard guard(param.device());
  auto kernel = [&]<typename T>() {
    launch_each<T, 2>({&shadow, &param}, optim_math::EmaStep<T>::make(decay), "ema_update_");
  };
  CXR_DISPATCH_FLOAT(param.dtype(), "ema_update_", kernel);
}

}  // namespace cxr::cuda
