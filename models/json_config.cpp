// JsonConfig: strict, typed reading of JSON settings (see json_config.h).
#include "models/json_config.h"

#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace cxr::models {

namespace {

std::string join(const std::set<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "(none)" : out;
}

}  // namespace

JsonConfig::JsonConfig(nlohmann::json json, std::string source)
    : json_(std::move(json)), source_(std::move(source)) {
  CXR_CHECK(json_.is_object(), source_, ": expected a JSON object, got ", json_.type_name());
}

JsonConfig JsonConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  CXR_CHECK(in.good(), "cannot open config file '", path, "'");
  try {
    return JsonConfig(nlohmann::json::parse(in, nullptr, true, /*ignore_comments=*/true), path);
  } catch (const nlohmann::json::parse_error& e) {
    CXR_FAIL("config file '", path, "' is not valid JSON: ", e.what());
  }
}

bool JsonConfig::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const nlohmann::json* JsonConfig::find(const std::string& key) {
  used_.insert(key);
  auto it = json_.find(key);
  return it == json_.end() || it->is_null() ? nullptr : &*it;
}

void JsonConfig::type_error(const std::string& key, const char* expected) const {
  CXR_FAIL(source_, ": key '", key, "' must be ", expected, ", got ", json_.at(key).dump());
}

int64_t JsonConfig::get_int(const std::string& key, int64_t fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_number_integer()) type_error(key, "an integer");
  return v->get<int64_t>();
}

double JsonConfig::get_double(const std::string& key, double fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) type_error(key, "a number");
  return v->get<double>();
}

bool JsonConfig::get_bool(const std::string& key, bool fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_boolean()) type_error(key, "true or false");
  return v->get<bool>();
}

std::string JsonConfig::get_string(const std::string& key, const std::string& fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_string()) type_error(key, "a string");
  return v->get<std::string>();
}

std::vector<int64_t> JsonConfig::get_int_list(const std::string& key,
                                              const std::vector<int64_t>& fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_array()) type_error(key, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : *v) {
    if (!e.is_number_integer()) type_error(key, "a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<double> JsonConfig::get_double_list(const std::string& key,
                                                const std::vector<double>& fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_array()) type_error(key, "a list of numbers");
  std::vector<double> out;
  for (const auto& e : *v) {
    if (!e.is_number()) type_error(key, "a list of numbers");
    out.push_back(e.get<double>());
  }
  return out;
}

std::vector<std::string> JsonConfig::get_string_list(const std::string& key,
                                                     const std::vector<std::string>& fallback) {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_array()) type_error(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) type_error(key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

JsonConfig JsonConfig::get_object(const std::string& key) {
  const auto* v = find(key);
  if (!v) return JsonConfig(nlohmann::json::object(), source_ + "." + key);
  if (!v->is_object()) type_error(key, "an object");
  return JsonConfig(*v, source_ + "." + key);
}

int64_t JsonConfig::require_int(const std::string& key) {
  CXR_CHECK(has(key), source_, ": missing required key '", key, "'");
  return get_int(key, 0);
}

double JsonConfig::require_double(const std::string& key) {
  CXR_CHECK(has(key), source_, ": missing required key '", key, "'");
  return get_double(key, 0);
}

std::string JsonConfig::require_string(const std::string& key) {
  CXR_CHECK(has(key), source_, ": missing required key '", key, "'");
  return get_string(key, {});
}

void JsonConfig::ignore(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    if (!k.empty() && k.back() == '*') {
      ignored_prefixes_.push_back(k.substr(0, k.size() - 1));
    } else {
      used_.insert(k);
    }
  }
}

void JsonConfig::check_all_used() const {
  std::set<std::string> unknown;
  for (const auto& [key, value] : json_.items()) {
    if (used_.count(key)) continue;
    bool ignored = false;
    for (const auto& p : ignored_prefixes_) ignored = ignored || key.rfind(p, 0) == 0;
    if (!ignored) unknown.insert(key);
  }
  CXR_CHECK(unknown.empty(), source_, ": unknown key", unknown.size() > 1 ? "s " : " ",
            join(unknown), " (known keys: ", join(used_), ")");
}

}  // namespace cxr::models
