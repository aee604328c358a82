// nn::Module: registration, recursive traversal, state dicts, modes, conversions and printing.
#include "nn/module.h"

#include <set>
#include <sstream>

#include "autograd/views.h"   // detach for state_dict aliases
#include "tensor/creation.h"  // raw::copy_, raw::to, raw::zeros_like
#include "tensor/device.h"    // check_device_available

namespace cxr::nn {

namespace {

// Replaces t's data (storage, geometry, dtype) with src's while keeping t's handle and autograd
// data, so every copy of the handle sees the new data (PyTorch's `param.data = new`).
void replace_data(const Tensor& t, const Tensor& src) {
  TensorImpl* dst = t.unsafe_impl();
  const TensorImpl* from = src.unsafe_impl();
  dst->storage = from->storage;
  dst->sizes = from->sizes;
  dst->strides = from->strides;
  dst->offset = from->offset;
  dst->dtype = from->dtype;
}

// Applies `convert` to t's data and to its gradient, in place.
void convert_in_place(const Tensor& t, const std::function<Tensor(const Tensor&)>& convert) {
  Tensor converted = convert(t);
  if (!converted.is_same(t)) replace_data(t, converted);
  Tensor g = t.grad();
  if (g.defined()) {
    Tensor cg = convert(g);
    if (!cg.is_same(g)) t.set_grad(cg);
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string LoadReport::str() const {
  std::ostringstream os;
  if (!missing_keys.empty()) os << "missing keys: " << join(missing_keys) << "\n";
  if (!unexpected_keys.empty()) os << "unexpected keys: " << join(unexpected_keys) << "\n";
  if (!shape_mismatches.empty()) os << "shape mismatches: " << join(shape_mismatches) << "\n";
  return os.str();
}

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

Tensor Module::forward(const Tensor&) {
  CXR_FAIL(type_name_, ": this module has no single-input forward(x); call its own forward");
}

void Module::check_new_name(const std::string& what, const std::string& name) const {
  CXR_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_, ": ", what, " name '",
            name, "' must be non-empty and contain no '.'");
  auto taken = [&](const std::vector<Slot>& slots) {
    for (const auto& s : slots)
      if (s.name == name) return true;
    return false;
  };
  bool child = false;
  for (const auto& c : children_) child = child || c.first == name;
  CXR_CHECK(!taken(params_) && !taken(buffers_) && !child, type_name_, ": cannot register ", what,
            " '", name, "': the name is already used");
}

void Module::register_parameter(const std::string& name, Tensor* slot) {
  CXR_CHECK(slot != nullptr, type_name_, ": register_parameter('", name, "'): null slot");
  check_new_name("parameter", name);
  if (slot->defined()) {
    CXR_CHECK(is_floating(slot->dtype()), type_name_, ": parameter '", name,
              "' must be floating, got ", describe(*slot));
    CXR_CHECK(slot->is_leaf(), type_name_, ": parameter '", name,
              "' must be a leaf tensor (this one was produced by an op; register detach(t))");
    slot->set_requires_grad(true);
  }
  params_.push_back(Slot{name, slot, nullptr, true});
}

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  auto owned = std::make_unique<Tensor>(std::move(value));
  Tensor* slot = owned.get();
  register_parameter(name, slot);
  params_.back().owned = std::move(owned);
  return *slot;
}

void Module::register_buffer(const std::string& name, Tensor* slot, bool persistent) {
  CXR_CHECK(slot != nullptr, type_name_, ": register_buffer('", name, "'): null slot");
  check_new_name("buffer", name);
  buffers_.push_back(Slot{name, slot, nullptr, persistent});
}

Tensor& Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  auto owned = std::make_unique<Tensor>(std::move(value));
  Tensor* slot = owned.get();
  register_buffer(name, slot, persistent);
  buffers_.back().owned = std::move(owned);
  return *slot;
}

void Module::add_child(const std::string& name, ModulePtr module) {
  CXR_CHECK(module != nullptr, type_name_, ": register_module('", name, "'): null module");
  check_new_name("module", name);
  children_.emplace_back(name, std::move(module));
}

void Module::visit(bool params, bool recurse, const std::string& prefix,
                   const std::function<void(const std::string&, Tensor&, const Slot&)>& fn) const {
  for (const Slot& s : params ? params_ : buffers_)
    if (s.tensor->defined()) fn(prefix + s.name, *s.tensor, s);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->visit(params, true, prefix + name + ".", fn);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  visit(true, recurse, "", [&](const std::string& name, Tensor& t, const Slot&) {
    if (seen.insert(t.unsafe_impl()).second) out.emplace_back(name, t);
  });
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  visit(false, recurse, "", [&](const std::string& name, Tensor& t, const Slot&) {
    if (seen.insert(t.unsafe_impl()).second) out.emplace_back(name, t);
  });
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

NamedModules Module::named_modules() const {
  NamedModules out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(name + "." + sub, m);
  }
  return out;
}

ModulePtr Module::submodule(const std::string& path) const {
  const size_t dot = path.find('.');
  const std::string head = path.substr(0, dot);
  for (const auto& [name, child] : children_) {
    if (name != head) continue;
    return dot == std::string::npos ? child : child->submodule(path.substr(dot + 1));
  }
  CXR_FAIL(type_name_, ": no submodule '", head, "' (looking up '", path, "')");
}

Tensor Module::tensor(const std::string& path) const {
  const size_t dot = path.rfind('.');
  if (dot != std::string::npos) return submodule(path.substr(0, dot))->tensor(path.substr(dot + 1));
  for (const auto* slots : {&params_, &buffers_})
    for (const Slot& s : *slots)
      if (s.name == path && s.tensor->defined()) return *s.tensor;
  CXR_FAIL(type_name_, ": no parameter or buffer '", path, "'");
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& c : children_) c.second->apply(fn);
  fn(*this);
}

