// The job list of `cxr sample` and what it writes, kept apart from the model so that resuming and
// the output layout are testable on their own. Jobs come from a CSV:
//   id,prompt,mask,seed[,<label>...]
// (mask: a PNG path relative to the CSV's folder, or empty for none; seed: a non-negative integer;
// any further columns are labels copied to the manifest). Each finished job leaves
//   images/<id>.png      the generated image
//   masks/<id>.png       the mask it was conditioned on, at the image size (jobs with a mask)
//   images/<id>.json     its sidecar: seed, prompt, mask, mode, sampler, steps, guidance, ...
// and synthetic.csv (data/synthetic.h's format: id,image,mask,prompt,<labels>) lists every
// finished job, so the output folder is directly a synthetic set for the training commands.
// A job whose image and sidecar exist is done: a rerun continues where a killed one stopped, and
// refuses to mix settings (a sidecar made with other settings is an error naming the field).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::experiments {

struct SampleJob {
  std::string id, prompt, mask_path;  // mask_path: resolved, empty for none
  uint64_t seed = 0;
  std::vector<std::string> label_values;  // in SampleJobs::label_names order
};

struct SampleJobs {
  std::vector<std::string> label_names;
  std::vector<SampleJob> jobs;
};

// Parses the job CSV; errors name file:line (bad seed, duplicate id, missing mask file, an id
// that is not a safe file name).
SampleJobs read_sample_jobs(const std::string& csv_path);
// Jobs from the command line: every prompt (and mask, when given: one per prompt or one for all)
// with seeds seed0, seed0 + 1, ... and ids "sample_000000", ...
SampleJobs make_sample_jobs(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& masks, uint64_t seed0, int64_t repeats);

// Where one run writes.
class SampleOutput {
 public:
  // Creates the folders. `settings` (sampler, steps, guidance, mode, model, size...) go into every
  // sidecar and must match those of jobs already done.
  SampleOutput(std::string dir, nlohmann::json settings, std::vector<std::string> label_names);
  // True when the job's image and sidecar exist (and the sidecar's settings and seed match;
  // otherwise throws naming the differing field).
  bool done(const SampleJob& job) const;
  // Writes the job's image ([C, H, W] in [0, 1]), its mask (or none) and sidecar, atomically,
  // and adds it to the manifest.
  void write(const SampleJob& job, const Tensor& image, const Tensor& mask);
  // Rewrites synthetic.csv from the sidecars of the given jobs that are done.
  void write_manifest(const std::vector<SampleJob>& jobs) const;

 private:
  std::string image_path(const SampleJob& job) const;
  std::string sidecar_path(const SampleJob& job) const;
  std::string mask_path(const SampleJob& job) const;

  std::string dir_;
  nlohmann::json settings_;
  std::vector<std::string> label_names_;
};

}  // namespace cxr::experiments
