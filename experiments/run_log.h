// The log of a run folder: each line goes to stderr and, with a UTC time stamp, to log.txt
// (appended, so a resumed run continues the same log); and the one way numbers are written into a
// run folder's logs and CSV files.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace cxr::experiments {

// `v` with `significant` significant digits, shortest form ("0.0029265848", "1e-06"); 17 digits
// give back the same double when read.
std::string format_number(double v, int significant = 8);

class RunLog {
 public:
  // Throws naming the path when the file cannot be opened.
  explicit RunLog(const std::filesystem::path& path);
  void operator()(const std::string& line);

 private:
  std::ofstream file_;
};

}  // namespace cxr::experiments
