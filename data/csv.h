// A small, robust CSV reader for the dataset label files: UTF-8 BOM, quoted fields (with "" escapes
// and embedded commas/newlines), CRLF or LF line ends, header names and unquoted values with
// surrounding spaces trimmed, and a trailing empty field tolerated. Errors name file:line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cxr::data {

class CsvTable {
 public:
  std::string source;                          // file path (or a name given to parse_csv)
  std::vector<std::string> header;             // trimmed column names
  std::vector<std::vector<std::string>> rows;  // each row has header.size() fields
  std::vector<int64_t> lines;                  // 1-based line number where each row starts

  size_t size() const { return rows.size(); }
  bool has_column(std::string_view name) const;
  // Index of a column; throws cxr::Error naming the file, the column and the header when absent.
  size_t column(std::string_view name) const;
  // Index of the first of `names` present; throws listing all of them when none is.
  size_t column_any(const std::vector<std::string>& names) const;
  // "file:line" of a row, for error messages.
  std::string where(size_t row) const;
};

// Parses CSV text; `source` names it in errors. The first non-empty record is the header.
CsvTable parse_csv(std::string_view text, const std::string& source);
// Reads and parses a file; a missing or unreadable file throws cxr::Error naming it.
CsvTable read_csv(const std::string& path);
// Reads a whole file into a string (a .gz file is decompressed when zlib is available); throws
// cxr::Error naming it when it cannot be read.
std::string read_text_file(const std::string& path);
// Writes a CSV field, quoting it when it contains a comma, quote or newline.
std::string csv_escape(std::string_view field);
// Trims ASCII spaces, tabs and CR/LF from both ends.
std::string_view trim(std::string_view s);

}  // namespace cxr::data
