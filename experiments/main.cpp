// `cxr`: the single entry point of SynthCXR's experiments, with git-style subcommands. Exit status
// 0 on success, 2 on bad usage or bad input (one-line reason on stderr), 1 on other failures.
#include <CLI/CLI.hpp>  // command-line parsing

#include <cstdio>
#include <exception>
#include <string>

#include "experiments/commands.h"
#include "tensor/error.h"

int main(int argc, char** argv) {
  CLI::App app{"SynthCXR: synthetic chest X-ray study on our own tensor/autograd library", "cxr"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("synthcxr ") + CXR_VERSION);
  auto commands = cxr::experiments::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const cxr::Error& e) {
    std::fprintf(stderr, "cxr: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cxr: failure: %s\n", e.what());
    return 1;
  }
  return 0;
}
