// The study's synthetic training sets: segmentation plans (positive sources cycled, nested and
// reproducible, masks at mask_size, left/right swapped in flipped captions), the classification
// allocation rule computed by hand, bad arguments, generation with the tiny diffusers pipeline
// (tests/fixtures/sd_tiny) that resumes without regenerating, and subset manifests that
// data::read_synthetic reads back.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "data/csv.h"
#include "data/image_io.h"
#include "data/rle.h"
#include "data/synthetic.h"
#include "experiments/generator_trainer.h"
#include "experiments/synthetic_sets.h"
#include "models/sd_folder.h"
#include "support/errors.h"
#include "support/files.h"
#include "tensor/ops.h"

namespace cxr::experiments {
namespace {

namespace fs = std::filesystem;

// A 32x32 sample whose mask is the block rows [y0, y0 + h), columns [x0, x0 + w) (h = 0: an
// annotated negative).
data::Sample masked_sample(const std::string& id, int64_t y0, int64_t x0, int64_t h, int64_t w) {
  data::Sample s;
  s.id = s.patient_id = id;
  s.image_path = id + ".png";
  s.has_mask_annotation = true;
  s.rle_kind = data::RleKind::Absolute;
  s.mask_height = s.mask_width = 32;
  std::vector<uint8_t> bits(32 * 32, 0);
  for (int64_t y = y0; y < y0 + h; ++y)
    for (int64_t x = x0; x < x0 + w; ++x) bits[size_t(y * 32 + x)] = 1;
  const std::string rle = data::rle_encode_absolute(bits.data(), 32, 32);
  if (!data::rle_is_empty(rle)) s.mask_rles.push_back(rle);
  return s;
}

// Positive a (rows 8..15, columns 4..11), negative b, positive c.
data::Dataset train_set() {
  data::Dataset ds;
  ds.name = "siim";
  ds.samples = {masked_sample("a", 8, 4, 8, 8), masked_sample("b", 0, 0, 0, 0),
                masked_sample("c", 20, 16, 6, 10)};
  return ds;
}
const std::vector<std::string> kCaptions = {"small left pneumothorax", "no finding",
                                            "Right apical pneumothorax, LEFT clear, leftover"};

// Only the flip, always: the transform is deterministic.
SegmentationPlan flip_only(const std::string& mode, double flip_p) {
  SegmentationPlan p;
  p.mode = mode;
  p.transform.flip_p = flip_p;
  p.transform.morph_p = 0.0;
  p.transform.translate_p = 0.0;
  p.mask_size = 16;
  return p;
}

std::string read_bytes(const std::string& path) {
  return test::read_text(path);
}

TEST(SyntheticSets, SegmentationPlansAreNestedAndReproducible) {
  test::TempDir dir;
  const std::string big = (dir.dir / "big").string(), small = (dir.dir / "small").string();
  SegmentationPlan plan;  // the default random compositions
  plan.mask_size = 16;
  const SampleJobs n10 = plan_segmentation_jobs(train_set(), kCaptions, 10, 7, plan, big);
  const SampleJobs n4 = plan_segmentation_jobs(train_set(), kCaptions, 4, 7, plan, small);
  ASSERT_EQ(n10.jobs.size(), 10u);
  ASSERT_EQ(n4.jobs.size(), 4u);
  EXPECT_TRUE(n10.label_names.empty());
  const data::CsvTable c10 = data::read_csv(big + "/conditions.csv");
  const data::CsvTable c4 = data::read_csv(small + "/conditions.csv");
  EXPECT_EQ(c10.header,
            (std::vector<std::string>{"id", "seed", "source", "transform", "prompt", "mask"}));
  ASSERT_EQ(c10.size(), 10u);
  ASSERT_EQ(c4.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(n4.jobs[i].id, n10.jobs[i].id);
    EXPECT_EQ(n4.jobs[i].seed, n10.jobs[i].seed);
    EXPECT_EQ(n4.jobs[i].prompt, n10.jobs[i].prompt);
    EXPECT_EQ(c4.rows[i], c10.rows[i]);  // the same transform, source, seed, ...
    EXPECT_EQ(read_bytes(n4.jobs[i].mask_path), read_bytes(n10.jobs[i].mask_path)) << i;
  }
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < 10; ++i) {
    const SampleJob& job = n10.jobs[i];
    seeds.push_back(job.seed);
    EXPECT_EQ(job.id, "syn_00000" + std::to_string(i));
    EXPECT_EQ(job.prompt, "N/A");  // m2i
    EXPECT_TRUE(job.label_values.empty());
    EXPECT_TRUE(fs::path(job.mask_path).is_absolute());
    EXPECT_TRUE(fs::exists(job.mask_path));
    // Only the positive samples are sources, cycled in order.
    EXPECT_EQ(c10.rows[i][2], i % 2 == 0 ? "a" : "c");
    EXPECT_EQ(c10.rows[i][5], "conditions/" + job.id + ".png");
    EXPECT_EQ(c10.rows[i][1], std::to_string(job.seed));
  }
  std::sort(seeds.begin(), seeds.end());
  EXPECT_EQ(std::unique(seeds.begin(), seeds.end()), seeds.end());  // distinct seeds
  // Some job of ten was actually transformed (the default probabilities).
  EXPECT_TRUE(std::any_of(c10.rows.begin(), c10.rows.end(),
                          [](const auto& row) { return row[3] != "identity"; }));

