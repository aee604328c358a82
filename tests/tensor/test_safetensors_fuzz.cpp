// safetensors reader against hostile files: the layout rules of the format (overlapping tensors,
// holes, trailing bytes, impossible shapes, malformed fields) each give a clear error, and a
// seeded randomized fuzzer mutates valid files (truncations, byte flips in the header and the
// length field, JSON edits, text splices) and asserts that loading either succeeds with every
// tensor readable or throws cxr::Error — never another exception, a crash or an out-of-bounds
// read (run it under the sanitize preset for the last). CXR_FUZZ_CASES and CXR_FUZZ_SEED override
// the case count (20000) and the seed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>  // header edits
#include <random>

#include "support/files.h"
#include "support/fixtures.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;

namespace {

using test::read_text;
using test::temp_path;
using test::write_bytes;  // removes the old file first, which keeps the fuzzer off the disk

std::string length_prefix(uint64_t n) {
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return len;
}
// A file from a header text and a data section.
std::string make_file(const std::string& header, const std::string& data) {
  return length_prefix(header.size()) + header + data;
}

std::string load_error(const std::string& bytes) {
  const std::string path = temp_path("case.safetensors");
  write_bytes(path, bytes);
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  ADD_FAILURE() << "no error";
  return {};
}

#define EXPECT_LOAD_ERROR(bytes, needle)                                    \
  do {                                                                      \
    const std::string msg_ = load_error(bytes);                             \
    EXPECT_NE(msg_.find(needle), std::string::npos) << "message: " << msg_; \
  } while (0)

}  // namespace

TEST(SafetensorsValidation, OverlappingTensorsAreRejected) {
  EXPECT_LOAD_ERROR(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              std::string(8, '\0')),
                    "tensors 'a' [0, 8) and 'b' [4, 8) overlap");
  // Two names for the same bytes.
  EXPECT_LOAD_ERROR(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                              std::string(4, '\0')),
                    "overlap");
}

TEST(SafetensorsValidation, HolesAndTrailingBytesAreRejected) {
  EXPECT_LOAD_ERROR(
      make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')),
      "bytes [0, 4) of the data section belong to no tensor");
  EXPECT_LOAD_ERROR(
      make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(6, '\0')),
      "bytes [4, 6) at the end of the data section belong to no tensor");
}

TEST(SafetensorsValidation, EmptyTensorsAnywhereAreFine) {
  const std::string path = temp_path("empty.safetensors");
  write_bytes(path, make_file(R"({"z":{"dtype":"F64","shape":[0,3],"data_offsets":[4,4]},)"
                              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("y":{"dtype":"I64","shape":[2,0],"data_offsets":[0,0]}})",
                              std::string(4, '\0')));
  auto f = load_safetensors(path);
  EXPECT_EQ(f.tensors.at("z").sizes(), (Shape{0, 3}));
  EXPECT_EQ(f.tensors.at("a").item(), 0.0);
  std::filesystem::remove(path);
}

TEST(SafetensorsValidation, MalformedFieldsAreRejected) {
  auto one = [](const std::string& entry, size_t data = 4) {
    return make_file(R"({"t":)" + entry + "}", std::string(data, '\0'));
  };
  EXPECT_LOAD_ERROR(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"),
                    "size that is not a non-negative integer: -1");
  EXPECT_LOAD_ERROR(one(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"),
                    "not a non-negative integer: 1.5");
  EXPECT_LOAD_ERROR(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})"),
                    "data offset that is not a non-negative integer");
  EXPECT_LOAD_ERROR(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"),
                    "data_offsets is not a pair");
  EXPECT_LOAD_ERROR(one(R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})"),
                    "dtype is not a string");
  EXPECT_LOAD_ERROR(one(R"({"dtype":"F32","data_offsets":[0,4]})"), "no \"shape\"");
  EXPECT_LOAD_ERROR(one(R"([1, 2])"), "malformed entry (not an object)");
  // 2^32 x 2^32 x 0 elements: zero bytes, but strides would overflow.
  EXPECT_LOAD_ERROR(
      one(R"({"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})", 0),
      "impossibly large shape");
  // Sizes whose product wraps around 2^64 to a small number.
  EXPECT_LOAD_ERROR(one(R"({"dtype":"U8","shape":[4294967296,4294967296,4],)"
                        R"("data_offsets":[0,4]})"),
                    "impossibly large shape");
  EXPECT_LOAD_ERROR(make_file(R"({"b":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                              std::string("\x01\x00\x02", 3)),
                    "BOOL tensor 'b' holds the byte 2 at element 2; expected 0 or 1");
  EXPECT_LOAD_ERROR(make_file("[1, 2, 3]", ""), "not a JSON object");
  EXPECT_LOAD_ERROR(make_file(R"({"__metadata__":{"a":1}})", ""), "metadata 'a' is not a string");
  EXPECT_LOAD_ERROR(make_file("{\"t\xff\":1}", ""), "malformed JSON header");
}

