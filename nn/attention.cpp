// diffusers' Attention block, following AttnProcessor2_0.__call__ step by step.
#include "nn/attention.h"

#include "autograd/elementwise.h"  // add, div
#include "autograd/nn_ops.h"       // scaled_dot_product_attention
#include "autograd/views.h"        // reshape, transpose, unsqueeze
#include "tensor/views.h"          // raw::reshape, raw::unsqueeze for the mask

namespace cxr::nn {

Attention::Attention(int64_t qdim, const AttentionOptions& o)
    : Module("Attention"),
      query_dim(qdim),
      cross_attention_dim(o.cross_attention_dim.value_or(qdim)),
      heads(o.heads),
      dim_head(o.dim_head),
      options(o) {
  CXR_CHECK(qdim > 0 && cross_attention_dim > 0 && o.heads > 0 && o.dim_head > 0,
            "Attention: query_dim (", qdim, "), cross_attention_dim (", cross_attention_dim,
            "), heads (", o.heads, ") and dim_head (", o.dim_head, ") must be positive");
  CXR_CHECK(o.rescale_output_factor != 0, "Attention: rescale_output_factor must not be 0");
  const int64_t inner = o.heads * o.dim_head;
  // Registration order follows diffusers' __init__ (group_norm, to_q, to_k, to_v, to_out).
  if (o.norm_num_groups)
    group_norm =
        register_module("group_norm", std::make_shared<GroupNorm>(*o.norm_num_groups, qdim, o.eps));
  to_q = register_module("to_q", std::make_shared<Linear>(qdim, inner, o.bias));
  to_k = register_module("to_k", std::make_shared<Linear>(cross_attention_dim, inner, o.bias));
  to_v = register_module("to_v", std::make_shared<Linear>(cross_attention_dim, inner, o.bias));
  to_out = register_module("to_out", std::make_shared<ModuleList>());
  to_out->push_back(std::make_shared<Linear>(inner, qdim, o.out_bias));
  to_out->push_back(std::make_shared<Dropout>(o.dropout));
}

Tensor Attention::forward(const Tensor& hidden_states) {
  return forward(hidden_states, Tensor(), Tensor());
}

Tensor Attention::forward(const Tensor& hidden_states, const Tensor& encoder_hidden_states,
                          const Tensor& attention_mask) {
  const Tensor& x = hidden_states;
  CXR_CHECK(x.defined() && ((x.dim() == 3 && x.size(2) == query_dim) ||
                            (x.dim() == 4 && x.size(1) == query_dim)),
            "Attention: expected hidden_states [B, N, ", query_dim, "] or [B, ", query_dim,
            ", H, W], got ", x.defined() ? describe(x) : std::string("undefined"));
  const Tensor& ctx_in = encoder_hidden_states;
  CXR_CHECK(!ctx_in.defined() || (ctx_in.dim() == 3 && ctx_in.size(0) == x.size(0) &&
                                  ctx_in.size(2) == cross_attention_dim),
            "Attention: expected encoder_hidden_states [", x.size(0), ", S, ", cross_attention_dim,
            "], got ", ctx_in.defined() ? describe(ctx_in) : "");
  CXR_CHECK(ctx_in.defined() || cross_attention_dim == query_dim,
            "Attention: cross-attention block (cross_attention_dim ", cross_attention_dim,
            ") needs encoder_hidden_states");
  const int64_t b = x.size(0);
  // [B, C, H, W] -> [B, HW, C]
  Tensor h = x.dim() == 4 ? transpose(reshape(x, {b, query_dim, -1}), 1, 2) : x;
  if (group_norm) h = transpose(group_norm->forward(transpose(h, 1, 2)), 1, 2);
  const Tensor ctx = ctx_in.defined() ? ctx_in : h;

  auto split_heads = [&](const Tensor& t) {
    return transpose(reshape(t, {b, -1, heads, dim_head}), 1, 2);
  };
  Tensor q = split_heads(to_q->forward(h));
  Tensor k = split_heads(to_k->forward(ctx));
  Tensor v = split_heads(to_v->forward(ctx));

  Tensor mask = attention_mask;
  if (mask.defined()) {
    CXR_CHECK(mask.dim() >= 2 && mask.dim() <= 4,
              "Attention: attention_mask must have 2 to 4 dims, got ", describe(mask));
    if (mask.dim() == 2) mask = raw::reshape(mask, {mask.size(0), 1, 1, mask.size(1)});
    if (mask.dim() == 3) mask = raw::unsqueeze(mask, 1);
  }
  Tensor out = scaled_dot_product_attention(q, k, v, mask);
  out = reshape(transpose(out, 1, 2), {b, -1, heads * dim_head});
  out = to_out->at<Linear>(0)->forward(out);
  out = to_out->at<Dropout>(1)->forward(out);
  if (x.dim() == 4) out = reshape(transpose(out, 1, 2), x.sizes());
  if (options.residual_connection) out = add(out, x);
  if (options.rescale_output_factor != 1.0) out = div(out, options.rescale_output_factor);
  return out;
}

std::string Attention::extra_repr() const {
  return "query_dim=" + std::to_string(query_dim) +
         ", cross_attention_dim=" + std::to_string(cross_attention_dim) +
         ", heads=" + std::to_string(heads) + ", dim_head=" + std::to_string(dim_head);
}

}  // namespace cxr::nn
