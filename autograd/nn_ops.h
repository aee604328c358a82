// Differentiable neural-network primitives (namespace cxr) over the raw kernels of
// tensor/nn_ops.h: softmax, normalisation, dropout, embedding and memory-efficient attention.
// Signatures follow torch.nn.functional. Backward functions call the raw backward kernels, so
// these ops support first derivatives (not create_graph through their backward).
#pragma once

#include "tensor/random.h"  // Generator for dropout
#include "tensor/tensor.h"

namespace cxr {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// Normalises over the trailing dims `normalized_shape` (which must match x's last dims);
// weight/bias (optional) have that shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
// x [N, C, *]; weight/bias [C] (optional). silu = true returns silu(group_norm(x)) computed in
// one pass (the GroupNorm+SiLU pair of Stable Diffusion ResNet blocks).
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5, bool silu = false);
// x [N, C, *]. training: batch statistics, and running_mean/running_var (optional) are updated in
// place with `momentum` and the unbiased variance (not differentiated); eval: running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by
// 1/(1-p), with a mask drawn from `gen` (Philox: depends only on seed, offset and element index).
// Not training (or p == 0): returns x itself.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// Rows of weight [num, dim] picked by integer indices (any shape) -> [..., dim].
Tensor embedding(const Tensor& weight, const Tensor& indices);

// softmax(q kᵀ · scale + mask) v without materialising the scores (FlashAttention-2 on the CPU).
// q [..., L, D], k [..., S, D], v [..., S, Dv]; mask (optional, not differentiated) broadcasts to
// [..., L, S]: bool (true = keep) or floating (added). causal: row i sees keys j <= i. scale <= 0
// means 1/sqrt(D). Rows with every key masked give 0.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = {}, bool causal = false, double scale = 0);

}  // namespace cxr
