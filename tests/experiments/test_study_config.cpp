// The study's config parser (bad configs fail naming the key, before anything runs), its result
// files (a corrupt or foreign file is detected, never used) and the per-task statistics of the
// report (arms, Bonferroni family, pairing by seed, headline arm).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "experiments/study_config.h"
#include "experiments/study_report.h"
#include "experiments/study_results.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::experiments {
namespace {

// A valid config using an existing generator folder (no training stages needed).
nlohmann::json minimal() {
  return nlohmann::json::parse(R"({
    "name": "t",
    "generator": {"model": "/nonexistent/until/run"},
    "tasks": [{"name": "seg", "kind": "segmentation",
               "train": {"dataset": "siim", "data_root": "${run}/phantoms/siim"}}],
    "grid": {"fractions": [1.0, 0.1], "multipliers": [5, 2], "seeds": [3, 4]}
  })");
}

StudyConfig parse(const nlohmann::json& j) {
  return parse_study_config(j, "cfg.json", "/r", "/c");
}

TEST(StudyConfig, ParsesSortsAndExpandsPaths) {
  const StudyConfig s = parse(minimal());
  EXPECT_EQ(s.name, "t");
  EXPECT_EQ(s.fractions, (std::vector<double>{0.1, 1.0}));
  // The real-only baseline is always part of the grid.
  EXPECT_EQ(s.multipliers, (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(s.seeds, (std::vector<uint64_t>{3, 4}));
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_EQ(s.tasks[0].train["data_root"], "/r/phantoms/siim");
  EXPECT_EQ(s.tasks[0].metric, "dice");
  EXPECT_EQ(metric_json_key(s.tasks[0]), "dice_mean_empty_as_one");
  EXPECT_EQ(s.test, TTest::Welch);
  EXPECT_TRUE(s.needs_generator());
  EXPECT_EQ(s.workers, 1);
  // One worker per listed device unless said otherwise.
  nlohmann::json j = minimal();
  j["parallel"] = {{"devices", {"cuda:0", "cuda:1"}}};
  EXPECT_EQ(parse(j).workers, 2);
}

TEST(StudyConfig, BadConfigsNameTheKey) {
  auto with = [](const std::string& pointer, const nlohmann::json& value) {
    nlohmann::json j = minimal();
    j[nlohmann::json::json_pointer(pointer)] = value;
    return j;
  };
  EXPECT_ERROR_CONTAINS(parse(with("/bogus", 1)), "bogus");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/kind", "detection")), "detection");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/metric", "f1")), "metric 'f1'");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/train/epoch", 3)), "unknown key 'epoch'");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/train/seed", 3)), "set by the study grid");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/name", "a/b")), "task name");
  EXPECT_ERROR_CONTAINS(parse(with("/grid/fractions", {0.0})), "fractions");
  EXPECT_ERROR_CONTAINS(parse(with("/grid/fractions", {0.5, 0.5})), "must not repeat");
  EXPECT_ERROR_CONTAINS(parse(with("/grid/multipliers", {-1})), "multipliers");
  EXPECT_ERROR_CONTAINS(parse(with("/grid/seeds", {1})), "at least 2 seeds");
  EXPECT_ERROR_CONTAINS(parse(with("/statistics/test", "anova")), "anova");
  EXPECT_ERROR_CONTAINS(parse(with("/statistics/alpha", 1.5)), "alpha");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks", nlohmann::json::array())), "tasks");
  EXPECT_ERROR_CONTAINS(parse(with("/generator/sampling/scheduler", "unipc")), "unipc");
  EXPECT_ERROR_CONTAINS(parse(with("/generator/train_vae", {{"stepz", 1}})), "stepz");
  EXPECT_ERROR_CONTAINS(parse(with("/phantoms", {{"x", {{"layout", "mri"}}}})), "mri");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/synthetic/mode", "t2i")), "m2i or tm2i");
  EXPECT_ERROR_CONTAINS(parse(with("/tasks/0/synthetic/transform/max_kernel", 4)), "max_kernel");
  EXPECT_ERROR_CONTAINS(parse(with("/parallel/workers", 0)), "workers");
  EXPECT_ERROR_CONTAINS(
      parse(with("/parallel", {{"workers", 1}, {"devices", {"cuda:0", "cuda:1"}}})),
      "2 devices for 1 workers");
  EXPECT_ERROR_CONTAINS(parse(with("/parallel/devices", {"tpu:0"})), "tpu");
  nlohmann::json two_tasks = minimal();
  two_tasks["tasks"].push_back(two_tasks["tasks"][0]);
  EXPECT_ERROR_CONTAINS(parse(two_tasks), "two tasks are named 'seg'");
  // Without a generator folder, the three training stages must be configured.
  EXPECT_ERROR_CONTAINS(parse(with("/generator/model", "")), "train_vae");
  nlohmann::json wired = with("/generator/model", "");
  wired["generator"]["train_vae"] = {{"steps", 1}};
  wired["generator"]["train_unet"] = {{"steps", 1}, {"vae", "/somewhere"}};
  wired["generator"]["train_controlnet"] = {{"steps", 1}};
  EXPECT_ERROR_CONTAINS(parse(wired), "generator.train_unet.vae is set by the study");
  // A real-only grid needs no generator at all.
  nlohmann::json real_only = with("/generator/model", "");
  real_only["grid"]["multipliers"] = {0};
  EXPECT_FALSE(parse(real_only).needs_generator());
}

