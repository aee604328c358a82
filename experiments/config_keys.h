// The one-key-list pattern of the training commands' configs: a command lists each key of its
// config struct once, in a visit function, and KeyVisitor turns that list into the parser (Read:
// typed, strict, through models::JsonConfig), the `--help` text (Document) and the resolved
// config.json (Write), so documentation, parser and output cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "tensor/error.h"

namespace cxr::experiments {

// One documented key.
struct KeyDoc {
  std::string key, type, default_value, help;
};

class KeyVisitor {
 public:
  enum class Mode { Read, Document, Write };
  KeyVisitor(Mode mode, models::JsonConfig* in, std::vector<KeyDoc>* docs, nlohmann::json* out)
      : mode_(mode), in_(in), docs_(docs), out_(out) {}

  // `field` holds the default when reading; `type` and `help` document the key.
  template <typename T>
  void operator()(const char* key, T& field, const char* type, const char* help) {
    switch (mode_) {
      case Mode::Read:
        field = read(key, field);
        break;
      case Mode::Document:
        docs_->push_back({key, type, nlohmann::json(field).dump(), help});
        break;
      case Mode::Write:
        (*out_)[key] = field;
        break;
    }
  }

 private:
  int64_t read(const char* key, int64_t v) { return in_->get_int(key, v); }
  uint64_t read(const char* key, uint64_t v) {
    const int64_t x = in_->get_int(key, int64_t(v));
    CXR_CHECK(x >= 0, in_->source(), ": key '", key, "' must be >= 0, got ", x);
    return uint64_t(x);
  }
  double read(const char* key, double v) { return in_->get_double(key, v); }
  bool read(const char* key, bool v) { return in_->get_bool(key, v); }
  std::string read(const char* key, const std::string& v) { return in_->get_string(key, v); }
  std::vector<std::string> read(const char* key, const std::vector<std::string>& v) {
    return in_->get_string_list(key, v);
  }
  nlohmann::json read(const char* key, const nlohmann::json& v) {
    return in_->has(key) ? in_->get_object(key).json() : v;
  }

  Mode mode_;
  models::JsonConfig* in_;
  std::vector<KeyDoc>* docs_;
  nlohmann::json* out_;
};

// The three uses of a visit function `visit(Config&, KeyVisitor&)` listing a config's keys.
// Reads `json` over the defaults in `config` and rejects keys the list does not name.
template <typename Config, typename Visit>
void read_keys(Config& config, const nlohmann::json& json, const std::string& source, Visit visit) {
  models::JsonConfig in(json, source);
  KeyVisitor v(KeyVisitor::Mode::Read, &in, nullptr, nullptr);
  visit(config, v);
  in.check_all_used();
}
// Every key with its type, default (from `config`) and meaning.
template <typename Config, typename Visit>
std::vector<KeyDoc> document_keys(Config config, Visit visit) {
  std::vector<KeyDoc> docs;
  KeyVisitor v(KeyVisitor::Mode::Document, nullptr, &docs, nullptr);
  visit(config, v);
  return docs;
}
// The resolved config: every key of `config`.
template <typename Config, typename Visit>
nlohmann::json write_keys(Config config, Visit visit) {
  nlohmann::json out = nlohmann::json::object();
  KeyVisitor v(KeyVisitor::Mode::Write, nullptr, nullptr, &out);
  visit(config, v);
  return out;
}

// The `--help` footer listing every key with its type, default and meaning.
std::string keys_help(const std::vector<KeyDoc>& docs);

}  // namespace cxr::experiments
