// Binary mask operations (see mask_ops.h). A square structuring element is separable: dilation is
// a running max along rows then along columns, erosion a running min (Gonzalez & Woods, Digital
// Image Processing, ch. 9). Out-of-image pixels are background in both.
#include "data/mask_ops.h"

#include <algorithm>
#include <vector>

#include "data/rng.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

void check_mask(const Tensor& mask, const char* op) {
  CXR_CHECK(mask.defined(), op, ": undefined mask");
  CXR_CHECK(mask.dim() >= 2, op, ": expected a mask [..., H, W], got ", describe(mask));
}

// One pass of a 1-D running max (dilate) or min (erode) with radius r over n values at stride s.
void pass_1d(const uint8_t* in, uint8_t* out, int64_t n, int64_t s, int64_t r, bool dilate) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = i - r, hi = i + r;
    uint8_t v = dilate ? 0 : 1;
    if (!dilate && (lo < 0 || hi >= n)) {
      v = 0;  // the window reaches outside the image: background there
    } else {
      for (int64_t k = std::max<int64_t>(0, lo); k <= std::min(n - 1, hi); ++k) {
        const uint8_t x = in[k * s];
        if (dilate && x) {
          v = 1;
          break;
        }
        if (!dilate && !x) {
          v = 0;
          break;
        }
      }
    }
    out[i * s] = v;
  }
}

Tensor morph(const Tensor& mask, int64_t k, int64_t iterations, bool dilate, const char* op) {
  check_mask(mask, op);
  CXR_CHECK(k >= 1 && k % 2 == 1, op, ": kernel_size must be odd and >= 1, got ", k);
  CXR_CHECK(iterations >= 0, op, ": iterations must be >= 0, got ", iterations);
  Tensor out = binarize_mask(mask);
  if (out.is_same(mask)) out = raw::clone(out);
  const int64_t H = out.size(-2), W = out.size(-1),
                planes = out.numel() / std::max<int64_t>(1, H * W);
  const int64_t r = k / 2;
  std::vector<uint8_t> tmp(size_t(H * W));
  uint8_t* base = out.data<uint8_t>();
  for (int64_t p = 0; p < planes && H * W > 0; ++p) {
    uint8_t* m = base + p * H * W;
    for (int64_t it = 0; it < iterations; ++it) {
      for (int64_t y = 0; y < H; ++y) pass_1d(m + y * W, tmp.data() + y * W, W, 1, r, dilate);
      for (int64_t x = 0; x < W; ++x) pass_1d(tmp.data() + x, m + x, H, W, r, dilate);
    }
  }
  return out;
}

}  // namespace

Tensor binarize_mask(const Tensor& mask) {
  check_mask(mask, "binarize_mask");
  if (mask.dtype() == kUInt8 && mask.is_contiguous()) {
    const uint8_t* p = mask.data<uint8_t>();
    bool binary = true;
    for (int64_t i = 0; i < mask.numel() && binary; ++i) binary = p[i] <= 1;
    if (binary) return mask;
  }
  const std::vector<double> v = mask.to_vector<double>();
  Tensor out = raw::empty(mask.sizes(), kUInt8);
  uint8_t* o = out.data<uint8_t>();
  for (size_t i = 0; i < v.size(); ++i) o[i] = v[i] != 0.0 ? 1 : 0;
  return out;
}

Tensor dilate(const Tensor& mask, int64_t kernel_size, int64_t iterations) {
  return morph(mask, kernel_size, iterations, true, "dilate");
}

Tensor erode(const Tensor& mask, int64_t kernel_size, int64_t iterations) {
  return morph(mask, kernel_size, iterations, false, "erode");
}

