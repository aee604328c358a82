// JsonConfig: typed, strict reading of a JSON object of settings (a model's config.json, a
// training config). Every getter checks the JSON type and names the key and the source in its
// error ("resnet50 config: key 'num_classes' must be an integer, got \"two\""); check_all_used()
// then rejects keys nobody read, naming them and listing the known ones, so a misspelt key fails
// before anything runs instead of being silently ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cxr::models {

class JsonConfig {
 public:
  // `source` names the config in errors (a file path, "resnet50 config"). Throws unless `json` is
  // an object.
  JsonConfig(nlohmann::json json, std::string source);
  // Parses a JSON file; errors name the file (and the parser's position).
  static JsonConfig from_file(const std::string& path);

  bool has(const std::string& key) const;
  // The value of `key`, or `fallback` when absent (or null). Throws on a wrong JSON type; integers
  // must be JSON integers (not 2.5), doubles accept any number.
  int64_t get_int(const std::string& key, int64_t fallback);
  double get_double(const std::string& key, double fallback);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& fallback);
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& fallback);
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& fallback);
  // A nested object as its own config (source "<source>.<key>"); an empty one when absent.
  JsonConfig get_object(const std::string& key);
  // The same without a fallback: throws naming the key when absent.
  int64_t require_int(const std::string& key);
  double require_double(const std::string& key);
  std::string require_string(const std::string& key);

  // Marks keys as read without reading them (e.g. diffusers' "_class_name", or settings a model
  // accepts but does not use); keys starting with `prefix` when it ends with '*'.
  void ignore(const std::vector<std::string>& keys);
  // Throws naming every key that no getter or ignore() touched, with the list of keys read.
  void check_all_used() const;

  const nlohmann::json& json() const { return json_; }
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json* find(const std::string& key);
  [[noreturn]] void type_error(const std::string& key, const char* expected) const;

  nlohmann::json json_;
  std::string source_;
  std::set<std::string> used_;
  std::vector<std::string> ignored_prefixes_;
};

}  // namespace cxr::models
