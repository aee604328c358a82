// Loading golden fixtures for tests.
#include "support/fixtures.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "tensor/error.h"

namespace cxr::test {

std::map<std::string, Tensor> load_fixture(const std::string& name) {
  std::string path = std::string(CXR_FIXTURE_DIR) + "/" + name;
  CXR_CHECK(std::filesystem::exists(path), "fixture '", path,
            "' is missing; regenerate it with the script in tests/golden/");
  return load_safetensors(path).tensors;
}

Tensor fixture_tensor(const std::map<std::string, Tensor>& fixture, const std::string& key) {
  auto it = fixture.find(key);
  CXR_CHECK(it != fixture.end(), "fixture has no tensor named '", key, "'");
  return it->second;
}

const std::map<std::string, Tensor>& cached_fixture(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, std::map<std::string, Tensor>> cache;  // nodes never move
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, load_fixture(name)).first;
  return it->second;
}

Tensor fixture_tensor(const std::string& name, const std::string& key) {
  return fixture_tensor(cached_fixture(name), key);
}

nlohmann::json fixture_json(const std::string& name, const std::string& key) {
  const std::vector<uint8_t> bytes = fixture_tensor(name, key).to_vector<uint8_t>();
  return nlohmann::json::parse(std::string(bytes.begin(), bytes.end()));
}

std::map<std::string, Tensor> fixture_entries(const std::string& name, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [key, t] : cached_fixture(name))
    if (key.compare(0, prefix.size(), prefix) == 0) out[key.substr(prefix.size())] = t;
  return out;
}

std::map<std::string, Shape> spec_key_shapes(const std::string& model) {
  const std::string path = std::string(CXR_SHARED_DIR) + "/spec/keys/" + model + ".tsv";
  std::ifstream tsv(path);
  CXR_CHECK(tsv.good(), "cannot open ", path);
  std::map<std::string, Shape> out;
  std::string line;
  for (int64_t n = 1; std::getline(tsv, line); ++n) {
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    CXR_CHECK(tab != std::string::npos, path, ":", n, ": expected key<TAB>[shape]");
    Shape shape;
    std::stringstream dims(line.substr(tab + 1));
    char c;
    int64_t d;
    dims >> c;  // '['
    while (dims >> d) {
      shape.push_back(d);
      dims >> c;  // ',' or ']'
    }
    out[line.substr(0, tab)] = shape;
  }
  return out;
}

std::string shared_data_path(const std::string& relative) {
  return std::string(CXR_SHARED_DIR) + "/data/" + relative;
}

}  // namespace cxr::test