StateDict Module::state_dict() const {
  StateDict out;
  auto add = [&](const std::string& name, Tensor& t, const Slot& s) {
    if (s.persistent) out[name] = detach(t);
  };
  visit(true, true, "", add);
  visit(false, true, "", add);
  return out;
}

LoadReport Module::load_state_dict(const StateDict& dict, bool strict) {
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (module tensor, checkpoint tensor)
  std::set<std::string> expected;
  auto match = [&](const std::string& name, Tensor& t, const Slot& s) {
    if (!s.persistent) return;
    expected.insert(name);
    auto it = dict.find(name);
    if (it == dict.end() || !it->second.defined()) {
      report.missing_keys.push_back(name);
    } else if (it->second.sizes() != t.sizes()) {
      report.shape_mismatches.push_back(name + ": checkpoint " + shape_str(it->second.sizes()) +
                                        ", module " + shape_str(t.sizes()));
    } else {
      copies.emplace_back(t, it->second);
    }
  };
  visit(true, true, "", match);
  visit(false, true, "", match);
  for (const auto& [name, t] : dict)
    if (!expected.count(name)) report.unexpected_keys.push_back(name);
  CXR_CHECK(!strict || report.ok(), "load_state_dict: error(s) loading a state dict into ",
            type_name_, " (strict; nothing was loaded):\n", report.str());
  for (auto& [dst, src] : copies) {
    raw::copy_(dst, src);  // converts dtype (and device) to the module's
    dst.storage()->bump_version();
  }
  return report;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::to(DType dtype) {
  auto convert = [dtype](const Tensor& t) {
    return is_floating(t.dtype()) ? raw::to(t, dtype) : t;
  };
  auto each = [&](const std::string&, Tensor& t, const Slot&) { convert_in_place(t, convert); };
  visit(true, true, "", each);
  visit(false, true, "", each);
}

void Module::to(Device device) {
  check_device_available(device);
  auto convert = [device](const Tensor& t) { return raw::to(t, device); };
  auto each = [&](const std::string&, Tensor& t, const Slot&) { convert_in_place(t, convert); };
  visit(true, true, "", each);
  visit(false, true, "", each);
}

void Module::requires_grad(bool on) {
  visit(true, true, "",
        [on](const std::string&, Tensor& t, const Slot&) { t.set_requires_grad(on); });
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const Tensor& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

void Module::zero_grad(bool set_to_none) {
  visit(true, true, "", [set_to_none](const std::string&, Tensor& t, const Slot&) {
    Tensor g = t.grad();
    if (!g.defined()) return;
    if (set_to_none) {
      t.set_grad(Tensor());
    } else {
      raw::fill_(g, 0.0);
      g.storage()->bump_version();
    }
  });
}

void Module::write_tree(std::ostream& os, const std::string& name, int indent) const {
  const std::string pad(size_t(indent) * 2, ' ');
  // The module's own tensors and its sub-tree's parameter counts.
  std::vector<std::string> own;
  for (const auto* slots : {&params_, &buffers_})
    for (const Slot& s : *slots) {
      if (!s.tensor->defined()) continue;
      std::string item = s.name + " " + shape_str(s.tensor->sizes());
      if (s.tensor->dtype() != kFloat32) item += " " + std::string(dtype_name(s.tensor->dtype()));
      if (slots == &params_ && !s.tensor->requires_grad()) item += " (frozen)";
      own.push_back(item);
    }
  const int64_t total = num_parameters(), trainable = num_parameters(true);
  std::string count = std::to_string(total) + " params";
  if (trainable != total) count += " (" + std::to_string(trainable) + " trainable)";

  os << pad << (name.empty() ? "" : "(" + name + "): ") << type_name_ << "(";
  if (children_.empty()) {
    os << extra_repr() << ")  # ";
    if (!own.empty()) os << join(own) << "; ";
    os << count << "\n";
    return;
  }
  os << "  # " << count << "\n";
  if (!extra_repr().empty()) os << pad << "  " << extra_repr() << "\n";
  if (!own.empty()) os << pad << "  " << join(own) << "\n";
  for (const auto& [child_name, child] : children_) child->write_tree(os, child_name, indent + 1);
  os << pad << ")\n";
}

std::string Module::str() const {
  std::ostringstream os;
  write_tree(os, "", 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  return os << m.str();
}

}  // namespace cxr::nn
