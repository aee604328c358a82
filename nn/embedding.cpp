// Embedding layer over the differentiable cxr::embedding.
#include "nn/embedding.h"

#include "autograd/elementwise.h"  // eq
#include "autograd/indexing.h"     // where
#include "autograd/nn_ops.h"       // embedding
#include "autograd/views.h"        // detach, unsqueeze
#include "nn/init.h"
#include "tensor/creation.h"  // raw::empty, raw::fill_
#include "tensor/views.h"     // raw::select

namespace cxr::nn {

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad)
    : Module("Embedding"), num_embeddings(num), embedding_dim(dim) {
  CXR_CHECK(num > 0 && dim > 0,
            "Embedding: num_embeddings and embedding_dim must be positive, got ", num, " and ",
            dim);
  if (pad) {
    CXR_CHECK(*pad >= -num && *pad < num, "Embedding: padding_idx ", *pad,
              " must be within num_embeddings (", num, ")");
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = raw::empty({num, dim});
  register_parameter("weight", &weight);
  reset_parameters();
}

void Embedding::reset_parameters(Generator& gen) {
  init::normal(weight, 0.0, 1.0, gen);
  if (padding_idx) raw::fill_(raw::select(weight, 0, *padding_idx), 0.0);
}

Tensor Embedding::forward(const Tensor& indices) {
  CXR_CHECK(indices.defined() && (indices.dtype() == kInt64 || indices.dtype() == kInt32),
            "Embedding: expected int64 or int32 indices, got ",
            indices.defined() ? describe(indices) : std::string("undefined"));
  Tensor out = embedding(weight, indices);
  if (!padding_idx) return out;
  // Rows looked up at padding_idx keep their value but pass no gradient to the table (as
  // torch's embedding_backward skips padding_idx).
  Tensor is_pad = unsqueeze(eq(indices, double(*padding_idx)), -1);
  return where(is_pad, detach(out), out);
}

std::string Embedding::extra_repr() const {
  std::string s = std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
  if (padding_idx) s += ", padding_idx=" + std::to_string(*padding_idx);
  return s;
}

}  // namespace cxr::nn
