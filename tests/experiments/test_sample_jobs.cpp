// The job list and output folder of `cxr sample`: parsing and its errors, resuming (done jobs are
// skipped, other settings refused), and a manifest that data::read_synthetic reads back as a
// synthetic training set.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/synthetic.h"
#include "experiments/sample_jobs.h"
#include "support/errors.h"
#include "support/files.h"
#include "tensor/ops.h"

namespace cxr::experiments {
namespace {

namespace fs = std::filesystem;

TEST(SampleJobs, ParsesJobsWithMasksSeedsAndLabels) {
  test::TempDir dir;
  dir.write("m/a.png", "");  // existence is what the parser checks
  const std::string csv = dir.write("jobs.csv",
                                    "id,prompt,mask,seed,Pneumothorax\n"
                                    "a1,small left pneumothorax,m/a.png,7,1\n"
                                    "b2,N/A,,18446744073709551615,0\n");
  const SampleJobs jobs = read_sample_jobs(csv);
  ASSERT_EQ(jobs.jobs.size(), 2u);
  EXPECT_EQ(jobs.label_names, std::vector<std::string>{"Pneumothorax"});
  EXPECT_EQ(jobs.jobs[0].mask_path, (dir.dir / "m/a.png").string());
  EXPECT_EQ(jobs.jobs[0].seed, 7u);
  EXPECT_EQ(jobs.jobs[1].seed, 18446744073709551615ull);  // the full uint64 range
  EXPECT_TRUE(jobs.jobs[1].mask_path.empty());
  EXPECT_EQ(jobs.jobs[1].label_values, std::vector<std::string>{"0"});
}

TEST(SampleJobs, BadJobFilesNameTheLine) {
  test::TempDir dir;
  auto fails = [&](const std::string& body, const std::string& text) {
    const std::string csv = dir.write("jobs.csv", "id,prompt,mask,seed\n" + body);
    EXPECT_ERROR_CONTAINS(read_sample_jobs(csv), text) << body;
  };
  fails("a,p,,-3\n", "jobs.csv:2: seed '-3' is not a non-negative integer");
  fails("a,p,,x\n", "seed 'x'");
  fails("a,p,,1\na,q,,2\n", "jobs.csv:3: duplicate id 'a'");
  fails("../evil,p,,1\n", "must be a file name");
  fails("a,p,missing.png,1\n", "mask '");
  fails("", "no jobs");
  EXPECT_ERROR_CONTAINS(read_sample_jobs(dir.write("j2.csv", "id,seed\na,1\n")), "prompt");
}

TEST(SampleJobs, CommandLineJobs) {
  const SampleJobs jobs = make_sample_jobs({"a", "b"}, {}, 100, 3);
  ASSERT_EQ(jobs.jobs.size(), 6u);
  EXPECT_EQ(jobs.jobs[0].id, "sample_000000");
  EXPECT_EQ(jobs.jobs[4].prompt, "b");
  EXPECT_EQ(jobs.jobs[5].seed, 105u);
  EXPECT_ERROR_CONTAINS(make_sample_jobs({"a", "b"}, {"x", "y", "z"}, 0, 1),
                        "2 prompts for 3 masks");
  EXPECT_ERROR_CONTAINS(make_sample_jobs({}, {}, 0, 1), "--prompt");
}

TEST(SampleOutput, ResumesAndWritesASyntheticSet) {
  test::TempDir dir;
  const std::string out = (dir.dir / "out").string();
  SampleJobs jobs;
  jobs.label_names = {"Pneumothorax"};
  jobs.jobs = {{"a", "pneumothorax", "cond/a.png", 1, {"1"}}, {"b", "N/A", "", 2, {"0"}}};
  const nlohmann::json settings = {{"sampler", "ddim"}, {"steps", 20}};
  SampleOutput o(out, settings, jobs.label_names);
  EXPECT_FALSE(o.done(jobs.jobs[0]));
  Tensor image = raw::full({1, 8, 8}, 0.5);
  Tensor mask = raw::zeros({1, 8, 8});
  raw::fill_(raw::narrow(raw::narrow(mask, 1, 2, 3), 2, 2, 3), 1.0);  // a 3x3 finding
  o.write(jobs.jobs[0], image, mask);
  EXPECT_TRUE(o.done(jobs.jobs[0]));
  EXPECT_FALSE(o.done(jobs.jobs[1]));
  o.write_manifest(jobs.jobs);

  // The manifest is a synthetic set: the finished job only, its mask and label.
  const data::Dataset syn = data::read_synthetic(out, {"Pneumothorax"});
  ASSERT_EQ(syn.size(), 1u);
  EXPECT_EQ(syn.samples[0].id, "a");
  EXPECT_TRUE(syn.samples[0].synthetic);
  EXPECT_EQ(syn.samples[0].labels, std::vector<float>{1.0f});
  EXPECT_EQ(syn.samples[0].report, "pneumothorax");
  std::vector<uint8_t> m = syn.samples[0].decode_mask();
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), 9);

  // Another run with other settings refuses to mix them.
  SampleOutput other(out, {{"sampler", "pndm"}, {"steps", 20}}, jobs.label_names);
  EXPECT_ERROR_CONTAINS(other.done(jobs.jobs[0]), "made with sampler = \"ddim\"");
  // A job whose seed changed is not the same job.
  SampleJob changed = jobs.jobs[0];
  changed.seed = 99;
  EXPECT_ERROR_CONTAINS(o.done(changed), "another seed or prompt");
}

}  // namespace
}  // namespace cxr::experiments
