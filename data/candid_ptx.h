// CANDID-PTX reader (Feng et al., Radiology: AI 2021; spec/datasets.md §5.4 and
// ../shared/data/candid_ptx/README.md — schema read from public loaders, not from the real files):
// <root>/Pneumothorax_reports.csv (SOPInstanceUID, filename, EncodedPixels, Report, ...; several
// rows per image = union; "-1" = negative), <root>/chest_tube.csv and <root>/acute_rib_fracture.csv
// (or Rib_fracture_mask_rle.csv) with columns anon_SOPUID, annotation_ref, mask_rle (a row means
// the finding is present; absent images are negative). Images: <root>/dataset/<SOPInstanceUID>,
// matched by exact name (the CSV value may include ".dcm"; otherwise ".dcm"/".png" is tried). RLEs
// are SIIM-style relative column-major at 1024x1024.
#pragma once

#include <string>

#include "data/sample.h"

namespace cxr::data {

struct CandidPtxOptions {
  std::string image_dir;       // default: <root>/dataset
  bool check_images = false;   // throw naming the first missing image
  bool positive_only = false;  // keep only pneumothorax-positive images
  int64_t mask_size = 1024;
};

// Labels: Pneumothorax, Chest Tube, Rib Fracture. Sample::mask_rles hold the pneumothorax RLEs;
// extra_masks["chest_tube"] / ["rib_fracture"] the others. Patient id = the part of `filename`
// before the first '_' (the SOPInstanceUID when there is no filename column). Report = the first
// non-empty Report of the image.
Dataset read_candid_ptx(const std::string& root, const CandidPtxOptions& options = {});

}  // namespace cxr::data
