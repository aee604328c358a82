// `cxr tensors ls|stats|diff FILE…`: an inspector for safetensors files (weights, checkpoints,
// fixtures). ls lists metadata and tensors (name, dtype, shape, bytes); stats gives per-tensor
// min, max, mean, std (unbiased, over the finite values) and NaN/Inf counts; diff compares two
// files tensor by tensor (max absolute and relative error, names only in one file, shape/dtype
// differences, metadata differences). Statistics stream over the memory-mapped data in fixed
// blocks (parallel, deterministic), so multi-gigabyte files need no extra memory.
#include <algorithm>
#include <cinttypes>  // PRId64
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "tensor/creation.h"
#include "tensor/safetensors.h"

namespace cxr::experiments {

namespace {

constexpr int64_t kBlock = 1 << 16;  // elements per parallel block
constexpr int64_t kChunk = 2048;     // elements converted to double at a time

// The format's dtype codes (what users of weight files know).
const char* dtype_code(DType t) {
  switch (t) {
    case kFloat32:
      return "F32";
    case kFloat64:
      return "F64";
    case kFloat16:
      return "F16";
    case kBFloat16:
      return "BF16";
    case kInt32:
      return "I32";
    case kInt64:
      return "I64";
    case kUInt8:
      return "U8";
    case kBool:
      return "BOOL";
  }
  return "?";
}

std::string human_bytes(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024.0 && u < 4) {
    n /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
  return buf;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

int64_t tensor_bytes(const Tensor& t) {
  return t.numel() * int64_t(t.element_size());
}

// Elements [start, start + n) of a contiguous tensor as doubles.
void read_doubles(const Tensor& t, int64_t start, int64_t n, double* out) {
  auto kernel = [&]<typename T>() {
    const T* p = static_cast<const T*>(t.data_ptr()) + start;
    for (int64_t i = 0; i < n; ++i) out[i] = double(compute_t<T>(p[i]));
  };
  CXR_DISPATCH_ALL(t.dtype(), "tensors", kernel);
}

// Calls f(block_index, begin, end) for fixed blocks of [0, n), in parallel.
template <typename F>
void for_blocks(int64_t n, F&& f) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) f(b, b * kBlock, std::min(n, (b + 1) * kBlock));
}

struct Stats {
  int64_t finite = 0, nan = 0, inf = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double mean = NAN, std = NAN;
};

// Two passes (mean, then squared deviations) over fixed blocks combined in order.
Stats tensor_stats(const Tensor& t) {
  const int64_t n = t.numel();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<Stats> part(static_cast<size_t>(blocks));
  std::vector<double> sums(size_t(blocks), 0.0);
  for_blocks(n, [&](int64_t b, int64_t begin, int64_t end) {
    double buf[kChunk];
    Stats& s = part[size_t(b)];
    double sum = 0.0;
    for (int64_t c = begin; c < end; c += kChunk) {
      const int64_t m = std::min(kChunk, end - c);
      read_doubles(t, c, m, buf);
      for (int64_t i = 0; i < m; ++i) {
        const double v = buf[i];
        if (std::isnan(v)) {
          ++s.nan;
        } else if (std::isinf(v)) {
          ++s.inf;
        } else {
          ++s.finite;
          sum += v;
          s.min = std::min(s.min, v);
          s.max = std::max(s.max, v);
        }
      }
    }
    sums[size_t(b)] = sum;
  });
  Stats total;
  double sum = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    const Stats& s = part[size_t(b)];
    total.finite += s.finite;
    total.nan += s.nan;
    total.inf += s.inf;
    total.min = std::min(total.min, s.min);
    total.max = std::max(total.max, s.max);
    sum += sums[size_t(b)];
  }
  if (total.finite == 0) return total;
  total.mean = sum / double(total.finite);
  std::vector<double> squares(size_t(blocks), 0.0);
  for_blocks(n, [&](int64_t b, int64_t begin, int64_t end) {
    double buf[kChunk];
    double acc = 0.0;
    for (int64_t c = begin; c < end; c += kChunk) {
      const int64_t m = std::min(kChunk, end - c);
      read_doubles(t, c, m, buf);
      for (int64_t i = 0; i < m; ++i)
        if (std::isfinite(buf[i])) acc += (buf[i] - total.mean) * (buf[i] - total.mean);
    }
    squares[size_t(b)] = acc;
  });
  double ss = 0.0;
  for (double v : squares) ss += v;
  if (total.finite > 1) total.std = std::sqrt(ss / double(total.finite - 1));
  return total;
}

