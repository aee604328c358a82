// GroupNorm, LayerNorm and BatchNorm2d over the differentiable norms of autograd/nn_ops.h.
#include "nn/normalization.h"

#include <sstream>

#include "autograd/nn_ops.h"  // group_norm, layer_norm, batch_norm
#include "nn/init.h"
#include "tensor/creation.h"     // raw::empty, raw::zeros
#include "tensor/elementwise.h"  // raw::binary_ (the batch counter)

namespace cxr::nn {

namespace {
std::string undefined_or(const Tensor& x) {
  return x.defined() ? describe(x) : std::string("undefined");
}
std::string format_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
}  // namespace

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine)
    : Module("GroupNorm"), num_groups(groups), num_channels(channels), eps(eps_) {
  CXR_CHECK(groups > 0 && channels > 0 && channels % groups == 0, "GroupNorm: num_channels (",
            channels, ") must be a positive multiple of num_groups (", groups, ")");
  if (affine) {
    weight = raw::empty({channels});
    bias = raw::empty({channels});
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (weight.defined()) init::ones(weight);
  if (bias.defined()) init::zeros(bias);
}

Tensor GroupNorm::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == num_channels,
            "GroupNorm: expected input [N, ", num_channels, ", *], got ", undefined_or(x));
  return group_norm(x, num_groups, weight, bias, eps);
}

Tensor GroupNorm::forward_silu(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == num_channels,
            "GroupNorm: expected input [N, ", num_channels, ", *], got ", undefined_or(x));
  return group_norm(x, num_groups, weight, bias, eps, /*silu=*/true);
}

std::string GroupNorm::extra_repr() const {
  return std::to_string(num_groups) + ", " + std::to_string(num_channels) +
         ", eps=" + format_double(eps) + ", affine=" + (weight.defined() ? "True" : "False");
}

LayerNorm::LayerNorm(Shape shape, double eps_, bool elementwise_affine, bool has_bias)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(eps_) {
  CXR_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t d : normalized_shape)
    CXR_CHECK(d > 0, "LayerNorm: normalized_shape ", shape_str(normalized_shape),
              " must be positive");
  if (elementwise_affine) {
    weight = raw::empty(normalized_shape);
    if (has_bias) bias = raw::empty(normalized_shape);
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (weight.defined()) init::ones(weight);
  if (bias.defined()) init::zeros(bias);
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  std::string dims;
  for (int64_t d : normalized_shape) dims += std::to_string(d) + ",";
  if (normalized_shape.size() > 1) dims.pop_back();
  return "(" + dims + "), eps=" + format_double(eps) +
         ", elementwise_affine=" + (weight.defined() ? "True" : "False");
}

BatchNorm2d::BatchNorm2d(int64_t features, const BatchNormOptions& o)
    : Module("BatchNorm2d"), num_features(features), options(o) {
  CXR_CHECK(features > 0, "BatchNorm2d: num_features must be positive, got ", features);
  CXR_CHECK(!o.momentum || (*o.momentum >= 0 && *o.momentum <= 1),
            "BatchNorm2d: momentum must be in [0, 1], got ", o.momentum.value_or(0));
  if (o.affine) {
    weight = raw::empty({features});
    bias = raw::empty({features});
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  if (o.track_running_stats) {
    running_mean = raw::empty({features});
    running_var = raw::empty({features});
    num_batches_tracked = raw::zeros({}, kInt64);
  }
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
  reset_parameters();
}

void BatchNorm2d::reset_parameters() {
  if (running_mean.defined()) {
    raw::fill_(running_mean, 0.0);
    raw::fill_(running_var, 1.0);
    raw::fill_(num_batches_tracked, 0.0);
  }
  if (weight.defined()) init::ones(weight);
  if (bias.defined()) init::zeros(bias);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == num_features,
            "BatchNorm2d: expected input [N, ", num_features, ", H, W], got ", undefined_or(x));
  // As torch's _BatchNorm.forward: count the batch, and with momentum=None use the cumulative
  // average factor 1 / num_batches_tracked.
  double momentum = options.momentum.value_or(0.0);
  if (is_training() && options.track_running_stats) {
    // The counter lives on the module's device: incremented there, read back only when the
    // momentum needs it.
    raw::binary_(BinaryOp::Add, num_batches_tracked,
                 raw::ones({}, kInt64, num_batches_tracked.device()));
    if (!options.momentum) momentum = 1.0 / num_batches_tracked.item();
  }
  const bool use_batch_stats = is_training() || !options.track_running_stats;
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum,
                    options.eps);
}

std::string BatchNorm2d::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + format_double(options.eps) + ", momentum=" +
         (options.momentum ? format_double(*options.momentum) : std::string("None")) +
         ", affine=" + (weight.defined() ? "True" : "False") +
         ", track_running_stats=" + (options.track_running_stats ? "True" : "False");
}

}  // namespace cxr::nn
