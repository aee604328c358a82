// The study's report, rebuilt from a run folder's study.json and results/ alone (`cxr report`):
//   results.csv        one row per finished trial with its provenance (task, fraction, multiplier,
//                      seed, metric and its convention, the other test metrics, data counts,
//                      generator and its SHA-256, study and cell config SHA-256, seconds)
//   summary.csv        per (task, fraction, multiplier): n, mean, sd; against the real-only arm
//                      of the same fraction: delta, its confidence interval, t, df, one-sided P,
//                      Bonferroni-adjusted P over the task's comparisons, significance
//   report/<task>.md   the task's table (rows: fraction; columns: multiplier) and headline
//   report/<task>.svg, report/<task>.png   metric vs multiplier, one line per fraction, +/- sd
//   report/<task>_samples.png              real vs synthetic images (written by the runner)
//   report/report.html everything above in one self-contained file (inline SVG, PNG as data URIs)
// Paths under the run folder are written relative to it ("${run}/..."), so a moved run folder
// gives the same report. Cells without a result are listed as missing, not guessed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "experiments/statistics.h"
#include "experiments/study_config.h"
#include "experiments/study_results.h"

namespace cxr::experiments {

// The statistics of one task: the arms and the comparisons of its grid.
struct TaskSummary {
  struct Arm {
    double fraction = 1;
    int64_t multiplier = 0;
    std::vector<double> values;  // in seed order, finished trials only
    std::vector<uint64_t> seeds;
    std::optional<Comparison> vs_real;  // against the same fraction's real-only arm
  };
  std::vector<Arm> arms;  // fraction-major, multiplier-minor
  int64_t family = 0;     // comparisons in the Bonferroni family
  int64_t best = -1;      // index of the arm with the largest mean improvement (the headline)
};

// Statistics of a task from its results (any subset of its cells).
TaskSummary summarize_task(const StudyConfig& config, const StudyTask& task,
                           const std::vector<CellResult>& results);

// Reads every result of the run, writes results.csv, summary.csv and report/, and returns the
// tables as text for the terminal.
std::string write_study_report(const std::string& run_dir);

}  // namespace cxr::experiments
