// Image (+ mask) transforms for training and evaluation. Images are float tensors [C, H, W] or
// [H, W]; masks are tensors [K, H, W] or [H, W] (any dtype, typically uint8 0/1). Geometric steps
// move the mask with exactly the same parameters as the image, using nearest-neighbour sampling so
// it stays binary; intensity steps leave the mask alone.
//
// Conventions: pixel centres at (i + 0.5) (PyTorch's align_corners=False) for bilinear and nearest
// resizing; "area" is the exact area-weighted average of the source pixels a target pixel covers
// (as OpenCV's INTER_AREA for shrinking).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::data {

enum class Interp { Nearest, Bilinear, Area };

// Single-tensor operations (work on the last two dims; float images keep their dtype).
Tensor resize(const Tensor& image, int64_t height, int64_t width, Interp interp = Interp::Bilinear);
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width);
Tensor center_crop(const Tensor& image, int64_t height, int64_t width);
// Pads the shorter side symmetrically (extra pixel at the bottom/right) with `fill`.
Tensor pad_to_square(const Tensor& image, double fill = 0.0);
Tensor hflip(const Tensor& image);
// Rotation by `degrees` (counter-clockwise on screen) and scaling about the image centre, then a
// shift of (tx, ty) pixels; pixels from outside are `fill`. Output has the input size.
Tensor affine(const Tensor& image, double degrees, double tx, double ty, double scale,
              Interp interp = Interp::Bilinear, double fill = 0.0);
// out = clamp(contrast * (x - mean(x)) + mean(x) + brightness, 0, 1), mean over each image plane.
Tensor brightness_contrast(const Tensor& image, double brightness, double contrast);
// Per-channel (x - mean[c]) / std[c]; one value applies to every channel.
Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std);

// A step of a joint pipeline: transforms `image` and, when defined, `mask` in place, drawing any
// random parameters from `gen`.
using TransformStep = std::function<void(Tensor& image, Tensor& mask, Generator& gen)>;

TransformStep resize_step(int64_t height, int64_t width, Interp interp = Interp::Bilinear);
TransformStep center_crop_step(int64_t height, int64_t width);
TransformStep random_crop_step(int64_t height, int64_t width);
TransformStep pad_to_square_step(double fill = 0.0);
TransformStep hflip_step(double p = 0.5);
// Angle uniform in [-degrees, degrees], shift uniform in +-translate * side, scale uniform in
// [scale_min, scale_max].
TransformStep random_affine_step(double degrees, double translate, double scale_min,
                                 double scale_max, double fill = 0.0);
// brightness uniform in [-b, b], contrast uniform in [1 - c, 1 + c].
TransformStep brightness_contrast_step(double brightness, double contrast);
TransformStep normalize_step(std::vector<double> mean, std::vector<double> std);

class Pipeline {
 public:
  Pipeline() = default;
  Pipeline& add(TransformStep step, std::string name = "");
  void operator()(Tensor& image, Tensor& mask, Generator& gen) const;
  // Applies to an image alone.
  Tensor operator()(const Tensor& image, Generator& gen) const;
  size_t size() const { return steps_.size(); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<TransformStep> steps_;
  std::vector<std::string> names_;
};

// The usual training / evaluation pipelines: pad to square, resize to `size` (area when
// shrinking), and for training a random affine (+-5 degrees, 4% shift, scale 0.95-1.05) and
// brightness/contrast (+-0.1); flipping is off by default (it puts the heart on the wrong side).
Pipeline train_pipeline(int64_t size, bool flip = false);
Pipeline eval_pipeline(int64_t size);

}  // namespace cxr::data
