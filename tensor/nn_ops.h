// Neural-network primitives with their backward kernels: softmax, normalisation, dropout,
// embedding and memory-efficient attention.
#pragma once

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::raw {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Given y = softmax(x): dx = y * (g - sum(g * y)).
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);
// Given y = log_softmax(x): dx = g - exp(y) * sum(g).
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);

struct NormResult {
  Tensor out;
  Tensor mean;  // saved statistics for backward (float32/float64)
  Tensor rstd;  // 1 / sqrt(var + eps)
};
struct NormGrads {
  Tensor input, weight, bias;  // weight/bias undefined when the affine params are
};

// Normalises over the last `normalized_ndim` dims; weight/bias (may be undefined) have that shape.
NormResult layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                      const Tensor& bias, double eps);
NormGrads layer_norm_backward(const Tensor& grad, const Tensor& x, const NormResult& saved,
                              const Tensor& weight, int64_t normalized_ndim);
// x [N, C, *]; weight/bias [C] (may be undefined). silu=true applies SiLU after the affine step
// (the GroupNorm+SiLU pair of every SD ResNet block) in the same pass.
NormResult group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                      double eps, bool silu = false);
NormGrads group_norm_backward(const Tensor& grad, const Tensor& x, const NormResult& saved,
                              const Tensor& weight, const Tensor& bias, int64_t groups,
                              bool silu = false);
// x [N, C, *]. In training, batch statistics are used and running stats (if defined) updated in
// place with `momentum` (unbiased variance, as PyTorch); in eval, running stats are used.
NormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps);
NormGrads batch_norm_backward(const Tensor& grad, const Tensor& x, const NormResult& saved,
                              const Tensor& weight, bool training);

struct DropoutResult {
  Tensor out;
  Tensor mask;  // the scale applied per element: 0 or 1/(1-p)
};
DropoutResult dropout(const Tensor& x, double p, Generator& gen);

// weight [num, dim], indices any shape of int64/int32 -> [..., dim].
Tensor embedding(const Tensor& weight, const Tensor& indices);
Tensor embedding_backward(const Tensor& grad, const Tensor& indices, int64_t num_weights);

struct AttentionResult {
  Tensor out;  // [B, H, L, D]
  Tensor lse;  // [B, H, L] log-sum-exp of the scaled scores (+inf for a fully masked row), for
               // backward; float32 (float64 for float64 inputs)
};
struct AttentionGrads {
  Tensor q, k, v;
};
// q [B, H, L, D], k/v [B, H, S, D] (any leading batch dims). mask (optional) broadcasts to
// [B, H, L, S]: bool (true = keep) or float (added to the scores). scale <= 0 means 1/sqrt(D).
// Tiled with an online softmax: memory O(L·D), never the L×S score matrix (FlashAttention-2).
AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask, bool causal, double scale);
// Bytes of scratch memory the forward allocates besides its results (out, lse) when it runs on
// `threads` OpenMP threads: one score tile per thread, plus float32 copies of the inputs and output
// for float16/bfloat16 (a floating mask of another dtype than the inputs is converted too, not
// counted). The benchmark uses it to report the op's peak memory.
int64_t scaled_dot_product_attention_workspace_bytes(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, int threads);
AttentionGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q,
                                                     const Tensor& k, const Tensor& v,
                                                     const AttentionResult& saved,
                                                     const Tensor& mask, bool causal, double scale);

}  // namespace cxr::raw
