// Recording ops into the graph: FunctionNode (a named backward closure) and AccumulateGrad.
#include "autograd/node.h"

#include <atomic>

#include "autograd/accumulate.h"
#include "autograd/grad_mode.h"
#include "tensor/creation.h"

namespace cxr::autograd {

namespace {

std::atomic<uint64_t> g_next_sequence_nr{0};

// A node whose backward is a closure given by the op that recorded it.
struct FunctionNode final : Node {
  FunctionNode(const char* name, BackwardFn fn) : name_(name), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }

  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override {
    CXR_CHECK(fn_ != nullptr, "backward: trying to run backward through ", name_,
              " a second time, after its saved tensors were freed; pass retain_graph=true to the "
              "first backward");
    for (const auto& [storage, version] : saved_versions_)
      CXR_CHECK(storage->version() == version, "backward: a tensor saved for the backward of ",
                name_, " was modified in place after it was saved (version ", version, " -> ",
                storage->version(), "); clone() it before the in-place op");
    return fn_(grads);
  }
  void release() override {
    fn_ = nullptr;
    saved_versions_.clear();
  }

  std::string name_;
  BackwardFn fn_;
  std::vector<std::pair<std::shared_ptr<Storage>, uint64_t>> saved_versions_;
};

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  AutogradMeta& meta = t.autograd_meta();
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  return {grad_accumulator(t), 0};
}

std::shared_ptr<FunctionNode> make_node(const char* name, const std::vector<Tensor>& inputs,
                                        BackwardFn backward, const std::vector<Tensor>& saved) {
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  node->sequence_nr = g_next_sequence_nr++;
  node->next_edges.reserve(inputs.size());
  for (const Tensor& in : inputs) node->next_edges.push_back(gradient_edge(in));
  for (const Tensor& s : saved)
    if (s.defined()) node->saved_versions_.emplace_back(s.storage(), s.storage()->version());
  return node;
}

void attach_output(const std::shared_ptr<Node>& node, const Tensor& out, uint32_t index) {
  AutogradMeta& meta = out.autograd_meta();
  meta.requires_grad = true;
  meta.grad_fn = node;
  meta.output_nr = index;
}

}  // namespace

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward, const std::vector<Tensor>& saved) {
  if (!needs_grad(inputs)) return;
  auto node = make_node(name, inputs, std::move(backward), saved);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (out.defined()) {
      node->outputs.push_back({out.sizes(), out.dtype(), out.device()});
      if (is_floating(out.dtype())) attach_output(node, out, uint32_t(i));
    } else {
      node->outputs.push_back({{}, kFloat32, Device::cpu()});
    }
  }
}

void record_inplace(const char* name, const Tensor& self, const Tensor& result,
                    const std::vector<Tensor>& inputs, BackwardFn backward,
                    const std::vector<Tensor>& saved) {
  if (!needs_grad(inputs)) {
    raw::copy_(self, result);
    return;
  }
  CXR_CHECK(!inputs.empty() && inputs[0].is_same(self), name,
            ": record_inplace expects self as the first input");
  if (GradMode::is_enabled() && self.requires_grad()) {
    CXR_CHECK(!self.is_leaf(), name, ": in-place op on a leaf tensor that requires grad (",
              describe(self), "); use the out-of-place op, or NoGradGuard for parameter updates");
  }
  if (self.has_autograd_meta() && self.autograd_meta().view_base) {
    CXR_CHECK(!self.autograd_meta().view_base->requires_grad(), name,
              ": in-place op on a view of a tensor that requires grad (", describe(self),
              ") is not supported; apply it to a clone() of the view");
  }
  CXR_CHECK(result.sizes() == self.sizes(), name, ": in-place result ", describe(result),
            " does not match self ", describe(self));
  auto node = make_node(name, inputs, std::move(backward), saved);
  raw::copy_(self, result);
  node->outputs.push_back({self.sizes(), self.dtype(), self.device()});
  attach_output(node, self, 0);
}

}  // namespace cxr::autograd
