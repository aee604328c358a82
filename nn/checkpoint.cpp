// Training checkpoints in one safetensors file (see checkpoint.h for the layout).
#include "nn/checkpoint.h"

#include <charconv>  // std::from_chars for the step
#include <cstring>   // std::memcpy (uint64 <-> int64 bits)
#include <sstream>

#include "autograd/grad_mode.h"  // NoGradGuard
#include "nn/grad_utils.h"       // EMA
#include "nn/loss_scaler.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/creation.h"
#include "tensor/safetensors.h"

namespace cxr::nn {

namespace {

constexpr const char* kFormat = "cxr-training-checkpoint";
constexpr const char* kFormatVersion = "1";

void put(std::map<std::string, Tensor>& out, const std::string& prefix,
         const std::map<std::string, Tensor>& part) {
  for (const auto& [key, t] : part) out[prefix + "/" + key] = t;
}

// The entries "<prefix>/<key>" of a loaded file, keyed by <key>.
std::map<std::string, Tensor> take(const std::map<std::string, Tensor>& all,
                                   const std::string& prefix) {
  std::map<std::string, Tensor> part;
  const std::string p = prefix + "/";
  for (auto it = all.lower_bound(p); it != all.end() && it->first.rfind(p, 0) == 0; ++it)
    part[it->first.substr(p.size())] = it->second;
  return part;
}

std::vector<std::string> split_components(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

CheckpointInfo parse_info(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto format = meta.find("format");
  CXR_CHECK(format != meta.end() && format->second == kFormat, "load_checkpoint: '", path,
            "' is not a training checkpoint (its metadata has no format \"", kFormat, "\")");
  auto version = meta.find("format_version");
  CXR_CHECK(version != meta.end() && version->second == kFormatVersion, "load_checkpoint: '", path,
            "' has checkpoint format version '",
            version == meta.end() ? std::string("none") : version->second, "'; expected ",
            kFormatVersion);
  CheckpointInfo info;
  for (const char* key : {"step", "config", "components"})
    CXR_CHECK(meta.count(key), "load_checkpoint: '", path, "' has no '", key, "' metadata");
  const std::string& step = meta.at("step");
  auto [end, ec] = std::from_chars(step.data(), step.data() + step.size(), info.step);
  CXR_CHECK(ec == std::errc() && end == step.data() + step.size() && info.step >= 0,
            "load_checkpoint: '", path, "' has a malformed step '", step, "'");
  info.config = meta.at("config");
  info.components = split_components(meta.at("components"));
  if (auto it = meta.find("optimizer"); it != meta.end()) info.optimizer = it->second;
  return info;
}

bool has_component(const CheckpointInfo& info, const std::string& name) {
  for (const auto& c : info.components)
    if (c == name) return true;
  return false;
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& state) {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  std::string components = "model";
  put(tensors, "model", state.model);
  if (state.optimizer) {
    put(tensors, "optimizer", state.optimizer->state_dict());
    meta["optimizer"] = state.optimizer->type_name();
    components += ",optimizer";
  }
  if (state.scheduler) {
    put(tensors, "scheduler", state.scheduler->state_dict());
    components += ",scheduler";
  }
  if (state.scaler) {
    put(tensors, "scaler", state.scaler->state_dict());
    components += ",scaler";
  }
  if (state.ema) {
    put(tensors, "ema", state.ema->state_dict());
    components += ",ema";
  }
  if (state.generator) {
    std::vector<int64_t> words(2);
    const uint64_t raw_words[2] = {state.generator->seed(), state.generator->offset()};
    std::memcpy(words.data(), raw_words, sizeof(raw_words));
    tensors["rng/state"] = raw::from_vector(words, {2});
    components += ",rng";
  }
  CXR_CHECK(state.step >= 0, "save_checkpoint: step must be >= 0, got ", state.step);
  meta["format"] = kFormat;
  meta["format_version"] = kFormatVersion;
  meta["step"] = std::to_string(state.step);
  meta["config"] = state.config;
  meta["components"] = components;
  save_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  return parse_info(path, load_safetensors(path).metadata);
}

void load_checkpoint(const std::string& path, TrainingState& state) {
  const SafetensorsFile file = load_safetensors(path);
  const CheckpointInfo info = parse_info(path, file.metadata);
  const auto& all = file.tensors;
  auto require = [&](const char* component) {
    CXR_CHECK(has_component(info, component), "load_checkpoint: '", path, "' holds no ", component,
              " state (it has: ", file.metadata.at("components"), ")");
  };

  // The model first: every key, shape and dtype is checked before anything is written.
  const auto model = take(all, "model");
  for (const auto& [key, dst] : state.model) {
    auto it = model.find(key);
    CXR_CHECK(it != model.end(), "load_checkpoint: '", path, "' has no model tensor '", key, "'");
    CXR_CHECK(
        dst.defined() && it->second.sizes() == dst.sizes() && it->second.dtype() == dst.dtype(),
        "load_checkpoint: '", path, "': model tensor '", key, "' is ", describe(it->second),
        " in the file but ", dst.defined() ? describe(dst) : std::string("undefined"),
        " in the model");
  }
  for (const auto& [key, t] : model)
    CXR_CHECK(state.model.count(key), "load_checkpoint: '", path, "' has model tensor '", key,
              "' (", describe(t), ") that the model does not have");

  if (state.optimizer) {
    require("optimizer");
    CXR_CHECK(info.optimizer == state.optimizer->type_name(), "load_checkpoint: '", path,
              "' holds the state of a ", info.optimizer, " optimizer, not of ",
              state.optimizer->type_name());
    state.optimizer->load_state_dict(take(all, "optimizer"));
  }
  if (state.scheduler) {
    require("scheduler");
    state.scheduler->load_state_dict(take(all, "scheduler"));
  }
  if (state.scaler) {
    require("scaler");
    state.scaler->load_state_dict(take(all, "scaler"));
  }
  if (state.ema) {
    require("ema");
    state.ema->load_state_dict(take(all, "ema"));
  }
  if (state.generator) {
    require("rng");
    auto it = all.find("rng/state");
    CXR_CHECK(it != all.end() && it->second.dtype() == kInt64 && it->second.numel() == 2,
              "load_checkpoint: '", path, "' has no valid 'rng/state' (int64 [2])");
    const auto words = it->second.to_vector<int64_t>();
    uint64_t raw_words[2];
    std::memcpy(raw_words, words.data(), sizeof(raw_words));
    state.generator->manual_seed(raw_words[0]);
    state.generator->set_offset(raw_words[1]);
  }
  {
    autograd::NoGradGuard no_grad;
    for (const auto& [key, dst] : state.model) {
      raw::copy_(dst, model.at(key));
      dst.storage()->bump_version();
    }
  }
  state.step = info.step;
  state.config = info.config;
}

}  // namespace cxr::nn
