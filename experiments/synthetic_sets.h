// The synthetic training sets of the study (Prakash et al.): which images to generate for a task's
// real training subset, and generating them with the study's generator.
//
// Segmentation tasks: new conditions from the POSITIVE training masks (non-empty ones), cycled in
// order, each changed by a seeded random composition of flip / dilation or erosion / translation
// (data/mask_ops.h) into a new mask, which the ControlNet samples (mask only, m2i; or mask + the
// source image's report caption, tm2i, with "left"/"right" swapped in the caption when the mask was
// flipped) into a paired image + mask.
// Classification tasks: single-disease prompts (label -> prompt, e.g. "Target" -> "pneumonia"):
// each synthetic image is labelled with that one disease (1) and 0 for every other label. With
// `balance`, the images go first to the labels with the fewest real positives, until every label
// reaches the count of the most frequent one (the paper's CheXpert rule), and the rest round-robin
// over the labels; without it, round-robin from the start. Exactly: with balance, job i goes to
// the prompted label with the fewest positives so far (real + jobs 0..i-1), ties to the first in
// label order, so the deficits fill lowest first ("water-filling") and every prefix is as balanced
// as it can be; without it, job i goes to the (i mod E)-th of the E prompted labels.
//
// Job i's id ("syn_<i, 6 digits>"), sample seed and mask transform depend only on (seed, i) (and
// the sources): a plan of count k is the first k jobs of a plan of count N > k, and re-planning a
// pool with the same arguments rewrites the same bytes.
//
// A pool folder holds the largest set a (task, fraction, trial seed) needs; the sets of the
// smaller multipliers are its first k * N jobs (nested, like the real-data fractions), each listed
// by its own manifest:
//   <pool>/conditions.csv         id, seed, source (real sample id or label), transform, prompt,
//                                 mask (the plan: written before any image is generated)
//   <pool>/conditions/<id>.png    the transformed masks (segmentation)
//   <pool>/images|masks/...       what `cxr sample` writes (experiments/sample_jobs.h)
//   <pool>/synthetic.csv          every finished job
//   <pool>/x<k>/synthetic.csv     the first `count` jobs, paths relative to that folder
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/mask_ops.h"
#include "data/sample.h"
#include "experiments/sample_jobs.h"
#include "models/latent_diffusion.h"

namespace cxr::experiments {

struct SegmentationPlan {
  std::string mode = "m2i";  // m2i (mask only) | tm2i (mask + the source's caption)
  data::MaskAugmentOptions transform;
  int64_t mask_size = 0;  // side of the written condition masks; 0 = the source mask's size
};

struct ClassificationPlan {
  std::map<std::string, std::string> prompts;  // label name -> prompt
  bool balance = true;
};

// The first `count` jobs of a segmentation pool: job i transforms the mask of the (i mod P)-th
// positive training sample (P = their number; Sample::mask_positive, in `train` order), first
// resized to mask_size (nearest), then plan.transform; prompt = "N/A" in m2i, the caption (see
// `captions`, in `train` order, e.g. sample_captions of generator_trainer.h) in tm2i, with whole
// words left <-> right swapped when the transform flipped the mask. Seeds and transforms come from
// `seed` only, so the same arguments give the same plan. Writes <pool>/conditions/<id>.png (0/255
// grayscale) and <pool>/conditions.csv (atomically) and returns the jobs (mask_path absolute,
// label_values = {}). (A finding smaller than the resize step may vanish at a small mask_size; its
// job then conditions on a black mask, which is still a consistent image + mask pair.) Throws when
// count < 0, the mode is not m2i/tm2i, `train` has no positive mask, or (tm2i) `captions` does not
// have one entry per sample.
SampleJobs plan_segmentation_jobs(const data::Dataset& train,
                                  const std::vector<std::string>& captions, int64_t count,
                                  uint64_t seed, const SegmentationPlan& plan,
                                  const std::string& pool_dir);

// The first `count` jobs of a classification pool for a dataset with `label_names` whose training
// subset has `positives[l]` real positives per label (the allocation rule above). Labels without a
// prompt get no images (their label is 0 on every synthetic image). Each job's prompt is its
// label's prompt, its label_values "1"/"0" in label_names order (SampleJobs::label_names =
// label_names). Writes <pool>/conditions.csv (source = the label). Throws when count < 0, the
// sizes differ, no label has a prompt or a prompt names an unknown label.
SampleJobs plan_classification_jobs(const std::vector<std::string>& label_names,
                                    const std::vector<int64_t>& positives, int64_t count,
                                    uint64_t seed, const ClassificationPlan& plan,
                                    const std::string& pool_dir);

// Generates every job of `jobs` not yet done into `out` (SampleOutput's resume rule), `batch`
// images at a time, with a progress line; rewrites the manifest as it goes. Masks are read as the
// ControlNet condition at options' size (nearest, > 0.5 is foreground) unless options.mode is t2i.
// The same function serves `cxr sample`.
// The generator of a diffusers-format folder ready to sample: components validated, eval mode,
// on `device`. `controlnet`, when given, is a ControlNet folder used instead of
// <model>/controlnet. The noise is drawn from the same per-image generators on any device, so an
// image differs between devices only by the rounding of the computation.
models::LatentDiffusion load_sampling_pipeline(const std::string& model,
                                               const std::string& controlnet = "",
                                               Device device = Device::cpu());

// The settings of `options` that shape an image (mode, scheduler, steps, guidance, conditioning
// scale, eta, height, width), as recorded beside generated images and compared on resume.
nlohmann::json sampling_settings(const models::SampleOptions& options);

void run_sample_jobs(const models::LatentDiffusion& model, const SampleJobs& jobs,
                     SampleOutput& out, const models::SampleOptions& options, int64_t batch);

// Writes <pool>/<name>/synthetic.csv (name: a plain folder name, e.g. "x5") listing the first
// `count` rows of <pool>/synthetic.csv (image and mask paths rewritten relative to the new
// folder), atomically; returns that folder. Throws when count < 1 or the pool has fewer finished
// jobs.
std::string write_subset_manifest(const std::string& pool_dir, int64_t count,
                                  const std::string& name);

}  // namespace cxr::experiments
