// RSNA Pneumonia Detection (Kaggle 2018, stage 2) reader (spec/datasets.md §5.2):
// stage_2_train_labels.csv has one row per box (patientId,x,y,width,height,Target); the rows of a
// patient collapse to one binary label (max Target) and its boxes.
#pragma once

#include <string>

#include "data/sample.h"

namespace cxr::data {

struct RsnaOptions {
  std::string image_dir;      // default: <root>/stage_2_train_images
  bool check_images = false;  // throw naming the first missing image
};

// Reads <root>/stage_2_train_labels.csv (or `labels_csv` when given). Images are
// <image_dir>/<patientId>.dcm, or .png/.jpg when such a file exists. Label name "Pneumonia".
Dataset read_rsna(const std::string& root, const RsnaOptions& options = {},
                  const std::string& labels_csv = "");

}  // namespace cxr::data
