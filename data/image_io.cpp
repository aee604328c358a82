#include "data/image_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "data/csv.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/file_io.h"

// stb implementations live in this translation unit only. Decoding is limited to PNG and JPEG;
// stb's failure reasons are thread-local so concurrent loader workers report their own errors.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_STATIC
#define STBI_THREAD_LOCAL thread_local
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace cxr::data {

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::string s = read_text_file(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

const char* format_of(const uint8_t* b, size_t n) {
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "jpeg";
  if (n >= 132 && std::memcmp(b + 128, "DICM", 4) == 0) return "dicom";
  return nullptr;
}

void check_format(const uint8_t* b, size_t n, const std::string& name) {
  CXR_CHECK(n > 0, name, ": empty file");
  const char* f = format_of(b, n);
  CXR_CHECK(f != nullptr, name, ": unsupported image format (expected PNG or JPEG)");
  CXR_CHECK(std::strcmp(f, "dicom") != 0, name,
            ": is a DICOM file; read it with cxr::data::read_dicom (data/dicom.h)");
  // stb accepts some truncated files silently; require the end markers.
  if (std::strcmp(f, "png") == 0) {
    static const uint8_t iend[] = {'I', 'E', 'N', 'D'};
    bool ok = n >= 12 && std::search(b + 8, b + n, iend, iend + 4) != b + n;
    CXR_CHECK(ok, name, ": truncated PNG (no IEND chunk)");
  } else {
    // The JPEG end-of-image marker FF D9 within the last bytes (some writers pad after it).
    bool ok = false;
    for (size_t i = n >= 2 ? n - 2 : 0, k = 0; k < 64 && i > 1; --i, ++k)
      if (b[i] == 0xFF && b[i + 1] == 0xD9) {
        ok = true;
        break;
      }
    CXR_CHECK(ok, name, ": truncated JPEG (no end-of-image marker)");
  }
}

// Converts stb's interleaved channels to the requested count (1 or 3) as planar [C, H, W].
template <typename S, typename D, typename Cvt>
void to_planar(const S* src, int w, int h, int comp, int outc, D* dst, Cvt cvt) {
  const int64_t hw = int64_t(w) * h;
  for (int64_t i = 0; i < hw; ++i) {
    const S* p = src + i * comp;
    if (outc == 1) {
      double g;
      if (comp >= 3)  // ITU-R BT.601 luma
        g = 0.299 * double(p[0]) + 0.587 * double(p[1]) + 0.114 * double(p[2]);
      else
        g = double(p[0]);
      dst[i] = cvt(g);
    } else {
      for (int c = 0; c < 3; ++c) dst[c * hw + i] = cvt(double(p[comp >= 3 ? c : 0]));
    }
  }
}

int out_channels(ColorMode mode, int comp) {
  switch (mode) {
    case ColorMode::Gray:
      return 1;
    case ColorMode::RGB:
      return 3;
    case ColorMode::Keep:
      return comp >= 3 ? 3 : 1;
  }
  return 1;
}

Tensor decode(const uint8_t* bytes, size_t size, const std::string& name, ColorMode mode, bool u8) {
  check_format(bytes, size, name);
  CXR_CHECK(size < size_t(1) << 31, name, ": file too large to decode (", size, " bytes)");
  int w = 0, h = 0, comp = 0;
  const int len = int(size);
  const bool is16 = stbi_is_16_bit_from_memory(bytes, len) != 0;
  if (is16) {
    std::unique_ptr<stbi_us, void (*)(void*)> px(
        stbi_load_16_from_memory(bytes, len, &w, &h, &comp, 0), stbi_image_free);
    CXR_CHECK(px != nullptr, name, ": cannot decode image (", stbi_failure_reason(), ")");
    const int oc = out_channels(mode, comp);
    if (u8) {
      Tensor t = raw::empty({oc, h, w}, kUInt8);
      to_planar(px.get(), w, h, comp, oc, t.data<uint8_t>(), [](double v) {
        return uint8_t(std::lround(std::clamp(v, 0.0, 65535.0) * 255.0 / 65535.0));
      });
      return t;
    }
    Tensor t = raw::empty({oc, h, w}, kFloat32);
    to_planar(px.get(), w, h, comp, oc, t.data<float>(),
              [](double v) { return float(std::clamp(v / 65535.0, 0.0, 1.0)); });
    return t;
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(bytes, len, &w, &h, &comp, 0),
                                               stbi_image_free);
  CXR_CHECK(px != nullptr, name, ": cannot decode image (", stbi_failure_reason(), ")");
  const int oc = out_channels(mode, comp);
  if (u8) {
    Tensor t = raw::empty({oc, h, w}, kUInt8);
    to_planar(px.get(), w, h, comp, oc, t.data<uint8_t>(),
              [](double v) { return uint8_t(std::lround(std::clamp(v, 0.0, 255.0))); });
    return t;
  }
  Tensor t = raw::empty({oc, h, w}, kFloat32);
  to_planar(px.get(), w, h, comp, oc, t.data<float>(),
            [](double v) { return float(std::clamp(v / 255.0, 0.0, 1.0)); });
  return t;
}

void append_bytes(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  auto* p = static_cast<uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}

}  // namespace

ImageInfo read_image_info(const std::string& path) {
  auto bytes = read_bytes(path);
  check_format(bytes.data(), bytes.size(), path);
  ImageInfo info;
  int w = 0, h = 0, c = 0;
  CXR_CHECK(stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c) != 0, path,
            ": cannot read image header (", stbi_failure_reason(), ")");
  info.width = w;
  info.height = h;
  info.channels = c;
  info.bit_depth = stbi_is_16_bit_from_memory(bytes.data(), int(bytes.size())) ? 16 : 8;
  return info;
}

Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name, ColorMode mode) {
  return decode(bytes, size, name, mode, false);
}

