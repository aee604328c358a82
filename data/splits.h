// Train/val/test splits, reproducible from a seed and stored in a split file so that every
// experiment cell uses the same one; nested training fractions (1% ⊂ 10% ⊂ 100%); the split guard
// (synthetic images only in training sets); class balancing by oversampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/sample.h"

namespace cxr::data {

struct Split {
  // Sample ids. `train` is in a seeded random order: train_fraction(f) takes its first
  // round(f * n) ids (at least 1 when n > 0), so smaller fractions are subsets of larger ones.
  std::vector<std::string> train, val, test;
  uint64_t seed = 0;

  std::vector<std::string> train_fraction(double fraction) const;
};

struct SplitOptions {
  double test_fraction = 0.2;  // of the patients
  double val_fraction = 0.0;   // of the patients (taken after the test patients)
  uint64_t seed = 0;
};

// Seeded random split by patient (all images of a patient go to one subset). With P patients,
// round(test_fraction * P) patients go to test and round(val_fraction * P) to val. Synthetic
// samples never enter val/test: they go to train.
Split random_split(const Dataset& ds, const SplitOptions& options = {});
// CheXpert's official split: all of `train` (seeded order) for training, all of `test` (valid.csv)
// as the test set; optional val patients drawn from train.
Split official_split(const Dataset& train, const Dataset& test, uint64_t seed,
                     double val_fraction = 0.0);

// Split file: CSV "id,subset,rank" (subset train/val/test; rank = position in the training order),
// preceded by a "# synthcxr-split v1 seed=<seed>" line. Written atomically.
void write_split(const std::string& path, const Split& split);
Split read_split(const std::string& path);

// The split guard: throws cxr::Error when a val or test id names a synthetic sample, an id is not
// in the dataset, an id appears in two subsets, or a patient spans train and val/test.
void check_split(const Dataset& ds, const Split& split);
// Guard for an evaluation set built by hand: throws naming the first synthetic sample.
void check_no_synthetic(const Dataset& ds, const std::vector<std::string>& ids,
                        const std::string& subset_name);

// Indices of `ids` in `ds` (throws naming an unknown id).
std::vector<size_t> indices_of(const Dataset& ds, const std::vector<std::string>& ids);

// Class balancing by oversampling (seeded; draws with replacement). Single label: samples of the
// rarer class are repeated until both classes are as frequent as the most frequent one. Multilabel:
// for each label, from the rarest up, positives of that label are repeated until its positive count
// reaches that of the most frequent label. Returns the original indices followed by the repeats.
// NaN (ignored) labels count as neither class.
std::vector<size_t> oversample(const Dataset& ds, const std::vector<size_t>& indices,
                               uint64_t seed);

}  // namespace cxr::data
