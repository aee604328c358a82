#include "data/csv.h"

#include <fstream>
#include <sstream>

#include "tensor/error.h"

#ifdef CXR_HAVE_ZLIB
#include <zlib.h>
#endif

namespace cxr::data {

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return s.substr(b, e - b);
}

bool CsvTable::has_column(std::string_view name) const {
  for (const auto& h : header)
    if (h == name) return true;
  return false;
}

size_t CsvTable::column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string cols;
  for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
  CXR_FAIL(source, ": missing column '", name, "' (header: ", cols, ")");
}

size_t CsvTable::column_any(const std::vector<std::string>& names) const {
  for (const auto& n : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == n) return i;
  std::string want, cols;
  for (const auto& n : names) want += (want.empty() ? "'" : " or '") + n + "'";
  for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
  CXR_FAIL(source, ": missing column ", want, " (header: ", cols, ")");
}

std::string CsvTable::where(size_t row) const {
  return detail::cat(source, ":", row < lines.size() ? lines[row] : 0);
}

namespace {

struct Record {
  std::vector<std::string> fields;
  int64_t line = 0;
};

// Splits text into records. Unquoted fields are trimmed; quoted fields keep their content.
std::vector<Record> split_records(std::string_view text, const std::string& source) {
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF)
    text.remove_prefix(3);
  std::vector<Record> out;
  Record rec;
  std::string field;
  bool quoted = false;       // inside quotes
  bool was_quoted = false;   // current field started with a quote
  bool after_quote = false;  // closing quote seen; only spaces/separator may follow
  bool record_empty = true;  // nothing but separators/whitespace so far
  int64_t line = 1;
  rec.line = 1;
  auto end_field = [&]() {
    rec.fields.push_back(was_quoted ? field : std::string(trim(field)));
    field.clear();
    was_quoted = after_quote = false;
  };
  auto end_record = [&]() {
    end_field();
    bool blank = record_empty && rec.fields.size() == 1 && rec.fields[0].empty();
    if (!blank) out.push_back(std::move(rec));
    rec = Record{};
    record_empty = true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == ',') {
      record_empty = false;
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      rec.line = line;
    } else if (c == '"' && trim(field).empty() && !was_quoted) {
      field.clear();
      quoted = was_quoted = true;
      record_empty = false;
    } else if (after_quote) {
      CXR_CHECK(c == ' ' || c == '\t', source, ":", line,
                ": unexpected character after a closing quote");
    } else {
      if (c != ' ' && c != '\t') record_empty = false;
      field += c;
    }
  }
  CXR_CHECK(!quoted, source, ":", rec.line, ": unterminated quoted field");
  if (!field.empty() || !rec.fields.empty() || was_quoted) end_record();
  return out;
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::string& source) {
  CsvTable t;
  t.source = source;
  auto records = split_records(text, source);
  CXR_CHECK(!records.empty(), source, ": empty CSV file (no header)");
  t.header = std::move(records[0].fields);
  // A header ending with a comma has an unnamed trailing column; drop it.
  while (t.header.size() > 1 && t.header.back().empty()) t.header.pop_back();
  for (size_t c = 0; c < t.header.size(); ++c)
    CXR_CHECK(!t.header[c].empty(), source, ":", records[0].line, ": empty column name (column ",
              c + 1, ")");
  const size_t n = t.header.size();
  for (size_t r = 1; r < records.size(); ++r) {
    auto& f = records[r].fields;
    // Trailing commas: extra empty fields past the header are tolerated.
    while (f.size() > n && f.back().empty()) f.pop_back();
    CXR_CHECK(f.size() == n, source, ":", records[r].line, ": expected ", n, " fields, got ",
              f.size());
    t.rows.push_back(std::move(f));
    t.lines.push_back(records[r].line);
  }
  return t;
}

std::string read_text_file(const std::string& path) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
#ifdef CXR_HAVE_ZLIB
    gzFile f = gzopen(path.c_str(), "rb");
    CXR_CHECK(f != nullptr, path, ": cannot open file (missing or unreadable)");
    std::string out;
    char buf[1 << 16];
    int n = 0;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, size_t(n));
    int err = 0;
    const char* msg = n < 0 ? gzerror(f, &err) : nullptr;
    std::string why = msg ? msg : "";
    gzclose(f);
    CXR_CHECK(n == 0, path, ": corrupt or truncated gzip data (", why, ")");
    return out;
#else
    CXR_FAIL(path, ": reading .gz files needs zlib (install zlib1g-dev and reconfigure)");
#endif
  }
  std::ifstream in(path, std::ios::binary);
  CXR_CHECK(in.good(), path, ": cannot open file (missing or unreadable)");
  std::ostringstream ss;
  ss << in.rdbuf();
  CXR_CHECK(!in.bad(), path, ": read error");
  return ss.str();
}

CsvTable read_csv(const std::string& path) {
  return parse_csv(read_text_file(path), path);
}

std::string csv_escape(std::string_view field) {
  if (field.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace cxr::data
