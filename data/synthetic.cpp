// Synthetic image sets (synthetic.h).
#include "data/synthetic.h"

#include <cmath>
#include <filesystem>

#include "data/csv.h"
#include "data/image_io.h"
#include "data/readers_common.h"
#include "data/rle.h"
#include "tensor/error.h"

namespace cxr::data {

Dataset read_synthetic(const std::string& dir, const std::vector<std::string>& label_names) {
  const std::string csv_path = detail::join_path(dir, "synthetic.csv");
  CXR_CHECK(std::filesystem::exists(csv_path), "synthetic set '", dir,
            "': no synthetic.csv (expected columns id,image,mask,prompt,<labels>)");
  const CsvTable t = read_csv(csv_path);
  const size_t image_col = t.column("image");
  const bool has_id = t.has_column("id"), has_mask = t.has_column("mask"),
             has_prompt = t.has_column("prompt");
  std::vector<size_t> label_cols;
  std::string missing;
  for (const auto& name : label_names) {
    if (t.has_column(name))
      label_cols.push_back(t.column(name));
    else
      missing += (missing.empty() ? "'" : ", '") + name + "'";
  }
  if (!missing.empty()) {
    std::string header;
    for (const auto& h : t.header) header += (header.empty() ? "" : ",") + h;
    CXR_FAIL(csv_path, ": missing label column(s) ", missing, " (columns: ", header, ")");
  }

  Dataset ds;
  ds.name = "synthetic";
  ds.root = dir;
  ds.label_names = label_names;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    Sample s;
    s.synthetic = true;
    s.image_path = detail::join_path(dir, row[image_col]);
    CXR_CHECK(!row[image_col].empty(), t.where(r), ": empty image path");
    detail::require_file(t.where(r), s.image_path);
    s.id = has_id && !row[t.column("id")].empty()
               ? row[t.column("id")]
               : "synthetic/" + std::filesystem::path(row[image_col]).stem().string();
    s.patient_id = s.id;
    if (has_prompt) s.report = row[t.column("prompt")];
    for (size_t c : label_cols) {
      const std::string_view v = trim(row[c]);
      s.labels.push_back(v.empty() ? NAN : detail::parse_float_field(t, r, c));
    }
    // The mask: the generator's condition is the image's segmentation label.
    s.has_mask_annotation = true;
    s.rle_kind = RleKind::Absolute;
    const std::string mask_rel = has_mask ? row[t.column("mask")] : "";
    if (mask_rel.empty()) {
      const ImageInfo info = read_image_info(s.image_path);
      s.mask_height = info.height;
      s.mask_width = info.width;
    } else {
      const std::string mask_path = detail::join_path(dir, mask_rel);
      detail::require_file(t.where(r), mask_path);
      Tensor m = read_image_u8(mask_path);  // [1, H, W] (gray)
      s.mask_height = m.size(-2);
      s.mask_width = m.size(-1);
      std::vector<uint8_t> bits(size_t(m.numel()));
      const uint8_t* p = m.data<uint8_t>();
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = p[i] != 0;
      std::string rle = rle_encode_absolute(bits.data(), s.mask_height, s.mask_width);
      if (!rle_is_empty(rle)) s.mask_rles.push_back(std::move(rle));
    }
    ds.samples.push_back(std::move(s));
  }
  CXR_CHECK(!ds.samples.empty(), csv_path, ": no rows");
  return ds;
}

}  // namespace cxr::data
