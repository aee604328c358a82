// Gradient checkpointing by recomputation.
#include "autograd/checkpoint.h"

#include "autograd/autocast.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/views.h"

namespace cxr::autograd {

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs,
                               const std::vector<Tensor>& params, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  const uint64_t rng_offset = g.offset();
  // The recomputation runs under the autocast state of the forward pass (backward usually runs
  // outside the training step's autocast scope), so it rebuilds the same lower-precision graph.
  const std::optional<DType> amp = autocast_dtype();
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  // The node's inputs: the block's inputs, then its parameters.
  std::vector<Tensor> node_inputs = inputs;
  node_inputs.insert(node_inputs.end(), params.begin(), params.end());
  if (!needs_grad(node_inputs)) return outputs;

  std::vector<bool> input_requires;
  for (const Tensor& t : node_inputs) input_requires.push_back(t.defined() && t.requires_grad());
  const size_t n_inputs = inputs.size();
  auto backward = [fn, node_inputs, n_inputs, input_requires, rng_offset, amp,
                   &g](const std::vector<Tensor>& grads) {
    // Detached inputs: the recomputed graph ends at them (and at the parameters, used as they are).
    std::vector<Tensor> detached, wrt;
    for (size_t i = 0; i < node_inputs.size(); ++i) {
      if (i >= n_inputs) {
        if (input_requires[i]) wrt.push_back(node_inputs[i]);
        continue;
      }
      Tensor d = node_inputs[i].defined() ? raw::alias(node_inputs[i]) : Tensor();
      if (input_requires[i]) {
        d.set_requires_grad(true);
        wrt.push_back(d);
      }
      detached.push_back(d);
    }
    const uint64_t resume = g.offset();
    g.set_offset(rng_offset);
    std::vector<Tensor> recomputed;
    {
      EnableGradGuard enable;
      AutocastGuard autocast(amp);
      recomputed = fn(detached);
    }
    g.set_offset(resume);
    std::vector<Tensor> roots, root_grads;
    for (size_t i = 0; i < recomputed.size(); ++i)
      if (recomputed[i].defined() && recomputed[i].requires_grad()) {
        roots.push_back(recomputed[i]);
        root_grads.push_back(grads.at(i));
      }
    std::vector<Tensor> wrt_grads =
        roots.empty() ? std::vector<Tensor>(wrt.size()) : grad(roots, wrt, root_grads);
    std::vector<Tensor> result(node_inputs.size());
    for (size_t i = 0, k = 0; i < node_inputs.size(); ++i)
      if (input_requires[i]) result[i] = wrt_grads[k++];
    return result;
  };
  // The node's "saved" tensors are the inputs: an in-place change before backward is an error.
  record("checkpoint", node_inputs, outputs, backward, inputs);
  return outputs;
}

}  // namespace cxr::autograd
