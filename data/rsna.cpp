#include "data/rsna.h"

#include <filesystem>
#include <unordered_map>

#include "data/readers_common.h"
#include "tensor/error.h"

namespace cxr::data {

Dataset read_rsna(const std::string& root, const RsnaOptions& options,
                  const std::string& labels_csv) {
  const std::string csv =
      labels_csv.empty() ? detail::join_path(root, "stage_2_train_labels.csv") : labels_csv;
  CsvTable t = read_csv(csv);
  const size_t id_col = t.column("patientId"), x_col = t.column("x"), y_col = t.column("y"),
               w_col = t.column("width"), h_col = t.column("height"), tg_col = t.column("Target");
  Dataset ds;
  ds.name = "rsna";
  ds.root = root;
  ds.label_names = {"Pneumonia"};
  const std::string image_dir = options.image_dir.empty()
                                    ? detail::join_path(root, "stage_2_train_images")
                                    : options.image_dir;
  std::unordered_map<std::string, size_t> index;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string& pid = row[id_col];
    CXR_CHECK(!pid.empty(), t.where(r), ": empty patientId");
    const std::string& target = row[tg_col];
    CXR_CHECK(target == "0" || target == "1", t.where(r), ": column 'Target': bad value '", target,
              "' (expected 0 or 1)");
    auto [it, fresh] = index.emplace(pid, ds.samples.size());
    if (fresh) {
      Sample s;
      s.id = pid;
      s.patient_id = pid;
      s.labels = {0.0f};
      s.mask_height = s.mask_width = 1024;
      ds.samples.push_back(std::move(s));
    }
    Sample& s = ds.samples[it->second];
    if (target == "1") {
      s.labels[0] = 1.0f;
      Box b{detail::parse_float_field(t, r, x_col), detail::parse_float_field(t, r, y_col),
            detail::parse_float_field(t, r, w_col), detail::parse_float_field(t, r, h_col)};
      CXR_CHECK(b.width > 0 && b.height > 0, t.where(r), ": box with non-positive size");
      s.boxes.push_back(b);
    } else {
      CXR_CHECK(row[x_col].empty() && row[w_col].empty(), t.where(r), ": Target 0 row has a box");
    }
  }
  for (auto& s : ds.samples) {
    std::string path = detail::join_path(image_dir, s.id + ".dcm");
    std::error_code ec;
    for (const char* ext : {".png", ".jpg"}) {
      std::string alt = detail::join_path(image_dir, s.id + ext);
      if (!std::filesystem::exists(path, ec) && std::filesystem::exists(alt, ec)) path = alt;
    }
    s.image_path = path;
    if (options.check_images) detail::require_file(csv + ": patientId " + s.id, path);
  }
  return ds;
}

}  // namespace cxr::data
