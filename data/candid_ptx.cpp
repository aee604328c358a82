#include "data/candid_ptx.h"

#include <filesystem>
#include <unordered_map>

#include "data/readers_common.h"
#include "data/rle.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

void validate_rle(const CsvTable& t, size_t r, const std::string& id, const std::string& rle,
                  int64_t n) {
  try {
    rle_relative_pixel_count(rle, n, n);
  } catch (const Error& e) {
    CXR_FAIL(t.where(r), ": ", id, ": ", e.what());
  }
}

std::string strip_dcm(const std::string& s) {
  if (s.size() > 4 && s.compare(s.size() - 4, 4, ".dcm") == 0) return s.substr(0, s.size() - 4);
  return s;
}

}  // namespace

Dataset read_candid_ptx(const std::string& root, const CandidPtxOptions& o) {
  const std::string reports = detail::join_path(root, "Pneumothorax_reports.csv");
  CsvTable t = read_csv(reports);
  const size_t uid_col = t.column("SOPInstanceUID");
  const size_t rle_col = t.column("EncodedPixels");
  const bool has_file = t.has_column("filename"), has_report = t.has_column("Report");
  const size_t file_col = has_file ? t.column("filename") : 0;
  const size_t report_col = has_report ? t.column("Report") : 0;
  const int64_t n = o.mask_size;
  Dataset ds;
  ds.name = "candid-ptx";
  ds.root = root;
  ds.label_names = {"Pneumothorax", "Chest Tube", "Rib Fracture"};
  std::unordered_map<std::string, size_t> index;  // key: SOPInstanceUID without ".dcm"
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string& uid = row[uid_col];
    CXR_CHECK(!uid.empty(), t.where(r), ": empty SOPInstanceUID");
    validate_rle(t, r, uid, row[rle_col], n);
    auto [it, fresh] = index.emplace(strip_dcm(uid), ds.samples.size());
    if (fresh) {
      Sample s;
      s.id = uid;
      s.patient_id = uid;
      if (has_file) {
        const std::string& f = row[file_col];
        size_t u = f.find('_');
        if (!f.empty()) s.patient_id = u == std::string::npos ? f : f.substr(0, u);
      }
      s.has_mask_annotation = true;
      s.mask_height = s.mask_width = n;
      s.labels = {0.0f, 0.0f, 0.0f};
      ds.samples.push_back(std::move(s));
    }
    Sample& s = ds.samples[it->second];
    if (!rle_is_empty(row[rle_col])) s.mask_rles.push_back(row[rle_col]);
    if (has_report && s.report.empty()) s.report = row[report_col];
  }
  // Chest tubes and rib fractures: a row means present.
  struct Extra {
    std::vector<std::string> files;
    const char* key;
    size_t label;
  };
  for (const Extra& e :
       {Extra{{"chest_tube.csv"}, "chest_tube", 1},
        Extra{{"acute_rib_fracture.csv", "Rib_fracture_mask_rle.csv"}, "rib_fracture", 2}}) {
    std::string path;
    for (const auto& f : e.files) {
      std::string p = detail::join_path(root, f);
      if (std::filesystem::exists(p)) {
        path = p;
        break;
      }
    }
    if (path.empty()) continue;  // optional files
    CsvTable x = read_csv(path);
    const size_t id_col = x.column_any({"anon_SOPUID", "SOPInstanceUID"});
    const size_t m_col = x.column_any({"mask_rle", "EncodedPixels"});
    for (size_t r = 0; r < x.size(); ++r) {
      const std::string& uid = x.rows[r][id_col];
      validate_rle(x, r, uid, x.rows[r][m_col], n);
      auto it = index.find(strip_dcm(uid));
      CXR_CHECK(it != index.end(), x.where(r), ": ", e.key, " row for image '", uid,
                "' which is not in Pneumothorax_reports.csv");
      Sample& s = ds.samples[it->second];
      if (rle_is_empty(x.rows[r][m_col])) continue;
      s.labels[e.label] = 1.0f;
      s.extra_masks[e.key].push_back(x.rows[r][m_col]);
    }
  }
  const std::string image_dir =
      o.image_dir.empty() ? detail::join_path(root, "dataset") : o.image_dir;
  std::vector<Sample> kept;
  for (auto& s : ds.samples) {
    s.labels[0] = s.mask_positive() ? 1.0f : 0.0f;
    if (o.positive_only && s.labels[0] == 0.0f) continue;
    std::string path = detail::join_path(image_dir, s.id);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      for (const char* ext : {".dcm", ".png"}) {
        std::string alt = detail::join_path(image_dir, strip_dcm(s.id) + ext);
        if (std::filesystem::exists(alt, ec)) {
          path = alt;
          break;
        }
      }
    s.image_path = path;
    if (o.check_images) detail::require_file(reports + ": SOPInstanceUID " + s.id, path);
    kept.push_back(std::move(s));
  }
  ds.samples = std::move(kept);
  return ds;
}

}  // namespace cxr::data
