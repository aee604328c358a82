// Helpers shared by the dataset readers (internal to data/).
#pragma once

#include <string>
#include <string_view>

#include "data/csv.h"

namespace cxr::data::detail {

// Parses a float label/coordinate field; throws "<file>:<line>: column '<col>': bad value '<v>'".
float parse_float_field(const CsvTable& t, size_t row, size_t col);
// Joins a folder and a relative path (returns `rel` when it is absolute or `dir` empty).
std::string join_path(const std::string& dir, const std::string& rel);
// Throws "<what>: image '<path>' not found" when the file is missing.
void require_file(const std::string& what, const std::string& path);

}  // namespace cxr::data::detail
