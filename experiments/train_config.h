// The configuration of a downstream training run (`cxr train-classifier`, `cxr train-segmenter`):
// one struct, one list of its keys (visit_keys) that serves parsing, `--help` and writing the
// resolved config, so documentation and parser cannot drift apart. Bad configs — unknown keys,
// wrong types, values out of range, a missing dataset — fail before training starts with a
// message that names the key.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/config_keys.h"

namespace cxr::experiments {

enum class TaskKind { Classification, Segmentation };

struct TrainConfig {
  // ---- data ----
  std::string dataset;     // reader: rsna | chexpert (classification); siim | candid-ptx (seg.)
  std::string data_root;   // the dataset's folder, as published
  std::string split_file;  // existing split file to use; empty: made from split_seed, saved in out
  int64_t split_seed = 0;
  double test_fraction = 0.2, val_fraction = 0.1;  // of the patients (random splits)
  double train_fraction = 1.0;                     // of the training split, nested (1% ⊂ 10%)
  std::vector<std::string> labels;  // classification targets (empty: the dataset's task labels)
  bool positive_only = false;       // segmentation: keep only images with a finding (SIIM paper)
  int64_t mask_size = 0;            // segmentation: side of the RLE grid; 0 = the images' size
  std::string synthetic_dir;        // synthetic.csv folder (data/synthetic.h); empty: none
  double synthetic_per_real = 0.0;  // synthetic training images per real training image
  int64_t image_size = 224;
  bool augment = true;
  int64_t workers = 2;
  // ---- model ----
  std::string model;            // registry name: resnet18/34/50, unetplusplus
  nlohmann::json model_config;  // the model's own keys (registry), in_channels/classes set
  std::string init_weights;     // safetensors state dict to start from (e.g. ImageNet)
  // ---- optimisation ----
  int64_t epochs = 10, batch_size = 16;
  std::string optimizer = "adamw";  // adamw | adam | sgd
  double lr = 1e-3, weight_decay = 1e-4, momentum = 0.9;
  std::string schedule = "cosine";  // constant | cosine | linear
  int64_t warmup_steps = 0;
  double grad_clip = 0.0;  // max gradient norm; 0 = off
  // ---- loss ----
  double pos_weight = 0.0;  // classification: BCE pos_weight; 0 = none, -1 = negatives/positives
  double dice_weight = 1.0, bce_weight = 1.0;  // segmentation: Dice + BCE
  // ---- evaluation ----
  std::string select_metric;    // metric chosen on val for the best checkpoint (see help)
  bool tune_threshold = false;  // classification: F1 threshold chosen on val instead of 0.5
  // ---- run ----
  uint64_t seed = 0;
  std::string device = "cpu";
};

// The task's defaults (dataset, model, image size, selection metric differ).
TrainConfig default_train_config(TaskKind task);
// Parses a config object on top of the task's defaults and validates every value; errors name
// `source` and the key.
TrainConfig parse_train_config(TaskKind task, const nlohmann::json& json,
                               const std::string& source);
// Every key with its type, default and meaning, in order.
std::vector<KeyDoc> train_config_keys(TaskKind task);
std::string train_config_help(TaskKind task);
// The resolved config (every key, defaults filled in).
nlohmann::json train_config_json(TaskKind task, const TrainConfig& config);
// Applies "key=value" overrides (value parsed as JSON, else taken as a string; "a.b=v" sets a
// nested key) to a config object.
nlohmann::json apply_overrides(nlohmann::json json, const std::vector<std::string>& overrides);

}  // namespace cxr::experiments
