// Embedding (torch.nn.Embedding): a lookup table weight [num_embeddings, embedding_dim],
// initialised N(0, 1); the padding_idx row (optional) starts at zero and receives no gradient.
#pragma once

#include <optional>

#include "nn/module.h"
#include "tensor/random.h"  // Generator

namespace cxr::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt);
  void reset_parameters(Generator& gen = default_generator());
  // Integer indices of any shape -> [..., embedding_dim].
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // normalised to [0, num_embeddings)
  Tensor weight;
};

}  // namespace cxr::nn