// The shipped configs stay valid: the README's main job and the paper-scale study.
TEST(StudyConfig, ShippedConfigsParse) {
  const std::string dir = std::string(CXR_FIXTURE_DIR) + "/../../configs";
  const StudyConfig mini =
      parse_study_config(read_study_json(dir + "/mini_study.json"), "mini", "/r", dir);
  EXPECT_EQ(mini.tasks.size(), 2u);
  EXPECT_TRUE(mini.generator_model.empty());  // trains its own generator
  EXPECT_EQ(mini.phantoms.size(), 3u);
  const StudyConfig paper =
      parse_study_config(read_study_json(dir + "/paper_study.json"), "paper", "/r", dir);
  EXPECT_EQ(paper.fractions, (std::vector<double>{0.01, 0.1, 1.0}));
  EXPECT_EQ(paper.multipliers, (std::vector<int64_t>{0, 2, 5, 10, 25}));
  EXPECT_EQ(paper.tasks.size(), 4u);
}

TEST(StudyConfig, RunPathsExpandAndRelocate) {
  const nlohmann::json j = {
      {"a", "${run}/x"}, {"b", {"${config}/y", 3, "${run}"}}, {"c", "/other"}};
  const nlohmann::json e = expand_paths(j, "/runs/r1", "/cfg");
  EXPECT_EQ(
      e, (nlohmann::json{{"a", "/runs/r1/x"}, {"b", {"/cfg/y", 3, "/runs/r1"}}, {"c", "/other"}}));
  // Back to ${run} (the config folder stays expanded): a moved run gives the same provenance.
  EXPECT_EQ(relocatable(e, "/runs/r1"),
            (nlohmann::json{{"a", "${run}/x"}, {"b", {"/cfg/y", 3, "${run}"}}, {"c", "/other"}}));
}

TEST(StudyConfig, FractionLabels) {
  EXPECT_EQ(fraction_label(1.0), "100");
  EXPECT_EQ(fraction_label(0.1), "10");
  EXPECT_EQ(fraction_label(0.01), "1");
  EXPECT_EQ(fraction_label(0.125), "12.5");
}

CellResult result(const std::string& task, double f, int64_t m, uint64_t seed, double metric) {
  CellResult r;
  r.cell = {task, f, m, seed};
  r.metric = metric;
  r.test = {{"dice_mean_empty_as_one", metric}};
  r.provenance = {{"kind", "segmentation"}, {"seconds", 1.5}};
  return r;
}

TEST(StudyResults, RoundTripAndCorruption) {
  test::TempDir tmp;
  const std::string path = (tmp.dir / "r.json").string();
  const CellResult r = result("seg", 0.1, 2, 3, 0.625);
  std::string problem;
  EXPECT_FALSE(read_cell_result(path, r.cell, &problem).has_value());
  EXPECT_EQ(problem, "");  // missing: not corrupt, just not done

  write_cell_result(path, r);
  auto back = read_cell_result(path, r.cell, &problem);
  ASSERT_TRUE(back.has_value()) << problem;
  EXPECT_EQ(back->metric, 0.625);
  EXPECT_EQ(back->cell, r.cell);
  EXPECT_EQ(r.cell.id(), "seg_f10_x2_s3");

  // Another cell's file is not this cell's result.
  EXPECT_FALSE(read_cell_result(path, {"seg", 0.1, 5, 3}, &problem).has_value());
  EXPECT_NE(problem.find("describes cell seg_f10_x2_s3"), std::string::npos) << problem;

  const std::string good = test::read_text(path);
  // Truncated (a crash while writing a non-atomic copy, a full disk).
  test::write_bytes(path, good.substr(0, good.size() / 2));
  EXPECT_FALSE(read_cell_result(path, r.cell, &problem).has_value());
  EXPECT_NE(problem.find("JSON"), std::string::npos) << problem;
  // A changed metric fails the checksum.
  std::string edited = good;
  edited.replace(edited.find("0.625"), 5, "0.925");
  test::write_bytes(path, edited);
  EXPECT_FALSE(read_cell_result(path, r.cell, &problem).has_value());
  EXPECT_NE(problem.find("checksum"), std::string::npos) << problem;
}

