// The list of subcommands.
#include "experiments/commands.h"

namespace cxr::experiments {

std::vector<Command> register_commands(CLI::App& app) {
  return {register_demo(app), register_tensors(app), register_env(app), register_phantoms(app)};
}

}  // namespace cxr::experiments
