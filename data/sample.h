// The record every dataset reader returns: a stable id, the patient (split grouping key), the image
// path, labels, boxes and/or mask RLEs (decoded on demand), and whether the image is synthetic.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::data {

struct Box {
  float x = 0, y = 0, width = 0, height = 0;  // top-left corner and size, image pixels
};

enum class RleKind { Relative, Absolute };  // see data/rle.h

struct Sample {
  std::string id;             // stable, unique within a dataset
  std::string patient_id;     // grouping key for splits (equals id when the dataset has none)
  std::string image_path;     // resolved path (may not exist when readers ran without checking)
  std::vector<float> labels;  // one per Dataset::label_names; NaN = ignore (uncertain/unknown)
  std::vector<Box> boxes;
  // Mask annotations as RLE strings (one per component; their union is the mask). Empty = no mask
  // annotation; has_mask_annotation tells "annotated negative" from "not annotated".
  std::vector<std::string> mask_rles;
  bool has_mask_annotation = false;
  RleKind rle_kind = RleKind::Relative;
  int64_t mask_height = 1024, mask_width = 1024;
  // Further per-finding masks (CANDID-PTX chest tubes, rib fractures): name -> RLE rows.
  std::map<std::string, std::vector<std::string>> extra_masks;
  std::string report;      // free-text report or caption when the dataset has one
  bool synthetic = false;  // generated image (allowed in training sets only)

  // True when some RLE row is non-empty.
  bool mask_positive() const;
  // Union of mask_rles as a row-major [H*W] 0/1 buffer (decoded now; throws on bad RLE).
  std::vector<uint8_t> decode_mask() const;
  // The same as a uint8 tensor [1, H, W].
  Tensor mask_tensor() const;
  // Union of extra_masks[name] (all zeros when absent).
  std::vector<uint8_t> decode_extra_mask(const std::string& name) const;
};

struct Dataset {
  std::string name;                      // "chexpert", "rsna", "siim", "candid-ptx", ...
  std::string root;                      // folder given to the reader
  std::vector<std::string> label_names;  // column order of Sample::labels
  std::vector<Sample> samples;

  size_t size() const { return samples.size(); }
  // Index of a sample by id; throws naming the id when absent.
  size_t index_of(const std::string& id) const;
};

inline bool is_ignored(float label) {
  return std::isnan(label);
}

}  // namespace cxr::data

namespace cxr::data {
// Recursively maps file stems (name without extension) to paths for the files under `dir` whose
// extension (lower-case, with dot) is one of `exts`. A missing folder gives an empty map.
std::map<std::string, std::string> index_files(const std::string& dir,
                                               const std::vector<std::string>& exts);
}  // namespace cxr::data
