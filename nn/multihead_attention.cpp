// MultiheadAttention: packed in-projection, heads split into [N, H, L, D], memory-efficient
// attention, heads merged, out-projection (the math of torch.nn.functional.multi_head_attention
// _forward without attention dropout).
#include "nn/multihead_attention.h"

#include <cmath>

#include "autograd/indexing.h"  // chunk
#include "autograd/linalg.h"    // linear
#include "autograd/nn_ops.h"    // scaled_dot_product_attention
#include "autograd/views.h"     // reshape, permute, transpose, slice, (un)squeeze
#include "nn/init.h"
#include "tensor/creation.h"     // raw::empty, raw::zeros
#include "tensor/elementwise.h"  // raw::add
#include "tensor/indexing.h"     // raw::masked_fill
#include "tensor/views.h"        // raw::reshape

namespace cxr::nn {

namespace {

std::string undefined_or(const Tensor& x) {
  return x.defined() ? describe(x) : std::string("undefined");
}

// A PyTorch mask (bool: true = masked out; floating: additive) as an additive float mask.
Tensor additive(const Tensor& mask, DType dtype) {
  if (is_floating(mask.dtype())) return mask;
  return raw::masked_fill(raw::zeros(mask.sizes(), dtype, mask.device()), mask, -INFINITY);
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, const MultiheadAttentionOptions& o)
    : Module("MultiheadAttention"),
      embed_dim(e),
      num_heads(h),
      head_dim(h > 0 ? e / h : 0),
      batch_first(o.batch_first) {
  CXR_CHECK(e > 0 && h > 0 && e % h == 0, "MultiheadAttention: embed_dim (", e,
            ") must be a positive multiple of num_heads (", h, ")");
  in_proj_weight = raw::empty({3 * e, e});
  if (o.bias) in_proj_bias = raw::empty({3 * e});
  register_parameter("in_proj_weight", &in_proj_weight);
  register_parameter("in_proj_bias", &in_proj_bias);
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, o.bias));
  reset_parameters();
}

void MultiheadAttention::reset_parameters(Generator& gen) {
  init::xavier_uniform(in_proj_weight, 1.0, gen);
  if (in_proj_bias.defined()) {
    init::zeros(in_proj_bias);
    init::zeros(out_proj->bias);
  }
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x);
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask, const Tensor& attn_mask,
                                   bool causal) {
  CXR_CHECK(query.defined() && key.defined() && value.defined() &&
                (query.dim() == 2 || query.dim() == 3) && key.dim() == query.dim() &&
                value.dim() == query.dim() && query.size(-1) == embed_dim &&
                key.size(-1) == embed_dim && value.size(-1) == embed_dim,
            "MultiheadAttention: expected query/key/value [L, N, ", embed_dim, "] (",
            batch_first ? "batch_first [N, L, E]" : "or unbatched [L, E]", "), got ",
            undefined_or(query), ", ", undefined_or(key), ", ", undefined_or(value));
  const bool unbatched = query.dim() == 2;
  // Everything below works on [N, L, E].
  auto to_batch_first = [&](const Tensor& t) {
    if (unbatched) return unsqueeze(t, 0);
    return batch_first ? t : transpose(t, 0, 1);
  };
  Tensor q_in = to_batch_first(query), k_in = to_batch_first(key), v_in = to_batch_first(value);
  const int64_t n = q_in.size(0), l = q_in.size(1), s = k_in.size(1);
  CXR_CHECK(k_in.size(0) == n && v_in.size(0) == n && v_in.size(1) == s,
            "MultiheadAttention: query ", describe(query), ", key ", describe(key), " and value ",
            describe(value), " disagree on batch size or key length");

  // Packed in-projection: one GEMM when query, key and value are the same tensor.
  Tensor q, k, v;
  const int64_t e = embed_dim;
  if (query.is_same(key) && key.is_same(value)) {
    std::vector<Tensor> qkv = chunk(linear(q_in, in_proj_weight, in_proj_bias), 3, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    auto part = [&](const Tensor& t, int64_t i) {
      Tensor b = in_proj_bias.defined() ? slice(in_proj_bias, 0, i * e, (i + 1) * e) : Tensor();
      return linear(t, slice(in_proj_weight, 0, i * e, (i + 1) * e), b);
    };
    q = part(q_in, 0), k = part(k_in, 1), v = part(v_in, 2);
  }
  auto heads = [&](const Tensor& t, int64_t len) {
    return permute(reshape(t, {n, len, num_heads, head_dim}), {0, 2, 1, 3});
  };

  // Masks -> one mask broadcastable to [N, H, L, S] in the SDPA convention.
  Tensor mask;
  if (key_padding_mask.defined()) {
    CXR_CHECK(key_padding_mask.numel() == n * s && key_padding_mask.dim() == (unbatched ? 1 : 2),
              "MultiheadAttention: key_padding_mask must be [N, S] = [", n, ", ", s, "], got ",
              describe(key_padding_mask));
    mask = additive(raw::reshape(key_padding_mask, {n, 1, 1, s}), q.dtype());
  }
  if (attn_mask.defined()) {
    Tensor am;
    if (attn_mask.dim() == 2) {
      CXR_CHECK(attn_mask.size(0) == l && attn_mask.size(1) == s,
                "MultiheadAttention: attn_mask must be [L, S] = [", l, ", ", s, "], got ",
                describe(attn_mask));
      am = attn_mask;
    } else {
      CXR_CHECK(attn_mask.dim() == 3 && attn_mask.size(0) == n * num_heads &&
                    attn_mask.size(1) == l && attn_mask.size(2) == s,
                "MultiheadAttention: attn_mask must be [L, S] or [N * num_heads, L, S] = [",
                n * num_heads, ", ", l, ", ", s, "], got ", describe(attn_mask));
      am = raw::reshape(attn_mask, {n, num_heads, l, s});
    }
    am = additive(am, q.dtype());
    mask = mask.defined() ? raw::add(mask, am) : am;
  }

  Tensor attn = scaled_dot_product_attention(heads(q, l), heads(k, s), heads(v, s), mask, causal);
  Tensor out = out_proj->forward(reshape(permute(attn, {0, 2, 1, 3}), {n, l, e}));
  if (unbatched) return squeeze(out, 0);
  return batch_first ? out : transpose(out, 0, 1);
}

std::string MultiheadAttention::extra_repr() const {
  return "embed_dim=" + std::to_string(embed_dim) + ", num_heads=" + std::to_string(num_heads) +
         ", batch_first=" + (batch_first ? "True" : "False");
}

}  // namespace cxr::nn
