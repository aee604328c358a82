// Atomic file writes, the one way SynthCXR writes results, checkpoints, datasets and configs: the
// bytes go to a uniquely named temporary file in the target's folder, are flushed and fsynced, and
// the file is renamed over the target. A reader (or a run killed half-way) sees either the old
// file or the new one, never a partial file.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace cxr {

// Calls `write` on a binary stream to the temporary file, then moves it into place. Throws
// cxr::Error starting with `what` (e.g. "save_safetensors") and naming `path` when the file cannot
// be created, written or renamed; the temporary file is removed then and the target is untouched.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write,
                       std::string_view what);
// The same for bytes already in memory.
void write_file_atomic(const std::string& path, std::string_view bytes, std::string_view what);

// The whole file as bytes. Throws cxr::Error "<what>: cannot open <path> (<reason>)" when it
// cannot be opened or read.
std::string read_file(const std::string& path, std::string_view what);

}  // namespace cxr
