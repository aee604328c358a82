// safetensors read (memory-mapped) and atomic write. Format: huggingface/safetensors README
// ("8 bytes: N, an unsigned little-endian 64-bit integer ... N bytes: a JSON UTF-8 string ...").
#include "tensor/safetensors.h"
#include "tensor/file_io.h"

#include <fcntl.h>     // open
#include <sys/mman.h>  // mmap
#include <sys/stat.h>  // fstat
#include <unistd.h>    // close

#include <algorithm>  // std::sort of the tensor ranges
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>  // header parsing and writing

#include "tensor/creation.h"
#include "tensor/file_io.h"

namespace cxr {

namespace {

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypeNames[] = {
    {"F32", kFloat32}, {"F64", kFloat64}, {"F16", kFloat16}, {"BF16", kBFloat16},
    {"I32", kInt32},   {"I64", kInt64},   {"U8", kUInt8},    {"BOOL", kBool},
};

DType parse_dtype(const std::string& s, const std::string& path, const std::string& key) {
  for (const auto& d : kDTypeNames)
    if (s == d.name) return d.dtype;
  CXR_FAIL("load_safetensors: ", path, ": tensor '", key, "' has unsupported dtype '", s, "'");
}

const char* dtype_code(DType t) {
  for (const auto& d : kDTypeNames)
    if (d.dtype == t) return d.name;
  CXR_FAIL("save_safetensors: unknown dtype");
}

// A read-only private mapping of a whole file, unmapped when the last tensor using it goes.
std::shared_ptr<Storage> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CXR_CHECK(fd >= 0, "load_safetensors: cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    CXR_FAIL("load_safetensors: cannot stat '", path, "': ", std::strerror(errno));
  }
  size_t size = size_t(st.st_size);
  void* data = nullptr;
  if (size > 0) {
    data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      ::close(fd);
      CXR_FAIL("load_safetensors: cannot map '", path, "': ", std::strerror(errno));
    }
  }
  ::close(fd);
  return std::make_shared<Storage>(data, size, Device::cpu(), [size](void* p) {
    if (p) ::munmap(p, size);
  });
}

}  // namespace

// The reference implementation's cap on the JSON header (huggingface/safetensors MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

namespace {

// One tensor's entry, checked against the data section.
struct Entry {
  std::string key;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // relative to the data section
};

uint64_t unsigned_field(const nlohmann::json& v, const std::string& path, const std::string& key,
                        const char* field) {
  CXR_CHECK(v.is_number_unsigned(), "load_safetensors: '", path, "': tensor '", key, "' has a ",
            field, " that is not a non-negative integer: ", v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& key, const nlohmann::json& entry, const std::string& path,
                  uint64_t data_size) {
  CXR_CHECK(entry.is_object(), "load_safetensors: '", path, "': tensor '", key,
            "' has a malformed entry (not an object)");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    CXR_CHECK(entry.contains(field), "load_safetensors: '", path, "': tensor '", key,
              "' has a malformed entry (no \"", field, "\")");
  const auto& dtype = entry.at("dtype");
  CXR_CHECK(dtype.is_string(), "load_safetensors: '", path, "': tensor '", key,
            "' has a malformed entry (dtype is not a string)");
  Entry e{key, parse_dtype(dtype.get<std::string>(), path, key), {}, 0, 0};

  const auto& shape = entry.at("shape");
  CXR_CHECK(shape.is_array(), "load_safetensors: '", path, "': tensor '", key,
            "' has a malformed entry (shape is not an array)");
  // The byte count of the nonzero sizes is bounded (2^62), so that neither the element count nor
  // any stride can overflow, even for tensors with a zero size; the offsets check the rest.
  constexpr uint64_t kMaxBytes = uint64_t(1) << 62;
  const uint64_t elem = dtype_size(e.dtype);
  uint64_t capacity = elem;
  for (const auto& v : shape) {
    const uint64_t size = unsigned_field(v, path, key, "size");
    if (size > 1) {
      CXR_CHECK(capacity <= kMaxBytes / size, "load_safetensors: '", path, "': tensor '", key,
                "' has an impossibly large shape ", shape.dump());
      capacity *= size;
    }
    e.shape.push_back(int64_t(size));
  }

  const auto& offsets = entry.at("data_offsets");
  CXR_CHECK(offsets.is_array() && offsets.size() == 2, "load_safetensors: '", path, "': tensor '",
            key, "' has a malformed entry (data_offsets is not a pair)");
  e.begin = unsigned_field(offsets[0], path, key, "data offset");
  e.end = unsigned_field(offsets[1], path, key, "data offset");
  CXR_CHECK(e.begin <= e.end && e.end <= data_size, "load_safetensors: '", path, "': tensor '", key,
            "' has data offsets [", e.begin, ", ", e.end, "] outside the ", data_size,
            "-byte data section");
  const uint64_t expected = uint64_t(shape_numel(e.shape)) * elem;
  CXR_CHECK(e.end - e.begin == expected, "load_safetensors: '", path, "': tensor '", key,
            "' of shape ", shape_str(e.shape), " needs ", expected, " bytes but its offsets span ",
            e.end - e.begin);
  return e;
}

// The format requires the tensors to tile the data section exactly: no two overlap and every
// byte belongs to one (the reference rejects holes, which would allow polyglot files).
void check_layout(std::vector<const Entry*> entries, const std::string& path, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : entries) {
    CXR_CHECK(e->begin >= cursor, "load_safetensors: '", path, "': tensors '", previous->key, "' [",
              previous->begin, ", ", previous->end, ") and '", e->key, "' [", e->begin, ", ",
              e->end, ") overlap");
    CXR_CHECK(e->begin == cursor, "load_safetensors: '", path, "': bytes [", cursor, ", ", e->begin,
              ") of the data section belong to no tensor");
    cursor = e->end;
    previous = e;
  }
  CXR_CHECK(cursor == data_size, "load_safetensors: '", path, "': bytes [", cursor, ", ", data_size,
            ") at the end of the data section belong to no tensor");
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  auto file = map_file(path);
  const size_t size = file->nbytes();
  CXR_CHECK(size >= 8, "load_safetensors: '", path, "' is truncated (", size,
            " bytes; the 8-byte header length is missing)");
  const auto* bytes = static_cast<const unsigned char*>(file->data());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  CXR_CHECK(header_len <= size - 8, "load_safetensors: '", path,
            "' is truncated or corrupt: header ", "length ", header_len, " exceeds the file size ",
            size);
  CXR_CHECK(header_len <= kMaxHeaderBytes, "load_safetensors: '", path, "': header length ",
            header_len, " exceeds the format's limit of ", kMaxHeaderBytes, " bytes");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const std::exception& e) {
    CXR_FAIL("load_safetensors: '", path, "' has a malformed JSON header: ", e.what());
  }
  CXR_CHECK(header.is_object(), "load_safetensors: '", path, "': the header is not a JSON object");

