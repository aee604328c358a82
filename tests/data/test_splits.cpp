// Splits: reproducibility from a seed, 80/20 by patient, nesting of training fractions, split
// files, the synthetic-image guard, and oversampling counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <unistd.h>

#include "data/chexpert.h"
#include "data/rsna.h"
#include "data/splits.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {
// n patients with 1..3 images each; label = patient index % 4 == 0.
Dataset make_dataset(int patients) {
  Dataset ds;
  ds.name = "toy";
  ds.label_names = {"Finding"};
  for (int p = 0; p < patients; ++p)
    for (int k = 0; k <= p % 3; ++k) {
      Sample s;
      s.patient_id = "P" + std::to_string(p);
      s.id = s.patient_id + "_" + std::to_string(k);
      s.labels = {p % 4 == 0 ? 1.0f : 0.0f};
      ds.samples.push_back(s);
    }
  return ds;
}
bool is_subset(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}
}  // namespace

TEST(Splits, SeededByPatientAndReproducible) {
  Dataset ds = make_dataset(200);
  Split a = random_split(ds, {0.2, 0.0, 7}), b = random_split(ds, {0.2, 0.0, 7});
  Split c = random_split(ds, {0.2, 0.0, 8});
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);
  std::set<std::string> test_patients, train_patients;
  for (size_t i : indices_of(ds, a.test)) test_patients.insert(ds.samples[i].patient_id);
  for (size_t i : indices_of(ds, a.train)) train_patients.insert(ds.samples[i].patient_id);
  EXPECT_EQ(test_patients.size(), 40u);  // 20% of 200 patients
  EXPECT_EQ(train_patients.size(), 160u);
  for (auto& p : test_patients) EXPECT_EQ(train_patients.count(p), 0u) << p;
  EXPECT_EQ(a.train.size() + a.test.size(), ds.size());
  EXPECT_NO_THROW(check_split(ds, a));
  // Input order does not change the split.
  Dataset rev = ds;
  std::reverse(rev.samples.begin(), rev.samples.end());
  Split r = random_split(rev, {0.2, 0.0, 7});
  EXPECT_EQ(r.train, a.train);
  EXPECT_EQ(std::set<std::string>(r.test.begin(), r.test.end()),
            std::set<std::string>(a.test.begin(), a.test.end()));
  Split v = random_split(ds, {0.2, 0.1, 7});
  EXPECT_FALSE(v.val.empty());
  EXPECT_NO_THROW(check_split(ds, v));
}

TEST(Splits, NestedFractionsAndFile) {
  Dataset ds = make_dataset(500);
  Split s = random_split(ds, {0.2, 0.0, 3});
  auto f1 = s.train_fraction(0.01), f10 = s.train_fraction(0.10), f100 = s.train_fraction(1.0);
  EXPECT_EQ(f1.size(), size_t(std::llround(0.01 * double(s.train.size()))));
  EXPECT_EQ(f10.size(), size_t(std::llround(0.10 * double(s.train.size()))));
  EXPECT_EQ(f100.size(), s.train.size());
  EXPECT_TRUE(is_subset(f1, f10));
  EXPECT_TRUE(is_subset(f10, f100));
  EXPECT_THROW(s.train_fraction(1.5), cxr::Error);
  auto path = (std::filesystem::temp_directory_path() /
               ("cxr_split_" + std::to_string(::getpid()) + ".csv"))
                  .string();
  write_split(path, s);
  Split back = read_split(path);
  EXPECT_EQ(back.train, s.train);
  EXPECT_EQ(back.test, s.test);
  EXPECT_EQ(back.seed, 3u);
  EXPECT_EQ(back.train_fraction(0.1), f10);
  std::ofstream(path) << "# synthcxr-split v1 seed=1\nid,subset,rank\nx,holdout,\n";
  auto m = cxr::test::error_message([&] { read_split(path); });
  EXPECT_NE(m.find(":3: bad subset 'holdout'"), std::string::npos) << m;
  std::ofstream(path) << "id,subset\n";
  EXPECT_NE(cxr::test::error_message([&] { read_split(path); }).find("not a split file"),
            std::string::npos);
  std::filesystem::remove(path);
}

