// SIIM-ACR Pneumothorax (Kaggle 2019, stage 1) reader (spec/datasets.md §5.3): train-rle.csv with
// ImageId / EncodedPixels (header and values may carry spaces; the sample file names them
// fname / mask), several rows per image merged (mask = union), "-1" = empty.
#pragma once

#include <string>

#include "data/sample.h"

namespace cxr::data {

struct SiimOptions {
  bool positive_only = false;  // keep only images with a non-empty mask (as the paper does)
  std::string image_dir;       // default: <root>/dicom-images-train (searched recursively)
  bool check_images = false;   // throw naming the first image that is not found
  int64_t mask_size = 1024;    // masks are mask_size x mask_size
};

// Reads <root>/train-rle.csv (or `rle_csv`). Images are <image_dir>/**/<ImageId>.dcm (or .png).
// Label name "Pneumothorax" (1 when the mask is non-empty). Masks decode on demand.
Dataset read_siim(const std::string& root, const SiimOptions& options = {},
                  const std::string& rle_csv = "");

}  // namespace cxr::data
