// Differentiable matmul / bmm / linear. Everything reduces to one recorded op, `product`, on
// operands with equal batch dims (or plain matrices): its gradients are products again
// (dA = G·Bᵀ, dB = Aᵀ·G, with the transposes as views), so any order of derivative works. 1-D
// operands become matrices through unsqueeze/squeeze, broadcast batch dims through expand (whose
// backward sums the gradient back), and a matrix second operand lets the first one's batch dims
// fold into its rows, so x [B, T, K] · W [K, N] is one GEMM.
//
// The public functions are on autocast's lower-precision list (autograd/autocast.h): they cast
// their operands first and then run the uncast implementation, which backward functions call
// directly (a gradient is computed in the dtype of the forward's operands).
#include "autograd/linalg.h"

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/linalg.h"

namespace cxr {
namespace {

using Grads = std::vector<Tensor>;

// a [..., M, K] · b [..., K, N] with identical batch dims (possibly none).
Tensor product(const Tensor& a, const Tensor& b) {
  Tensor out = raw::matmul(a, b);
  autograd::record("matmul", {a, b}, {out},
                   [a, b](const Grads& g) {
                     const bool ga = a.requires_grad(), gb = b.requires_grad();
                     return Grads{ga ? product(g[0], transpose(b, -1, -2)) : Tensor(),
                                  gb ? product(transpose(a, -1, -2), g[0]) : Tensor()};
                   },
                   {a, b});
  return out;
}

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  CXR_CHECK(a.defined() && b.defined(), op, ": undefined input tensor");
  CXR_CHECK(a.dim() >= 1 && b.dim() >= 1, op, ": both arguments need at least 1 dim, got ",
            describe(a), " and ", describe(b));
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  CXR_CHECK(ka == kb, op, ": inner dimensions differ: ", describe(a), " and ", describe(b), " (",
            ka, " vs ", kb, ")");
}

// matmul without autocast: the shape cases reduced to `product`.
Tensor matmul_uncast(const Tensor& a, const Tensor& b) {
  check_pair("matmul", a, b);
  if (a.dim() == 1 && b.dim() == 1) return squeeze(product(unsqueeze(a, 0), unsqueeze(b, 1)));
  if (b.dim() == 1) return squeeze(matmul_uncast(a, unsqueeze(b, 1)), -1);
  if (a.dim() == 1) return squeeze(matmul_uncast(unsqueeze(a, 0), b), -2);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  if (b.dim() == 2) {
    if (a.dim() == 2) return product(a, b);
    Shape out_shape(a.sizes().begin(), a.sizes().end() - 1);
    out_shape.push_back(n);
    return reshape(product(reshape(a, {-1, k}), b), out_shape);
  }
  const Shape batch = broadcast_shapes(Shape(a.sizes().begin(), a.sizes().end() - 2),
                                       Shape(b.sizes().begin(), b.sizes().end() - 2), "matmul");
  Shape as = batch, bs = batch;
  as.insert(as.end(), {m, k});
  bs.insert(bs.end(), {k, n});
  return product(a.sizes() == as ? a : expand(a, as), b.sizes() == bs ? b : expand(b, bs));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  return matmul_uncast(autocast_lower(a), autocast_lower(b));
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  CXR_CHECK(a.defined() && b.defined() && a.dim() == 3 && b.dim() == 3,
            "bmm: expected two 3-D tensors [B, M, K] and [B, K, N], got ",
            a.defined() ? describe(a) : "undefined", " and ",
            b.defined() ? describe(b) : "undefined");
  CXR_CHECK(a.size(0) == b.size(0), "bmm: batch sizes differ: ", describe(a), " and ", describe(b));
  return product(autocast_lower(a), autocast_lower(b));
}

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
  const Tensor x = autocast_lower(x_in), weight = autocast_lower(weight_in),
               bias = autocast_lower(bias_in);
  Tensor out = raw::linear(x, weight, bias);  // validates; bias fused into the GEMM
  autograd::record(
      "linear", {x, weight, bias}, {out},
      [x, weight, has_bias = bias.defined()](const Grads& g) {
        const int64_t in = weight.size(1), n = weight.size(0);
        Grads d(3);
        if (x.requires_grad()) d[0] = matmul_uncast(g[0], weight);
        const Tensor g2 = (weight.requires_grad() || has_bias) ? reshape(g[0], {-1, n}) : Tensor();
        if (weight.requires_grad()) d[1] = product(transpose(g2, 0, 1), reshape(x, {-1, in}));
        if (has_bias) d[2] = sum(g2, {0});
        return d;
      },
      {x, weight});
  return out;
}

}  // namespace cxr
