#include "data/sample.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "data/rle.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {
std::vector<uint8_t> decode_rows(const std::vector<std::string>& rles, RleKind kind, int64_t h,
                                 int64_t w, const std::string& id) {
  CXR_CHECK(h > 0 && w > 0, "Sample ", id, ": bad mask size ", h, "x", w);
  std::vector<uint8_t> m(size_t(h * w), 0);
  for (const auto& r : rles) {
    try {
      if (kind == RleKind::Relative)
        rle_decode_relative_into(r, h, w, m.data());
      else
        rle_decode_absolute_into(r, h, w, m.data());
    } catch (const Error& e) {
      CXR_FAIL("sample ", id, ": ", e.what());
    }
  }
  return m;
}
}  // namespace

bool Sample::mask_positive() const {
  for (const auto& r : mask_rles)
    if (!rle_is_empty(r)) return true;
  return false;
}

std::vector<uint8_t> Sample::decode_mask() const {
  return decode_rows(mask_rles, rle_kind, mask_height, mask_width, id);
}

Tensor Sample::mask_tensor() const {
  auto m = decode_mask();
  Tensor t = raw::empty({1, mask_height, mask_width}, kUInt8);
  std::memcpy(t.data<uint8_t>(), m.data(), m.size());
  return t;
}

std::vector<uint8_t> Sample::decode_extra_mask(const std::string& name) const {
  auto it = extra_masks.find(name);
  static const std::vector<std::string> none;
  return decode_rows(it == extra_masks.end() ? none : it->second, rle_kind, mask_height, mask_width,
                     id);
}

size_t Dataset::index_of(const std::string& id) const {
  for (size_t i = 0; i < samples.size(); ++i)
    if (samples[i].id == id) return i;
  CXR_FAIL(name, ": no sample with id '", id, "'");
}

std::map<std::string, std::string> index_files(const std::string& dir,
                                               const std::vector<std::string>& exts) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    if (std::find(exts.begin(), exts.end(), ext) == exts.end()) continue;
    out.emplace(it->path().stem().string(), it->path().string());
  }
  return out;
}

}  // namespace cxr::data
