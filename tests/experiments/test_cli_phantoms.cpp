// `cxr phantoms`, run as the real binary: a dataset written in each layout with its files, a
// repeated run being identical for the seed, the sample sheet, and exit status 2 with a one-line
// reason for bad flags (leaving no output behind).
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/files.h"

namespace fs = std::filesystem;

namespace {

using cxr::test::read_text;
using cxr::test::temp_path;
using Result = cxr::test::CommandResult;

Result run_cxr(const std::string& args) {
  return cxr::test::run_command(CXR_BINARY, args);
}

class CliPhantoms : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_ = temp_path("dir");
};

}  // namespace

TEST_F(CliPhantoms, EachLayoutWritesItsFiles) {
  const struct {
    const char* layout;
    std::vector<std::string> files;
  } cases[] = {
      {"chexpert", {"train.csv", "valid.csv", "train/patient00001/study1/view1_frontal.png"}},
      {"rsna", {"stage_2_train_labels.csv", "stage_2_detailed_class_info.csv"}},
      {"siim", {"train-rle.csv", "dicom-images-train"}},
      {"candid-ptx",
       {"Pneumothorax_reports.csv", "chest_tube.csv", "acute_rib_fracture.csv", "dataset"}},
  };
  for (const auto& c : cases) {
    const std::string out = dir_ + "/" + c.layout;
    const Result r = run_cxr(std::string("phantoms --layout ") + c.layout + " --out '" + out +
                             "' --count 5 --size 48 --seed 3");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("wrote 5 " + std::string(c.layout) + " phantoms"), std::string::npos)
        << r.out;
    for (const auto& f : c.files) EXPECT_TRUE(fs::exists(out + "/" + f)) << c.layout << ": " << f;
    EXPECT_TRUE(fs::exists(out + "/phantoms.csv"));
  }
  // Same seed, same dataset.
  const std::string again = dir_ + "/again";
  ASSERT_EQ(
      run_cxr("phantoms --layout siim --out '" + again + "' --count 5 --size 48 --seed 3").status,
      0);
  EXPECT_EQ(read_text(again + "/train-rle.csv"), read_text(dir_ + "/siim/train-rle.csv"));
}

TEST_F(CliPhantoms, Sheet) {
  const std::string png = dir_ + "/sheet.png";
  const Result r = run_cxr("phantoms --sheet '" + png + "' --sheet-tile 40");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(png));
}

TEST_F(CliPhantoms, BadFlagsExit2WithOneLineReason) {
  const std::string out = dir_ + "/bad";
  const struct {
    std::string args, reason;
  } cases[] = {
      {"phantoms --layout mimic --out '" + out + "'", "unknown layout 'mimic'"},
      {"phantoms --layout siim --out '" + out + "' --size 8", "size"},
      {"phantoms --layout siim --out '" + out + "' --count 0", "count"},
      {"phantoms --layout rsna --out '" + out + "' --prevalence-consolidation 1.5", "prevalence"},
      {"phantoms --out '" + out + "'", "--layout is required"},
      {"phantoms --layout rsna", "--out is required"},
      {"phantoms --layout rsna --out '" + out + "' --count many", "--count"},
  };
  for (const auto& c : cases) {
    const Result r = run_cxr(c.args);
    EXPECT_EQ(r.status, 2) << c.args;
    EXPECT_NE(r.err.find(c.reason), std::string::npos) << c.args << " -> " << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  // An existing output folder is refused without --force.
  ASSERT_EQ(run_cxr("phantoms --layout rsna --out '" + out + "' --count 2 --size 32").status, 0);
  const Result r = run_cxr("phantoms --layout rsna --out '" + out + "' --count 2 --size 32");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  EXPECT_EQ(
      run_cxr("phantoms --layout rsna --out '" + out + "' --count 3 --size 32 --force").status, 0);
}