struct Diff {
  double max_abs = 0.0, max_rel = 0.0;
  int64_t worst = -1;        // flat index of the largest absolute error
  int64_t nan_mismatch = 0;  // NaN in one file only
  int64_t differing = 0;     // elements that are not equal
};

// Per element: equal values (NaN == NaN, inf == inf of the same sign) count 0; otherwise the
// absolute error |a - b| and the relative error |a - b| / max(|a|, |b|) (inf against a finite
// value or the other infinity: both errors inf).
Diff tensor_diff(const Tensor& a, const Tensor& b) {
  const int64_t n = a.numel();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<Diff> part(static_cast<size_t>(blocks));
  for_blocks(n, [&](int64_t blk, int64_t begin, int64_t end) {
    double x[kChunk], y[kChunk];
    Diff& d = part[size_t(blk)];
    for (int64_t c = begin; c < end; c += kChunk) {
      const int64_t m = std::min(kChunk, end - c);
      read_doubles(a, c, m, x);
      read_doubles(b, c, m, y);
      for (int64_t i = 0; i < m; ++i) {
        if (x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))) continue;
        ++d.differing;
        if (std::isnan(x[i]) || std::isnan(y[i])) {
          ++d.nan_mismatch;
          continue;
        }
        const double abs_err = std::abs(x[i] - y[i]);
        const double rel_err =
            std::isinf(abs_err) ? abs_err : abs_err / std::max(std::abs(x[i]), std::abs(y[i]));
        if (abs_err > d.max_abs || d.worst < 0) {
          d.max_abs = abs_err;
          d.worst = c + i;
        }
        d.max_rel = std::max(d.max_rel, rel_err);
      }
    }
  });
  Diff total;
  for (const Diff& d : part) {
    if (d.worst >= 0 && (total.worst < 0 || d.max_abs > total.max_abs)) {
      total.max_abs = d.max_abs;
      total.worst = d.worst;
    }
    total.max_rel = std::max(total.max_rel, d.max_rel);
    total.nan_mismatch += d.nan_mismatch;
    total.differing += d.differing;
  }
  return total;
}

// [i, j, k] of a flat row-major index.
std::string unravel(int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

// A table whose columns are padded to their widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows, const char* indent = "  ") {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void run_ls(const std::vector<std::string>& files) {
  for (size_t f = 0; f < files.size(); ++f) {
    const SafetensorsFile file = load_safetensors(files[f]);
    int64_t total = 0;
    for (const auto& [name, t] : file.tensors) total += tensor_bytes(t);
    if (f > 0) std::printf("\n");
    std::printf("%s: %zu tensors, %s of data\n", files[f].c_str(), file.tensors.size(),
                human_bytes(double(total)).c_str());
    for (const auto& [key, value] : file.metadata)
      std::printf("  metadata %s: %s\n", key.c_str(), value.c_str());
    std::vector<std::vector<std::string>> rows{{"name", "dtype", "shape", "bytes"}};
    for (const auto& [name, t] : file.tensors)
      rows.push_back(
          {name, dtype_code(t.dtype()), shape_str(t.sizes()), std::to_string(tensor_bytes(t))});
    print_table(rows);
  }
}

void run_stats(const std::vector<std::string>& files) {
  for (size_t f = 0; f < files.size(); ++f) {
    const SafetensorsFile file = load_safetensors(files[f]);
    if (f > 0) std::printf("\n");
    std::printf("%s: %zu tensors (statistics over finite values; std unbiased)\n", files[f].c_str(),
                file.tensors.size());
    std::vector<std::vector<std::string>> rows{
        {"name", "dtype", "shape", "min", "max", "mean", "std", "nan", "inf"}};
    for (const auto& [name, t] : file.tensors) {
      const Stats s = tensor_stats(raw::contiguous(t));
      const bool any = s.finite > 0;
      rows.push_back({name, dtype_code(t.dtype()), shape_str(t.sizes()), any ? number(s.min) : "-",
                      any ? number(s.max) : "-", any ? number(s.mean) : "-",
                      s.finite > 1 ? number(s.std) : "-", std::to_string(s.nan),
                      std::to_string(s.inf)});
    }
    print_table(rows);
  }
}

