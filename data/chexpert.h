// CheXpert v1.0 / v1.0-small reader (train.csv / valid.csv; spec/datasets.md §5.1), also accepting
// the jfhealthcare variant (absolute "/…/CheXpert-v1.0/valid/…" path prefixes, header names with
// underscores instead of spaces).
#pragma once

#include <string>
#include <vector>

#include "data/sample.h"

namespace cxr::data {

// The 5 study labels, in Sample::labels order.
const std::vector<std::string>& chexpert_labels();  // Atelectasis, Cardiomegaly, Consolidation,
                                                    // Edema, Pleural Effusion

enum class Uncertainty {
  Ones,    // -1 -> 1 (U-Ones)
  Zeros,   // -1 -> 0 (U-Zeros)
  Ignore,  // -1 -> NaN (masked out of the loss)
  Mixed,   // MGCA: Ones for Atelectasis, Edema, Pleural Effusion; Zeros for Cardiomegaly,
           // Consolidation
};

struct CheXpertOptions {
  Uncertainty uncertainty = Uncertainty::Ones;
  bool frontal_only = true;
  bool check_images = false;  // throw naming the first missing image file
};

// Reads `csv_path`; image paths are resolved under `root` (the CheXpert-v1.0[-small] folder, which
// holds train/ and valid/). Blank labels are 0. Ids are the paths from "train/" or "valid/" on
// ("train/patient00001/study1/view1_frontal.jpg"); patient ids are "patient00001".
Dataset read_chexpert(const std::string& root, const std::string& csv_path,
                      const CheXpertOptions& options = {});
// The official split: train.csv for training, valid.csv as the test set.
struct CheXpertSplit {
  Dataset train, test;
};
CheXpertSplit read_chexpert_official(const std::string& root, const CheXpertOptions& options = {});

}  // namespace cxr::data
