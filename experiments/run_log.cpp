// The log of a run folder (run_log.h).
#include "experiments/run_log.h"

#include <cstdio>
#include <ctime>
#include <sstream>

#include "tensor/error.h"

namespace cxr::experiments {

std::string format_number(double v, int significant) {
  std::ostringstream os;
  os.precision(significant);
  os << v;
  return os.str();
}

RunLog::RunLog(const std::filesystem::path& path) : file_(path, std::ios::app) {
  CXR_CHECK(file_.good(), "cannot open the run log '", path.string(), "'");
}

void RunLog::operator()(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::gmtime(&now));
  file_ << stamp << "  " << line << "\n";
  file_.flush();
}

}  // namespace cxr::experiments
