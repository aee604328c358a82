// Temporary files and directories for tests, and running a command-line program.
#pragma once

#include <filesystem>
#include <string>

namespace cxr::test {

// <system temp dir>/cxr_test_<pid>_<name>: a path private to this test process.
std::string temp_path(const std::string& name);
// The whole file as text ("" when it cannot be opened).
std::string read_text(const std::string& path);
// Writes `bytes` to `path` exactly (binary), replacing the file.
void write_bytes(const std::string& path, const std::string& bytes);

// A fresh directory, unique in this process (pid and a counter), removed with everything in it when
// the object is destroyed.
struct TempDir {
  std::filesystem::path dir;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes dir/<name> (creating parent directories) and returns its path.
  std::string write(const std::string& name, const std::string& text) const;
};

// What a command wrote and how it ended.
struct CommandResult {
  int status;  // the exit status; -1 when it did not exit normally
  std::string out, err;
};
// Runs '<binary>' <args> through the shell, capturing stdout and stderr in temporary files.
CommandResult run_command(const std::string& binary, const std::string& args);

}  // namespace cxr::test
