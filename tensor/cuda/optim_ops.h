// Host entry points of the CUDA optimizer-side updates (tensor/cuda/optim_ops.cu), called by the
// raw ops of tensor/optim_ops.h after they validated shapes, dtypes and devices (every tensor on
// one CUDA device). Plain C++ header; the definitions exist only in CUDA builds.
#pragma once

#include <vector>

#include "tensor/optim_ops.h"

namespace cxr::cuda {

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const raw::SgdParams& p, bool first_step);
void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, const raw::AdamParams& p,
                  int64_t step);
bool unscale_and_check_finite_(const std::vector<Tensor>& grads, float inv_scale);
void ema_update_(const Tensor& shadow, const Tensor& param, double decay);

}  // namespace cxr::cuda