Tensor read_image(const std::string& path, ColorMode mode) {
  auto bytes = read_bytes(path);
  return decode(bytes.data(), bytes.size(), path, mode, false);
}

Tensor read_image_u8(const std::string& path, ColorMode mode) {
  auto bytes = read_bytes(path);
  return decode(bytes.data(), bytes.size(), path, mode, true);
}

void write_png(const std::string& path, const Tensor& image) {
  CXR_CHECK(image.device().is_cpu(), "write_png(", path, "): image must be on the CPU");
  CXR_CHECK(image.dim() == 2 || image.dim() == 3, "write_png(", path,
            "): expected [C, H, W] or [H, W], got ", describe(image));
  const int64_t c = image.dim() == 3 ? image.sizes()[0] : 1;
  const int64_t h = image.sizes()[image.dim() - 2], w = image.sizes()[image.dim() - 1];
  CXR_CHECK(c == 1 || c == 3, "write_png(", path, "): expected 1 or 3 channels, got ",
            describe(image));
  CXR_CHECK(h > 0 && w > 0, "write_png(", path, "): empty image ", describe(image));
  const DType dt = image.dtype();
  CXR_CHECK(is_floating(dt) || dt == kUInt8 || dt == kBool, "write_png(", path,
            "): expected a floating, uint8 or bool image, got ", describe(image));
  const int64_t hw = h * w;
  std::vector<double> v = image.to_vector<double>();  // row-major [C, H, W]
  std::vector<uint8_t> out;
  int rc = 0;
  std::vector<uint8_t> px(size_t(hw * c));
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t k = 0; k < c; ++k) {
      double x = v[size_t(k * hw + i)];
      uint8_t b;
      if (dt == kBool)
        b = x != 0 ? 255 : 0;
      else if (dt == kUInt8)
        b = uint8_t(x);
      else
        b = uint8_t(std::lround(std::clamp(std::isnan(x) ? 0.0 : x, 0.0, 1.0) * 255.0));
      px[size_t(i * c + k)] = b;
    }
  rc = stbi_write_png_to_func(append_bytes, &out, int(w), int(h), int(c), px.data(), int(w * c));
  CXR_CHECK(rc != 0 && !out.empty(), "write_png(", path, "): PNG encoding failed");

  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(out.data()), out.size()),
                    "write_png(" + path + ")");
}

}  // namespace cxr::data
