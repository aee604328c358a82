// The autograd graph: a Node per recorded op, with edges to the nodes that produced its inputs
// (or to the AccumulateGrad node of a leaf). record() is how every differentiable op joins it.
#pragma once

#include <functional>  // BackwardFn
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;  // which output of fn this edge carries the gradient for
  bool valid() const { return fn != nullptr; }
};

// Gradients of the op's outputs -> gradients of its inputs (one per input; an undefined Tensor
// means "no gradient" for that input).
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

struct Node {
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads has one entry per output; outputs that received no gradient get zeros.
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grads) = 0;
  // Frees what backward needed (saved tensors), after a backward without retain_graph.
  virtual void release() {}

  std::vector<Edge> next_edges;  // one per input of the op
  struct OutputMeta {
    Shape shape;
    DType dtype;
    Device device;
  };
  std::vector<OutputMeta> outputs;
  uint64_t sequence_nr = 0;  // creation order; later nodes run first among ready ones
};

// True when grad mode is on and at least one input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records a differentiable op when needs_grad(inputs): creates a node called `name` whose backward
// is `backward`, and makes each defined `outputs[i]` a non-leaf that requires grad with that node
// as grad_fn. `saved` lists the tensors `backward` reads: their versions are remembered and a
// later in-place change is reported when backward runs. IMPORTANT: a backward lambda that needs an
// OUTPUT of its own op must capture raw::alias(output), never the output itself (that would make
// a reference cycle output -> node -> lambda -> output).
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward, const std::vector<Tensor>& saved = {});

// For in-place ops `self op= ...`: `result` holds the new value of self computed out of place.
// Without grad it is copied into self. With grad: refuses a leaf that requires grad and a view of
// a tensor that requires grad (clear error), otherwise copies the value into self and makes the
// recorded node self's new grad_fn (self's old history becomes an input of the node through
// `inputs[0]`, which must be self).
void record_inplace(const char* name, const Tensor& self, const Tensor& result,
                    const std::vector<Tensor>& inputs, BackwardFn backward,
                    const std::vector<Tensor>& saved = {});

}  // namespace cxr::autograd
