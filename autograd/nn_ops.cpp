// Differentiable NN primitives: each forward calls the raw kernel and records a node whose
// backward calls the matching raw backward kernel (tensor/nn_ops.h).
//
// Autocast (autograd/autocast.h): softmax, log_softmax, layer_norm and group_norm are on the
// float32 list (float16/bfloat16 inputs and parameters are cast up first, the result is float32),
// scaled_dot_product_attention on the lower-precision list (q, k and v are cast to the autocast
// dtype). batch_norm, dropout and embedding are on neither, as in PyTorch.
#include "autograd/nn_ops.h"

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "tensor/elementwise.h"  // raw::mul for the dropout gradient
#include "tensor/nn_ops.h"
#include "tensor/views.h"  // raw::alias

namespace cxr {

using Grads = std::vector<Tensor>;

Tensor softmax(const Tensor& x_in, int64_t dim) {
  const Tensor x = autocast_upcast(x_in);
  Tensor y = raw::softmax(x, dim);
  autograd::record("softmax", {x}, {y},
                   [ya = raw::alias(y), dim](const Grads& g) {
                     return Grads{raw::softmax_backward(g[0], ya, dim)};
                   },
                   {y});
  return y;
}

Tensor log_softmax(const Tensor& x_in, int64_t dim) {
  const Tensor x = autocast_upcast(x_in);
  Tensor y = raw::log_softmax(x, dim);
  autograd::record("log_softmax", {x}, {y},
                   [ya = raw::alias(y), dim](const Grads& g) {
                     return Grads{raw::log_softmax_backward(g[0], ya, dim)};
                   },
                   {y});
  return y;
}

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight_in,
                  const Tensor& bias_in, double eps) {
  const Tensor x = autocast_upcast(x_in), weight = autocast_upcast(weight_in),
               bias = autocast_upcast(bias_in);
  const int64_t nd = int64_t(normalized_shape.size());
  CXR_CHECK(x.defined() && nd >= 1 && nd <= x.dim() &&
                Shape(x.sizes().end() - nd, x.sizes().end()) == normalized_shape,
            "layer_norm: normalized_shape ", shape_str(normalized_shape),
            " must be non-empty and match the last dims of input ",
            x.defined() ? describe(x) : std::string("undefined"));
  raw::NormResult r = raw::layer_norm(x, nd, weight, bias, eps);
  const raw::NormResult stats{Tensor(), r.mean, r.rstd};
  const bool has_bias = bias.defined();
  autograd::record("layer_norm", {x, weight, bias}, {r.out},
                   [x, weight, stats, nd, has_bias](const Grads& g) {
                     raw::NormGrads d = raw::layer_norm_backward(g[0], x, stats, weight, nd);
                     return Grads{d.input, d.weight, has_bias ? d.bias : Tensor()};
                   },
                   {x, weight});
  return r.out;
}

Tensor group_norm(const Tensor& x_in, int64_t groups, const Tensor& weight_in,
                  const Tensor& bias_in, double eps, bool silu) {
  const Tensor x = autocast_upcast(x_in), weight = autocast_upcast(weight_in),
               bias = autocast_upcast(bias_in);
  raw::NormResult r = raw::group_norm(x, groups, weight, bias, eps, silu);
  const raw::NormResult stats{Tensor(), r.mean, r.rstd};
  autograd::record(silu ? "group_norm_silu" : "group_norm", {x, weight, bias}, {r.out},
                   [x, weight, bias, stats, groups, silu](const Grads& g) {
                     raw::NormGrads d =
                         raw::group_norm_backward(g[0], x, stats, weight, bias, groups, silu);
                     return Grads{d.input, d.weight, bias.defined() ? d.bias : Tensor()};
                   },
                   {x, weight, bias});
  return r.out;
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  raw::NormResult r =
      raw::batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps);
  const raw::NormResult stats{Tensor(), r.mean, r.rstd};
  const bool has_bias = bias.defined();
  autograd::record("batch_norm", {x, weight, bias}, {r.out},
                   [x, weight, stats, training, has_bias](const Grads& g) {
                     raw::NormGrads d = raw::batch_norm_backward(g[0], x, stats, weight, training);
                     return Grads{d.input, d.weight, has_bias ? d.bias : Tensor()};
                   },
                   {x, weight});
  return r.out;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  CXR_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  raw::DropoutResult r = raw::dropout(x, p, gen);
  autograd::record("dropout", {x}, {r.out},
                   [mask = r.mask](const Grads& g) { return Grads{raw::mul(g[0], mask)}; });
  return r.out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  Tensor out = raw::embedding(weight, indices);
  const int64_t num = weight.size(0);
  autograd::record(
      "embedding", {weight}, {out},
      [indices, num](const Grads& g) { return Grads{raw::embedding_backward(g[0], indices, num)}; },
      {indices});
  return out;
}

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const Tensor& mask, bool causal, double scale) {
  // A floating mask keeps its dtype (the kernel converts it): a float32 mask of -1e9 would become
  // -inf in float16.
  const Tensor q = autocast_lower(q_in), k = autocast_lower(k_in), v = autocast_lower(v_in);
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, mask, causal, scale);
  autograd::record("scaled_dot_product_attention", {q, k, v}, {r.out},
                   [q, k, v, mask, causal, scale,
                    saved = raw::AttentionResult{raw::alias(r.out), r.lse}](const Grads& g) {
                     raw::AttentionGrads d = raw::scaled_dot_product_attention_backward(
                         g[0], q, k, v, saved, mask, causal, scale);
                     return Grads{d.q, d.k, d.v};
                   },
                   {q, k, v, r.out});
  return r.out;
}

}  // namespace cxr
