// The description of a whole study (`cxr study CONFIG`): one JSON file with
//   name                  the study's name (the default run folder is runs/<name>)
//   phantoms              optional: {name: {layout, count, size, seed, noise,
//   prevalence:{finding:p}}}
//                         phantom datasets written to <run>/phantoms/<name> (the miniature study)
//   generator             model: an existing diffusers folder with a controlnet/ (paper scale:
//                         RoentGen + a trained ControlNet); or, when empty, train_vae, train_unet
//                         and train_controlnet: the configs of the three training commands, run in
//                         turn under <run>/generator/ (each stage's input is the previous stage's
//                         model); sampling: scheduler, steps, guidance_scale, conditioning_scale,
//                         eta, batch
//   tasks                 [{name, kind: classification | segmentation, train: the training
//                         command's config keys, metric, synthetic: {mode, mask_size, transform:
//                         {...}} (segmentation) or {prompts: {label: prompt}, balance} (classif.)}]
//   grid                  fractions (of the real training split, nested), multipliers (synthetic
//                         images per real one; 0 = real only, always run), seeds (one per trial)
//   statistics            test: welch | student | paired, alpha, confidence
//   report                sample_images: images per row of the real-vs-synthetic sheets
//   parallel              workers: grid cells trained at the same time, each in its own process
//                         (default 1); threads: OpenMP threads per worker (0: the cores divided
//                         among the workers); devices: one per worker (e.g. ["cuda:0", "cuda:1"]):
//                         worker k trains its cells on devices[k]
// Strings may use ${run} (the run folder) and ${config} (the config file's folder). Every key is
// checked before anything runs; errors name the file and the key.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/phantom_writer.h"
#include "experiments/statistics.h"
#include "experiments/synthetic_sets.h"
#include "experiments/train_config.h"
#include "models/latent_diffusion.h"

namespace cxr::experiments {

struct StudyTask {
  std::string name;  // folder-safe: [A-Za-z0-9_-]+
  TaskKind kind = TaskKind::Classification;
  nlohmann::json train;  // training-command keys (validated with parse_train_config)
  std::string metric;    // the study's metric: f1 (macro) | micro_f1 | auroc; dice | global_dice
  SegmentationPlan segmentation;
  ClassificationPlan classification;
};

struct StudyConfig {
  std::string name;
  std::map<std::string, data::PhantomDatasetOptions> phantoms;
  // generator
  std::string generator_model;  // existing folder; empty: train the three stages
  nlohmann::json train_vae, train_unet, train_controlnet;
  models::SampleOptions sampling;  // height/width 0: the generator's native size
  int64_t sample_batch = 16;
  // tasks and grid
  std::vector<StudyTask> tasks;
  std::vector<double> fractions;
  std::vector<int64_t> multipliers;  // sorted, unique, always containing 0
  std::vector<uint64_t> seeds;
  // statistics and report
  TTest test = TTest::Welch;
  double alpha = 0.05, confidence = 0.95;
  int64_t sample_images = 6;
  std::string device = "cpu";  // for every stage unless a stage's own config says otherwise
  // parallel cells
  int64_t workers = 1;
  int64_t worker_threads = 0;        // 0: hardware threads / workers (at least 1)
  std::vector<std::string> devices;  // empty, or one per worker

  bool needs_generator() const { return multipliers.back() > 0; }
};

// Parses and validates `json` (read from `source`), expanding ${run} and ${config}.
StudyConfig parse_study_config(const nlohmann::json& json, const std::string& source,
                               const std::string& run_dir, const std::string& config_dir);
// ${run} and ${config} replaced by those folders in every string of `j`.
nlohmann::json expand_paths(const nlohmann::json& j, const std::string& run_dir,
                            const std::string& config_dir);
// The inverse for the run folder: strings under `run_dir` written as ${run}/..., for provenance
// that stays the same when a run folder moves.
nlohmann::json relocatable(const nlohmann::json& j, const std::string& run_dir);
// Reads a study config file (cxr::Error naming the file when missing or not JSON).
nlohmann::json read_study_json(const std::string& path);
// The study's folder-safe name for a fraction: 0.1 -> "10", 0.01 -> "1", 0.125 -> "12.5".
std::string fraction_label(double fraction);
// The metric's key in metrics.json's "test" object and its human name ("F1", "Dice").
std::string metric_json_key(const StudyTask& task);
std::string metric_display_name(const StudyTask& task);

}  // namespace cxr::experiments
