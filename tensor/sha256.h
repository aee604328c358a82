// SHA-256 (FIPS 180-4) of byte streams: an incremental hasher and one-shot helpers for strings and
// files, used to fingerprint checkpoints, fixtures and generated data sets.
#pragma once

#include <array>    // the 32-byte digest
#include <cstddef>  // size_t
#include <cstdint>  // uint8_t, uint32_t, uint64_t
#include <string>
#include <string_view>

namespace cxr {

// update() any number of times, then digest() or hex_digest() once; after that the object is
// reset to the empty message (so it can be reused).
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s);
  std::array<uint8_t, 32> digest();
  // The digest as 64 lower-case hex characters.
  std::string hex_digest();

 private:
  void reset();
  void compress(const uint8_t* block);  // one 64-byte block into state_

  std::array<uint32_t, 8> state_{};
  std::array<uint8_t, 64> buffer_{};  // the bytes of an incomplete block
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // message bytes so far
};

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
// Lower-case hex SHA-256 of a file's contents, read in chunks; cxr::Error naming the path when it
// cannot be opened or read.
std::string sha256_file_hex(const std::string& path);

}  // namespace cxr
