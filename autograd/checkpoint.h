// Gradient checkpointing: run a block without keeping its activations, and recompute its forward
// during backward (what lets a full SD UNet train in limited memory).
#pragma once

#include <functional>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::autograd {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Returns fn(inputs). No graph is kept inside fn; one node stands for the whole block and, in
// backward, re-runs fn with grad enabled on detached copies of the inputs and backpropagates
// through that. `params` are the trainable tensors fn uses besides its inputs (a block's
// parameters, e.g. module.parameters()): they are inputs of the node, so their gradients reach
// .grad like any other leaf's — a parameter left out of `params` gets NO gradient from the block.
// `gen` (default: the default generator) is rewound to the same offset for the recomputation, so
// dropout inside fn draws the same mask both times.
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs,
                               const std::vector<Tensor>& params, Generator* gen = nullptr);

}  // namespace cxr::autograd
