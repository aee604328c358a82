// Geometric operations on binary masks, used to make new ControlNet conditions from real masks:
// dilation and erosion with a square k x k structuring element, horizontal flip, translation
// filling with background, and seeded random compositions of them.
//
// Masks are tensors [H, W] or [..., H, W] (every leading index is a separate mask) of any dtype;
// nonzero is foreground. Results are uint8 0/1 of the same shape. Pixels outside the image count as
// background for both dilation and erosion (scipy.ndimage's border_value = 0 convention), so
// erosion also eats a mask inwards from the image border.
#pragma once

#include <cstdint>
#include <string>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::data {

// The mask as uint8 0/1, contiguous (a copy when the input is anything else).
Tensor binarize_mask(const Tensor& mask);
// Binary dilation / erosion with a kernel_size x kernel_size square (kernel_size odd, >= 1),
// repeated `iterations` (>= 0) times.
Tensor dilate(const Tensor& mask, int64_t kernel_size, int64_t iterations = 1);
Tensor erode(const Tensor& mask, int64_t kernel_size, int64_t iterations = 1);
// Mirror left <-> right.
Tensor flip_mask_horizontal(const Tensor& mask);
// Shifts by dx columns (positive: right) and dy rows (positive: down); vacated pixels are
// background.
Tensor translate_mask(const Tensor& mask, int64_t dx, int64_t dy);

// A random composition: each operation is applied with its probability, in the order
// flip, dilate or erode (one of them), translate.
struct MaskAugmentOptions {
  double flip_p = 0.5;
  double morph_p = 0.7;        // probability of a dilation or an erosion (equally likely)
  int64_t max_kernel = 7;      // kernel size drawn from {3, 5, ..., max_kernel}
  int64_t max_iterations = 2;  // iterations drawn from {1, ..., max_iterations}
  double translate_p = 0.5;
  double max_translate = 0.08;  // |shift| <= this fraction of the side
  bool keep_nonempty =
      true;  // if the result is empty while the input was not, retry (up to 8 times)
};
// Applies a random composition drawn from `gen`. `description`, when given, receives what was
// done, e.g. "flip, dilate k=5 x2, translate (3, -7)".
Tensor random_mask_transform(const Tensor& mask, Generator& gen,
                             const MaskAugmentOptions& options = {},
                             std::string* description = nullptr);

}  // namespace cxr::data
