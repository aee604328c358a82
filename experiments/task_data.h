// The data of a downstream run: the dataset read by its reader, the split (from a split file or
// made from a seed and saved in the run folder), the nested training fraction, the synthetic
// images added at `synthetic_per_real` per real training image, and the three example sources
// (training with augmentation; validation and test without). The split guard keeps synthetic
// images out of validation and test.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "data/sample.h"
#include "data/splits.h"
#include "experiments/train_config.h"

namespace cxr::experiments {

struct TaskData {
  std::vector<std::string> label_names;  // classification targets (segmentation: the finding)
  std::shared_ptr<const data::Dataset> train, val, test;  // the samples of each subset
  std::shared_ptr<data::ExampleSource> train_source, val_source, test_source;
  data::Split split;             // the split used (of the real dataset)
  bool split_generated = false;  // made from the seed (to be saved with the run)
  int64_t real_train = 0, synthetic_train = 0;
  // Per label: positives and negatives among the training samples (known labels only).
  std::vector<int64_t> positives, negatives;
  // "rsna: 960 train (800 real + 160 synthetic), 120 val, 240 test".
  std::string summary() const;
};

// Reads the dataset named by the config and prepares the subsets (writing nothing). Throws naming
// the problem (unknown label, too few synthetic images, empty subset).
TaskData prepare_task_data(TaskKind task, const TrainConfig& config);

}  // namespace cxr::experiments
