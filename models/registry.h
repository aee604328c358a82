// The model registry: every network of models/ by its reference name ("resnet50", "unetplusplus",
// later "unet2d_condition", ...), built from a JSON configuration whose keys follow the reference
// constructor or config.json, with a forward pass over NAMED tensors. `cxr run-model` and the
// parity tests reach every model through it, so a new model joins by adding one entry.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "nn/module.h"

namespace cxr::models {

using TensorMap = std::map<std::string, Tensor>;

// A built model: the module (for weights, modes, parameters) and its forward over named tensors.
class RunnableModel {
 public:
  virtual ~RunnableModel() = default;
  virtual nn::Module& module() = 0;
  // Runs the forward pass on inputs whose names have been checked against the model's entry.
  virtual TensorMap forward(const TensorMap& inputs) = 0;
};

struct TensorDoc {
  std::string name;         // "input", "encoder_hidden_states"
  std::string description;  // "float32 [N, in_channels, H, W], H and W divisible by 32"
};

struct ModelEntry {
  std::string name;     // as the reference names it
  std::string summary;  // one line
  // "key: type = default  meaning", one per accepted configuration key.
  std::vector<std::string> config_keys;
  std::vector<TensorDoc> inputs;           // required
  std::vector<TensorDoc> optional_inputs;  // may be left out
  std::vector<TensorDoc> outputs;
  // Reads the model's keys from `config` (the registry then rejects keys nobody read).
  std::function<std::unique_ptr<RunnableModel>(JsonConfig& config)> build;
};

// All models, in a fixed order.
const std::vector<ModelEntry>& model_registry();
// The entry called `name`; throws listing the known names otherwise.
const ModelEntry& find_model(const std::string& name);
// Builds `name` from `config` and rejects unknown configuration keys.
std::unique_ptr<RunnableModel> build_model(const std::string& name, JsonConfig config);
// Throws naming every missing required input and every unexpected one, with the entry's list.
void check_inputs(const ModelEntry& entry, const TensorMap& inputs);
// The entry's help text: configuration keys, inputs and outputs.
std::string model_help(const ModelEntry& entry);

}  // namespace cxr::models
