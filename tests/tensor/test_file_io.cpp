// write_file_atomic: the new content replaces the file in one step; a failed write leaves the old
// file and no temporary file behind. read_file: the exact bytes back, or an error naming the path.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "support/errors.h"
#include "support/files.h"
#include "tensor/file_io.h"

namespace cxr {
namespace {

namespace fs = std::filesystem;

size_t entries(const fs::path& dir) {
  return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(FileIo, WritesAndReplaces) {
  test::TempDir tmp;
  const std::string path = (tmp.dir / "a.txt").string();
  write_file_atomic(path, "first", "test");
  EXPECT_EQ(test::read_text(path), "first");
  write_file_atomic(path, std::string("second\0x", 8), "test");
  EXPECT_EQ(test::read_text(path), std::string("second\0x", 8));
  EXPECT_EQ(entries(tmp.dir), 1u);
}

TEST(FileIo, FailedWriterLeavesTheOldFile) {
  test::TempDir tmp;
  const std::string path = tmp.write("a.txt", "old");
  EXPECT_THROW(write_file_atomic(
                   path,
                   [](std::ostream& os) {
                     os << "half of the new";
                     throw std::runtime_error("writer failed");
                   },
                   "test"),
               std::runtime_error);
  EXPECT_EQ(test::read_text(path), "old");
  EXPECT_EQ(entries(tmp.dir), 1u);  // the temporary file is gone
}

TEST(FileIo, MissingFolderIsNamed) {
  test::TempDir tmp;
  const std::string path = (tmp.dir / "no" / "such" / "folder" / "a.txt").string();
  EXPECT_ERROR_CONTAINS(write_file_atomic(path, "x", "save_thing"), "save_thing");
  EXPECT_ERROR_CONTAINS(write_file_atomic(path, "x", "save_thing"), "no/such/folder");
}

TEST(FileIo, ReadFileReturnsTheBytesOrNamesThePath) {
  test::TempDir tmp;
  const std::string bytes("a\0b\r\nc", 6);
  const std::string path = (tmp.dir / "b.bin").string();
  write_file_atomic(path, bytes, "test");
  EXPECT_EQ(read_file(path, "test"), bytes);
  const std::string missing = (tmp.dir / "none.txt").string();
  EXPECT_ERROR_CONTAINS(read_file(missing, "load_thing"), "load_thing: cannot open " + missing);
  EXPECT_ERROR_CONTAINS(read_file(missing, "load_thing"), "(missing)");
  EXPECT_ERROR_CONTAINS(read_file(tmp.dir.string(), "load_thing"), "cannot open");
}

}  // namespace
}  // namespace cxr
