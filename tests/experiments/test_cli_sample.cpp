// `cxr sample` on the tiny diffusers pipeline folder (tests/fixtures/sd_tiny): images, masks,
// sidecars and a synthetic.csv that the training commands read; a rerun skips finished jobs and
// regenerates a lost one identically; other settings and bad arguments exit 2 naming the problem.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/image_io.h"
#include "data/synthetic.h"
#include "support/compare.h"
#include "support/files.h"
#include "tensor/device.h"
#include "tensor/ops.h"

namespace cxr {
namespace {

namespace fs = std::filesystem;

test::CommandResult cxr_run(const std::string& args) {
  return test::run_command(CXR_BINARY, args);
}

const std::string kModel = std::string(CXR_FIXTURE_DIR) + "/sd_tiny";

TEST(CliSample, WritesAResumableSyntheticSet) {
  test::TempDir dir;
  Tensor mask = raw::zeros({1, 16, 16});
  raw::fill_(raw::narrow(raw::narrow(mask, 1, 3, 5), 2, 4, 6), 1.0);
  data::write_png((dir.dir / "m.png").string(), mask);
  dir.write("jobs.csv",
            "id,prompt,mask,seed,Pneumothorax\n"
            "a,left pneumothorax,m.png,1,1\n"
            "b,N/A,m.png,2,1\n"
            "c,no finding,,3,0\n");
  const std::string out = (dir.dir / "out").string();
  const std::string args = "sample --model " + kModel + " --jobs " +
                           (dir.dir / "jobs.csv").string() + " --steps 4 --scheduler ddim --out " +
                           out;
  auto r = cxr_run(args + " --batch 3");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f :
       {"images/a.png", "images/a.json", "masks/a.png", "images/c.png", "synthetic.csv"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  EXPECT_FALSE(fs::exists(fs::path(out) / "masks/c.png"));  // c had no mask

  // The folder is a synthetic training set: labels, prompts and masks as generated.
  const data::Dataset syn = data::read_synthetic(out, {"Pneumothorax"});
  ASSERT_EQ(syn.size(), 3u);
  EXPECT_EQ(syn.samples[0].labels, std::vector<float>{1.0f});
  EXPECT_EQ(syn.samples[1].report, "N/A");
  const std::vector<uint8_t> m = syn.samples[0].decode_mask();
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), 30);  // the 5x6 finding

  // A rerun does nothing; a lost image is regenerated, equal to the first one although it now
  // comes out of a batch of one.
  const Tensor before =
      data::read_image((fs::path(out) / "images/b.png").string(), data::ColorMode::Keep);
  fs::remove(fs::path(out) / "images/b.json");
  r = cxr_run(args + " --batch 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("3 jobs, 2 already done, 1 to generate"), std::string::npos) << r.err;
  const Tensor after =
      data::read_image((fs::path(out) / "images/b.png").string(), data::ColorMode::Keep);
  EXPECT_TRUE(test::all_close(before, after, 0.0, 1.01 / 255));

  // Other settings are refused rather than mixed into the same folder.
  r = cxr_run("sample --model " + kModel + " --jobs " + (dir.dir / "jobs.csv").string() +
              " --steps 5 --scheduler ddim --out " + out);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("made with steps = 4"), std::string::npos) << r.err;
}

TEST(CliSample, BadArgumentsExitTwo) {
  test::TempDir dir;
  const std::string out = (dir.dir / "o").string();
  auto fails = [&](const std::string& args, const std::string& text) {
    auto r = cxr_run("sample --out " + out + " " + args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << args << "\n" << r.err;
  };
  fails("--model " + (dir.dir / "none").string() + " --prompt a", "none");
  fails("--model " + kModel + " --prompt a --mode x2i", "expected t2i, m2i or tm2i");
  fails("--model " + kModel + " --prompt a --scheduler lms", "lms");
  fails("--model " + kModel + " --prompt a --height 15", "multiples of 2");
  fails("--model " + kModel, "--prompt");
  fails("--model " + kModel + " --prompt a --mask " + (dir.dir / "no.png").string(), "no.png");
  fails("--model " + kModel + " --prompt a --device gpu", "cannot parse 'gpu'");
  // A device this machine cannot use is named before anything is written.
  if (cuda_device_count() == 0) {
    const std::string fresh = (dir.dir / "fresh").string();
    auto r =
        cxr_run("sample --out " + fresh + " --model " + kModel + " --prompt a --device cuda:0");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("cuda:0"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(fresh));
  }
}

}  // namespace
}  // namespace cxr
