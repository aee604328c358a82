#include "data/readers_common.h"

#include <charconv>
#include <cmath>
#include <filesystem>

#include "tensor/error.h"

namespace cxr::data::detail {

float parse_float_field(const CsvTable& t, size_t row, size_t col) {
  const std::string& v = t.rows[row][col];
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  CXR_CHECK(!v.empty() && ec == std::errc() && p == v.data() + v.size() && std::isfinite(x),
            t.where(row), ": column '", t.header[col], "': bad value '", v,
            "' (expected a number)");
  return float(x);
}

std::string join_path(const std::string& dir, const std::string& rel) {
  if (dir.empty() || (!rel.empty() && rel[0] == '/')) return rel;
  return (std::filesystem::path(dir) / rel).string();
}

void require_file(const std::string& what, const std::string& path) {
  std::error_code ec;
  CXR_CHECK(std::filesystem::is_regular_file(path, ec), what, ": image '", path, "' not found");
}

}  // namespace cxr::data::detail
