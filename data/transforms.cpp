// Image and mask transforms (see transforms.h). Every operation works plane by plane on float32
// copies of the last two dims and returns the input's dtype (nearest-neighbour keeps integer masks
// exact). Bilinear sampling uses half-pixel centres as PyTorch's interpolate(align_corners=False);
// "nearest" is the half-pixel rule of PyTorch's mode="nearest-exact".
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/rng.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

constexpr double kPi = 3.141592653589793;

void check_image(const Tensor& t, const char* op) {
  CXR_CHECK(t.defined(), op, ": undefined tensor");
  CXR_CHECK(t.dim() >= 2, op, ": expected an image [..., H, W], got ", describe(t));
}

// Applies fn(src plane, H, W, dst plane) to every plane, producing [..., oh, ow] of t's dtype.
template <typename Fn>
Tensor map_planes(const Tensor& t, int64_t oh, int64_t ow, Fn fn) {
  const Tensor src = t.dtype() == kFloat32 ? raw::contiguous(t) : raw::to(t, kFloat32);
  Shape shape = t.sizes();
  const int64_t H = shape[shape.size() - 2], W = shape[shape.size() - 1];
  shape[shape.size() - 2] = oh;
  shape[shape.size() - 1] = ow;
  Tensor out = raw::empty(shape, kFloat32);
  const int64_t planes = H * W > 0 ? src.numel() / (H * W) : 0;
  const float* s = src.data<float>();
  float* d = out.data<float>();
  for (int64_t p = 0; p < planes; ++p) fn(s + p * H * W, H, W, d + p * oh * ow);
  if (t.dtype() == kFloat32) return out;
  if (is_floating(t.dtype())) return raw::to(out, t.dtype());
  // Integer results: round (nearest sampling copies values exactly anyway).
  for (int64_t i = 0; i < out.numel(); ++i) d[i] = std::nearbyint(d[i]);
  return raw::to(out, t.dtype());
}

float bilinear_at(const float* s, int64_t H, int64_t W, double x, double y, bool fill_out,
                  float fill) {
  // x, y in source pixel index units (centre of pixel i at i).
  if (fill_out && (x < -0.5 || y < -0.5 || x > double(W) - 0.5 || y > double(H) - 0.5)) return fill;
  x = std::clamp(x, 0.0, double(W - 1));
  y = std::clamp(y, 0.0, double(H - 1));
  const int64_t x0 = int64_t(std::floor(x)), y0 = int64_t(std::floor(y));
  const int64_t x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
  const double fx = x - double(x0), fy = y - double(y0);
  const double a = s[y0 * W + x0], b = s[y0 * W + x1], c = s[y1 * W + x0], d = s[y1 * W + x1];
  return float((a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy);
}

}  // namespace

