// tensor/sha256: the FIPS 180-2 example vectors (appendix B.1-B.3), the empty message, messages at
// the padding boundaries and a 130-byte message (digests from Python's hashlib), incremental
// updates split at every offset, reuse after a digest, and the file variant.
#include <gtest/gtest.h>

#include <string>

#include "support/errors.h"
#include "support/files.h"
#include "tensor/sha256.h"

namespace cxr {
namespace {

// bytes (37 i + 11) mod 256, i < 130: every byte value class, two full blocks and a partial one.
std::string message130() {
  std::string m(130, '\0');
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<char>((i * 37 + 11) % 256);
  return m;
}
constexpr const char* kDigest130 =
    "d35b74124cb85cfac62bfeaf3a9771efab3e0ef88fc43702c35a6efe09467cc1";

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, PaddingBoundaries) {
  // 55 bytes: padding fits the block; 56..63: it spills into a second one; 64, 119, 120 likewise.
  const std::pair<size_t, const char*> cases[] = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
      {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"}};
  for (const auto& [n, hex] : cases) EXPECT_EQ(sha256_hex(std::string(n, 'x')), hex) << n;
}

TEST(Sha256, IncrementalSplitsMatchOneShot) {
  const std::string m = message130();
  EXPECT_EQ(sha256_hex(m), kDigest130);
  for (size_t split = 0; split <= m.size(); ++split) {
    Sha256 hasher;
    hasher.update(m.data(), split);
    hasher.update(std::string_view(m).substr(split));
    EXPECT_EQ(hasher.hex_digest(), kDigest130) << "split at " << split;
  }
  Sha256 bytewise;  // one byte at a time, then reused after the digest
  for (char c : m) bytewise.update(&c, 1);
  EXPECT_EQ(bytewise.hex_digest(), kDigest130);
  bytewise.update("abc");
  const auto raw = bytewise.digest();
  EXPECT_EQ(raw[0], 0xba);
  EXPECT_EQ(raw[31], 0xad);
}

TEST(Sha256, File) {
  test::TempDir dir;
  const std::string m = message130();
  std::string big;  // several read chunks of 64 KiB and a partial one
  for (int i = 0; i < 1600; ++i) big += m;
  EXPECT_EQ(sha256_file_hex(dir.write("m.bin", m)), kDigest130);
  EXPECT_EQ(sha256_file_hex(dir.write("big.bin", big)),  // hashlib
            "1c2a5be5f17e023ceec56f05947942db0f3e7d130c355247df31a83b7d2da44a");
  EXPECT_EQ(sha256_file_hex(dir.write("empty.bin", "")), sha256_hex(""));
  const std::string missing = (dir.dir / "missing.bin").string();
  EXPECT_ERROR_CONTAINS(sha256_file_hex(missing), missing);
  EXPECT_ERROR_CONTAINS(sha256_file_hex(dir.dir.string()), "cannot open");
}

}  // namespace
}  // namespace cxr