  // Re-planning the same pool rewrites the same bytes; another seed gives another plan.
  const std::string before = read_bytes(big + "/conditions.csv");
  plan_segmentation_jobs(train_set(), kCaptions, 10, 7, plan, big);
  EXPECT_EQ(read_bytes(big + "/conditions.csv"), before);
  const SampleJobs other =
      plan_segmentation_jobs(train_set(), kCaptions, 4, 8, plan, (dir.dir / "o").string());
  EXPECT_NE(other.jobs[0].seed, n4.jobs[0].seed);
}

TEST(SyntheticSets, ConditionMasksAreWrittenAtMaskSize) {
  test::TempDir dir;
  const SampleJobs jobs =
      plan_segmentation_jobs(train_set(), kCaptions, 1, 0, flip_only("m2i", 0.0), dir.dir.string());
  // Nearest 32 -> 16 takes source pixel 2y + 1: rows 8..15 -> 4..7, columns 4..11 -> 2..5.
  const Tensor m = data::read_image_u8(jobs.jobs[0].mask_path);
  ASSERT_EQ(m.sizes(), (Shape{1, 16, 16}));
  const uint8_t* p = m.data<uint8_t>();
  for (int64_t y = 0; y < 16; ++y)
    for (int64_t x = 0; x < 16; ++x)
      EXPECT_EQ(p[y * 16 + x], (y >= 4 && y <= 7 && x >= 2 && x <= 5) ? 255 : 0) << y << "," << x;
  EXPECT_EQ(data::read_csv(dir.dir.string() + "/conditions.csv").rows[0][3], "identity");
}

TEST(SyntheticSets, FlippedMasksSwapLeftAndRightInTheCaption) {
  test::TempDir dir;
  const SampleJobs flipped = plan_segmentation_jobs(train_set(), kCaptions, 2, 3,
                                                    flip_only("tm2i", 1.0), dir.dir.string());
  EXPECT_EQ(flipped.jobs[0].prompt, "small right pneumothorax");
  EXPECT_EQ(flipped.jobs[1].prompt, "Left apical pneumothorax, RIGHT clear, leftover");
  EXPECT_EQ(data::read_csv(dir.dir.string() + "/conditions.csv").rows[0][3], "flip");
  // The mirrored block: columns 2..5 -> 10..13.
  const Tensor m = data::read_image_u8(flipped.jobs[0].mask_path);
  EXPECT_EQ(m.data<uint8_t>()[5 * 16 + 10], 255);
  EXPECT_EQ(m.data<uint8_t>()[5 * 16 + 2], 0);

  const SampleJobs kept = plan_segmentation_jobs(train_set(), kCaptions, 2, 3,
                                                 flip_only("tm2i", 0.0), dir.dir.string());
  EXPECT_EQ(kept.jobs[0].prompt, kCaptions[0]);
  EXPECT_EQ(kept.jobs[1].prompt, kCaptions[2]);
}

TEST(SyntheticSets, CaptionsComeFromReportsThenPhantomsCsv) {
  test::TempDir dir;
  dir.write("phantoms.csv", "id,caption\na,from the csv\nb,small left pneumothorax\n");
  data::Dataset ds = train_set();
  ds.root = dir.dir.string();
  ds.samples[0].report = "the report";
  EXPECT_EQ(sample_captions(ds),
            (std::vector<std::string>{"the report", "small left pneumothorax", "N/A"}));
  ds.root.clear();  // no folder: no phantoms.csv
  EXPECT_EQ(sample_captions(ds), (std::vector<std::string>{"the report", "N/A", "N/A"}));
}

TEST(SyntheticSets, SegmentationPlanErrors) {
  test::TempDir dir;
  const std::string pool = dir.dir.string();
  const SegmentationPlan plan;
  EXPECT_ERROR_CONTAINS(plan_segmentation_jobs(train_set(), kCaptions, -1, 0, plan, pool),
                        "count must be >= 0, got -1");
  data::Dataset negatives;
  negatives.name = "siim";
  negatives.samples = {masked_sample("b", 0, 0, 0, 0)};
  EXPECT_ERROR_CONTAINS(plan_segmentation_jobs(negatives, {"x"}, 3, 0, plan, pool),
                        "no positive (non-empty) mask");
  SegmentationPlan t2i = plan;
  t2i.mode = "t2i";
  EXPECT_ERROR_CONTAINS(plan_segmentation_jobs(train_set(), kCaptions, 3, 0, t2i, pool),
                        "unknown mode 't2i' (expected m2i or tm2i)");
  SegmentationPlan tm2i = plan;
  tm2i.mode = "tm2i";
  EXPECT_ERROR_CONTAINS(plan_segmentation_jobs(train_set(), {"one"}, 3, 0, tm2i, pool),
                        "1 captions for 3 training samples");
}

// The label of each job, from its label_values.
std::string labels_of(const SampleJobs& jobs) {
  std::string out;
  for (const auto& job : jobs.jobs) {
    const auto it = std::find(job.label_values.begin(), job.label_values.end(), "1");
    EXPECT_EQ(std::count(job.label_values.begin(), job.label_values.end(), "1"), 1);
    out += jobs.label_names[size_t(it - job.label_values.begin())];
  }
  return out;
}

TEST(SyntheticSets, ClassificationBalancesThenRoundRobins) {
  test::TempDir dir;
  ClassificationPlan plan;
  plan.prompts = {{"A", "finding a"}, {"B", "finding b"}, {"C", "finding c"}};
  const std::vector<std::string> labels = {"A", "B", "C"};
  // Real positives A 10, B 4, C 0; 20 images. C alone up to B's 4 (4 jobs), then B and C in turn
  // up to A's 10 (12 jobs, B first on ties), then round-robin A, B, C, A: A 2, B 7, C 11.
  const SampleJobs jobs =
      plan_classification_jobs(labels, {10, 4, 0}, 20, 5, plan, dir.dir.string());
  EXPECT_EQ(labels_of(jobs),
            "CCCC"
            "BCBCBCBCBCBC"
            "ABCA");
  EXPECT_EQ(jobs.label_names, labels);
  EXPECT_EQ(jobs.jobs[0].label_values, (std::vector<std::string>{"0", "0", "1"}));
  EXPECT_EQ(jobs.jobs[0].prompt, "finding c");
  EXPECT_EQ(jobs.jobs[16].prompt, "finding a");
  EXPECT_TRUE(jobs.jobs[0].mask_path.empty());
  const data::CsvTable csv = data::read_csv(dir.dir.string() + "/conditions.csv");
  ASSERT_EQ(csv.size(), 20u);
  EXPECT_EQ(csv.rows[4][2], "B");  // source = the label
  EXPECT_EQ(csv.rows[4][4], "finding b");

  // Nested: 4 images are the first 4 of 20.
  const SampleJobs four =
      plan_classification_jobs(labels, {10, 4, 0}, 4, 5, plan, (dir.dir / "p4").string());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(four.jobs[i].id, jobs.jobs[i].id);
    EXPECT_EQ(four.jobs[i].seed, jobs.jobs[i].seed);
    EXPECT_EQ(four.jobs[i].label_values, jobs.jobs[i].label_values);
  }

