// nn::Module: the base of every layer and model. A module owns named parameters, buffers and child
// modules, registered under the names PyTorch uses, so that state_dict() keys are exactly those of
// the reference implementations ("down_blocks.0.resnets.1.conv1.weight",
// "layer3.4.bn2.num_batches_tracked") and a state dict exported by PyTorch loads with no renaming.
// Modules are held by std::shared_ptr (as torch modules are held by Python references) and are not
// copyable.
#pragma once

#include <cstdint>
#include <functional>  // apply()
#include <map>
#include <memory>  // std::shared_ptr children
#include <ostream>
#include <string>
#include <utility>  // std::pair
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

// name -> tensor, in name order (the order safetensors files use).
using StateDict = std::map<std::string, Tensor>;
// (dotted name, tensor) in registration order, depth first (PyTorch's named_parameters order).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;
using ModulePtr = std::shared_ptr<Module>;
using NamedModules = std::vector<std::pair<std::string, ModulePtr>>;

// What load_state_dict found: keys the module expects but the dict lacks, keys the dict has but
// the module does not expect, and keys present in both with different shapes.
struct LoadReport {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
  std::vector<std::string> shape_mismatches;  // "key: checkpoint [3, 4], module [4, 4]"
  bool ok() const {
    return missing_keys.empty() && unexpected_keys.empty() && shape_mismatches.empty();
  }
  // One line per non-empty list, naming every key.
  std::string str() const;
};

class Module {
 public:
  // `type_name` is what the printout shows ("Linear", "UNet2DConditionModel").
  explicit Module(std::string type_name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // The single-input forward that Sequential chains. Modules whose forward takes other arguments
  // declare their own overloads; the default throws naming the module type.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- registration (names: non-empty, no '.', unique within the module) ----
  // A parameter living in a member of the derived class (`slot` must outlive the registration,
  // i.e. be a member). An undefined slot is an absent optional parameter (PyTorch's
  // register_parameter("bias", None)): it is skipped everywhere until assigned. Defined floating
  // parameters are made to require grad.
  void register_parameter(const std::string& name, Tensor* slot);
  // A parameter owned by the module; returns the stored handle.
  Tensor& register_parameter(const std::string& name, Tensor value);
  // Buffers (running statistics, counters): in state_dict() when persistent, never trained.
  void register_buffer(const std::string& name, Tensor* slot, bool persistent = true);
  Tensor& register_buffer(const std::string& name, Tensor value, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- the tree ----
  // Parameters are deduplicated by identity (a tied weight appears once), as in PyTorch.
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<ModulePtr> children() const;
  const NamedModules& named_children() const { return children_; }
  // Every descendant (not this module itself) with its dotted path, depth first.
  NamedModules named_modules() const;
  // The child or descendant at a dotted path ("down_blocks.0.resnets"); throws when absent.
  ModulePtr submodule(const std::string& path) const;
  // The parameter or buffer at a dotted path ("encoder.layer.0.weight"); throws when absent.
  Tensor tensor(const std::string& path) const;
  // Calls fn on this module and every descendant, children first (torch's Module.apply).
  void apply(const std::function<void(Module&)>& fn);

  // ---- state ----
  // Parameters and persistent buffers under their dotted names, as detached aliases (writing into
  // them writes into the module). Tied parameters appear under each of their names.
  StateDict state_dict() const;
  // Copies matching entries into the module's tensors (in place: handles held elsewhere, such as
  // an optimizer's, stay valid), converting to each tensor's dtype. strict: nothing is loaded and
  // a cxr::Error lists every missing key, unexpected key and shape mismatch when there is any.
  // Non-strict: what matches is loaded and the report says what did not.
  LoadReport load_state_dict(const StateDict& dict, bool strict = true);

  // ---- modes and conversions (recursive) ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Converts floating parameters and buffers (and their gradients) to `dtype` in place, keeping
  // every handle valid (PyTorch's param.data = ...); integer buffers such as num_batches_tracked
  // keep their dtype.
  void to(DType dtype);
  // Moves parameters, buffers and gradients to `device`, in place.
  void to(Device device);
  // Freezes (false) or unfreezes (true) every parameter of the sub-tree.
  void requires_grad(bool on = true);
  // Number of parameter elements (each tied parameter once); trainable_only counts those that
  // require grad.
  int64_t num_parameters(bool trainable_only = false) const;
  // Drops (set_to_none) or zeroes every parameter's gradient.
  void zero_grad(bool set_to_none = true);

  // ---- printing ----
  // A tree like PyTorch's repr, each module with its own tensors (name, shape; dtype when not
  // float32; "(frozen)" when not trainable) and its sub-tree's parameter count, e.g.
  //   Net(  # 116 params
  //     (conv): Conv2d(1, 8, kernel_size=(3, 3), ...)  # weight [8, 1, 3, 3], bias [8]; 80 params
  //     (fc): Linear(in_features=8, ...)  # weight [4, 8], bias [4]; 36 params
  //   )
  std::string str() const;
  // The layer's configuration inside the parentheses ("in_features=4, out_features=2, bias=True").
  virtual std::string extra_repr() const { return {}; }

 private:
  struct Slot {
    std::string name;
    Tensor* tensor = nullptr;       // the member (or `owned`) holding the tensor
    std::unique_ptr<Tensor> owned;  // set for tensors registered by value
    bool persistent = true;         // buffers only
  };
  void check_new_name(const std::string& what, const std::string& name) const;
  void add_child(const std::string& name, ModulePtr module);
  // Calls fn(dotted name, tensor) for every defined parameter (params) or buffer of the sub-tree.
  void visit(bool params, bool recurse, const std::string& prefix,
             const std::function<void(const std::string&, Tensor&, const Slot&)>& fn) const;
  void write_tree(std::ostream& os, const std::string& name, int indent) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  NamedModules children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace cxr::nn
