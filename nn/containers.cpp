// Sequential, ModuleList and ModuleDict.
#include "nn/containers.h"

namespace cxr::nn {

namespace {
ModulePtr child_at(const Module& m, size_t index) {
  const auto& children = m.named_children();
  CXR_CHECK(index < children.size(), m.type_name(), ": index ", index, " out of range for ",
            children.size(), " modules");
  return children[index].second;
}
}  // namespace

Sequential::Sequential(std::initializer_list<ModulePtr> modules) : Sequential() {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(std::initializer_list<std::pair<std::string, ModulePtr>> named)
    : Sequential() {
  for (const auto& [name, m] : named) push_back(name, m);
}

void Sequential::push_back(ModulePtr module) {
  register_module(std::to_string(size()), std::move(module));
}

void Sequential::push_back(const std::string& name, ModulePtr module) {
  register_module(name, std::move(module));
}

ModulePtr Sequential::operator[](size_t index) const {
  return child_at(*this, index);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, m] : named_children()) y = m->forward(y);
  return y;
}

ModuleList::ModuleList(std::initializer_list<ModulePtr> modules) : ModuleList() {
  for (const auto& m : modules) push_back(m);
}

void ModuleList::push_back(ModulePtr module) {
  register_module(std::to_string(size()), std::move(module));
}

ModulePtr ModuleList::operator[](size_t index) const {
  return child_at(*this, index);
}

ModuleDict::ModuleDict(std::initializer_list<std::pair<std::string, ModulePtr>> named)
    : ModuleDict() {
  for (const auto& [name, m] : named) insert(name, m);
}

void ModuleDict::insert(const std::string& name, ModulePtr module) {
  register_module(name, std::move(module));
}

bool ModuleDict::contains(const std::string& name) const {
  for (const auto& c : named_children())
    if (c.first == name) return true;
  return false;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& c : named_children()) out.push_back(c.first);
  return out;
}

ModulePtr ModuleDict::operator[](const std::string& name) const {
  for (const auto& c : named_children())
    if (c.first == name) return c.second;
  std::string known;
  for (const auto& k : keys()) known += (known.empty() ? "" : ", ") + k;
  CXR_FAIL("ModuleDict: no module '", name, "' (keys: ", known, ")");
}

}  // namespace cxr::nn
