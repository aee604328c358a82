// The log of a run folder: each line goes to stderr and, with a UTC time stamp, to log.txt
// (appended, so a resumed run continues the same log).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace cxr::experiments {

class RunLog {
 public:
  // Throws naming the path when the file cannot be opened.
  explicit RunLog(const std::filesystem::path& path);
  void operator()(const std::string& line);

 private:
  std::ofstream file_;
};

}  // namespace cxr::experiments
