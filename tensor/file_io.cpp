// Atomic file writes and whole-file reads (file_io.h).
#include "tensor/file_io.h"

#include <fcntl.h>   // open
#include <unistd.h>  // close, fsync, getpid

#include <atomic>
#include <cerrno>
#include <cstring>  // strerror
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace cxr {

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write,
                       std::string_view what) {
  namespace fs = std::filesystem;
  static std::atomic<uint64_t> counter{0};
  const fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  std::error_code ec;
  try {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    CXR_CHECK(os.good(), what, ": cannot create '", tmp.string(), "' (", std::strerror(errno), ")");
    write(os);
    os.flush();
    CXR_CHECK(os.good(), what, ": writing '", path, "' failed (", std::strerror(errno), ")");
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  // Flush the data to the device before the rename makes it visible under the real name.
  if (int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    CXR_FAIL(what, ": cannot move '", tmp.string(), "' to '", path, "': ", ec.message());
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes, std::string_view what) {
  write_file_atomic(
      path, [&](std::ostream& os) { os.write(bytes.data(), std::streamsize(bytes.size())); }, what);
}

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  CXR_CHECK(in.good() && !std::filesystem::is_directory(path), what, ": cannot open ", path, " (",
            std::filesystem::exists(path) ? "unreadable" : "missing", ")");
  std::ostringstream text;
  text << in.rdbuf();
  CXR_CHECK(!in.bad(), what, ": reading ", path, " failed");
  return text.str();
}

}  // namespace cxr
