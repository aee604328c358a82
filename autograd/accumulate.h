// AccumulateGrad: the graph node of a leaf tensor; it adds incoming gradients into the leaf's
// .grad.
#pragma once

#include <memory>

#include "autograd/node.h"

namespace cxr::autograd {

struct AccumulateGrad final : Node {
  explicit AccumulateGrad(std::shared_ptr<AutogradMeta> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override;

 private:
  std::shared_ptr<AutogradMeta> leaf_;
};

// a + b for gradient buffers; recorded as a differentiable add when grad mode is on (create_graph),
// so higher-order gradients flow through sums of contributions.
Tensor sum_gradients(const Tensor& a, const Tensor& b);

// The leaf's AccumulateGrad node (one per leaf, created on first use).
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);

}  // namespace cxr::autograd
