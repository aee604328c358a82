// Gradient checkpointing by recomputation.
#include "autograd/checkpoint.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/views.h"

namespace cxr::autograd {

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs,
                               Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  const uint64_t rng_offset = g.offset();
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  if (!needs_grad(inputs)) return outputs;

  std::vector<bool> input_requires;
  for (const Tensor& t : inputs) input_requires.push_back(t.defined() && t.requires_grad());
  auto backward = [fn, inputs, input_requires, rng_offset, &g](const std::vector<Tensor>& grads) {
    // Detached inputs: the recomputed graph ends at them.
    std::vector<Tensor> detached, wrt;
    for (size_t i = 0; i < inputs.size(); ++i) {
      Tensor d = inputs[i].defined() ? raw::alias(inputs[i]) : Tensor();
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
    std::vector<Tensor> result(inputs.size());
    for (size_t i = 0, k = 0; i < inputs.size(); ++i)
      if (input_requires[i]) result[i] = wrt_grads[k++];
    return result;
  };
  // The node's "saved" tensors are the inputs: an in-place change before backward is an error.
  record("checkpoint", inputs, outputs, backward, inputs);
  return outputs;
}

}  // namespace cxr::autograd