Tensor resize(const Tensor& image, int64_t oh, int64_t ow, Interp interp) {
  check_image(image, "resize");
  CXR_CHECK(oh > 0 && ow > 0, "resize: target size must be positive, got ", oh, "x", ow);
  CXR_CHECK(image.size(-2) > 0 && image.size(-1) > 0, "resize: empty image ", describe(image));
  if (oh == image.size(-2) && ow == image.size(-1)) return raw::contiguous(image);  // nothing to do
  return map_planes(image, oh, ow, [&](const float* s, int64_t H, int64_t W, float* d) {
    const double sy = double(H) / double(oh), sx = double(W) / double(ow);
    if (interp == Interp::Nearest) {
      for (int64_t y = 0; y < oh; ++y) {
        const int64_t iy = std::min(H - 1, int64_t(std::floor((double(y) + 0.5) * sy)));
        for (int64_t x = 0; x < ow; ++x)
          d[y * ow + x] = s[iy * W + std::min(W - 1, int64_t(std::floor((double(x) + 0.5) * sx)))];
      }
    } else if (interp == Interp::Bilinear || (sx <= 1.0 && sy <= 1.0)) {
      // (area on an enlargement is bilinear, as OpenCV does)
      for (int64_t y = 0; y < oh; ++y) {
        const double fy = (double(y) + 0.5) * sy - 0.5;
        for (int64_t x = 0; x < ow; ++x)
          d[y * ow + x] = bilinear_at(s, H, W, (double(x) + 0.5) * sx - 0.5, fy, false, 0.f);
      }
    } else {
      // Exact area weights: target pixel y covers source rows [y*sy, (y+1)*sy).
      std::vector<double> row(static_cast<size_t>(W));
      for (int64_t y = 0; y < oh; ++y) {
        const double y0 = double(y) * sy, y1 = double(y + 1) * sy;
        std::fill(row.begin(), row.end(), 0.0);
        for (int64_t r = int64_t(std::floor(y0)); r < std::min<int64_t>(H, int64_t(std::ceil(y1)));
             ++r) {
          const double w = std::min(y1, double(r + 1)) - std::max(y0, double(r));
          if (w <= 0) continue;
          for (int64_t x = 0; x < W; ++x) row[size_t(x)] += w * s[r * W + x];
        }
        for (int64_t x = 0; x < ow; ++x) {
          const double x0 = double(x) * sx, x1 = double(x + 1) * sx;
          double acc = 0.0;
          for (int64_t c = int64_t(std::floor(x0));
               c < std::min<int64_t>(W, int64_t(std::ceil(x1))); ++c) {
            const double w = std::min(x1, double(c + 1)) - std::max(x0, double(c));
            if (w > 0) acc += w * row[size_t(c)];
          }
          d[y * ow + x] = float(acc / (sx * sy));
        }
      }
    }
  });
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  check_image(image, "crop");
  const int64_t H = image.size(-2), W = image.size(-1);
  CXR_CHECK(h > 0 && w > 0 && top >= 0 && left >= 0 && top + h <= H && left + w <= W,
            "crop: window ", h, "x", w, " at (", top, ", ", left, ") does not fit ",
            describe(image));
  return map_planes(image, h, w, [&](const float* s, int64_t, int64_t SW, float* d) {
    for (int64_t y = 0; y < h; ++y) std::copy_n(s + (top + y) * SW + left, w, d + y * w);
  });
}

Tensor center_crop(const Tensor& image, int64_t h, int64_t w) {
  check_image(image, "center_crop");
  const int64_t H = image.size(-2), W = image.size(-1);
  CXR_CHECK(h > 0 && w > 0 && h <= H && w <= W, "center_crop: ", h, "x", w, " larger than ",
            describe(image));
  return crop(image, (H - h) / 2, (W - w) / 2, h, w);
}

Tensor pad_to_square(const Tensor& image, double fill) {
  check_image(image, "pad_to_square");
  const int64_t H = image.size(-2), W = image.size(-1), S = std::max(H, W);
  if (H == W) return raw::contiguous(image);  // already square
  const int64_t top = (S - H) / 2, left = (S - W) / 2;
  return map_planes(image, S, S, [&](const float* s, int64_t, int64_t, float* d) {
    std::fill(d, d + S * S, float(fill));
    for (int64_t y = 0; y < H; ++y) std::copy_n(s + y * W, W, d + (top + y) * S + left);
  });
}

Tensor hflip(const Tensor& image) {
  check_image(image, "hflip");
  return map_planes(image, image.size(-2), image.size(-1),
                    [&](const float* s, int64_t H, int64_t W, float* d) {
                      for (int64_t y = 0; y < H; ++y)
                        for (int64_t x = 0; x < W; ++x) d[y * W + x] = s[y * W + (W - 1 - x)];
                    });
}

