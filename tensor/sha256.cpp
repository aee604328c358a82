// SHA-256 as specified by FIPS 180-4 (§4.1.2 functions, §4.2.2 constants, §5.1.1 padding, §5.3.3
// initial hash value, §6.2.2 computation).
#include "tensor/sha256.h"

#include <algorithm>   // std::min
#include <cstring>     // std::memcpy
#include <filesystem>  // is_directory: a directory opens but cannot be read
#include <fstream>     // std::ifstream
#include <vector>

#include "tensor/error.h"  // CXR_CHECK

namespace cxr {
namespace {

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes (§4.2.2).
constexpr std::array<uint32_t, 64> kRound = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// The first 32 bits of the fractional parts of the square roots of the first 8 primes (§5.3.3).
constexpr std::array<uint32_t, 8> kInitial = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

constexpr uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

}  // namespace

Sha256::Sha256() {
  reset();
}

void Sha256::reset() {
  state_ = kInitial;
  buffered_ = 0;
  length_ = 0;
}

void Sha256::compress(const uint8_t* block) {
  // Message schedule (§6.2.2 step 1): 16 big-endian words, then sigma-mixed extensions.
  std::array<uint32_t, 64> w;
  for (int i = 0; i < 16; ++i) {
    w[i] = uint32_t{block[4 * i]} << 24 | uint32_t{block[4 * i + 1]} << 16 |
           uint32_t{block[4 * i + 2]} << 8 | uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  // 64 rounds (steps 2-3) on the working variables a..h = v[0..7].
  std::array<uint32_t, 8> v = state_;
  for (int i = 0; i < 64; ++i) {
    const uint32_t big_s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
    const uint32_t choose = (v[4] & v[5]) ^ (~v[4] & v[6]);
    const uint32_t t1 = v[7] + big_s1 + choose + kRound[i] + w[i];
    const uint32_t big_s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
    const uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    const uint32_t t2 = big_s0 + majority;
    for (int j = 7; j > 0; --j) v[j] = v[j - 1];
    v[4] += t1;
    v[0] = t1 + t2;
  }
  // Step 4: add the working variables into the hash value.
  for (int j = 0; j < 8; ++j) state_[j] += v[j];
}

void Sha256::update(const void* data, size_t n) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  length_ += n;
  if (buffered_ > 0) {  // complete the pending block first
    const size_t take = std::min(n, buffer_.size() - buffered_);
    std::memcpy(buffer_.data() + buffered_, bytes, take);
    buffered_ += take;
    bytes += take;
    n -= take;
    if (buffered_ < buffer_.size()) return;
    compress(buffer_.data());
    buffered_ = 0;
  }
  for (; n >= 64; bytes += 64, n -= 64) compress(bytes);
  if (n > 0) std::memcpy(buffer_.data(), bytes, n);
  buffered_ = n;
}

void Sha256::update(std::string_view s) {
  update(s.data(), s.size());
}

std::array<uint8_t, 32> Sha256::digest() {
  // Padding (§5.1.1): a 1 bit, zeros up to 56 mod 64 bytes, then the bit length big-endian.
  const uint64_t bits = length_ * 8;
  const uint8_t one = 0x80;
  update(&one, 1);
  const uint8_t zeros[64] = {};
  update(zeros, (buffered_ <= 56 ? 56 : 120) - buffered_);
  uint8_t length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  update(length_bytes, 8);
  std::array<uint8_t, 32> out;
  for (int j = 0; j < 8; ++j) {
    for (int i = 0; i < 4; ++i) out[4 * j + i] = static_cast<uint8_t>(state_[j] >> (24 - 8 * i));
  }
  reset();
  return out;
}

std::string Sha256::hex_digest() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (uint8_t byte : digest()) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 15]);
  }
  return hex;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 hasher;
  hasher.update(bytes);
  return hasher.hex_digest();
}

std::string sha256_file_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CXR_CHECK(in.is_open() && !std::filesystem::is_directory(path), "sha256_file_hex: cannot open '",
            path, "' as a file");
  Sha256 hasher;
  std::vector<char> chunk(1 << 16);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hasher.update(chunk.data(), static_cast<size_t>(in.gcount()));
  }
  CXR_CHECK(in.eof() && !in.bad(), "sha256_file_hex: error while reading '", path, "'");
  return hasher.hex_digest();
}

}  // namespace cxr