  // Without balance: round-robin from the start.
  plan.balance = false;
  EXPECT_EQ(labels_of(plan_classification_jobs(labels, {10, 4, 0}, 7, 5, plan, dir.dir.string())),
            "ABCABCA");
}

TEST(SyntheticSets, LabelsWithoutPromptGetNothing) {
  test::TempDir dir;
  ClassificationPlan plan;
  plan.prompts = {{"A", "finding a"}, {"C", "finding c"}};
  // B has no prompt: C fills up to A's 10, then A and C alternate.
  const SampleJobs jobs =
      plan_classification_jobs({"A", "B", "C"}, {10, 4, 0}, 14, 1, plan, dir.dir.string());
  EXPECT_EQ(labels_of(jobs),
            "CCCCCCCCCC"
            "ACAC");
  plan.balance = false;
  EXPECT_EQ(labels_of(plan_classification_jobs({"A", "B", "C"}, {10, 4, 0}, 3, 1, plan,
                                               dir.dir.string())),
            "ACA");
}

TEST(SyntheticSets, ClassificationPlanErrors) {
  test::TempDir dir;
  const std::string pool = dir.dir.string();
  ClassificationPlan plan;
  EXPECT_ERROR_CONTAINS(plan_classification_jobs({"A"}, {1}, 2, 0, plan, pool),
                        "no label has a prompt");
  plan.prompts = {{"A", "a"}, {"Pneumonia", "pneumonia"}};
  EXPECT_ERROR_CONTAINS(plan_classification_jobs({"A", "B"}, {1, 2}, 2, 0, plan, pool),
                        "unknown label 'Pneumonia' (labels: A, B)");
  plan.prompts = {{"A", "a"}};
  EXPECT_ERROR_CONTAINS(plan_classification_jobs({"A", "B"}, {1, 2}, -3, 0, plan, pool),
                        "count must be >= 0, got -3");
  EXPECT_ERROR_CONTAINS(plan_classification_jobs({"A", "B"}, {1}, 2, 0, plan, pool),
                        "1 positive counts for 2 labels");
}

