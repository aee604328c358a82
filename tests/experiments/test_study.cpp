// ctest-label: slow
// `cxr study` end to end on a micro configuration (phantoms of 32 px, the tiny diffusers pipeline
// fixture as generator, two-epoch downstream runs): a complete report; a run killed mid-grid and
// continued ends with the same results as an uninterrupted one; a corrupt result file is detected
// and its cell redone; `cxr report` rebuilds the same report; bad input fails clearly.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/files.h"

namespace cxr {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(CXR_FIXTURE_DIR) + "/sd_tiny";

test::CommandResult cxr_run(const std::string& args) {
  setenv("OMP_NUM_THREADS", "1", 1);  // tiny models; results do not depend on it
  return test::run_command(CXR_BINARY, args);
}

// 2 tasks x 2 fractions x 2 multipliers x 2 seeds = 16 cells.
std::string micro_config() {
  return R"({
    "name": "micro",
    "phantoms": {
      "siim": {"layout": "siim", "count": 60, "size": 32, "seed": 7,
               "prevalence": {"pneumothorax": 0.5}},
      "rsna": {"layout": "rsna", "count": 60, "size": 32, "seed": 8,
               "prevalence": {"consolidation": 0.5}}
    },
    "generator": {"model": ")" +
         kModel + R"(",
                  "sampling": {"scheduler": "ddim", "steps": 2, "guidance_scale": 1.0,
                               "height": 32, "width": 32}},
    "tasks": [
      {"name": "seg", "kind": "segmentation",
       "train": {"dataset": "siim", "data_root": "${run}/phantoms/siim", "image_size": 32,
                 "model": "unetplusplus",
                 "model_config": {"encoder_name": "resnet18", "encoder_depth": 3,
                                  "encoder_base_width": 4, "decoder_channels": [16, 8, 4]},
                 "epochs": 2, "batch_size": 8, "workers": 1}},
      {"name": "cls", "kind": "classification",
       "train": {"dataset": "rsna", "data_root": "${run}/phantoms/rsna", "image_size": 32,
                 "model": "resnet18", "model_config": {"base_width": 4}, "pos_weight": -1,
                 "epochs": 2, "batch_size": 8, "workers": 1},
       "synthetic": {"prompts": {"Pneumonia": "consolidation"}}}
    ],
    "grid": {"fractions": [0.5, 1.0], "multipliers": [0, 1], "seeds": [1, 2]},
    "report": {"sample_images": 3}
  })";
}

// results.csv without its last column (seconds: wall-clock time, the one field that may differ).
std::string results_without_time(const fs::path& run) {
  std::istringstream in(test::read_text((run / "results.csv").string()));
  std::string line, out;
  while (std::getline(in, line)) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Kills `cxr study` (kill -9) once `results` cells are done; returns the script's exit status
// (0: killed mid-grid). `extra` goes to the study's command line.
int kill_study_after(const test::TempDir& dir, const std::string& config, const fs::path& run,
                     int results, const std::string& extra) {
  const std::string script = dir.write(
      "kill_" + run.filename().string() + ".sh",
      "export OMP_NUM_THREADS=1\n'" + std::string(CXR_BINARY) + "' study " + config + " --out " +
          run.string() + " " + extra + " >/dev/null 2>&1 &\npid=$!\n" + "while [ \"$(ls " +
          run.string() + "/results 2>/dev/null | wc -l)\" -lt " + std::to_string(results) +
          " ]; do\n  kill -0 $pid 2>/dev/null || exit 3\n  sleep 0.02\ndone\n" +
          "kill -9 $pid\nwait $pid\nexit 0\n");
  return test::run_command("bash", script).status;
}

int count_files(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class StudyTest : public ::testing::Test {
 protected:
  // One uninterrupted run shared by the tests (it takes a few seconds).
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    config_ = dir_->write("micro.json", micro_config());
    const auto r = cxr_run("study " + config_ + " --out " + (dir_->dir / "full").string());
    ASSERT_EQ(r.status, 0) << r.err;
    full_out_ = r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path full() { return dir_->dir / "full"; }

  static test::TempDir* dir_;
  static std::string config_, full_out_;
};
test::TempDir* StudyTest::dir_ = nullptr;
std::string StudyTest::config_, StudyTest::full_out_;

TEST_F(StudyTest, WritesACompleteReport) {
  for (const char* f :
       {"study.json", "results.csv", "summary.csv", "report/report.html", "report/seg.md",
        "report/seg.svg", "report/seg.png", "report/cls.md", "report/cls.svg", "report/cls.png",
        "report/seg_samples.png", "report/cls_samples.png", "report/trials.csv"})
    EXPECT_TRUE(fs::exists(full() / f)) << f;
  // One row per trial, one per (task, fraction, multiplier).
  EXPECT_EQ(count_lines(test::read_text((full() / "results.csv").string())), 1 + 16);
  EXPECT_EQ(count_lines(test::read_text((full() / "summary.csv").string())), 1 + 8);
  // The nested synthetic set of 1x holds as many images as the real training subset.
  const std::string pool = (full() / "synthetic/seg/f100_s1").string();
  EXPECT_TRUE(fs::exists(pool + "/conditions.csv"));
  // A finished pool says so (later cells skip planning it), with its size.
  const std::string complete = test::read_text(pool + "/complete.json");
  const int synthetic_rows = count_lines(test::read_text(pool + "/synthetic.csv")) - 1;
  EXPECT_NE(complete.find("\"images\": " + std::to_string(synthetic_rows)), std::string::npos)
      << complete;
  EXPECT_EQ(count_lines(test::read_text(pool + "/x1/synthetic.csv")),
            count_lines(test::read_text(pool + "/synthetic.csv")));
  // The report is self-contained: inline SVG, PNGs as data URIs, no external reference.
  const std::string html = test::read_text((full() / "report/report.html").string());
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  // The table goes to stdout, one row per fraction of each task.
  EXPECT_NE(full_out_.find("| 50% |"), std::string::npos) << full_out_;
  EXPECT_NE(full_out_.find("| 100% |"), std::string::npos) << full_out_;
  // Provenance: the generator's hash on synthetic rows, paths relative to the run folder.
  const std::string results = test::read_text((full() / "results.csv").string());
  EXPECT_NE(results.find(kModel), std::string::npos);
  EXPECT_EQ(results.find(full().string()), std::string::npos);
}

TEST_F(StudyTest, KilledMidGridResumesToTheSameResults) {
  const fs::path run = dir_->dir / "killed";
  // Kill -9 the study once 5 cells are done (mid-grid, likely inside a cell).
  ASSERT_EQ(kill_study_after(*dir_, config_, run, 5, ""), 0)
      << "the study ended before it could be killed";
  EXPECT_FALSE(fs::exists(run / "report/report.html"));
  const auto resumed = cxr_run("study " + config_ + " --out " + run.string());
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("already done"), std::string::npos);
  EXPECT_EQ(results_without_time(run), results_without_time(full()));
  EXPECT_EQ(test::read_text((run / "summary.csv").string()),
            test::read_text((full() / "summary.csv").string()));
  EXPECT_EQ(test::read_text((run / "report/seg.md").string()),
            test::read_text((full() / "report/seg.md").string()));
}

TEST_F(StudyTest, TwoWorkersKilledAndResumedGiveTheSameResults) {
  const fs::path run = dir_->dir / "workers";
  const std::string workers = "--set parallel.workers=2";
  ASSERT_EQ(kill_study_after(*dir_, config_, run, 6, workers), 0)
      << "the study ended before it could be killed";
  // The workers die with the study's process: no result appears afterwards.
  const int after_kill = count_files(run / "results");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(count_files(run / "results"), after_kill);
  const auto resumed = cxr_run("study " + config_ + " --out " + run.string() + " " + workers);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("2 workers"), std::string::npos) << resumed.err;
  EXPECT_EQ(results_without_time(run), results_without_time(full()));
  EXPECT_EQ(test::read_text((run / "summary.csv").string()),
            test::read_text((full() / "summary.csv").string()));
}

