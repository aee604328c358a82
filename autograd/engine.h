// Running backward: reverse topological order from the roots, accumulating into leaf .grad.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::autograd {

// Backpropagates from `roots` with the given gradients (an undefined gradient for a root means
// ones, which requires the root to have one element). Leaves that require grad accumulate into
// .grad. Without retain_graph, saved tensors are freed and a second backward through the same
// graph throws. With create_graph the backward ops are themselves recorded (higher derivatives).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {},
              bool retain_graph = false, bool create_graph = false);

// d(outputs)/d(inputs) returned instead of accumulated (like torch.autograd.grad); inputs that the
// outputs do not depend on get undefined tensors unless allow_unused is false (then it throws).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = true);

}  // namespace cxr::autograd

namespace cxr {
// loss.backward()
inline void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false) {
  autograd::backward({root}, {grad}, retain_graph);
}
}  // namespace cxr
