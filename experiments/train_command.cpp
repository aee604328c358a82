// The command line of the downstream training commands (train_command.h).
#include "experiments/train_command.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "models/json_config.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace {

struct TrainCommandOptions {
  std::string config, out;
  std::vector<std::string> set;
  bool resume = false;
  int64_t stop_after = 0;
};

// The config of this invocation: the file (or the run's own config.json when resuming without
// one) with the overrides applied. A resumed run must keep its configuration.
TrainConfig resolve_config(TaskKind kind, const TrainCommandOptions& o) {
  namespace fs = std::filesystem;
  const std::string saved = (fs::path(o.out) / "config.json").string();
  if (o.resume) {
    CXR_CHECK(fs::exists(saved), "--resume: '", o.out,
              "' has no config.json (is it a run folder?)");
    TrainConfig c = parse_train_config(kind, models::JsonConfig::from_file(saved).json(), saved);
    if (!o.config.empty() || !o.set.empty()) {
      nlohmann::json base = o.config.empty() ? train_config_json(kind, c)
                                             : models::JsonConfig::from_file(o.config).json();
      const TrainConfig given = parse_train_config(kind, apply_overrides(base, o.set),
                                                   o.config.empty() ? "--set" : o.config);
      const nlohmann::json a = train_config_json(kind, c), b = train_config_json(kind, given);
      for (const auto& [key, value] : a.items())
        CXR_CHECK(b.at(key) == value, "--resume: key '", key, "' is ", b.at(key).dump(),
                  " here but ", value.dump(), " in the run being resumed (", saved, ")");
    }
    return c;
  }
  nlohmann::json json =
      o.config.empty() ? nlohmann::json::object() : models::JsonConfig::from_file(o.config).json();
  return parse_train_config(kind, apply_overrides(json, o.set),
                            o.config.empty() ? "config" : o.config);
}

}  // namespace

Command register_train_command(CLI::App& app, TaskKind kind, const std::string& name,
                               const std::string& description, TaskFactory make_task) {
  auto o = std::make_shared<TrainCommandOptions>();
  CLI::App* sub = app.add_subcommand(name, description);
  sub->add_option("--config", o->config, "JSON config file (keys below)");
  sub->add_option("--set", o->set,
                  "override a config key: --set key=value (repeatable; "
                  "value as JSON, e.g. --set epochs=5 --set model_config.base_width=16)");
  sub->add_option("--out", o->out, "run folder (created; must not hold another run)")->required();
  sub->add_flag("--resume", o->resume,
                "continue the run in --out from its last checkpoint (same final metrics as an "
                "uninterrupted run)");
  sub->add_option("--stop-after", o->stop_after,
                  "stop after this many epochs of this invocation (time-limited jobs); continue "
                  "with --resume")
      ->check(CLI::NonNegativeNumber);
  sub->footer(train_config_help(kind));
  return {sub, [=] {
            const TrainConfig config = resolve_config(kind, *o);
            std::unique_ptr<TrainTask> task = make_task(config);
            const nlohmann::json result =
                run_training(kind, config, *task,
                             {.out = o->out, .resume = o->resume, .stop_after = o->stop_after});
            std::printf("%s\n", result.dump(2).c_str());
          }};
}

}  // namespace cxr::experiments
