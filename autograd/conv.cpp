// Differentiable conv2d, pooling and upsampling.
//
// conv2d is bilinear in (x, w), so its two gradients, conv2d_backward_input(g, w) and
// conv2d_backward_weight(g, x), are bilinear too, and the three maps are each other's adjoints:
//   <conv(x, w), g> = <x, bwd_input(g, w)> = <w, bwd_weight(g, x)>.
// Differentiating that identity gives every gradient of each map in terms of the other two, so
// the three recorded ops below close under differentiation. Pooling and upsampling are linear in
// x (max pooling for its fixed argmax), so each forward F is recorded with backward Fᵀ (the raw
// backward kernel) and Fᵀ with backward F.
//
// conv2d is on autocast's lower-precision list (autograd/autocast.h): x, weight and bias are cast
// first; the recorded ops and their backward functions see only the cast tensors.
#include "autograd/conv.h"

#include <functional>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/indexing.h"
#include "tensor/views.h"

namespace cxr {
namespace {

using Grads = std::vector<Tensor>;

Tensor conv_weight_grad(const Tensor& g, const Tensor& x, const Shape& w_shape,
                        const Conv2dParams& p);
Tensor conv_input_grad(const Tensor& g, const Tensor& w, const Shape& x_shape,
                       const Conv2dParams& p);

// y = conv(x, w) without bias.
Tensor conv_product(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  Tensor y = raw::conv2d(x, w, Tensor(), p);
  autograd::record("conv2d", {x, w}, {y},
                   [x, w, p](const Grads& g) {
                     return Grads{
                         x.requires_grad() ? conv_input_grad(g[0], w, x.sizes(), p) : Tensor(),
                         w.requires_grad() ? conv_weight_grad(g[0], x, w.sizes(), p) : Tensor()};
                   },
                   {x, w});
  return y;
}

// z = bwd_input(g, w): <gz, z> = <conv(gz, w), g> = <bwd_weight(g, gz), w>.
Tensor conv_input_grad(const Tensor& g, const Tensor& w, const Shape& x_shape,
                       const Conv2dParams& p) {
  Tensor z = raw::conv2d_backward_input(g, w, x_shape, p);
  autograd::record("conv2d_backward_input", {g, w}, {z},
                   [g, w, p](const Grads& gz) {
                     return Grads{
                         g.requires_grad() ? conv_product(gz[0], w, p) : Tensor(),
                         w.requires_grad() ? conv_weight_grad(g, gz[0], w.sizes(), p) : Tensor()};
                   },
                   {g, w});
  return z;
}

// u = bwd_weight(g, x): <gu, u> = <conv(x, gu), g> = <bwd_input(g, gu), x>.
Tensor conv_weight_grad(const Tensor& g, const Tensor& x, const Shape& w_shape,
                        const Conv2dParams& p) {
  Tensor u = raw::conv2d_backward_weight(g, x, w_shape, p);
  autograd::record("conv2d_backward_weight", {g, x}, {u},
                   [g, x, p](const Grads& gu) {
                     return Grads{
                         g.requires_grad() ? conv_product(x, gu[0], p) : Tensor(),
                         x.requires_grad() ? conv_input_grad(g, gu[0], x.sizes(), p) : Tensor()};
                   },
                   {g, x});
  return u;
}

using LinearMap = std::function<Tensor(const Tensor&)>;

// Records out = f(x) for a map f linear in x whose adjoint is ft: the gradient is ft(g), itself
// recorded with gradient f.
Tensor apply_linear(const char* name, const char* adjoint_name, const Tensor& x, const LinearMap& f,
                    const LinearMap& ft) {
  Tensor out = f(x);
  autograd::record(name, {x}, {out}, [adjoint_name, name, f, ft](const Grads& g) {
    return Grads{apply_linear(adjoint_name, name, g[0], ft, f)};
  });
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
              const Conv2dParams& p) {
  const Tensor x = autocast_lower(x_in), weight = autocast_lower(weight_in),
               bias = autocast_lower(bias_in);
  if (!autograd::needs_grad({x, weight, bias})) return raw::conv2d(x, weight, bias, p);
  if (!bias.defined()) return conv_product(x, weight, p);
  Tensor y = raw::conv2d(x, weight, bias, p);  // validates; bias fused into the GEMM
  autograd::record(
      "conv2d", {x, weight, bias}, {y},
      [x, weight, bias, p](const Grads& g) {
        return Grads{
            x.requires_grad() ? conv_input_grad(g[0], weight, x.sizes(), p) : Tensor(),
            weight.requires_grad() ? conv_weight_grad(g[0], x, weight.sizes(), p) : Tensor(),
            bias.requires_grad() ? sum(g[0], {0, 2, 3}) : Tensor()};
      },
      {x, weight});
  return y;
}

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  raw::PoolResult r = raw::max_pool2d(x, p);
  const Shape in_shape = x.sizes(), out_shape = r.out.sizes();
  const Tensor idx = r.indices;
  // For fixed argmax indices the pool is a gather from each flattened plane; its adjoint is the
  // scatter-add of raw::max_pool2d_backward.
  const LinearMap gather = [idx, out_shape](const Tensor& t) {
    const int64_t lead = t.dim() - 2;
    Tensor flat = raw::flatten(raw::contiguous(t), lead, -1);
    return raw::reshape(raw::gather(flat, -1, raw::flatten(idx, lead, -1)), out_shape);
  };
  const LinearMap scatter = [idx, in_shape](const Tensor& g) {
    return raw::max_pool2d_backward(g, idx, in_shape);
  };
  autograd::record("max_pool2d", {x}, {r.out}, [gather, scatter](const Grads& g) {
    return Grads{apply_linear("max_pool2d_backward", "max_pool2d", g[0], scatter, gather)};
  });
  return r.out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  const Shape s = x.defined() ? x.sizes() : Shape();
  return apply_linear(
      "avg_pool2d", "avg_pool2d_backward", x,
      [p](const Tensor& t) { return raw::avg_pool2d(t, p); },
      [s, p](const Tensor& g) { return raw::avg_pool2d_backward(g, s, p); });
}

Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size) {
  const Shape s = x.defined() ? x.sizes() : Shape();
  return apply_linear(
      "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", x,
      [output_size](const Tensor& t) { return raw::adaptive_avg_pool2d(t, output_size); },
      [s](const Tensor& g) { return raw::adaptive_avg_pool2d_backward(g, s); });
}

Tensor upsample_nearest2d(const Tensor& x, Int2 output_size) {
  const Shape s = x.defined() ? x.sizes() : Shape();
  return apply_linear(
      "upsample_nearest2d", "upsample_nearest2d_backward", x,
      [output_size](const Tensor& t) { return raw::upsample_nearest2d(t, output_size); },
      [s](const Tensor& g) { return raw::upsample_nearest2d_backward(g, s); });
}

Tensor upsample_bilinear2d(const Tensor& x, Int2 output_size, bool align_corners) {
  const Shape s = x.defined() ? x.sizes() : Shape();
  return apply_linear(
      "upsample_bilinear2d", "upsample_bilinear2d_backward", x,
      [output_size, align_corners](const Tensor& t) {
        return raw::upsample_bilinear2d(t, output_size, align_corners);
      },
      [s, align_corners](const Tensor& g) {
        return raw::upsample_bilinear2d_backward(g, s, align_corners);
      });
}

}  // namespace cxr
