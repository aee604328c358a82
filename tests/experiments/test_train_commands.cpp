// ctest-label: slow
// `cxr train-classifier` and `cxr train-segmenter` end to end on phantom datasets written by
// `cxr phantoms`: they learn (margins over trivial baselines), write their run folder, resume to
// the same final metrics, and reject bad configs before training, naming the key.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/files.h"

namespace cxr {
namespace {

namespace fs = std::filesystem;

// One OpenMP thread per run: ctest runs two tests at once on CI's two cores, and two runs of two
// spinning OpenMP threads each on two cores wait on each other many times over.
test::CommandResult cxr_run(const std::string& args) {
  return test::run_command("env", std::string("OMP_NUM_THREADS=1 ") + CXR_BINARY + " " + args);
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A phantom dataset, written once per process.
std::string phantoms(const std::string& layout, int count, int size, int seed) {
  const std::string dir = test::temp_path(layout + "_" + std::to_string(count) + "_" +
                                          std::to_string(size) + "_" + std::to_string(seed));
  if (!fs::exists(dir)) {
    auto r = cxr_run("phantoms --quiet --layout " + layout + " --out " + dir + " --count " +
                     std::to_string(count) + " --size " + std::to_string(size) + " --seed " +
                     std::to_string(seed));
    EXPECT_EQ(r.status, 0) << r.err;
  }
  return dir;
}

// Small, fast settings shared by the tests (64 px phantoms, narrow networks, 2 threads).
const char* kClassifierSmall =
    " --set model=resnet18 --set model_config.base_width=8 --set image_size=64 --set batch_size=16"
    " --set lr=0.01 --set pos_weight=-1 --set workers=1";
const char* kSegmenterSmall =
    " --set model_config.encoder_name=resnet18 --set model_config.encoder_base_width=8"
    " --set model_config.decoder_channels=[32,16,16,8,8] --set image_size=64 --set batch_size=8"
    " --set lr=0.01 --set workers=1";

TEST(TrainClassifier, LearnsConsolidationWellAboveChance) {
  const std::string data = phantoms("rsna", 480, 64, 11);
  test::TempDir run;
  const std::string out = (run.dir / "run").string();
  auto r = cxr_run("train-classifier --out " + out + " --set data_root=" + data + kClassifierSmall +
                   " --set epochs=20");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json m = read_json(fs::path(out) / "metrics.json");
  const nlohmann::json& t = m.at("test");
  const double f1 = t.at("f1_macro_mean_over_labels").get<double>(),
               auroc = t.at("auroc_macro_over_labels_with_both_classes").get<double>();
  // Baseline: predicting "pneumonia" for every image gives F1 = 2p / (1 + p) at prevalence p.
  const auto& label = t.at("per_label").at(0);
  const double pos = label.at("tp").get<double>() + label.at("fn").get<double>();
  const double n = pos + label.at("fp").get<double>() + label.at("tn").get<double>();
  const double p = pos / n, all_positive_f1 = 2 * p / (1 + p);
  EXPECT_GT(auroc, 0.8) << m.dump(2);
  EXPECT_GT(f1, all_positive_f1 + 0.15) << m.dump(2);
  // The run folder.
  for (const char* f : {"config.json", "log.txt", "metrics.csv", "split.csv", "predictions.csv",
                        "checkpoints/last.safetensors", "checkpoints/best.safetensors"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  std::ifstream csv(fs::path(out) / "metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 1 + 20);  // header + one row per epoch
  std::ifstream pred(fs::path(out) / "predictions.csv");
  int rows = -1;
  for (std::string l; std::getline(pred, l);) ++rows;
  EXPECT_EQ(rows, int(n));
}

TEST(TrainSegmenter, LearnsPneumothoraxMasks) {
  const std::string data = phantoms("siim", 320, 64, 12);
  test::TempDir run;
  const std::string out = (run.dir / "run").string();
  auto r = cxr_run("train-segmenter --out " + out + " --set data_root=" + data + kSegmenterSmall +
                   " --set epochs=20");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json m = read_json(fs::path(out) / "metrics.json");
  const nlohmann::json& t = m.at("test");
  // An all-empty prediction scores 0 on both of these (and 1 only on the images without
  // pneumothorax under the empty-as-one convention).
  ASSERT_GT(t.at("images_with_truth").get<int64_t>(), 5);
  EXPECT_GT(t.at("dice_global_pooled_pixels").get<double>(), 0.5) << m.dump(2);
  EXPECT_GT(t.at("dice_mean_skip_empty").get<double>(), 0.4) << m.dump(2);
  const double images = t.at("images").get<double>();
  const double empty_baseline = (images - t.at("images_with_truth").get<double>()) / images;
  EXPECT_GT(t.at("dice_mean_empty_as_one").get<double>(), empty_baseline) << m.dump(2);
}

TEST(TrainClassifier, ResumedRunEndsWithTheSameMetrics) {
  const std::string data = phantoms("rsna", 160, 64, 13);
  test::TempDir run;
  const std::string a = (run.dir / "a").string(), b = (run.dir / "b").string();
  const std::string common = " --set data_root=" + data + kClassifierSmall + " --set epochs=3";
  auto ra = cxr_run("train-classifier --out " + a + common);
  ASSERT_EQ(ra.status, 0) << ra.err;
  // Interrupted after one epoch, then resumed twice (one epoch each time).
  auto rb = cxr_run("train-classifier --out " + b + common + " --stop-after 1");
  ASSERT_EQ(rb.status, 0) << rb.err;
  EXPECT_FALSE(fs::exists(fs::path(b) / "metrics.json"));
  rb = cxr_run("train-classifier --out " + b + " --resume --stop-after 1");
  ASSERT_EQ(rb.status, 0) << rb.err;
  rb = cxr_run("train-classifier --out " + b + " --resume");
  ASSERT_EQ(rb.status, 0) << rb.err;
  const nlohmann::json ma = read_json(fs::path(a) / "metrics.json");
  const nlohmann::json mb = read_json(fs::path(b) / "metrics.json");
  EXPECT_EQ(ma.at("test"), mb.at("test"));
  EXPECT_EQ(ma.at("val"), mb.at("val"));
  EXPECT_EQ(ma.at("best_epoch"), mb.at("best_epoch"));
  EXPECT_EQ(test::read_text(a + "/predictions.csv"), test::read_text(b + "/predictions.csv"));
  // The epoch table has each epoch once.
  std::ifstream csv(fs::path(b) / "metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 1 + 3);
}

TEST(TrainCommands, BadConfigsFailBeforeTrainingNamingTheKey) {
  const std::string data = phantoms("rsna", 160, 64, 13);
  test::TempDir run;
  const std::string out = (run.dir / "run").string();
  auto expect_fail = [&](const std::string& args, const std::string& text) {
    auto r = cxr_run("train-classifier --out " + out + " --set data_root=" + data + args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(fs::path(out) / "checkpoints")) << args;
  };
  expect_fail(" --set epohcs=2", "unknown key epohcs");
  expect_fail(" --set train_fraction=2", "'train_fraction' must be in (0, 1]");
  expect_fail(" --set batch_size=\"\\\"big\\\"\"", "'batch_size' must be an integer");
  expect_fail(" --set data_root=/no/such/folder", "'data_root' names no folder");
  expect_fail(" --set synthetic_per_real=2", "'synthetic_dir' is required");
  expect_fail(" --set 'labels=[\"Nodule\"]'", "has no label 'Nodule'");
  test::TempDir cfg;
  expect_fail(" --config " + cfg.write("bad.json", "{\"epochs\": 2,}"), "is not valid JSON");

  // An existing run is never overwritten.
  auto ok = cxr_run("train-classifier --out " + out + " --set data_root=" + data +
                    kClassifierSmall + " --set epochs=1");
  ASSERT_EQ(ok.status, 0) << ok.err;
  const std::string before = test::read_text(out + "/metrics.json");
  auto again = cxr_run("train-classifier --out " + out + " --set data_root=" + data +
                       kClassifierSmall + " --set epochs=1");
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("already holds a run"), std::string::npos) << again.err;
  EXPECT_EQ(test::read_text(out + "/metrics.json"), before);
  // --resume refuses a changed configuration.
  auto changed = cxr_run("train-classifier --out " + out + " --resume --set lr=0.5");
  EXPECT_EQ(changed.status, 2);
  EXPECT_NE(changed.err.find("key 'lr'"), std::string::npos) << changed.err;
}

TEST(TrainClassifier, SyntheticImagesJoinTheTrainingSetOnly) {
  const std::string data = phantoms("rsna", 160, 64, 13);
  // A synthetic set: other phantoms listed in synthetic.csv with their labels.
  const std::string other = phantoms("rsna", 120, 64, 14);
  test::TempDir syn;
  {
    std::ofstream csv(syn.dir / "synthetic.csv");
    csv << "id,image,Pneumonia\n";
    std::ifstream labels(fs::path(other) / "stage_2_train_labels.csv");
    std::string line;
    std::getline(labels, line);
    std::set<std::string> seen;
    while (std::getline(labels, line)) {
      const std::string id = line.substr(0, line.find(','));
      if (!seen.insert(id).second) continue;
      csv << "syn_" << id << ","
          << (fs::path(other) / "stage_2_train_images" / (id + ".png")).string() << ","
          << line.back() << "\n";
    }
  }
  test::TempDir run;
  const std::string out = (run.dir / "run").string();
  auto r = cxr_run("train-classifier --out " + out + " --set data_root=" + data + kClassifierSmall +
                   " --set epochs=1 --set synthetic_dir=" + syn.dir.string() +
                   " --set synthetic_per_real=0.5");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json m = read_json(fs::path(out) / "metrics.json");
  const int64_t real = m.at("data").at("train_real").get<int64_t>();
  EXPECT_EQ(m.at("data").at("train_synthetic").get<int64_t>(), std::llround(0.5 * double(real)));
  EXPECT_EQ(test::read_text(out + "/predictions.csv").find("syn_"), std::string::npos);
  // Asking for more synthetic images than the set holds fails, naming the numbers.
  auto too_many =
      cxr_run("train-classifier --out " + (run.dir / "r2").string() + " --set data_root=" + data +
              kClassifierSmall + " --set synthetic_dir=" + syn.dir.string() +
              " --set synthetic_per_real=25");
  EXPECT_EQ(too_many.status, 2);
  EXPECT_NE(too_many.err.find("synthetic_per_real 25 needs"), std::string::npos) << too_many.err;
}

}  // namespace
}  // namespace cxr
