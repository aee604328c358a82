// One finished cell of the study grid, stored as <run>/results/<cell id>.json:
//   {"format": "synthcxr-study-cell/1", "result": {...}, "sha256": <SHA-256 of result.dump()>}
// written atomically once the cell's training and test evaluation are done. A file that does not
// parse, lacks a field, fails its checksum or describes another cell is corrupt: the runner moves
// it aside (<file>.corrupt) and redoes the cell; it is never used.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cxr::experiments {

// Which cell: (task, real-data fraction, multiplier, trial seed).
struct CellKey {
  std::string task;
  double fraction = 1.0;
  int64_t multiplier = 0;
  uint64_t seed = 0;

  // "siim_f10_x5_s1": the file and run-folder name.
  std::string id() const;
  bool operator==(const CellKey&) const = default;
};

struct CellResult {
  CellKey cell;
  double metric = 0;          // the task's study metric on the real test set
  nlohmann::json test;        // metrics.json "test" (every metric, with its convention)
  nlohmann::json provenance;  // kind, dataset, model, metric, train_real, train_synthetic,
                              // generator + sha256, study and cell config sha256, seconds
};

nlohmann::json to_json(const CellResult& result);

// Writes the result file atomically.
void write_cell_result(const std::string& path, const CellResult& result);
// The result in `path` when it is intact and describes `expected`; otherwise nullopt with the
// reason in `problem` (a missing file: nullopt with an empty problem).
std::optional<CellResult> read_cell_result(const std::string& path, const CellKey& expected,
                                           std::string* problem);

}  // namespace cxr::experiments
