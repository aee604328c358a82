// `cxr study CONFIG` runs (or continues) a study; `cxr report RUN_DIR` rebuilds its report from the
// run folder (experiments/study.h, study_report.h).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "experiments/study.h"
#include "experiments/study_report.h"
#include "experiments/train_config.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

Command register_study(CLI::App& app) {
  struct Options {
    std::string config, out;
    std::vector<std::string> set;
    int64_t stop_after_cells = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "study",
      "Run the study: phantoms, generator, synthetic sets, the grid of downstream runs "
      "(fractions x multipliers x seeds), statistics and report; a rerun continues where a "
      "killed one stopped");
  sub->add_option("config", o->config, "study config (JSON; configs/ has examples)")->required();
  sub->add_option("--out", o->out, "run folder (default: runs/<the study's name>)");
  sub->add_option("--set", o->set,
                  "override a config key: --set key=value (repeatable; value as JSON; nested "
                  "keys with dots, e.g. --set grid.seeds=[1,2,3])");
  sub->add_option("--stop-after-cells", o->stop_after_cells,
                  "stop after this many grid cells of this invocation (run again to continue)")
      ->check(CLI::NonNegativeNumber);
  sub->footer(
      "Config keys: name, phantoms, generator {model | train_vae, train_unet, train_controlnet; "
      "sampling}, tasks [{name, kind, train, metric, synthetic}], grid {fractions, multipliers, "
      "seeds}, statistics {test: welch|student|paired, alpha, confidence}, report "
      "{sample_images}. See experiments/study_config.h and configs/.");
  return {sub, [o] {
            const nlohmann::json raw = apply_overrides(read_study_json(o->config), o->set);
            const std::string dir =
                o->out.empty() ? "runs/" + raw.value("name", std::string("study")) : o->out;
            const std::string config_dir =
                fs::absolute(o->config).parent_path().lexically_normal().string();
            run_study(raw, o->config, config_dir,
                      {.run_dir = dir, .stop_after_cells = o->stop_after_cells});
          }};
}

Command register_study_worker(CLI::App& app) {
  struct Options {
    std::string run_dir;
    int64_t worker = 0, stop_after_cells = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "study-worker",
      "One of a study's cell workers (started by `cxr study` with parallel.workers)");
  sub->group("");  // internal: not listed by --help
  sub->add_option("run_dir", o->run_dir, "the study's run folder")->required();
  sub->add_option("--worker", o->worker, "this worker's number, from 0")->required();
  sub->add_option("--stop-after-cells", o->stop_after_cells, "stop after this many cells")
      ->check(CLI::NonNegativeNumber);
  return {sub, [o] {
            const int status = run_study_worker(o->run_dir, o->worker, o->stop_after_cells);
            if (status != 0) std::exit(status);
          }};
}

Command register_report(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "report",
      "Rebuild a study's report (results.csv, summary.csv, report/ with report.html) from its run "
      "folder");
  sub->add_option("run_dir", *run_dir, "the study's run folder")->required();
  return {sub, [run_dir] { std::printf("%s", write_study_report(*run_dir).c_str()); }};
}

}  // namespace cxr::experiments
