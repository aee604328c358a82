// Training checkpoints: model weights, optimizer, LR scheduler, loss scaler, EMA, random
// generator, step and the run's config JSON in ONE safetensors file, written atomically
// (tensor/safetensors.h: temporary file, flush, rename). Loading into fresh objects of the same
// configuration resumes the run exactly: on CPU the continued run is bit for bit the
// uninterrupted one.
//
// File layout: tensors "model/<name>", "optimizer/<key>", "scheduler/<key>", "scaler/<key>",
// "ema/<key>" (each component's state_dict) and "rng/state" (int64 [seed, offset]); metadata
// "format" = "cxr-training-checkpoint", "format_version", "step", "config", "components" and
// "optimizer" (its type).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/random.h"  // Generator
#include "tensor/tensor.h"

namespace cxr::nn {

class Optimizer;
class LRScheduler;
class LossScaler;
class EMA;

// What goes into / comes out of a checkpoint. Null components are neither saved nor restored.
struct TrainingState {
  // The model's state dict; on load the values are copied into these tensors in place (so pass
  // the tensors of the live model, e.g. module.state_dict()).
  std::map<std::string, Tensor> model;
  Optimizer* optimizer = nullptr;
  LRScheduler* scheduler = nullptr;
  LossScaler* scaler = nullptr;
  EMA* ema = nullptr;
  Generator* generator = nullptr;  // e.g. &default_generator()
  int64_t step = 0;
  std::string config;  // the run's configuration (JSON), stored verbatim
};

void save_checkpoint(const std::string& path, const TrainingState& state);

// Restores every component that `state` names from the file at `path`, plus step and config.
// The model must match exactly: every key present with the same shape and dtype, no extra keys.
// Components in the file that `state` does not name are ignored (e.g. loading weights only).
// Throws cxr::Error naming the file and the first problem (not a checkpoint, a missing
// component or key, a shape/dtype mismatch). The model is validated before anything changes;
// a later error can leave some components restored, so start over with fresh objects.
void load_checkpoint(const std::string& path, TrainingState& state);

// A checkpoint's metadata without loading its state.
struct CheckpointInfo {
  int64_t step = 0;
  std::string config;
  std::string optimizer;                // its type, or empty
  std::vector<std::string> components;  // "model", "optimizer", "scheduler", "scaler", "ema", "rng"
};
CheckpointInfo read_checkpoint_info(const std::string& path);

}  // namespace cxr::nn
