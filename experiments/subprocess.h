// Child processes of the `cxr` binary itself (the study's parallel cell workers): each runs with
// its own arguments and extra environment variables, dies with its parent (Linux
// PR_SET_PDEATHSIG), and is waited for.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace cxr::experiments {

struct ChildProcess {
  std::vector<std::string> args;                         // after the program name
  std::vector<std::pair<std::string, std::string>> env;  // set (or replaced) in the child
};

// Starts every child (the running executable, /proc/self/exe), waits for all of them and returns
// their exit statuses in order (128 + signal number for a child killed by a signal). Throws
// cxr::Error when a child cannot be started (the ones already started are waited for first).
std::vector<int> run_children(const std::vector<ChildProcess>& children);

}  // namespace cxr::experiments
