// Image files <-> tensors through stb (libstb-dev): PNG (8/16-bit, gray/gray+alpha/RGB/RGBA) and
// JPEG (baseline/progressive) reading, PNG writing. Images are tensors [C, H, W]: float32 in [0, 1]
// (16-bit PNGs keep their full precision) or uint8. Corrupt, truncated or unsupported files throw
// cxr::Error naming the file and the reason.
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace cxr::data {

enum class ColorMode {
  Gray,  // 1 channel (RGB converted with ITU-R BT.601 luma weights, alpha dropped)
  RGB,   // 3 channels (gray replicated)
  Keep,  // as stored, alpha dropped: 1 or 3 channels
};

struct ImageInfo {
  int64_t width = 0, height = 0;
  int channels = 0;   // as stored (1..4)
  int bit_depth = 8;  // 8 or 16
};

// Reads the header only (size, channels, 16-bit or not).
ImageInfo read_image_info(const std::string& path);
// Decodes an image into float32 [C, H, W] in [0, 1].
Tensor read_image(const std::string& path, ColorMode mode = ColorMode::Gray);
// Decodes an 8-bit view into uint8 [C, H, W] (16-bit images are rounded to 8 bits: v*255/65535).
Tensor read_image_u8(const std::string& path, ColorMode mode = ColorMode::Gray);
// Decodes from memory; `name` labels errors.
Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name,
                    ColorMode mode = ColorMode::Gray);

// Writes a [C, H, W] or [H, W] tensor (C = 1 or 3) as an 8-bit PNG. uint8 tensors are written as
// is, bool as 0/255, floating tensors are clamped to [0, 1] and scaled by 255 (rounded). The write
// is atomic: a temporary file in the same folder is renamed into place.
void write_png(const std::string& path, const Tensor& image);

}  // namespace cxr::data
