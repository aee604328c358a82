#include "data/chexpert.h"

#include <algorithm>
#include <limits>

#include "data/readers_common.h"
#include "tensor/error.h"

namespace cxr::data {

const std::vector<std::string>& chexpert_labels() {
  static const std::vector<std::string> names = {"Atelectasis", "Cardiomegaly", "Consolidation",
                                                 "Edema", "Pleural Effusion"};
  return names;
}

namespace {

// The path from the split folder on: strips "CheXpert-v1.0-small/" or "/nas/…/CheXpert-v1.0/".
std::string relative_image_path(const std::string& p) {
  for (const char* split : {"train/", "valid/", "test/"}) {
    size_t pos = 0;
    while ((pos = p.find(split, pos)) != std::string::npos) {
      if (pos == 0 || p[pos - 1] == '/') return p.substr(pos);
      pos += 1;
    }
  }
  return p;
}

std::string patient_of(const std::string& rel) {
  size_t a = rel.find("patient");
  if (a == std::string::npos) return rel;
  size_t b = rel.find('/', a);
  return rel.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

// Header names with underscores (jfhealthcare) map to the official names with spaces.
size_t find_column(const CsvTable& t, const std::string& name) {
  std::string underscored = name;
  std::replace(underscored.begin(), underscored.end(), ' ', '_');
  return t.column_any({name, underscored});
}

}  // namespace

Dataset read_chexpert(const std::string& root, const std::string& csv_path,
                      const CheXpertOptions& options) {
  CsvTable t = read_csv(csv_path);
  Dataset ds;
  ds.name = "chexpert";
  ds.root = root;
  ds.label_names = chexpert_labels();
  const size_t path_col = t.column("Path");
  const size_t view_col = find_column(t, "Frontal/Lateral");
  std::vector<size_t> label_cols;
  for (const auto& n : chexpert_labels()) label_cols.push_back(find_column(t, n));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string& view = row[view_col];
    CXR_CHECK(view == "Frontal" || view == "Lateral", t.where(r),
              ": column 'Frontal/Lateral': bad value '", view, "' (expected Frontal or Lateral)");
    if (options.frontal_only && view != "Frontal") continue;
    Sample s;
    const std::string rel = relative_image_path(row[path_col]);
    CXR_CHECK(!rel.empty(), t.where(r), ": empty Path");
    s.id = rel;
    s.patient_id = patient_of(rel);
    s.image_path = detail::join_path(root, rel);
    for (size_t k = 0; k < label_cols.size(); ++k) {
      const std::string& v = row[label_cols[k]];
      float y;
      if (v.empty()) {
        y = 0.0f;  // not mentioned
      } else {
        y = detail::parse_float_field(t, r, label_cols[k]);
        CXR_CHECK(y == 1.0f || y == 0.0f || y == -1.0f, t.where(r), ": column '",
                  t.header[label_cols[k]], "': bad value '", v,
                  "' (expected 1.0, 0.0, -1.0 or blank)");
      }
      if (y == -1.0f) {
        switch (options.uncertainty) {
          case Uncertainty::Ones:
            y = 1.0f;
            break;
          case Uncertainty::Zeros:
            y = 0.0f;
            break;
          case Uncertainty::Ignore:
            y = nan;
            break;
          case Uncertainty::Mixed:
            y = (k == 1 || k == 2) ? 0.0f : 1.0f;
            break;
        }
      }
      s.labels.push_back(y);
    }
    if (options.check_images) detail::require_file(t.where(r), s.image_path);
    ds.samples.push_back(std::move(s));
  }
  return ds;
}

CheXpertSplit read_chexpert_official(const std::string& root, const CheXpertOptions& options) {
  CheXpertSplit s;
  s.train = read_chexpert(root, detail::join_path(root, "train.csv"), options);
  s.test = read_chexpert(root, detail::join_path(root, "valid.csv"), options);
  return s;
}

}  // namespace cxr::data
