// Result files of the study grid (study_results.h).
#include "experiments/study_results.h"

#include <cmath>
#include <filesystem>

#include "experiments/study_config.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/sha256.h"

namespace cxr::experiments {

namespace {

constexpr const char* kFormat = "synthcxr-study-cell/1";

nlohmann::json key_json(const CellKey& k) {
  return {
      {"task", k.task}, {"fraction", k.fraction}, {"multiplier", k.multiplier}, {"seed", k.seed}};
}

}  // namespace

std::string CellKey::id() const {
  return task + "_f" + fraction_label(fraction) + "_x" + std::to_string(multiplier) + "_s" +
         std::to_string(seed);
}

nlohmann::json to_json(const CellResult& r) {
  return {{"cell", key_json(r.cell)},
          {"metric", r.metric},
          {"test", r.test},
          {"provenance", r.provenance}};
}

void write_cell_result(const std::string& path, const CellResult& result) {
  const nlohmann::json payload = to_json(result);
  const nlohmann::json file = {
      {"format", kFormat}, {"result", payload}, {"sha256", sha256_hex(payload.dump())}};
  write_file_atomic(path, file.dump(2) + "\n", "study result");
}

std::optional<CellResult> read_cell_result(const std::string& path, const CellKey& expected,
                                           std::string* problem) {
  problem->clear();
  if (!std::filesystem::exists(path)) return std::nullopt;
  const nlohmann::json file =
      nlohmann::json::parse(read_file(path, "study result"), nullptr, false);
  const auto fail = [&](const std::string& why) {
    *problem = why;
    return std::nullopt;
  };
  if (file.is_discarded() || !file.is_object()) return fail("not a JSON object (truncated?)");
  if (file.value("format", "") != kFormat) return fail("format is not " + std::string(kFormat));
  if (!file.contains("result") || !file.contains("sha256") || !file["sha256"].is_string())
    return fail("'result' or 'sha256' is missing");
  const nlohmann::json& r = file["result"];
  if (sha256_hex(r.dump()) != file["sha256"].get<std::string>())
    return fail("checksum mismatch (the file was changed or damaged)");
  try {
    CellResult out;
    const nlohmann::json& k = r.at("cell");
    out.cell = {k.at("task").get<std::string>(), k.at("fraction").get<double>(),
                k.at("multiplier").get<int64_t>(), k.at("seed").get<uint64_t>()};
    out.metric = r.at("metric").get<double>();
    out.test = r.at("test");
    out.provenance = r.at("provenance");
    if (!(out.cell == expected))
      return fail("it describes cell " + out.cell.id() + ", not " + expected.id());
    if (!std::isfinite(out.metric)) return fail("the metric is not a finite number");
    return out;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("a field is missing or has the wrong type: ") + e.what());
  }
}

}  // namespace cxr::experiments