models::LatentDiffusion tiny_pipeline() {
  const models::SdFolder folder = models::load_sd_folder(std::string(CXR_FIXTURE_DIR) + "/sd_tiny");
  models::LatentDiffusion ld = latent_diffusion_of(folder);
  ld.vae->eval();
  ld.text_encoder->eval();
  ld.unet->eval();
  ld.controlnet->eval();
  return ld;
}

TEST(SyntheticSets, GeneratesAPoolOnceAndListsItsSubsets) {
  test::TempDir dir;
  const std::string pool = (dir.dir / "pool").string();
  SegmentationPlan plan;
  plan.mask_size = 16;
  const SampleJobs jobs = plan_segmentation_jobs(train_set(), kCaptions, 3, 11, plan, pool);
  const models::LatentDiffusion ld = tiny_pipeline();
  models::SampleOptions options;
  options.scheduler = "ddim";
  options.steps = 2;
  options.guidance_scale = 1.0;
  options.height = options.width = 16;
  options.mode = models::ConditionMode::Mask;
  const nlohmann::json settings = {{"steps", 2}, {"mode", "m2i"}};
  {
    SampleOutput out(pool, settings, jobs.label_names);
    run_sample_jobs(ld, jobs, out, options, 2);
  }
  std::vector<fs::file_time_type> times;
  for (const auto& job : jobs.jobs) {
    for (const char* f : {"images/%.png", "images/%.json", "masks/%.png"}) {
      std::string rel = f;
      rel.replace(rel.find('%'), 1, job.id);
      ASSERT_TRUE(fs::exists(fs::path(pool) / rel)) << rel;
      times.push_back(fs::last_write_time(fs::path(pool) / rel));
    }
  }
  const data::Dataset all = data::read_synthetic(pool, {});
  ASSERT_EQ(all.size(), 3u);
  // The generated pair's mask is the planned condition.
  const Tensor planned = data::read_image_u8(jobs.jobs[1].mask_path);
  const std::vector<uint8_t> decoded = all.samples[1].decode_mask();
  for (size_t i = 0; i < decoded.size(); ++i)
    ASSERT_EQ(decoded[i], planned.data<uint8_t>()[i] ? 1 : 0) << i;

  // A second run finds every job done and writes no image.
  {
    SampleOutput out(pool, settings, jobs.label_names);
    for (const auto& job : jobs.jobs) EXPECT_TRUE(out.done(job));
    run_sample_jobs(ld, jobs, out, options, 2);
  }
  size_t k = 0;
  for (const auto& job : jobs.jobs)
    for (const char* f : {"images/%.png", "images/%.json", "masks/%.png"}) {
      std::string rel = f;
      rel.replace(rel.find('%'), 1, job.id);
      EXPECT_EQ(fs::last_write_time(fs::path(pool) / rel), times[k++]) << rel;
    }

  // The x2 subset: the first two jobs, paths relative to its own folder.
  const std::string x2 = write_subset_manifest(pool, 2, "x2");
  EXPECT_EQ(fs::path(x2), fs::path(pool) / "x2");
  const data::Dataset sub = data::read_synthetic(x2, {});
  ASSERT_EQ(sub.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(sub.samples[i].id, jobs.jobs[i].id);
    EXPECT_TRUE(fs::exists(sub.samples[i].image_path));
    EXPECT_EQ(sub.samples[i].decode_mask(), all.samples[i].decode_mask());
  }
  EXPECT_ERROR_CONTAINS(write_subset_manifest(pool, 4, "x4"), "lists 3 finished jobs");
  EXPECT_ERROR_CONTAINS(write_subset_manifest(pool, 0, "x0"), "count must be >= 1");
  EXPECT_ERROR_CONTAINS(write_subset_manifest(pool, 1, "../x1"), "not a plain folder name");
}

