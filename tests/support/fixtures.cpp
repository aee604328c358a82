// Loading golden fixtures for tests.
#include "support/fixtures.h"

#include <filesystem>

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

std::string shared_data_path(const std::string& relative) {
  return std::string(CXR_SHARED_DIR) + "/data/" + relative;
}

}  // namespace cxr::test