TEST_F(StudyTest, StopAfterCellsThenContinue) {
  const fs::path run = dir_->dir / "stopped";
  auto r = cxr_run("study " + config_ + " --out " + run.string() + " --stop-after-cells 3");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count_files(run / "results"), 3);
  r = cxr_run("study " + config_ + " --out " + run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::read_text((run / "summary.csv").string()),
            test::read_text((full() / "summary.csv").string()));
}

TEST_F(StudyTest, CorruptResultIsRedoneNotUsed) {
  const fs::path run = dir_->dir / "corrupt";
  fs::copy(full(), run, fs::copy_options::recursive);
  const std::string victim = (run / "results/cls_f50_x1_s2.json").string();
  std::string text = test::read_text(victim);
  test::write_bytes(victim, text.substr(0, text.size() / 3));  // truncated
  const auto r = cxr_run("study " + config_ + " --out " + run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("is corrupt"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(victim + ".corrupt"));  // kept, not deleted
  EXPECT_EQ(test::read_text((run / "summary.csv").string()),
            test::read_text((full() / "summary.csv").string()));
}

TEST_F(StudyTest, ReportRebuildsTheSameFiles) {
  const fs::path run = dir_->dir / "rebuilt";
  fs::copy(full(), run, fs::copy_options::recursive);
  fs::remove(run / "summary.csv");
  fs::remove(run / "report/seg.md");
  fs::remove(run / "report/report.html");
  const auto r = cxr_run("report " + run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"summary.csv", "report/seg.md", "report/seg.svg"})
    EXPECT_EQ(test::read_text((run / f).string()), test::read_text((full() / f).string())) << f;
  EXPECT_TRUE(fs::exists(run / "report/report.html"));
}

TEST_F(StudyTest, BadInputFailsClearly) {
  // Another config in the same run folder.
  auto r = cxr_run("study " + config_ + " --out " + full().string() + " --set grid.seeds=[1,2,3]");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("another configuration"), std::string::npos) << r.err;
  r = cxr_run("study " + (dir_->dir / "missing.json").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;
  const std::string bad = dir_->write("bad.json", "{\"name\": \"x\", \"tasks\": [");
  r = cxr_run("study " + bad);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  // Each worker trains on its device: without a GPU, asking for one fails clearly.
  r = cxr_run("study " + config_ + " --out " + (dir_->dir / "gpus").string() +
              " --set 'parallel.devices=[\"cuda:0\",\"cuda:1\"]'");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("cuda:0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("study worker 0 failed"), std::string::npos) << r.err;
  r = cxr_run("report " + (dir_->dir / "nowhere").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("not a study run folder"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cxr
