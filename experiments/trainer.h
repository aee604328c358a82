// The training loop shared by `cxr train-classifier` and `cxr train-segmenter`, and the run folder
// it keeps:
//   config.json       the resolved configuration (every key)
//   split.csv         the split, when the config named no split file
//   log.txt           what was printed, with times (appended across resumptions)
//   metrics.csv       one row per epoch: train loss, validation loss and metrics, lr, seconds
//   checkpoints/last.safetensors, checkpoints/best.safetensors   (nn/checkpoint.h)
//   predictions.csv   the test set, scored by the best checkpoint
//   metrics.json      the final test (and validation) metrics, each labelled with its convention
// Every file is written atomically. The last checkpoint is written at the end of each epoch; a
// killed run continues from it with --resume and ends with the same final metrics as an
// uninterrupted run (the loader's order and augmentation depend only on seed and epoch).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "experiments/task_data.h"
#include "experiments/train_config.h"
#include "models/registry.h"

namespace cxr::experiments {

// What evaluating a model on one subset gives.
struct EvalResult {
  double loss = 0;                           // mean loss over the subset
  nlohmann::json metrics;                    // labelled metrics (metrics.json)
  std::map<std::string, double> scalars;     // metrics.csv columns, incl. the selection metric
  std::vector<std::string> prediction_rows;  // CSV rows (when asked for)
};

// The part of a run that depends on the task: the model's loss on a batch and its evaluation.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Called once the data are known (e.g. class frequencies for pos_weight).
  virtual void prepare(const TaskData& data) { (void)data; }
  // The training loss of a batch (model in train mode, gradients on).
  virtual Tensor loss(models::RunnableModel& model, const data::Batch& batch) = 0;
  // Scores every batch of `loader` (model in eval mode, no gradients). With `predictions`, fills
  // EvalResult::prediction_rows (one CSV row per image, prediction_header() columns).
  virtual EvalResult evaluate(models::RunnableModel& model, data::Loader& loader,
                              bool predictions) = 0;
  // Called once with the validation loader before the test evaluation (e.g. threshold tuning).
  virtual void calibrate(models::RunnableModel& model, data::Loader& val) {
    (void)model;
    (void)val;
  }
  virtual std::string prediction_header() const = 0;
  // The model's configuration keys that the data decides (in_channels, num_classes).
  virtual void complete_model_config(nlohmann::json& model_config) const = 0;
};

struct TrainOptions {
  std::string out;         // the run folder
  bool resume = false;     // continue the run in `out` from its last checkpoint
  int64_t stop_after = 0;  // stop after this many epochs in this invocation (0 = run to the end)
};

// Runs (or resumes) a training run: TaskData from the config, the model from the registry, the
// loop, the final evaluation. Returns the final metrics (as written to metrics.json).
nlohmann::json run_training(TaskKind kind, TrainConfig config, TrainTask& task,
                            const TrainOptions& options);

}  // namespace cxr::experiments
