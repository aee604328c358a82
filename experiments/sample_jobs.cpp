// The job list and output folder of `cxr sample` (sample_jobs.h).
#include "experiments/sample_jobs.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/csv.h"
#include "data/image_io.h"
#include "data/transforms.h"
#include "tensor/error.h"
#include "tensor/file_io.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

// Ids become file names: letters, digits, '-', '_', '.', not starting with '.'.
bool safe_id(const std::string& id) {
  if (id.empty() || id[0] == '.' || id.size() > 200) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

uint64_t parse_seed(const std::string& text, const std::string& where) {
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  CXR_CHECK(used == text.size() && !text.empty() && text[0] != '-', where, ": seed '", text,
            "' is not a non-negative integer");
  return uint64_t(v);
}

}  // namespace

SampleJobs read_sample_jobs(const std::string& csv_path) {
  const data::CsvTable t = data::read_csv(csv_path);
  const size_t id_col = t.column("id"), prompt_col = t.column("prompt"),
               seed_col = t.column("seed");
  const bool has_mask = t.has_column("mask");
  const size_t mask_col = has_mask ? t.column("mask") : 0;
  SampleJobs out;
  std::vector<size_t> label_cols;
  for (size_t c = 0; c < t.header.size(); ++c)
    if (c != id_col && c != prompt_col && c != seed_col && !(has_mask && c == mask_col)) {
      out.label_names.push_back(t.header[c]);
      label_cols.push_back(c);
    }
  const fs::path base = fs::path(csv_path).parent_path();
  std::set<std::string> ids;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto& row = t.rows[r];
    SampleJob job;
    job.id = row[id_col];
    CXR_CHECK(safe_id(job.id), t.where(r), ": id '", job.id,
              "' must be a file name (letters, digits, '-', '_', '.')");
    CXR_CHECK(ids.insert(job.id).second, t.where(r), ": duplicate id '", job.id, "'");
    job.prompt = row[prompt_col];
    job.seed = parse_seed(row[seed_col], t.where(r));
    if (has_mask && !row[mask_col].empty()) {
      const fs::path m =
          fs::path(row[mask_col]).is_absolute() ? fs::path(row[mask_col]) : base / row[mask_col];
      CXR_CHECK(fs::exists(m), t.where(r), ": mask '", m.string(), "' not found");
      job.mask_path = m.string();
    }
    for (size_t c : label_cols) job.label_values.push_back(row[c]);
    out.jobs.push_back(std::move(job));
  }
  CXR_CHECK(!out.jobs.empty(), csv_path, ": no jobs");
  return out;
}

SampleJobs make_sample_jobs(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& masks, uint64_t seed0,
                            int64_t repeats) {
  CXR_CHECK(!prompts.empty() || !masks.empty(), "sample: give --prompt, --mask or --jobs");
  CXR_CHECK(repeats >= 1, "sample: --repeats must be >= 1");
  const size_t n = std::max(prompts.size(), masks.size());
  CXR_CHECK(prompts.size() <= 1 || prompts.size() == n, "sample: ", prompts.size(), " prompts for ",
            masks.size(), " masks (give one, or one per mask)");
  CXR_CHECK(masks.size() <= 1 || masks.size() == n, "sample: ", masks.size(), " masks for ",
            prompts.size(), " prompts (give one, or one per prompt)");
  SampleJobs out;
  uint64_t seed = seed0;
  for (size_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < repeats; ++k) {
      SampleJob job;
      char id[32];
      std::snprintf(id, sizeof id, "sample_%06zu", out.jobs.size());
      job.id = id;
      job.prompt = prompts.empty() ? "N/A" : prompts[prompts.size() == 1 ? 0 : i];
      if (!masks.empty()) {
        job.mask_path = masks[masks.size() == 1 ? 0 : i];
        CXR_CHECK(fs::exists(job.mask_path), "sample: mask '", job.mask_path, "' not found");
      }
      job.seed = seed++;
      out.jobs.push_back(std::move(job));
    }
  return out;
}

SampleOutput::SampleOutput(std::string dir, nlohmann::json settings,
                           std::vector<std::string> label_names)
    : dir_(std::move(dir)), settings_(std::move(settings)), label_names_(std::move(label_names)) {
  fs::create_directories(fs::path(dir_) / "images");
  fs::create_directories(fs::path(dir_) / "masks");
}

std::string SampleOutput::image_path(const SampleJob& job) const {
  return (fs::path(dir_) / "images" / (job.id + ".png")).string();
}
std::string SampleOutput::sidecar_path(const SampleJob& job) const {
  return (fs::path(dir_) / "images" / (job.id + ".json")).string();
}
std::string SampleOutput::mask_path(const SampleJob& job) const {
  return (fs::path(dir_) / "masks" / (job.id + ".png")).string();
}

bool SampleOutput::done(const SampleJob& job) const {
  if (!fs::exists(image_path(job)) || !fs::exists(sidecar_path(job))) return false;
  nlohmann::json side;
  try {
    side = nlohmann::json::parse(data::read_text_file(sidecar_path(job)));
  } catch (const nlohmann::json::exception& e) {
    CXR_FAIL(sidecar_path(job), ": not a valid sidecar (", e.what(),
             "); delete it to redo the job");
  }
  for (const auto& [key, value] : settings_.items())
    CXR_CHECK(side.contains(key) && side[key] == value, sidecar_path(job), ": made with ", key,
              " = ", side.contains(key) ? side[key].dump() : "(none)", ", this run has ",
              value.dump(), "; use another output folder");
  CXR_CHECK(side.value("seed", uint64_t(0)) == job.seed && side.value("prompt", "") == job.prompt,
            sidecar_path(job), ": made with another seed or prompt than job '", job.id, "'");
  return true;
}

void SampleOutput::write(const SampleJob& job, const Tensor& image, const Tensor& mask) {
  data::write_png(image_path(job), image);
  if (mask.defined()) data::write_png(mask_path(job), mask);
  nlohmann::json side = settings_;
  side["id"] = job.id;
  side["seed"] = job.seed;
  side["prompt"] = job.prompt;
  side["mask"] = job.mask_path;
  for (size_t i = 0; i < label_names_.size(); ++i)
    side["labels"][label_names_[i]] = job.label_values.at(i);
  // The sidecar last: a job is done only once its image is in place.
  write_file_atomic(sidecar_path(job), side.dump(2) + "\n", "sample sidecar");
}

void SampleOutput::write_manifest(const std::vector<SampleJob>& jobs) const {
  std::string text = "id,image,mask,prompt";
  for (const auto& l : label_names_) text += "," + data::csv_escape(l);
  text += "\n";
  for (const auto& job : jobs) {
    if (!fs::exists(sidecar_path(job))) continue;
    text += data::csv_escape(job.id) + ",images/" + job.id + ".png," +
            (job.mask_path.empty() ? "" : "masks/" + job.id + ".png") + "," +
            data::csv_escape(job.prompt);
    for (const auto& v : job.label_values) text += "," + data::csv_escape(v);
    text += "\n";
  }
  write_file_atomic((fs::path(dir_) / "synthetic.csv").string(), text, "synthetic.csv");
}

}  // namespace cxr::experiments
