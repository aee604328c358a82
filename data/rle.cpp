#include "data/rle.h"

#include <charconv>

#include "data/csv.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

// Parses whitespace-separated non-negative integers; throws naming the bad token.
std::vector<int64_t> parse_numbers(std::string_view rle, const char* op) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < rle.size()) {
    while (i < rle.size() && (rle[i] == ' ' || rle[i] == '\t' || rle[i] == '\r' || rle[i] == '\n'))
      ++i;
    if (i >= rle.size()) break;
    size_t j = i;
    while (j < rle.size() && !(rle[j] == ' ' || rle[j] == '\t' || rle[j] == '\r' || rle[j] == '\n'))
      ++j;
    std::string_view tok = rle.substr(i, j - i);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    CXR_CHECK(ec == std::errc() && p == tok.data() + tok.size() && v >= 0, op, ": bad token '", tok,
              "' (expected a non-negative integer)");
    out.push_back(v);
    i = j;
  }
  CXR_CHECK(out.size() % 2 == 0, op, ": odd number of values (", out.size(),
            "); expected (start, length) pairs");
  return out;
}

void check_size(int64_t h, int64_t w, const char* op) {
  CXR_CHECK(h > 0 && w > 0, op, ": mask size must be positive, got ", h, "x", w);
}

// Visits each run as [begin, end) in the relative column-major flat index; validates bounds.
template <typename F>
void for_each_relative_run(std::string_view rle, int64_t h, int64_t w, F&& fn) {
  const char* op = "rle_decode_relative";
  check_size(h, w, op);
  if (rle_is_empty(rle)) return;
  auto v = parse_numbers(rle, op);
  const int64_t n = h * w;
  int64_t pos = 0;
  for (size_t k = 0; k < v.size(); k += 2) {
    int64_t begin = pos + v[k];
    int64_t end = begin + v[k + 1];
    CXR_CHECK(v[k + 1] > 0, op, ": run ", k / 2, " has length 0");
    CXR_CHECK(end <= n, op, ": run ", k / 2, " (pixels ", begin, "..", end - 1, ") leaves the ", h,
              "x", w, " image (", n, " pixels)");
    fn(begin, end);
    pos = end;
  }
}

}  // namespace

bool rle_is_empty(std::string_view rle) {
  auto t = trim(rle);
  return t.empty() || t == "-1";
}

void rle_decode_relative_into(std::string_view rle, int64_t h, int64_t w, uint8_t* mask) {
  for_each_relative_run(rle, h, w, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) mask[(k % h) * w + k / h] = 1;  // flat k = col*H + row
  });
}

std::vector<uint8_t> rle_decode_relative(std::string_view rle, int64_t h, int64_t w) {
  check_size(h, w, "rle_decode_relative");
  std::vector<uint8_t> m(size_t(h * w), 0);
  rle_decode_relative_into(rle, h, w, m.data());
  return m;
}

int64_t rle_relative_pixel_count(std::string_view rle, int64_t h, int64_t w) {
  int64_t n = 0;
  // Runs never overlap within one string (each starts at or after the previous end).
  for_each_relative_run(rle, h, w, [&](int64_t b, int64_t e) { n += e - b; });
  return n;
}

std::string rle_encode_relative(const uint8_t* mask, int64_t h, int64_t w) {
  check_size(h, w, "rle_encode_relative");
  std::string out;
  int64_t prev_end = 0, n = h * w, k = 0;
  while (k < n) {
    if (!mask[(k % h) * w + k / h]) {
      ++k;
      continue;
    }
    int64_t b = k;
    while (k < n && mask[(k % h) * w + k / h]) ++k;
    if (!out.empty()) out += ' ';
    out += std::to_string(b - prev_end) + ' ' + std::to_string(k - b);
    prev_end = k;
  }
  return out.empty() ? "-1" : out;
}

void rle_decode_absolute_into(std::string_view rle, int64_t h, int64_t w, uint8_t* mask) {
  const char* op = "rle_decode_absolute";
  check_size(h, w, op);
  if (rle_is_empty(rle)) return;
  auto v = parse_numbers(rle, op);
  const int64_t n = h * w;
  for (size_t k = 0; k < v.size(); k += 2) {
    CXR_CHECK(v[k] >= 1, op, ": run ", k / 2, " starts at ", v[k], " (starts are 1-based)");
    int64_t begin = v[k] - 1, end = begin + v[k + 1];
    CXR_CHECK(end <= n, op, ": run ", k / 2, " (pixels ", begin, "..", end - 1, ") leaves the ", h,
              "x", w, " image (", n, " pixels)");
    for (int64_t i = begin; i < end; ++i) mask[i] = 1;
  }
}

std::vector<uint8_t> rle_decode_absolute(std::string_view rle, int64_t h, int64_t w) {
  check_size(h, w, "rle_decode_absolute");
  std::vector<uint8_t> m(size_t(h * w), 0);
  rle_decode_absolute_into(rle, h, w, m.data());
  return m;
}

std::string rle_encode_absolute(const uint8_t* mask, int64_t h, int64_t w) {
  check_size(h, w, "rle_encode_absolute");
  std::string out;
  int64_t n = h * w, k = 0;
  while (k < n) {
    if (!mask[k]) {
      ++k;
      continue;
    }
    int64_t b = k;
    while (k < n && mask[k]) ++k;
    if (!out.empty()) out += ' ';
    out += std::to_string(b + 1) + ' ' + std::to_string(k - b);
  }
  return out.empty() ? "-1" : out;
}

}  // namespace cxr::data
