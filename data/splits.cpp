#include "data/splits.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "data/csv.h"
#include "tensor/error.h"
#include "tensor/file_io.h"

namespace cxr::data {

namespace {

// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", 2014):
// a small, fully specified generator so splits are identical on every platform and compiler.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }

 private:
  uint64_t s_;
};

// Fisher–Yates shuffle (Durstenfeld's variant).
template <typename T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

int64_t count_for(double fraction, size_t n, const char* what) {
  CXR_CHECK(fraction >= 0.0 && fraction <= 1.0, "split: ", what, " must be in [0, 1], got ",
            fraction);
  return int64_t(std::llround(fraction * double(n)));
}

// Seeded order of the unique patients (sorted first so the input order does not matter).
std::vector<std::string> shuffled_patients(const Dataset& ds, bool real_only, SplitMix64& rng) {
  std::set<std::string> p;
  for (const auto& s : ds.samples)
    if (!real_only || !s.synthetic) p.insert(s.patient_id.empty() ? s.id : s.patient_id);
  std::vector<std::string> v(p.begin(), p.end());
  shuffle(v, rng);
  return v;
}

const std::string& patient_of(const Sample& s) {
  return s.patient_id.empty() ? s.id : s.patient_id;
}

}  // namespace

std::vector<std::string> Split::train_fraction(double fraction) const {
  int64_t n = count_for(fraction, train.size(), "training fraction");
  if (n == 0 && fraction > 0 && !train.empty()) n = 1;
  return std::vector<std::string>(train.begin(), train.begin() + n);
}

Split random_split(const Dataset& ds, const SplitOptions& o) {
  CXR_CHECK(o.test_fraction + o.val_fraction <= 1.0, "random_split: test_fraction + val_fraction ",
            o.test_fraction + o.val_fraction, " exceeds 1");
  SplitMix64 rng(o.seed);
  auto patients = shuffled_patients(ds, /*real_only=*/true, rng);
  const int64_t n_test = count_for(o.test_fraction, patients.size(), "test_fraction");
  const int64_t n_val = count_for(o.val_fraction, patients.size(), "val_fraction");
  std::unordered_map<std::string, int> subset;  // 1 = test, 2 = val
  for (int64_t i = 0; i < int64_t(patients.size()); ++i)
    subset[patients[size_t(i)]] = i < n_test ? 1 : (i < n_test + n_val ? 2 : 0);
  Split sp;
  sp.seed = o.seed;
  for (const auto& s : ds.samples) {
    int k = s.synthetic ? 0 : subset[patient_of(s)];
    (k == 1 ? sp.test : k == 2 ? sp.val : sp.train).push_back(s.id);
  }
  std::sort(sp.train.begin(), sp.train.end());
  shuffle(sp.train, rng);
  return sp;
}

Split official_split(const Dataset& train, const Dataset& test, uint64_t seed,
                     double val_fraction) {
  SplitMix64 rng(seed);
  Split sp;
  sp.seed = seed;
  std::set<std::string> val_patients;
  if (val_fraction > 0) {
    auto patients = shuffled_patients(train, true, rng);
    int64_t n = count_for(val_fraction, patients.size(), "val_fraction");
    val_patients.insert(patients.begin(), patients.begin() + n);
  }
  for (const auto& s : train.samples)
    (!s.synthetic && val_patients.count(patient_of(s)) ? sp.val : sp.train).push_back(s.id);
  for (const auto& s : test.samples) sp.test.push_back(s.id);
  std::sort(sp.train.begin(), sp.train.end());
  shuffle(sp.train, rng);
  return sp;
}

void write_split(const std::string& path, const Split& sp) {
  std::string text = "# synthcxr-split v1 seed=" + std::to_string(sp.seed) + "\nid,subset,rank\n";
  for (size_t i = 0; i < sp.train.size(); ++i)
    text += csv_escape(sp.train[i]) + ",train," + std::to_string(i) + "\n";
  for (const auto& id : sp.val) text += csv_escape(id) + ",val,\n";
  for (const auto& id : sp.test) text += csv_escape(id) + ",test,\n";
  write_file_atomic(path, text, "write_split");
}