Tensor affine(const Tensor& image, double degrees, double tx, double ty, double scale,
              Interp interp, double fill) {
  check_image(image, "affine");
  CXR_CHECK(scale > 0.0 && std::isfinite(scale), "affine: scale must be positive, got ", scale);
  CXR_CHECK(std::isfinite(degrees) && std::isfinite(tx) && std::isfinite(ty),
            "affine: parameters must be finite");
  const double th = degrees * kPi / 180.0, c = std::cos(th), sn = std::sin(th);
  return map_planes(
      image, image.size(-2), image.size(-1), [&](const float* s, int64_t H, int64_t W, float* d) {
        const double cx = 0.5 * double(W - 1), cy = 0.5 * double(H - 1), inv = 1.0 / scale;
        for (int64_t y = 0; y < H; ++y) {
          // Inverse of: p' = centre + scale * R(theta) (p - centre) + t, with R rotating
          // counter-clockwise on screen (y down). Source coordinates are affine in x: start + x *
          // step.
          const double dy = (double(y) - cy - ty) * inv, dx0 = (-cx - tx) * inv;
          double sx = cx + c * dx0 - sn * dy, sy = cy + sn * dx0 + c * dy;
          const double stx = c * inv, sty = sn * inv;
          for (int64_t x = 0; x < W; ++x, sx += stx, sy += sty) {
            if (interp == Interp::Nearest) {
              const int64_t ix = int64_t(std::lround(sx)), iy = int64_t(std::lround(sy));
              d[y * W + x] =
                  (ix < 0 || iy < 0 || ix >= W || iy >= H) ? float(fill) : s[iy * W + ix];
            } else {
              d[y * W + x] = bilinear_at(s, H, W, sx, sy, true, float(fill));
            }
          }
        }
      });
}

Tensor brightness_contrast(const Tensor& image, double brightness, double contrast) {
  check_image(image, "brightness_contrast");
  CXR_CHECK(is_floating(image.dtype()), "brightness_contrast: expected a floating image, got ",
            describe(image));
  CXR_CHECK(contrast >= 0.0, "brightness_contrast: contrast must be >= 0, got ", contrast);
  return map_planes(
      image, image.size(-2), image.size(-1), [&](const float* s, int64_t H, int64_t W, float* d) {
        double mean = 0.0;
        for (int64_t i = 0; i < H * W; ++i) mean += s[i];
        mean /= double(std::max<int64_t>(1, H * W));
        for (int64_t i = 0; i < H * W; ++i)
          d[i] = float(std::clamp(contrast * (double(s[i]) - mean) + mean + brightness, 0.0, 1.0));
      });
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std) {
  check_image(image, "normalize");
  CXR_CHECK(is_floating(image.dtype()), "normalize: expected a floating image, got ",
            describe(image));
  const int64_t C = image.dim() >= 3 ? image.size(-3) : 1;
  CXR_CHECK((mean.size() == 1 || int64_t(mean.size()) == C) && mean.size() == std.size(),
            "normalize: expected 1 or ", C, " means and stds for ", describe(image), ", got ",
            mean.size(), " and ", std.size());
  for (double s : std) CXR_CHECK(s > 0.0, "normalize: std must be positive, got ", s);
  int64_t plane = 0;
  return map_planes(image, image.size(-2), image.size(-1),
                    [&](const float* s, int64_t H, int64_t W, float* d) {
                      const size_t c = mean.size() == 1 ? 0 : size_t(plane % C);
                      ++plane;
                      const double m = mean[c], inv = 1.0 / std[c];
                      for (int64_t i = 0; i < H * W; ++i) d[i] = float((double(s[i]) - m) * inv);
                    });
}

namespace {
void check_pair(const Tensor& image, const Tensor& mask, const char* op) {
  check_image(image, op);
  if (!mask.defined()) return;
  CXR_CHECK(mask.dim() >= 2 && mask.size(-2) == image.size(-2) && mask.size(-1) == image.size(-1),
            op, ": mask ", describe(mask), " does not match image ", describe(image));
}
}  // namespace

TransformStep resize_step(int64_t h, int64_t w, Interp interp) {
  CXR_CHECK(h > 0 && w > 0, "resize_step: size must be positive, got ", h, "x", w);
  return [=](Tensor& image, Tensor& mask, Generator&) {
    check_pair(image, mask, "resize");
    image = resize(image, h, w, interp);
    if (mask.defined()) mask = resize(mask, h, w, Interp::Nearest);
  };
}

TransformStep center_crop_step(int64_t h, int64_t w) {
  return [=](Tensor& image, Tensor& mask, Generator&) {
    check_pair(image, mask, "center_crop");
    image = center_crop(image, h, w);
    if (mask.defined()) mask = center_crop(mask, h, w);
  };
}

