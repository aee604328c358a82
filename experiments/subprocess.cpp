// Child processes of the running executable (subprocess.h).
#include "experiments/subprocess.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <map>

#include "tensor/error.h"

extern char** environ;

namespace cxr::experiments {

namespace {

// argv / envp arrays built before fork(): between fork() and exec() only async-signal-safe calls
// are allowed in a multi-threaded parent.
struct CStrings {
  std::vector<std::string> storage;
  std::vector<char*> pointers;
  void finish() {
    for (auto& s : storage) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
};

CStrings environment_with(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) vars[k] = v;
  CStrings out;
  for (const auto& [k, v] : vars) out.storage.push_back(k + "=" + v);
  out.finish();
  return out;
}

}  // namespace

std::vector<int> run_children(const std::vector<ChildProcess>& children) {
  const pid_t parent = getpid();
  std::vector<pid_t> pids;
  std::string failure;
  for (const ChildProcess& c : children) {
    CStrings argv;
    argv.storage.push_back("cxr");
    for (const auto& a : c.args) argv.storage.push_back(a);
    argv.finish();
    CStrings envp = environment_with(c.env);
    const pid_t pid = fork();
    if (pid == 0) {
      // Die with the parent, so that killing `cxr study` stops its workers too.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
      execve("/proc/self/exe", argv.pointers.data(), envp.pointers.data());
      _exit(127);
    }
    if (pid < 0) {
      failure = std::string("fork failed: ") + std::strerror(errno);
      break;
    }
    pids.push_back(pid);
  }
  std::vector<int> statuses;
  for (pid_t pid : pids) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    statuses.push_back(WIFEXITED(status) ? WEXITSTATUS(status)
                                         : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  }
  CXR_CHECK(failure.empty(), "could not start a worker process: ", failure);
  return statuses;
}

}  // namespace cxr::experiments
