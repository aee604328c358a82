// Temporary files and directories for tests, and running a command-line program.
#include "support/files.h"

#include <sys/wait.h>  // WIFEXITED, WEXITSTATUS
#include <unistd.h>    // getpid

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace cxr::test {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("cxr_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Removes any previous file first: rewriting a truncated file makes ext4 flush it on close
// (auto_da_alloc), which would make a fuzzer disk-bound.
void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  dir = temp_path("dir" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::filesystem::path p = dir / name;
  std::filesystem::create_directories(p.parent_path());
  write_bytes(p.string(), text);
  return p.string();
}

CommandResult run_command(const std::string& binary, const std::string& args) {
  static std::atomic<int> counter{0};
  const std::string tag = std::to_string(counter++);
  const std::string out = temp_path("stdout" + tag), err = temp_path("stderr" + tag);
  const std::string command = "'" + binary + "' " + args + " > '" + out + "' 2> '" + err + "'";
  const int raw_status = std::system(command.c_str());
  CommandResult r{WIFEXITED(raw_status) ? WEXITSTATUS(raw_status) : -1, read_text(out),
                  read_text(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace cxr::test
