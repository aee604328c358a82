// `cxr study`: the paper's experiment end to end, resumable. The run folder:
//   study.json                        the config as given (a rerun must use the same one)
//   phantoms/<name>/                  phantom datasets (when the config asks for them)
//   generator/{vae,unet,controlnet}/  the generator's training runs (their model/ folders), each
//                                     with done.json once finished (reused by later runs)
//   synthetic/<task>/f<pct>_s<seed>/  one pool of synthetic images per (task, fraction, seed), the
//                                     size of the largest multiplier; x<k>/synthetic.csv lists the
//                                     nested set of multiplier k (experiments/synthetic_sets.h)
//   cells/<cell id>/                  each cell's training run folder (experiments/trainer.h)
//   results/<cell id>.json            each finished cell (experiments/study_results.h)
//   generator.json                    the generator folder and SHA-256 the cells used
//   results.csv, summary.csv, report/ the report (experiments/study_report.h)
// Each stage skips what is done: a killed study continues where it stopped when run again (a cell
// in progress continues from its last epoch checkpoint) and ends with the same report. With
// parallel.workers > 1 the pools are made first, then the cells run in that many child processes
// (which die with the study's process).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "experiments/study_config.h"

namespace cxr::experiments {

struct StudyOptions {
  std::string run_dir;
  int64_t stop_after_cells = 0;  // stop after this many cells of this invocation (0 = all)
};

// Runs (or continues) the study described by `raw` (the config file's JSON, from `source` in
// `config_dir`) in options.run_dir, then writes the report. Returns true when every cell is done.
bool run_study(const nlohmann::json& raw, const std::string& source, const std::string& config_dir,
               const StudyOptions& options);

// One worker of a study with parallel.workers > 1 (`cxr study-worker`, started by run_study once
// the generator and the synthetic pools exist): trains the pending cells i with
// i % workers == worker. Returns 0 when they are all done, kWorkerStopped after
// stop_after (> 0) cells.
inline constexpr int kWorkerStopped = 3;
int run_study_worker(const std::string& run_dir, int64_t worker, int64_t stop_after);

// The config stored in a run folder's study.json, parsed for that folder.
StudyConfig load_run_config(const std::string& run_dir);

}  // namespace cxr::experiments
