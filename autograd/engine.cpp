// The backward engine: dependency counting over the graph reachable from the roots, then nodes run
// when all their gradient contributions have arrived, latest-created first among the ready ones.
#include "autograd/engine.h"

#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/accumulate.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"

namespace cxr::autograd {

namespace {

Edge root_edge(const Tensor& t) {
  CXR_CHECK(t.defined(), "backward: a root tensor is undefined");
  CXR_CHECK(t.requires_grad(), "backward: tensor ", describe(t),
            " does not require grad and has no grad_fn (was it computed under NoGradGuard, or "
            "from inputs that do not require grad?)");
  const AutogradMeta& meta = t.autograd_meta();
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  return {grad_accumulator(t), 0};
}

// Gradients waiting for a node, one slot per output of the node.
struct InputBuffer {
  std::vector<Tensor> grads;
  void add(size_t slot, const Tensor& g) {
    if (grads.size() <= slot) grads.resize(slot + 1);
    grads[slot] = grads[slot].defined() ? sum_gradients(grads[slot], g) : g;
  }
};

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

// Where torch.autograd.grad-style capture wants the gradient flowing into (node, slot).
using CaptureMap = std::map<std::pair<Node*, uint32_t>, size_t>;

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads,
                  bool retain_graph, bool create_graph, const CaptureMap* capture,
                  std::vector<Tensor>* captured) {
  CXR_CHECK(root_grads.empty() || root_grads.size() == roots.size(), "backward: ", roots.size(),
            " roots but ", root_grads.size(), " gradients");
  // Count, for every reachable node, how many edges point at it.
  std::vector<Edge> starts;
  for (const Tensor& r : roots) starts.push_back(root_edge(r));
  std::unordered_map<Node*, int> dependencies;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const Edge& e : starts)
    if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      ++dependencies[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  struct RestoreMode {
    bool previous;
    ~RestoreMode() { GradMode::set_enabled(previous); }
  } restore{GradMode::is_enabled()};
  GradMode::set_enabled(create_graph);

  std::unordered_map<Node*, InputBuffer> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep_alive;
  for (size_t i = 0; i < roots.size(); ++i) {
    Tensor g = root_grads.empty() ? Tensor() : root_grads[i];
    if (!g.defined()) {
      CXR_CHECK(roots[i].numel() == 1, "backward: gradient can be implicitly created only for a ",
                "one-element root; got ", describe(roots[i]), " (pass a gradient)");
      g = raw::ones_like(roots[i]);
    }
    CXR_CHECK(g.sizes() == roots[i].sizes(), "backward: gradient ", describe(g),
              " does not match root ", describe(roots[i]));
    buffers[starts[i].fn.get()].add(starts[i].input_nr, g);
    keep_alive[starts[i].fn.get()] = starts[i].fn;
  }

  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  std::unordered_set<Node*> queued;
  for (const Edge& e : starts)
    if (dependencies[e.fn.get()] == 0 && queued.insert(e.fn.get()).second) ready.push(e.fn.get());

  std::vector<std::shared_ptr<Node>> executed;
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(buffers[node].grads);
    buffers.erase(node);
    grads.resize(node->outputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) {
        const auto& m = node->outputs[i];
        grads[i] = raw::zeros(m.shape, m.dtype, m.device);
      }
      if (capture) {
        auto it = capture->find({node, uint32_t(i)});
        if (it != capture->end()) (*captured)[it->second] = grads[i];
      }
    }
    std::shared_ptr<Node> owner = keep_alive[node];
    keep_alive.erase(node);
    // In grad() mode leaves are not accumulated into.
    bool is_accumulator = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    std::vector<Tensor> input_grads;
    if (!(capture && is_accumulator)) input_grads = node->apply(grads);
    executed.push_back(owner);

    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      Node* next = e.fn.get();
      if (i < input_grads.size() && input_grads[i].defined()) {
        const auto& m = next->outputs.at(e.input_nr);
        CXR_CHECK(input_grads[i].sizes() == m.shape, "backward of ", node->name(),
                  ": gradient for input ", i, " has shape ", shape_str(input_grads[i].sizes()),
                  " but the input has shape ", shape_str(m.shape));
        Tensor g =
            input_grads[i].dtype() == m.dtype ? input_grads[i] : raw::to(input_grads[i], m.dtype);
        buffers[next].add(e.input_nr, g);
      }
      keep_alive[next] = e.fn;
      if (--dependencies[next] == 0 && queued.insert(next).second) ready.push(next);
    }
  }
  if (!retain_graph)
    for (const auto& n : executed) n->release();
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  run_backward(roots, grads, retain_graph || create_graph, create_graph, nullptr, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph,
                         bool create_graph, bool allow_unused) {
  CaptureMap capture;
  std::vector<std::shared_ptr<Node>> hold;
  for (size_t i = 0; i < inputs.size(); ++i) {
    CXR_CHECK(inputs[i].requires_grad(), "grad: input ", i, " (", describe(inputs[i]),
              ") does not require grad");
    Edge e = root_edge(inputs[i]);
    hold.push_back(e.fn);
    capture[{e.fn.get(), e.input_nr}] = i;
  }
  std::vector<Tensor> result(inputs.size());
  run_backward(outputs, grad_outputs, retain_graph || create_graph, create_graph, &capture,
               &result);
  if (!allow_unused)
    for (size_t i = 0; i < result.size(); ++i)
      CXR_CHECK(result[i].defined(), "grad: input ", i, " was not used to compute the outputs");
  return result;
}

}  // namespace cxr::autograd