TEST(SyntheticSets, ClassificationSubsetsKeepTheLabels) {
  test::TempDir dir;
  const std::string pool = (dir.dir / "pool").string();
  ClassificationPlan plan;
  plan.prompts = {{"Pneumonia", "pneumonia"}, {"Edema", "edema"}};
  const std::vector<std::string> labels = {"Edema", "Pneumonia", "Other"};
  const SampleJobs jobs = plan_classification_jobs(labels, {3, 1, 0}, 3, 2, plan, pool);
  // Pneumonia (1 real) gets the first two, then the tie goes to Edema.
  ASSERT_EQ(labels_of(jobs), "PneumoniaPneumoniaEdema");
  // Finished jobs written directly (the model is not the point here).
  SampleOutput out(pool, {{"steps", 1}}, jobs.label_names);
  for (const auto& job : jobs.jobs) out.write(job, raw::zeros({1, 8, 8}), Tensor());
  out.write_manifest(jobs.jobs);

  const data::Dataset sub = data::read_synthetic(write_subset_manifest(pool, 3, "x1"), labels);
  ASSERT_EQ(sub.size(), 3u);
  EXPECT_EQ(sub.samples[0].labels, (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(sub.samples[2].labels, (std::vector<float>{1, 0, 0}));
  EXPECT_EQ(sub.samples[2].report, "edema");
  for (const auto& s : sub.samples) EXPECT_TRUE(fs::exists(s.image_path)) << s.image_path;
}

}  // namespace
}  // namespace cxr::experiments
