// Procedural, seeded chest-X-ray phantoms: the built-in stand-in for the real datasets.
//
// An image is composed in normalised coordinates (so any size works) from a body outline, two lung
// fields with branching vessel markings, heart and mediastinum, diaphragm domes, ribs, clavicles
// and spine, then blurred, exposure-varied and given noise. Findings change the anatomy and come
// with a pixel mask each: pneumothorax (collapsed lung edge, no markings beyond it), pleural
// effusion, cardiomegaly, consolidation/pneumonia, atelectasis and edema. See docs/phantoms.md. A
// sample depends only on (seed, index, options): the same on every machine and thread count.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace cxr::data {

enum class Finding : int {
  Pneumothorax,
  Effusion,
  Cardiomegaly,
  Consolidation,
  Atelectasis,
  Edema
};
inline constexpr int kNumFindings = 6;
// "pneumothorax", "effusion", "cardiomegaly", "consolidation", "atelectasis", "edema".
const char* finding_name(Finding f);

struct PhantomOptions {
  int64_t size = 256;  // side in pixels (>= 32)
  // Probability of each finding, indexed by Finding (independent draws).
  std::array<double, kNumFindings> prevalence = {0.2, 0.15, 0.15, 0.15, 0.15, 0.1};
  double noise = 0.025;       // std of the additive pixel noise (image units)
  double anatomy_jitter = 1;  // scale of the random anatomy variation (0 = a fixed patient)
};

struct PhantomSample {
  Tensor image;  // float32 [size, size] in [0, 1] (bright = attenuating, as on a radiograph)
  std::array<bool, kNumFindings> labels{};
  std::array<Tensor, kNumFindings> masks;  // uint8 [size, size] each, 0/1; all zero when absent
  Tensor lungs;                            // uint8 [size, size]: both lung fields
  Tensor heart;                            // uint8 [size, size]: cardiac silhouette
  std::array<int, kNumFindings> side{};    // 0 right, 1 left (patient), 2 both; -1 n/a
  std::string caption;                     // e.g. "small right apical pneumothorax" or "Normal"
  bool has(Finding f) const { return labels[size_t(f)]; }
  const Tensor& mask(Finding f) const { return masks[size_t(f)]; }
};

// Validates options (throws cxr::Error naming the field).
void check_phantom_options(const PhantomOptions& options);
// The sample `index` of the phantom stream `seed`.
PhantomSample make_phantom(const PhantomOptions& options, uint64_t seed, int64_t index);
// As make_phantom, but with the findings given (prevalences ignored).
PhantomSample make_phantom_with(const PhantomOptions& options, uint64_t seed, int64_t index,
                                const std::array<bool, kNumFindings>& findings);

}  // namespace cxr::data
