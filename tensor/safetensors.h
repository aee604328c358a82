// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw bytes. It is the
// project's one tensor file format: weights, checkpoints and the golden test fixtures.
#pragma once

#include <map>
#include <string>

#include "tensor/tensor.h"

namespace cxr {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Memory-maps `path` (tensors share the mapping, which lives as long as any of them). Throws a
// cxr::Error naming the file and the problem for a missing file, a truncated file, a malformed
// header, an unknown dtype, or offsets outside the data.
SafetensorsFile load_safetensors(const std::string& path);
// Writes contiguous copies of `tensors` atomically: a temporary file in the same folder, flushed,
// then renamed over `path`, so a crash never leaves a half-written file.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace cxr