  const size_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      CXR_CHECK(entry.is_object(), "load_safetensors: '", path, "': __metadata__ is not an object");
      for (const auto& [mk, mv] : entry.items()) {
        CXR_CHECK(mv.is_string(), "load_safetensors: '", path, "': metadata '", mk,
                  "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(key, entry, path, data_size));
  }
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  check_layout(order, path, data_size);

  for (const Entry& e : entries) {
    const size_t byte_offset = data_start + e.begin;
    // C++ bools must hold 0 or 1: any other byte would be undefined behaviour when read.
    if (e.dtype == kBool)
      for (uint64_t i = 0; i < e.end - e.begin; ++i)
        CXR_CHECK(bytes[byte_offset + i] <= 1, "load_safetensors: '", path, "': BOOL tensor '",
                  e.key, "' holds the byte ", int(bytes[byte_offset + i]), " at element ", i,
                  "; expected 0 or 1");
    const size_t elem = dtype_size(e.dtype);
    if (byte_offset % elem == 0) {
      out.tensors[e.key] =
          Tensor(file, e.shape, contiguous_strides(e.shape), int64_t(byte_offset / elem), e.dtype);
    } else {  // misaligned for its type: copy out
      Tensor t = raw::empty(e.shape, e.dtype);
      if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes + byte_offset, e.end - e.begin);
      out.tensors[e.key] = t;
    }
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [key, t] : tensors) {
    CXR_CHECK(t.defined(), "save_safetensors: tensor '", key, "' is undefined");
    Tensor c = raw::contiguous(raw::to(t, Device::cpu()));  // device tensors are copied to host
    uint64_t n = uint64_t(c.numel()) * c.element_size();
    header[key] = {{"dtype", dtype_code(c.dtype())},
                   {"shape", c.sizes()},
                   {"data_offsets", {offset, offset + n}}};
    offset += n;
    contiguous.push_back(c);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // align the data section to 8 bytes

  write_file_atomic(
      path,
      [&](std::ostream& os) {
        unsigned char len[8];
        uint64_t hl = text.size();
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(hl >> (8 * i));
        os.write(reinterpret_cast<const char*>(len), 8);
        os.write(text.data(), std::streamsize(text.size()));
        for (const Tensor& c : contiguous)
          os.write(static_cast<const char*>(c.data_ptr()),
                   std::streamsize(c.numel() * c.element_size()));
      },
      "save_safetensors");
}

}  // namespace cxr
