// Loading golden fixtures for tests.
#include "support/fixtures.h"

#include <filesystem>
#include <mutex>

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

std::map<std::string, Tensor> fixture_entries(const std::string& name, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [key, t] : cached_fixture(name))
    if (key.compare(0, prefix.size(), prefix) == 0) out[key.substr(prefix.size())] = t;
  return out;
}

std::string shared_data_path(const std::string& relative) {
  return std::string(CXR_SHARED_DIR) + "/data/" + relative;
}

}  // namespace cxr::test