Tensor flip_mask_horizontal(const Tensor& mask) {
  check_mask(mask, "flip_mask_horizontal");
  const Tensor in = binarize_mask(mask);
  Tensor out = raw::empty(in.sizes(), kUInt8);
  const int64_t W = in.size(-1), rows = in.numel() / std::max<int64_t>(1, W);
  const uint8_t* s = in.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x = 0; x < W; ++x) d[y * W + x] = s[y * W + (W - 1 - x)];
  return out;
}

Tensor translate_mask(const Tensor& mask, int64_t dx, int64_t dy) {
  check_mask(mask, "translate_mask");
  const Tensor in = binarize_mask(mask);
  Tensor out = raw::zeros(in.sizes(), kUInt8);
  const int64_t H = in.size(-2), W = in.size(-1), planes = in.numel() / std::max<int64_t>(1, H * W);
  const uint8_t* s = in.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  for (int64_t p = 0; p < planes && H * W > 0; ++p)
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y - dy;
      if (sy < 0 || sy >= H) continue;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = x - dx;
        if (sx >= 0 && sx < W) d[p * H * W + y * W + x] = s[p * H * W + sy * W + sx];
      }
    }
  return out;
}

Tensor random_mask_transform(const Tensor& mask, Generator& gen, const MaskAugmentOptions& o,
                             std::string* description) {
  check_mask(mask, "random_mask_transform");
  CXR_CHECK(o.max_kernel >= 3 && o.max_kernel % 2 == 1,
            "random_mask_transform: max_kernel must be odd and >= 3, got ", o.max_kernel);
  CXR_CHECK(o.max_iterations >= 1, "random_mask_transform: max_iterations must be >= 1, got ",
            o.max_iterations);
  CXR_CHECK(o.max_translate >= 0.0 && o.max_translate <= 1.0,
            "random_mask_transform: max_translate must be in [0, 1], got ", o.max_translate);
  for (double p : {o.flip_p, o.morph_p, o.translate_p})
    CXR_CHECK(p >= 0.0 && p <= 1.0, "random_mask_transform: probabilities must be in [0, 1], got ",
              p);
  const Tensor in = binarize_mask(mask);
  const uint8_t* ip = in.data<uint8_t>();
  const bool input_empty = std::none_of(ip, ip + in.numel(), [](uint8_t v) { return v != 0; });
  Rng r(gen);
  Tensor out;
  std::string desc;
  for (int attempt = 0; attempt < 8; ++attempt) {
    desc.clear();
    out = in;
    if (r.bernoulli(o.flip_p)) {
      out = flip_mask_horizontal(out);
      desc += "flip";
    }
    if (r.bernoulli(o.morph_p)) {
      const bool dil = r.bernoulli(0.5);
      const int64_t k = 3 + 2 * r.below((o.max_kernel - 3) / 2 + 1);
      const int64_t it = 1 + r.below(o.max_iterations);
      out = dil ? dilate(out, k, it) : erode(out, k, it);
      desc += std::string(desc.empty() ? "" : ", ") + (dil ? "dilate" : "erode") +
              " k=" + std::to_string(k) + " x" + std::to_string(it);
    }
    if (r.bernoulli(o.translate_p)) {
      const double mx = o.max_translate * double(in.size(-1)),
                   my = o.max_translate * double(in.size(-2));
      const int64_t dx = int64_t(std::lround(r.uniform(-mx, mx)));
      const int64_t dy = int64_t(std::lround(r.uniform(-my, my)));
      out = translate_mask(out, dx, dy);
      desc += std::string(desc.empty() ? "" : ", ") + "translate (" + std::to_string(dx) + ", " +
              std::to_string(dy) + ")";
    }
    const uint8_t* op = out.data<uint8_t>();
    const bool empty = std::none_of(op, op + out.numel(), [](uint8_t v) { return v != 0; });
    if (!o.keep_nonempty || input_empty || !empty) break;
  }
  if (out.is_same(in) && in.is_same(mask)) out = raw::clone(in);
  if (description) *description = desc.empty() ? "identity" : desc;
  return out;
}

}  // namespace cxr::data
