// safetensors read (memory-mapped) and atomic write. Format: huggingface/safetensors README
// ("8 bytes: N, an unsigned little-endian 64-bit integer ... N bytes: a JSON UTF-8 string ...").
#include "tensor/safetensors.h"

#include <fcntl.h>     // open
#include <sys/mman.h>  // mmap
#include <sys/stat.h>  // fstat
#include <unistd.h>    // close, fsync

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>  // header parsing and writing

#include "tensor/creation.h"

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
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const std::exception& e) {
    CXR_FAIL("load_safetensors: '", path, "' has a malformed JSON header: ", e.what());
  }
  CXR_CHECK(header.is_object(), "load_safetensors: '", path, "': the header is not a JSON object");

  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  SafetensorsFile out;
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
    try {
      DType dtype = parse_dtype(entry.at("dtype").get<std::string>(), path, key);
      Shape shape = entry.at("shape").get<Shape>();
      auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      CXR_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size,
                "load_safetensors: '", path, "': tensor '", key, "' has data offsets outside the ",
                data_size, "-byte data section");
      for (int64_t s : shape)
        CXR_CHECK(s >= 0, "load_safetensors: '", path, "': tensor '", key, "' has a negative size");
      uint64_t expected = uint64_t(shape_numel(shape)) * dtype_size(dtype);
      CXR_CHECK(offsets[1] - offsets[0] == expected, "load_safetensors: '", path, "': tensor '",
                key, "' of shape ", shape_str(shape), " needs ", expected,
                " bytes but its offsets span ", offsets[1] - offsets[0]);
      size_t byte_offset = data_start + offsets[0];
      if (byte_offset % dtype_size(dtype) == 0) {
        out.tensors[key] = Tensor(file, shape, contiguous_strides(shape),
                                  int64_t(byte_offset / dtype_size(dtype)), dtype);
      } else {  // misaligned for its type: copy out
        Tensor t = raw::empty(shape, dtype);
        std::memcpy(t.data_ptr(), bytes + byte_offset, expected);
        out.tensors[key] = t;
      }
    } catch (const nlohmann::json::exception& e) {
      CXR_FAIL("load_safetensors: '", path, "': tensor '", key,
               "' has a malformed entry: ", e.what());
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
    CXR_CHECK(t.device().is_cpu(), "save_safetensors: tensor '", key, "' is on ", t.device().str(),
              "; copy it to cpu first");
    Tensor c = raw::contiguous(t);
    uint64_t n = uint64_t(c.numel()) * c.element_size();
    header[key] = {{"dtype", dtype_code(c.dtype())},
                   {"shape", c.sizes()},
                   {"data_offsets", {offset, offset + n}}};
    offset += n;
    contiguous.push_back(c);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // align the data section to 8 bytes

  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    CXR_CHECK(os.good(), "save_safetensors: cannot create '", tmp.string(), "'");
    unsigned char len[8];
    uint64_t hl = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(hl >> (8 * i));
    os.write(reinterpret_cast<const char*>(len), 8);
    os.write(text.data(), std::streamsize(text.size()));
    for (const Tensor& c : contiguous)
      os.write(static_cast<const char*>(c.data_ptr()),
               std::streamsize(c.numel() * c.element_size()));
    os.flush();
    CXR_CHECK(os.good(), "save_safetensors: write to '", tmp.string(), "' failed");
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp);
    CXR_FAIL("save_safetensors: cannot move '", tmp.string(), "' to '", path, "': ", ec.message());
  }
}

}  // namespace cxr