TEST(SafetensorsValidation, OversizedHeaderIsRejectedBeforeParsing) {
  // A sparse 120 MB file whose header length claims 110 MB: past the format's 100 MB limit.
  const std::string path = temp_path("huge_header.safetensors");
  write_bytes(path, length_prefix(110'000'000));
  std::filesystem::resize_file(path, 120'000'000);
  try {
    load_safetensors(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the format's limit"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove(path);
}

// ---- the fuzzer ----

namespace {

// Valid files to start from: the reference package's file and a few of our own.
std::vector<std::string> seed_files() {
  std::vector<std::string> seeds{
      read_text(std::string(CXR_FIXTURE_DIR) + "/safetensors_reference.safetensors")};
  const std::string path = temp_path("seed.safetensors");
  Generator gen(5);
  save_safetensors(path,
                   {{"weight", raw::randn({3, 4}, gen)},
                    {"bias", raw::randn({4}, gen, kFloat16)},
                    {"idx", raw::randint(0, 9, {5}, gen)},
                    {"empty", raw::zeros({0, 2}, kBFloat16)},
                    {"scalar", raw::scalar_tensor(2.5, kFloat64)}},
                   {{"format", "pt"}, {"note", "fuzz seed"}});
  seeds.push_back(read_text(path));
  save_safetensors(path, {{"only", raw::ones({1}, kUInt8)}});
  seeds.push_back(read_text(path));
  save_safetensors(path, {{"x", raw::ones({2, 2}, kInt32)}, {"mask", raw::ones({3}, kBool)}});
  seeds.push_back(read_text(path));
  std::filesystem::remove(path);
  return seeds;
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool coin() { return rng_() & 1; }

  // One mutation of a valid file, of a randomly chosen kind.
  std::string mutate(const std::string& file) {
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | uint8_t(file[size_t(i)]);
    std::string header = file.substr(8, header_len), data = file.substr(8 + header_len);
    switch (below(6)) {
      case 0:  // truncation
        return file.substr(0, below(file.size()));
      case 1: {  // byte flips anywhere
        std::string f = file;
        for (uint64_t k = 1 + below(8); k > 0; --k) f[below(f.size())] ^= char(1 + below(255));
        return f;
      }
      case 2: {  // byte flips inside the header
        for (uint64_t k = 1 + below(4); k > 0; --k)
          header[below(header.size())] ^= char(1 + below(255));
        return make_file(header, data);
      }
      case 3: {  // a wrong length field
        std::string f = file;
        const uint64_t len = coin() ? header_len + below(17) - 8 : rng_();
        f.replace(0, 8, length_prefix(len));
        return f;
      }
      case 4:  // structured JSON edits, re-serialised with a correct length
        return make_file(edit_json(header), coin() ? data : data.substr(0, below(data.size() + 1)));
      default: {  // splice JSON punctuation or digits into the header text
        static const char* pieces[] = {"{",     "}",    "[",      "]", "\"",
                                       ",",     ":",    "-",      "0", "99999999999999999999",
                                       "1e308", "null", "\\u0000"};
        for (uint64_t k = 1 + below(3); k > 0; --k)
          header.insert(below(header.size() + 1), pieces[below(std::size(pieces))]);
        return make_file(header, data);
      }
    }
  }

 private:
  nlohmann::json random_value() {
    switch (below(9)) {
      case 0:
        return -int64_t(below(1000)) - 1;
      case 1:
        return below(64);
      case 2:
        return rng_();  // huge
      case 3:
        return 0.5 + double(below(10));
      case 4:
        return "F32";
      case 5:
        return nlohmann::json::array({below(16), below(16)});
      case 6:
        return nlohmann::json::object();
      case 7:
        return nullptr;
      default:
        return nlohmann::json::array({below(3), rng_() >> below(64)});
    }
  }

  std::string edit_json(const std::string& text) {
    nlohmann::json h = nlohmann::json::parse(text);
    std::vector<std::string> keys;
    for (const auto& [k, v] : h.items())
      if (k != "__metadata__") keys.push_back(k);
    if (keys.empty()) return text;
    const std::string key = keys[below(keys.size())];
    nlohmann::json& e = h[key];
    static const char* dtypes[] = {"F32", "F64",  "F16",     "BF16", "I32", "I64",
                                   "U8",  "BOOL", "F8_E4M3", "I16",  "",    "f32"};
    switch (below(10)) {
      case 0:  // shift one offset
        e["data_offsets"][below(2)] = e["data_offsets"][0].get<uint64_t>() + below(64) - 16;
        break;
      case 1:  // another dtype (sizes now disagree, or an unknown one)
        e["dtype"] = dtypes[below(std::size(dtypes))];
        break;
      case 2:  // change one size, or the rank
        if (!e["shape"].empty() && coin())
          e["shape"][below(e["shape"].size())] = random_value();
        else
          e["shape"].push_back(below(4));
        break;
      case 3:  // drop a field
        e.erase(coin() ? "shape" : (coin() ? "dtype" : "data_offsets"));
        break;
      case 4:  // a field of the wrong type
        e[coin() ? "shape" : (coin() ? "dtype" : "data_offsets")] = random_value();
        break;
      case 5:  // a second name for an existing range
        h[key + "_alias"] = e;
        break;
      case 6:  // remove a tensor (leaves a hole unless it was empty)
        h.erase(key);
        break;
      case 7:  // metadata of the wrong shape
        h["__metadata__"] = coin() ? random_value() : nlohmann::json{{"k", random_value()}};
        break;
      case 8:  // the whole entry replaced
        e = random_value();
        break;
      default:  // swap the offsets of two tensors
        if (keys.size() > 1)
          std::swap(e["data_offsets"], h[keys[below(keys.size())]]["data_offsets"]);
        break;
    }
    return h.dump();
  }

  std::mt19937_64 rng_;
};

}  // namespace

TEST(SafetensorsFuzz, MutatedFilesLoadOrThrowCxrErrorOnly) {
  int64_t cases = 20000;
  if (const char* env = std::getenv("CXR_FUZZ_CASES")) cases = std::atoll(env);
  const auto seeds = seed_files();
  uint64_t seed = 0xf022;
  if (const char* env = std::getenv("CXR_FUZZ_SEED")) seed = std::strtoull(env, nullptr, 0);
  Mutator mutator(seed);
  const std::string path = temp_path("fuzz.safetensors");
  int64_t accepted = 0, rejected = 0;
  for (int64_t c = 0; c < cases; ++c) {
    const std::string bytes = mutator.mutate(seeds[size_t(c) % seeds.size()]);
    write_bytes(path, bytes);
    try {
      const SafetensorsFile f = load_safetensors(path);
      // Accepted: every tensor must be readable in full (ASan checks the bounds).
      for (const auto& [name, t] : f.tensors) {
        const auto values = t.to_vector<double>();
        ASSERT_EQ(int64_t(values.size()), t.numel()) << name;
      }
      ++accepted;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "case " << c << ": a " << typeid(e).name() << " escaped: " << e.what();
    }
  }
  std::filesystem::remove(path);
  std::cout << "safetensors fuzz (seed " << seed << "): " << cases << " cases, " << accepted
            << " accepted, " << rejected << " rejected with cxr::Error\n";
  RecordProperty("cases", int(cases));
  RecordProperty("accepted", int(accepted));
  EXPECT_EQ(accepted + rejected, cases);
  EXPECT_GT(rejected, cases / 2);  // the mutations do reach the validation
}
