// Containers of modules, as torch.nn: Sequential (chains single-input forwards), ModuleList
// (indexed children named "0", "1", ...) and ModuleDict (children by name, in insertion order).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace cxr::nn {

// Children in order, named "0", "1", ... (or explicitly, like an OrderedDict); forward(x) feeds
// each child's output to the next.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> modules);
  Sequential(std::initializer_list<std::pair<std::string, ModulePtr>> named);
  // Appends under the next index / under `name`.
  void push_back(ModulePtr module);
  void push_back(const std::string& name, ModulePtr module);
  size_t size() const { return named_children().size(); }
  ModulePtr operator[](size_t index) const;
  // The child at `index` as its concrete type; throws when it is another type.
  template <typename M>
  std::shared_ptr<M> at(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    CXR_CHECK(m != nullptr, "Sequential: child ", index, " is a ", (*this)[index]->type_name());
    return m;
  }
  Tensor forward(const Tensor& x) override;
};

// A list of modules named "0", "1", ...; no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  ModuleList(std::initializer_list<ModulePtr> modules);
  void push_back(ModulePtr module);
  size_t size() const { return named_children().size(); }
  ModulePtr operator[](size_t index) const;
  template <typename M>
  std::shared_ptr<M> at(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    CXR_CHECK(m != nullptr, "ModuleList: child ", index, " is a ", (*this)[index]->type_name());
    return m;
  }
};

// Modules by name, in insertion order; no forward of its own.
class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}
  ModuleDict(std::initializer_list<std::pair<std::string, ModulePtr>> named);
  void insert(const std::string& name, ModulePtr module);
  bool contains(const std::string& name) const;
  size_t size() const { return named_children().size(); }
  std::vector<std::string> keys() const;
  ModulePtr operator[](const std::string& name) const;
  template <typename M>
  std::shared_ptr<M> at(const std::string& name) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[name]);
    CXR_CHECK(m != nullptr, "ModuleDict: child '", name, "' is a ", (*this)[name]->type_name());
    return m;
  }
};

}  // namespace cxr::nn
