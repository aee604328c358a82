// The command line shared by the downstream training commands: --config FILE, --set key=value
// overrides, --out, --resume, --stop-after, and `--help` listing every config key.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "experiments/commands.h"
#include "experiments/trainer.h"

namespace cxr::experiments {

using TaskFactory = std::function<std::unique_ptr<TrainTask>(const TrainConfig&)>;

Command register_train_command(CLI::App& app, TaskKind kind, const std::string& name,
                               const std::string& description, TaskFactory make_task);

}  // namespace cxr::experiments