TEST(StudySummary, ArmsFamilyAndHeadline) {
  nlohmann::json j = minimal();
  j["grid"] = {{"fractions", {0.5}}, {"multipliers", {0, 2, 5}}, {"seeds", {1, 2, 3}}};
  const StudyConfig s = parse(j);
  std::vector<CellResult> rs = {
      result("seg", 0.5, 0, 1, 0.50),  result("seg", 0.5, 0, 2, 0.52),
      result("seg", 0.5, 0, 3, 0.54),  result("seg", 0.5, 2, 1, 0.60),
      result("seg", 0.5, 2, 2, 0.64),  result("seg", 0.5, 2, 3, 0.62),
      result("seg", 0.5, 5, 1, 0.55),  // one trial only: no comparison for 5x
      result("other", 0.5, 0, 1, 0.99)};
  const TaskSummary sum = summarize_task(s, s.tasks[0], rs);
  ASSERT_EQ(sum.arms.size(), 3u);
  EXPECT_EQ(sum.arms[0].values, (std::vector<double>{0.50, 0.52, 0.54}));
  EXPECT_EQ(sum.arms[1].seeds, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_FALSE(sum.arms[0].vs_real.has_value());  // the baseline itself
  EXPECT_FALSE(sum.arms[2].vs_real.has_value());  // n = 1
  ASSERT_TRUE(sum.arms[1].vs_real.has_value());
  EXPECT_EQ(sum.family, 1);
  EXPECT_EQ(sum.best, 1);
  // Welch by hand: both arms have sd 0.02 and n 3, so SE = sqrt(2 * 0.0004 / 3), df = 4.
  const Comparison& c = *sum.arms[1].vs_real;
  EXPECT_NEAR(c.delta, 0.10, 1e-12);
  EXPECT_NEAR(c.se, std::sqrt(2 * 0.0004 / 3), 1e-12);
  EXPECT_NEAR(c.df, 4.0, 1e-9);
  EXPECT_EQ(c.p_bonferroni, c.p_one_sided);  // a family of one

  // Paired: trial k of each arm by seed; the 2x arm misses seed 3, so two pairs remain.
  j["statistics"] = {{"test", "paired"}};
  const StudyConfig sp = parse(j);
  rs.erase(rs.begin() + 5);
  const TaskSummary paired = summarize_task(sp, sp.tasks[0], rs);
  ASSERT_TRUE(paired.arms[1].vs_real.has_value());
  // Differences 0.10 and 0.12: mean 0.11, df 1.
  EXPECT_NEAR(paired.arms[1].vs_real->delta, 0.11, 1e-12);
  EXPECT_NEAR(paired.arms[1].vs_real->df, 1.0, 1e-12);
}

TEST(StudySummary, BonferroniOverTheTasksComparisons) {
  nlohmann::json j = minimal();
  j["grid"] = {{"fractions", {0.1, 1.0}}, {"multipliers", {0, 2}}, {"seeds", {1, 2}}};
  const StudyConfig s = parse(j);
  std::vector<CellResult> rs;
  for (double f : {0.1, 1.0})
    for (uint64_t seed : {1, 2}) {
      rs.push_back(result("seg", f, 0, seed, 0.5 + 0.01 * double(seed)));
      rs.push_back(result("seg", f, 2, seed, 0.6 + 0.02 * double(seed) + f));
    }
  const TaskSummary sum = summarize_task(s, s.tasks[0], rs);
  EXPECT_EQ(sum.family, 2);
  for (const auto& a : sum.arms)
    if (a.vs_real) {
      EXPECT_NEAR(a.vs_real->p_bonferroni, std::min(1.0, 2 * a.vs_real->p_one_sided), 1e-15);
    }
  // The larger improvement is at 100 % (+f in the synthetic arm).
  EXPECT_EQ(sum.arms[size_t(sum.best)].fraction, 1.0);
}

}  // namespace
}  // namespace cxr::experiments