TEST(Splits, GuardRefusesSyntheticInEvaluation) {
  Dataset ds = make_dataset(50);
  for (int k = 0; k < 10; ++k) {
    Sample s;
    s.id = "synth_" + std::to_string(k);
    s.patient_id = s.id;
    s.labels = {1.0f};
    s.synthetic = true;
    ds.samples.push_back(s);
  }
  Split s = random_split(ds, {0.3, 0.2, 1});
  for (size_t i : indices_of(ds, s.test)) EXPECT_FALSE(ds.samples[i].synthetic);
  for (size_t i : indices_of(ds, s.val)) EXPECT_FALSE(ds.samples[i].synthetic);
  EXPECT_NO_THROW(check_split(ds, s));
  Split bad = s;
  bad.test.push_back("synth_3");
  bad.train.erase(std::find(bad.train.begin(), bad.train.end(), "synth_3"));
  auto m = cxr::test::error_message([&] { check_split(ds, bad); });
  EXPECT_NE(m.find("test set of toy contains synthetic image 'synth_3'"), std::string::npos) << m;
  Split bad_val = s;
  bad_val.val.push_back("synth_4");
  m = cxr::test::error_message([&] { check_split(ds, bad_val); });
  EXPECT_NE(m.find("validation set"), std::string::npos) << m;
  Split dup = s;
  dup.test.push_back(s.train[0]);
  EXPECT_THROW(check_split(ds, dup), cxr::Error);
  Split unknown = s;
  unknown.test.push_back("nope");
  m = cxr::test::error_message([&] { check_split(ds, unknown); });
  EXPECT_NE(m.find("'nope' which is not in the dataset"), std::string::npos) << m;
}

TEST(Splits, OversampleSingleAndMultiLabel) {
  Dataset ds = make_dataset(40);  // positives: patients 0,4,...,36
  std::vector<size_t> all(ds.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  int64_t p = 0, n = 0;
  for (auto& s : ds.samples) (s.labels[0] == 1.0f ? p : n)++;
  auto o = oversample(ds, all, 5);
  int64_t p2 = 0, n2 = 0;
  for (size_t i : o) (ds.samples[i].labels[0] == 1.0f ? p2 : n2)++;
  EXPECT_EQ(n2, n);
  EXPECT_EQ(p2, n);  // the minority class is brought to the majority count
  EXPECT_EQ(o, oversample(ds, all, 5));
  EXPECT_TRUE(std::equal(all.begin(), all.end(), o.begin()));

  Dataset ml;
  ml.name = "ml";
  ml.label_names = {"A", "B", "C"};
  auto add = [&](std::vector<float> y, int times) {
    for (int t = 0; t < times; ++t) {
      Sample s;
      s.id = std::to_string(ml.samples.size());
      s.labels = y;
      ml.samples.push_back(s);
    }
  };
  add({1, 0, 0}, 30);
  add({0, 1, 0}, 5);
  add({0, 0, 1}, 10);
  add({0, 0, 0}, 7);
  std::vector<size_t> idx(ml.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  auto m = oversample(ml, idx, 9);
  std::vector<int64_t> c(3, 0);
  for (size_t i : m)
    for (int k = 0; k < 3; ++k) c[k] += ml.samples[i].labels[k] == 1.0f;
  EXPECT_EQ(c[0], 30);  // disjoint labels: each reaches exactly the most frequent count
  EXPECT_EQ(c[1], 30);
  EXPECT_EQ(c[2], 30);
  EXPECT_EQ(m.size(), 52u + 25 + 20);
}

TEST(Splits, RsnaEightyTwenty) {
  auto csv = cxr::test::shared_data_path("rsna_pneumonia/stage_2_train_labels.csv");
  if (!std::filesystem::exists(csv)) GTEST_SKIP() << "shared data missing: " << csv;
  Dataset ds = read_rsna("", {}, csv);
  Split s = random_split(ds, {0.2, 0.0, 0});
  EXPECT_EQ(s.train.size(), 21347u);  // spec/datasets.md §0: 26,684 -> 21,347 / 5,337
  EXPECT_EQ(s.test.size(), 5337u);
  EXPECT_NO_THROW(check_split(ds, s));
}

TEST(Splits, CheXpertOfficialValidAsTest) {
  auto tr = cxr::test::shared_data_path("chexpert/train_first1969_as_jfhealthcare.csv");
  auto va = cxr::test::shared_data_path("chexpert/valid_as_jfhealthcare_dev.csv");
  if (!std::filesystem::exists(tr) || !std::filesystem::exists(va))
    GTEST_SKIP() << "shared data missing: " << tr;
  Dataset train = read_chexpert("", tr), test = read_chexpert("", va);
  Split a = official_split(train, test, 11), b = official_split(train, test, 11);
  ASSERT_EQ(a.test.size(), 202u);  // the frontal valid.csv images
  for (size_t i = 0; i < a.test.size(); ++i) EXPECT_EQ(a.test[i], test.samples[i].id);
  EXPECT_EQ(a.train.size(), train.size());
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(a.train, official_split(train, test, 12).train);
  Split v = official_split(train, test, 11, 0.1);
  EXPECT_EQ(v.train.size() + v.val.size(), train.size());
  std::set<std::string> val_patients;
  for (size_t i : indices_of(train, v.val)) val_patients.insert(train.samples[i].patient_id);
  for (size_t i : indices_of(train, v.train))
    EXPECT_EQ(val_patients.count(train.samples[i].patient_id), 0u);
}