TransformStep random_crop_step(int64_t h, int64_t w) {
  CXR_CHECK(h > 0 && w > 0, "random_crop_step: size must be positive, got ", h, "x", w);
  return [=](Tensor& image, Tensor& mask, Generator& gen) {
    check_pair(image, mask, "random_crop");
    const int64_t H = image.size(-2), W = image.size(-1);
    CXR_CHECK(h <= H && w <= W, "random_crop: ", h, "x", w, " larger than ", describe(image));
    Rng r(gen);
    const int64_t top = r.below(H - h + 1), left = r.below(W - w + 1);
    image = crop(image, top, left, h, w);
    if (mask.defined()) mask = crop(mask, top, left, h, w);
  };
}

TransformStep pad_to_square_step(double fill) {
  return [=](Tensor& image, Tensor& mask, Generator&) {
    check_pair(image, mask, "pad_to_square");
    image = pad_to_square(image, fill);
    if (mask.defined()) mask = pad_to_square(mask, 0.0);
  };
}

TransformStep hflip_step(double p) {
  CXR_CHECK(p >= 0.0 && p <= 1.0, "hflip_step: p must be in [0, 1], got ", p);
  return [=](Tensor& image, Tensor& mask, Generator& gen) {
    check_pair(image, mask, "hflip");
    Rng r(gen);
    if (!r.bernoulli(p)) return;
    image = hflip(image);
    if (mask.defined()) mask = hflip(mask);
  };
}

TransformStep random_affine_step(double degrees, double translate, double smin, double smax,
                                 double fill) {
  CXR_CHECK(degrees >= 0.0 && translate >= 0.0 && translate <= 1.0 && smin > 0.0 && smin <= smax,
            "random_affine_step: need degrees >= 0, translate in [0, 1], 0 < scale_min <= "
            "scale_max; got ",
            degrees, ", ", translate, ", ", smin, ", ", smax);
  return [=](Tensor& image, Tensor& mask, Generator& gen) {
    check_pair(image, mask, "random_affine");
    Rng r(gen);
    const double a = r.uniform(-degrees, degrees);
    const double tx = r.uniform(-translate, translate) * double(image.size(-1));
    const double ty = r.uniform(-translate, translate) * double(image.size(-2));
    const double s = r.uniform(smin, smax);
    image = affine(image, a, tx, ty, s, Interp::Bilinear, fill);
    if (mask.defined()) mask = affine(mask, a, tx, ty, s, Interp::Nearest, 0.0);
  };
}

TransformStep brightness_contrast_step(double b, double c) {
  CXR_CHECK(b >= 0.0 && c >= 0.0 && c <= 1.0,
            "brightness_contrast_step: need brightness >= 0 and contrast in [0, 1], got ", b, ", ",
            c);
  return [=](Tensor& image, Tensor&, Generator& gen) {
    Rng r(gen);
    const double bb = r.uniform(-b, b), cc = r.uniform(1.0 - c, 1.0 + c);
    image = brightness_contrast(image, bb, cc);
  };
}

TransformStep normalize_step(std::vector<double> mean, std::vector<double> std) {
  return [mean = std::move(mean), std = std::move(std)](Tensor& image, Tensor&, Generator&) {
    image = normalize(image, mean, std);
  };
}

Pipeline& Pipeline::add(TransformStep step, std::string name) {
  CXR_CHECK(step != nullptr, "Pipeline::add: empty step");
  steps_.push_back(std::move(step));
  names_.push_back(std::move(name));
  return *this;
}

void Pipeline::operator()(Tensor& image, Tensor& mask, Generator& gen) const {
  for (const auto& s : steps_) s(image, mask, gen);
}

Tensor Pipeline::operator()(const Tensor& image, Generator& gen) const {
  Tensor im = image, mask;
  (*this)(im, mask, gen);
  return im;
}

Pipeline train_pipeline(int64_t size, bool flip) {
  Pipeline p;
  p.add(pad_to_square_step(), "pad_to_square").add(resize_step(size, size, Interp::Area), "resize");
  if (flip) p.add(hflip_step(0.5), "hflip");
  p.add(random_affine_step(5.0, 0.04, 0.95, 1.05), "random_affine")
      .add(brightness_contrast_step(0.1, 0.1), "brightness_contrast");
  return p;
}

Pipeline eval_pipeline(int64_t size) {
  Pipeline p;
  p.add(pad_to_square_step(), "pad_to_square").add(resize_step(size, size, Interp::Area), "resize");
  return p;
}

}  // namespace cxr::data