Split read_split(const std::string& path) {
  std::string text = read_text_file(path);
  Split sp;
  const std::string magic = "# synthcxr-split v1 seed=";
  CXR_CHECK(text.compare(0, magic.size(), magic) == 0, path, ":1: not a split file (expected '",
            magic, "<seed>')");
  size_t eol = text.find('\n');
  CXR_CHECK(eol != std::string::npos, path, ": truncated split file");
  try {
    sp.seed = std::stoull(text.substr(magic.size(), eol - magic.size()));
  } catch (const std::exception&) {
    CXR_FAIL(path, ":1: bad seed");
  }
  CsvTable t = parse_csv(std::string_view(text).substr(eol + 1), path);
  for (auto& l : t.lines) ++l;  // account for the magic line
  const size_t id_col = t.column("id"), sub_col = t.column("subset"), rank_col = t.column("rank");
  std::vector<std::pair<int64_t, std::string>> train;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    CXR_CHECK(!row[id_col].empty(), t.where(r), ": empty id");
    if (row[sub_col] == "train") {
      int64_t rank = -1;
      try {
        rank = std::stoll(row[rank_col]);
      } catch (const std::exception&) {
      }
      CXR_CHECK(rank >= 0, t.where(r), ": bad rank '", row[rank_col], "'");
      train.emplace_back(rank, row[id_col]);
    } else if (row[sub_col] == "val") {
      sp.val.push_back(row[id_col]);
    } else if (row[sub_col] == "test") {
      sp.test.push_back(row[id_col]);
    } else {
      CXR_FAIL(t.where(r), ": bad subset '", row[sub_col], "' (expected train, val or test)");
    }
  }
  std::sort(train.begin(), train.end());
  for (size_t i = 0; i < train.size(); ++i) {
    CXR_CHECK(train[i].first == int64_t(i), path, ": training ranks are not 0..", train.size() - 1);
    sp.train.push_back(train[i].second);
  }
  return sp;
}

std::vector<size_t> indices_of(const Dataset& ds, const std::vector<std::string>& ids) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < ds.samples.size(); ++i) index.emplace(ds.samples[i].id, i);
  std::vector<size_t> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    auto it = index.find(id);
    CXR_CHECK(it != index.end(), ds.name, ": split names id '", id,
              "' which is not in the dataset");
    out.push_back(it->second);
  }
  return out;
}

void check_no_synthetic(const Dataset& ds, const std::vector<std::string>& ids,
                        const std::string& subset_name) {
  for (size_t i : indices_of(ds, ids)) {
    const Sample& s = ds.samples[i];
    CXR_CHECK(!s.synthetic, "split guard: ", subset_name, " set of ", ds.name,
              " contains synthetic image '", s.id,
              "'; synthetic images may enter training sets only");
  }
}

void check_split(const Dataset& ds, const Split& sp) {
  check_no_synthetic(ds, sp.val, "validation");
  check_no_synthetic(ds, sp.test, "test");
  std::unordered_map<std::string, const char*> seen;
  std::unordered_map<std::string, const char*> patient_subset;
  auto add = [&](const std::vector<std::string>& ids, const char* name) {
    for (size_t i : indices_of(ds, ids)) {
      const Sample& s = ds.samples[i];
      auto [it, fresh] = seen.emplace(s.id, name);
      CXR_CHECK(fresh, "split guard: id '", s.id, "' is in both ", it->second, " and ", name);
      if (s.synthetic) continue;
      auto [pt, pfresh] = patient_subset.emplace(patient_of(s), name);
      CXR_CHECK(pfresh || std::string(pt->second) == name, "split guard: patient '", patient_of(s),
                "' has images in both ", pt->second, " and ", name);
    }
  };
  add(sp.train, "train");
  add(sp.val, "validation");
  add(sp.test, "test");
}

std::vector<size_t> oversample(const Dataset& ds, const std::vector<size_t>& indices,
                               uint64_t seed) {
  const size_t L = ds.label_names.size();
  CXR_CHECK(L > 0, "oversample: dataset ", ds.name, " has no labels");
  for (size_t i : indices) {
    CXR_CHECK(i < ds.samples.size(), "oversample: index ", i, " out of range for ", ds.size(),
              " samples");
    CXR_CHECK(ds.samples[i].labels.size() == L, "oversample: sample '", ds.samples[i].id, "' has ",
              ds.samples[i].labels.size(), " labels, expected ", L);
  }
  SplitMix64 rng(seed);
  std::vector<size_t> out = indices;
  auto pos = [&](size_t i, size_t k) { return ds.samples[i].labels[k] == 1.0f; };
  auto neg = [&](size_t i, size_t k) { return ds.samples[i].labels[k] == 0.0f; };
  if (L == 1) {
    std::vector<size_t> p, n;
    for (size_t i : indices) {
      if (pos(i, 0)) p.push_back(i);
      if (neg(i, 0)) n.push_back(i);
    }
    auto& minority = p.size() < n.size() ? p : n;
    const size_t target = std::max(p.size(), n.size());
    if (minority.empty()) return out;
    for (size_t k = minority.size(); k < target; ++k)
      out.push_back(minority[rng.below(minority.size())]);
    return out;
  }
  std::vector<int64_t> count(L, 0);
  std::vector<std::vector<size_t>> members(L);
  for (size_t i : indices)
    for (size_t k = 0; k < L; ++k)
      if (pos(i, k)) ++count[k], members[k].push_back(i);
  const int64_t target = *std::max_element(count.begin(), count.end());
  std::vector<size_t> order(L);
  for (size_t k = 0; k < L; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return count[a] < count[b]; });
  for (size_t k : order) {
    if (members[k].empty()) continue;
    while (count[k] < target) {
      size_t i = members[k][rng.below(members[k].size())];
      out.push_back(i);
      for (size_t j = 0; j < L; ++j) count[j] += pos(i, j);
    }
  }
  return out;
}

}  // namespace cxr::data
