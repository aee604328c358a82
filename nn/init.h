// Parameter initialisation (torch.nn.init): each function fills a tensor in place, without
// recording gradients, drawing from a Philox Generator (the default generator when omitted), so a
// seeded model is reproducible on any thread count. Formulas follow torch/nn/init.py and the
// papers they cite (Glorot & Bengio 2010; He et al. 2015).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "nn/module.h"
#include "tensor/random.h"  // Generator, default_generator

namespace cxr::nn::init {

enum class FanMode { FanIn, FanOut };

// The recommended gain for a nonlinearity: "linear", "conv2d", "sigmoid" -> 1, "tanh" -> 5/3,
// "relu" -> sqrt(2), "leaky_relu" -> sqrt(2 / (1 + param^2)), "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
// (fan_in, fan_out) of a weight of >= 2 dims: size(1) * receptive field, size(0) * receptive field.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);

void uniform(const Tensor& t, double low = 0.0, double high = 1.0,
             Generator& gen = default_generator());
void normal(const Tensor& t, double mean = 0.0, double stddev = 1.0,
            Generator& gen = default_generator());
// Normal(mean, std) truncated to [a, b], by inverting the normal CDF on a uniform draw restricted
// to [CDF(a), CDF(b)] (as torch.nn.init.trunc_normal_).
void trunc_normal(const Tensor& t, double mean = 0.0, double stddev = 1.0, double a = -2.0,
                  double b = 2.0, Generator& gen = default_generator());
void constant(const Tensor& t, double value);
void zeros(const Tensor& t);
void ones(const Tensor& t);
// Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)); N(0, gain * sqrt(2 / (fan_in +
// fan_out))).
void xavier_uniform(const Tensor& t, double gain = 1.0, Generator& gen = default_generator());
void xavier_normal(const Tensor& t, double gain = 1.0, Generator& gen = default_generator());
// He: std = gain(nonlinearity, a) / sqrt(fan); uniform bound sqrt(3) * std. With a = sqrt(5) and
// leaky_relu this is PyTorch's default Linear/Conv weight init, bound 1 / sqrt(fan_in).
void kaiming_uniform(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                     const std::string& nonlinearity = "leaky_relu",
                     Generator& gen = default_generator());
void kaiming_normal(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                    const std::string& nonlinearity = "leaky_relu",
                    Generator& gen = default_generator());

// PyTorch's default init of a Linear/Conv layer: weight kaiming_uniform(a = sqrt(5)), bias (when
// defined) U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_weight_and_bias(const Tensor& weight, const Tensor& bias,
                             Generator& gen = default_generator());

// Zeroes every parameter of a module and returns it (ControlNet's zero convolutions).
Module& zero_module(Module& m);
template <typename M>
std::shared_ptr<M> zero_module(std::shared_ptr<M> m) {
  zero_module(static_cast<Module&>(*m));
  return m;
}

}  // namespace cxr::nn::init
