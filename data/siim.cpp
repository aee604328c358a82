#include "data/siim.h"

#include <unordered_map>

#include "data/readers_common.h"
#include "data/rle.h"
#include "tensor/error.h"

namespace cxr::data {

Dataset read_siim(const std::string& root, const SiimOptions& options, const std::string& rle_csv) {
  const std::string csv = rle_csv.empty() ? detail::join_path(root, "train-rle.csv") : rle_csv;
  CsvTable t = read_csv(csv);
  const size_t id_col = t.column_any({"ImageId", "fname"});
  const size_t rle_col = t.column_any({"EncodedPixels", "mask"});
  Dataset ds;
  ds.name = "siim";
  ds.root = root;
  ds.label_names = {"Pneumothorax"};
  std::unordered_map<std::string, size_t> index;
  const int64_t n = options.mask_size;
  for (size_t r = 0; r < t.size(); ++r) {
    const std::string& id = t.rows[r][id_col];
    CXR_CHECK(!id.empty(), t.where(r), ": empty ImageId");
    const std::string& rle = t.rows[r][rle_col];
    // Validate now so a bad string is reported with its file:line; decoding stays lazy.
    try {
      rle_relative_pixel_count(rle, n, n);
    } catch (const Error& e) {
      CXR_FAIL(t.where(r), ": ImageId ", id, ": ", e.what());
    }
    auto [it, fresh] = index.emplace(id, ds.samples.size());
    if (fresh) {
      Sample s;
      s.id = id;
      s.patient_id = id;
      s.has_mask_annotation = true;
      s.mask_height = s.mask_width = n;
      ds.samples.push_back(std::move(s));
    }
    Sample& s = ds.samples[it->second];
    if (!rle_is_empty(rle)) s.mask_rles.push_back(rle);
  }
  const std::string image_dir =
      options.image_dir.empty() ? detail::join_path(root, "dicom-images-train") : options.image_dir;
  auto files = index_files(image_dir, {".dcm", ".png", ".jpg"});
  std::vector<Sample> kept;
  for (auto& s : ds.samples) {
    s.labels = {s.mask_positive() ? 1.0f : 0.0f};
    if (options.positive_only && s.labels[0] == 0.0f) continue;
    auto f = files.find(s.id);
    s.image_path = f != files.end() ? f->second : detail::join_path(image_dir, s.id + ".dcm");
    CXR_CHECK(!options.check_images || f != files.end(), csv, ": image '", s.id,
              ".dcm' not found under ", image_dir);
    kept.push_back(std::move(s));
  }
  ds.samples = std::move(kept);
  return ds;
}

}  // namespace cxr::data
