// Golden fixtures: safetensors files written by the PyTorch scripts in tests/golden/ and committed
// under tests/fixtures/. The C++ tests only read them.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "tensor/safetensors.h"

namespace cxr::test {

// Loads tests/fixtures/<name> (e.g. "elementwise.safetensors"); fails the test with a clear message
// when the file is missing.
std::map<std::string, Tensor> load_fixture(const std::string& name);
// The tensor called `key` of a loaded fixture; throws naming the key when absent.
Tensor fixture_tensor(const std::map<std::string, Tensor>& fixture, const std::string& key);
// load_fixture(name), loaded once per name for the whole process (thread-safe) and kept; the
// tensors are shared, so tests must not write into them (clone first).
const std::map<std::string, Tensor>& cached_fixture(const std::string& name);
// fixture_tensor(cached_fixture(name), key).
Tensor fixture_tensor(const std::string& name, const std::string& key);
// A JSON document stored in fixture `name` as the bytes of tensor `key` (e.g. the config.json a
// reference library wrote for a case).
nlohmann::json fixture_json(const std::string& name, const std::string& key);
// The tensors of fixture `name` whose keys start with `prefix`, under their keys with the prefix
// removed (e.g. a model's state dict stored as "<case>.param.<name>").
std::map<std::string, Tensor> fixture_entries(const std::string& name, const std::string& prefix);
// key -> shape of ../shared/spec/keys/<model>.tsv ("key<TAB>[d0, d1, ...]" per line): the
// reference state dicts (unet, vae, clip_text, controlnet). Throws naming the file and the line.
std::map<std::string, Shape> spec_key_shapes(const std::string& model);
// ../shared/data/<relative> (the real dataset samples).
std::string shared_data_path(const std::string& relative);

}  // namespace cxr::test