void run_diff(const std::string& path_a, const std::string& path_b) {
  const SafetensorsFile a = load_safetensors(path_a);
  const SafetensorsFile b = load_safetensors(path_b);
  std::printf("%s vs %s\n", path_a.c_str(), path_b.c_str());
  std::vector<std::vector<std::string>> rows{
      {"name", "max_abs", "max_rel", "differing", "worst at"}};
  int64_t identical = 0, differing = 0, incompatible = 0;
  std::vector<std::string> only_a, only_b;
  for (const auto& [name, ta] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end()) {
      only_a.push_back(name);
      continue;
    }
    const Tensor& tb = it->second;
    if (ta.sizes() != tb.sizes()) {
      ++incompatible;
      rows.push_back({name, "shape " + shape_str(ta.sizes()) + " vs " + shape_str(tb.sizes())});
      continue;
    }
    const Tensor ca = raw::contiguous(ta), cb = raw::contiguous(tb);
    const bool same_dtype = ta.dtype() == tb.dtype();
    if (same_dtype && std::memcmp(ca.data_ptr(), cb.data_ptr(), size_t(tensor_bytes(ca))) == 0) {
      ++identical;
      rows.push_back({name, "identical"});
      continue;
    }
    const Diff d = tensor_diff(ca, cb);
    ++differing;
    std::string count = std::to_string(d.differing) + "/" + std::to_string(ca.numel());
    if (d.nan_mismatch > 0) count += " (" + std::to_string(d.nan_mismatch) + " NaN in one file)";
    std::string where = d.worst >= 0 ? unravel(d.worst, ca.sizes()) : "-";
    if (!same_dtype)
      where +=
          std::string("  (dtype ") + dtype_code(ta.dtype()) + " vs " + dtype_code(tb.dtype()) + ")";
    rows.push_back({name, number(d.max_abs), number(d.max_rel), count, where});
  }
  for (const auto& [name, t] : b.tensors)
    if (!a.tensors.count(name)) only_b.push_back(name);
  print_table(rows);
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  if (!only_a.empty()) std::printf("only in %s: %s\n", path_a.c_str(), list(only_a).c_str());
  if (!only_b.empty()) std::printf("only in %s: %s\n", path_b.c_str(), list(only_b).c_str());
  for (const auto& [key, value] : a.metadata) {
    auto it = b.metadata.find(key);
    if (it == b.metadata.end())
      std::printf("metadata %s: only in %s\n", key.c_str(), path_a.c_str());
    else if (it->second != value)
      std::printf("metadata %s: differs\n", key.c_str());
  }
  for (const auto& [key, value] : b.metadata)
    if (!a.metadata.count(key))
      std::printf("metadata %s: only in %s\n", key.c_str(), path_b.c_str());
  std::printf("summary: %" PRId64 " identical, %" PRId64 " differing, %" PRId64
              " with other shapes, %zu only in the first file, %zu only in the second\n",
              identical, differing, incompatible, only_a.size(), only_b.size());
}

}  // namespace

Command register_tensors(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("tensors", "Inspect safetensors files: ls, stats, diff");
  sub->require_subcommand(1);
  auto ls_files = std::make_shared<std::vector<std::string>>();
  auto stats_files = std::make_shared<std::vector<std::string>>();
  auto diff_files = std::make_shared<std::vector<std::string>>();
  CLI::App* ls = sub->add_subcommand(
      "ls", "List each file's metadata and tensors (name, dtype, shape, bytes)");
  ls->add_option("files", *ls_files, "safetensors files")->required();
  CLI::App* stats = sub->add_subcommand(
      "stats", "Per-tensor min, max, mean, std (over finite values) and NaN/Inf counts");
  stats->add_option("files", *stats_files, "safetensors files")->required();
  CLI::App* diff = sub->add_subcommand(
      "diff",
      "Compare two files: per common tensor the max absolute error, the max relative error "
      "|a-b|/max(|a|,|b|) and where the worst is; names only in one file; shape, dtype and "
      "metadata differences");
  diff->add_option("files", *diff_files, "the two safetensors files")->required()->expected(2);
  return {sub, [=] {
            if (ls->parsed()) run_ls(*ls_files);
            if (stats->parsed()) run_stats(*stats_files);
            if (diff->parsed()) run_diff((*diff_files)[0], (*diff_files)[1]);
          }};
}

}  // namespace cxr::experiments
