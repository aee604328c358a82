// Writes complete phantom datasets in the published layouts of the real datasets, so the readers
// (data/chexpert.h, rsna.h, siim.h, candid_ptx.h) load them unchanged
// (tests/data/test_phantom_writer.cpp):
//   chexpert:   train.csv, valid.csv (19-column header),
//   train|valid/patientNNNNN/study1/view1_frontal.png rsna:       stage_2_train_labels.csv (one row
//   per box, boxes from the consolidation mask),
//               stage_2_detailed_class_info.csv, stage_2_train_images/<patientId>.png
//   siim:       train-rle.csv ("ImageId, EncodedPixels", one row per pneumothorax component, "-1"
//               when none; relative column-major RLE at the image size), and
//               dicom-images-train/<study>/<series>/<ImageId>.png
//   candid-ptx: Pneumothorax_reports.csv (SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,
//               Report), chest_tube.csv and acute_rib_fracture.csv (header only: the phantoms have
//               no tubes or fractures), dataset/<SOPInstanceUID> (the UID string ends in ".png")
// Every layout also gets phantoms.csv: id, image path, caption and the six finding labels.
// The dataset is written into a temporary sibling folder and renamed into place at the end, so an
// interrupted run leaves no half dataset.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/phantom.h"

namespace cxr::data {

enum class PhantomLayout { CheXpert, Rsna, Siim, CandidPtx };
// "chexpert", "rsna", "siim", "candid-ptx" (throws cxr::Error listing them otherwise).
PhantomLayout parse_phantom_layout(std::string_view name);
const char* phantom_layout_name(PhantomLayout layout);
// Default finding prevalences for a layout (the layout's own finding more frequent).
std::array<double, kNumFindings> default_prevalence(PhantomLayout layout);

struct PhantomDatasetOptions {
  PhantomLayout layout = PhantomLayout::CheXpert;
  int64_t count = 100;  // images in all (CheXpert: train + valid)
  uint64_t seed = 0;
  PhantomOptions phantom;       // size, prevalences, noise
  double valid_fraction = 0.1;  // CheXpert: share of images in valid.csv
  double uncertain = 0.0;       // CheXpert train: probability a positive is written as -1.0
  bool overwrite = false;       // replace an existing output folder
  bool quiet = true;            // no progress lines on stderr
};

struct PhantomDatasetSummary {
  std::string root;
  int64_t images = 0;
  std::array<int64_t, kNumFindings> positives{};
};

PhantomDatasetSummary write_phantom_dataset(const std::string& out_dir,
                                            const PhantomDatasetOptions& options);

// A sample sheet: for each of normal + the six findings, a phantom (top row) and the same with its
// finding mask outlined in red (bottom row); an RGB PNG of 7 * tile x 2 * tile pixels.
void write_phantom_sheet(const std::string& path, int64_t tile = 128, uint64_t seed = 0);

// Connected components (4-connectivity) of a row-major 0/1 mask, each as its own mask.
std::vector<std::vector<uint8_t>> connected_components(const uint8_t* mask, int64_t height,
                                                       int64_t width);

}  // namespace cxr::data
