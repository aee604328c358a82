// Gradient accumulation into leaves.
#include "autograd/accumulate.h"

#include "autograd/grad_mode.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"

namespace cxr::autograd {

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& grads) {
  const Tensor& g = grads.at(0);
  if (!g.defined()) return {};
  if (!leaf_->grad) {
    // A fresh tensor: the incoming gradient may be shared with other graph buffers. Under
    // create_graph the gradient keeps its history (higher derivatives), otherwise it is a copy.
    leaf_->grad = std::make_shared<Tensor>(GradMode::is_enabled() ? g : raw::clone(g));
  } else {
    *leaf_->grad = sum_gradients(*leaf_->grad, g);
  }
  return {};
}

Tensor sum_gradients(const Tensor& a, const Tensor& b) {
  Tensor out = raw::add(a, b);
  record("sum_gradients", {a, b}, {out}, [](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], g[0]};
  });
  return out;
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta& meta = leaf.autograd_meta();
  if (auto existing = meta.grad_accumulator.lock()) return existing;
  std::shared_ptr<AutogradMeta> meta_ptr = leaf.unsafe_impl()->autograd;
  auto node = std::make_shared<AccumulateGrad>(meta_ptr);
  node->outputs.push_back({leaf.sizes(), leaf.dtype(), leaf.device()});
  meta.grad_accumulator = node;
  return node;
}

}  // namespace cxr::autograd
