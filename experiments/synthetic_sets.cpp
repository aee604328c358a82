// The study's synthetic training sets (synthetic_sets.h): planning a pool's jobs (segmentation
// conditions from transformed real masks, classification prompts by the balancing rule), running
// `cxr sample`'s generation loop over them, and the manifests of the nested subsets.
#include "experiments/synthetic_sets.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/csv.h"
#include "data/image_io.h"
#include "data/rng.h"
#include "data/transforms.h"
#include "experiments/generator_trainer.h"
#include "experiments/progress.h"
#include "models/sd_folder.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/ops.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

// Job i's id and sample seed. mix_seed is a bijection of seed + odd constant * (i + 1), so the
// seeds of one pool are distinct.
std::string job_id(int64_t i) {
  char id[32];
  std::snprintf(id, sizeof id, "syn_%06lld", static_cast<long long>(i));
  return id;
}
uint64_t job_seed(uint64_t seed, int64_t i) {
  return data::mix_seed(seed, uint64_t(i));
}
// The stream of job i's mask transform, apart from its sampling noise.
Generator transform_generator(uint64_t seed, int64_t i) {
  return Generator(data::mix_seed(seed ^ 0x6D61736B5472ull, uint64_t(i)));
}

// Swaps the whole words "left" and "right" (any case; the replacement follows the original's
// capitalisation: "Left" -> "Right", "LEFT" -> "RIGHT").
std::string swap_left_right(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
    const std::string word = text.substr(i, j - i);
    std::string lower = word;
    for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "left" || lower == "right") {
      std::string repl = lower == "left" ? "right" : "left";
      const bool all_upper = std::all_of(word.begin(), word.end(), [](char c) {
        return std::isupper(static_cast<unsigned char>(c));
      });
      if (all_upper)
        for (char& c : repl) c = char(std::toupper(static_cast<unsigned char>(c)));
      else if (std::isupper(static_cast<unsigned char>(word[0])))
        repl[0] = char(std::toupper(static_cast<unsigned char>(repl[0])));
      out += repl;
    } else {
      out += word;
    }
    i = j;
  }
  return out;
}

struct PlanRow {
  std::string source, transform, mask;  // mask relative to the pool folder
};

// <pool>/conditions.csv: the plan, one row per job.
void write_conditions(const std::string& pool_dir, const SampleJobs& jobs,
                      const std::vector<PlanRow>& rows) {
  std::string text = "id,seed,source,transform,prompt,mask\n";
  for (size_t i = 0; i < jobs.jobs.size(); ++i) {
    const SampleJob& job = jobs.jobs[i];
    text += data::csv_escape(job.id) + "," + std::to_string(job.seed) + "," +
            data::csv_escape(rows[i].source) + "," + data::csv_escape(rows[i].transform) + "," +
            data::csv_escape(job.prompt) + "," + data::csv_escape(rows[i].mask) + "\n";
  }
  write_file_atomic((fs::path(pool_dir) / "conditions.csv").string(), text, "conditions.csv");
}

// A mask file as the ControlNet condition: RGB in {0, 1} at the image size (nearest).
Tensor read_condition(const std::string& path, int64_t height, int64_t width) {
  Tensor m = data::read_image(path, data::ColorMode::RGB);
  if (m.size(-2) != height || m.size(-1) != width)
    m = data::resize(m, height, width, data::Interp::Nearest);
  return raw::to(raw::compare(CompareOp::Gt, m, 0.5), kFloat32);
}

}  // namespace

SampleJobs plan_segmentation_jobs(const data::Dataset& train,
                                  const std::vector<std::string>& captions, int64_t count,
                                  uint64_t seed, const SegmentationPlan& plan,
                                  const std::string& pool_dir) {
  CXR_CHECK(count >= 0, "plan_segmentation_jobs: count must be >= 0, got ", count);
  CXR_CHECK(plan.mode == "m2i" || plan.mode == "tm2i", "plan_segmentation_jobs: unknown mode '",
            plan.mode, "' (expected m2i or tm2i)");
  CXR_CHECK(plan.mask_size >= 0, "plan_segmentation_jobs: mask_size must be >= 0, got ",
            plan.mask_size);
  const bool with_text = plan.mode == "tm2i";
  CXR_CHECK(!with_text || captions.size() == train.size(),
            "plan_segmentation_jobs: ", captions.size(), " captions for ", train.size(),
            " training samples (tm2i needs one each)");
  std::vector<size_t> sources;
  for (size_t s = 0; s < train.size(); ++s)
    if (train.samples[s].mask_positive()) sources.push_back(s);
  CXR_CHECK(!sources.empty(), "plan_segmentation_jobs: the training set of ", train.name, " (",
            train.size(), " samples) has no positive (non-empty) mask to transform");

  fs::create_directories(fs::path(pool_dir) / "conditions");
  SampleJobs out;
  std::vector<PlanRow> rows;
  for (int64_t i = 0; i < count; ++i) {
    const size_t s = sources[size_t(i) % sources.size()];
    const data::Sample& sample = train.samples[s];
    Tensor mask = sample.mask_tensor();  // [1, H, W] uint8 0/1
    if (plan.mask_size > 0)
      mask = data::resize(mask, plan.mask_size, plan.mask_size, data::Interp::Nearest);
    Generator gen = transform_generator(seed, i);
    std::string description;
    mask = data::random_mask_transform(mask, gen, plan.transform, &description);
    // 0/1 -> 0/255 so that the file is a viewable black/white mask.
    mask = raw::contiguous(mask);
    uint8_t* p = mask.data<uint8_t>();
    for (int64_t k = 0; k < mask.numel(); ++k) p[k] = p[k] ? 255 : 0;

    SampleJob job;
    job.id = job_id(i);
    job.seed = job_seed(seed, i);
    const std::string rel = "conditions/" + job.id + ".png";
    data::write_png((fs::path(pool_dir) / rel).string(), mask);
    job.mask_path = fs::absolute(fs::path(pool_dir) / rel).lexically_normal().string();
    // random_mask_transform's description starts with "flip" when the mask was mirrored.
    const bool flipped = description.rfind("flip", 0) == 0;
    job.prompt = !with_text ? "N/A" : flipped ? swap_left_right(captions[s]) : captions[s];
    rows.push_back({sample.id, description, rel});
    out.jobs.push_back(std::move(job));
  }
  write_conditions(pool_dir, out, rows);
  return out;
}

SampleJobs plan_classification_jobs(const std::vector<std::string>& label_names,
                                    const std::vector<int64_t>& positives, int64_t count,
                                    uint64_t seed, const ClassificationPlan& plan,
                                    const std::string& pool_dir) {
  CXR_CHECK(count >= 0, "plan_classification_jobs: count must be >= 0, got ", count);
  CXR_CHECK(positives.size() == label_names.size(), "plan_classification_jobs: ", positives.size(),
            " positive counts for ", label_names.size(), " labels");
  CXR_CHECK(!plan.prompts.empty(), "plan_classification_jobs: no label has a prompt");
  for (const auto& [label, prompt] : plan.prompts) {
    std::string known;
    for (const auto& l : label_names) known += (known.empty() ? "" : ", ") + l;
    CXR_CHECK(std::find(label_names.begin(), label_names.end(), label) != label_names.end(),
              "plan_classification_jobs: a prompt names the unknown label '", label,
              "' (labels: ", known, ")");
  }
  std::vector<size_t> prompted;  // in label order
  for (size_t l = 0; l < label_names.size(); ++l)
    if (plan.prompts.count(label_names[l])) prompted.push_back(l);
  std::vector<int64_t> totals = positives;  // real + synthetic so far

  fs::create_directories(pool_dir);
  SampleJobs out;
  out.label_names = label_names;
  std::vector<PlanRow> rows;
  for (int64_t i = 0; i < count; ++i) {
    size_t label = prompted[size_t(i) % prompted.size()];
    if (plan.balance)  // the fewest so far, the first in label order on ties
      label = *std::min_element(prompted.begin(), prompted.end(),
                                [&](size_t a, size_t b) { return totals[a] < totals[b]; });
    ++totals[label];
    SampleJob job;
    job.id = job_id(i);
    job.seed = job_seed(seed, i);
    job.prompt = plan.prompts.at(label_names[label]);
    for (size_t l = 0; l < label_names.size(); ++l)
      job.label_values.push_back(l == label ? "1" : "0");
    rows.push_back({label_names[label], "", ""});
    out.jobs.push_back(std::move(job));
  }
  write_conditions(pool_dir, out, rows);
  return out;
}

models::LatentDiffusion load_sampling_pipeline(const std::string& model,
                                               const std::string& controlnet, Device device) {
  models::SdFolderOptions load;
  if (!controlnet.empty()) load.controlnet = models::SdFolderOptions::ControlNet::Skip;
  models::LatentDiffusion ld = latent_diffusion_of(models::load_sd_folder(model, load));
  if (!controlnet.empty()) ld.controlnet = models::load_controlnet(controlnet);
  ld.validate();
  for (nn::Module* m : std::initializer_list<nn::Module*>{ld.vae.get(), ld.text_encoder.get(),
                                                          ld.unet.get(), ld.controlnet.get()})
    if (m) {
      m->eval();
      m->to(device);
    }
  return ld;
}

nlohmann::json sampling_settings(const models::SampleOptions& options) {
  return {{"mode", models::condition_mode_name(options.mode)},
          {"scheduler", options.scheduler},
          {"steps", options.steps},
          {"guidance_scale", options.guidance_scale},
          {"conditioning_scale", options.conditioning_scale},
          {"eta", options.eta},
          {"height", options.height},
          {"width", options.width}};
}

void run_sample_jobs(const models::LatentDiffusion& model, const SampleJobs& jobs,
                     SampleOutput& out, const models::SampleOptions& options, int64_t batch) {
  CXR_CHECK(batch >= 1, "sample: the batch size must be >= 1, got ", batch);
  const bool uses_masks = options.mode != models::ConditionMode::Text;
  std::vector<const SampleJob*> pending;
  for (const auto& job : jobs.jobs)
    if (!out.done(job)) pending.push_back(&job);
  std::fprintf(stderr, "sample: %zu jobs, %zu already done, %zu to generate (%s, %lld steps, %s)\n",
               jobs.jobs.size(), jobs.jobs.size() - pending.size(), pending.size(),
               options.scheduler.c_str(), (long long)options.steps,
               models::condition_mode_name(options.mode));

  const int64_t batches = (int64_t(pending.size()) + batch - 1) / batch;
  Progress progress(1, std::max<int64_t>(batches, 1), 1);
  for (int64_t b = 0; b < batches; ++b) {
    const size_t first = size_t(b * batch), last = std::min(pending.size(), first + size_t(batch));
    std::vector<std::string> prompts;
    std::vector<uint64_t> seeds;
    std::vector<Tensor> conds;
    for (size_t i = first; i < last; ++i) {
      prompts.push_back(pending[i]->prompt);
      seeds.push_back(pending[i]->seed);
      conds.push_back(pending[i]->mask_path.empty() || !uses_masks
                          ? raw::zeros({3, options.height, options.width})
                          : read_condition(pending[i]->mask_path, options.height, options.width));
    }
    const Tensor masks = uses_masks ? raw::stack(conds, 0) : Tensor();
    // Generated on the model's device, written from the host.
    const Tensor images =
        raw::to(models::sample_images(model, prompts, masks, seeds, options), Device::cpu());
    for (size_t i = first; i < last; ++i) {
      const int64_t k = int64_t(i - first);
      const Tensor mask = pending[i]->mask_path.empty() || !uses_masks
                              ? Tensor()
                              : raw::narrow(conds[size_t(k)], 0, 0, 1);
      out.write(*pending[i], raw::select(images, 0, k), mask);
    }
    out.write_manifest(jobs.jobs);
    progress.update(1, b + 1, NAN, int64_t(last - first));
  }
  progress.end_epoch();
  out.write_manifest(jobs.jobs);
}

std::string write_subset_manifest(const std::string& pool_dir, int64_t count,
                                  const std::string& name) {
  CXR_CHECK(count >= 1, "write_subset_manifest: count must be >= 1, got ", count);
  CXR_CHECK(!name.empty() && name != "." && name != ".." &&
                name.find_first_of("/\\") == std::string::npos,
            "write_subset_manifest: '", name, "' is not a plain folder name (e.g. x5)");
  const std::string pool_csv = (fs::path(pool_dir) / "synthetic.csv").string();
  CXR_CHECK(fs::exists(pool_csv), "write_subset_manifest: pool '", pool_dir,
            "' has no synthetic.csv (generate it first)");
  const data::CsvTable t = data::read_csv(pool_csv);
  CXR_CHECK(int64_t(t.size()) >= count, "write_subset_manifest: ", pool_csv, " lists ", t.size(),
            " finished jobs, the subset '", name, "' needs ", count);
  const size_t image_col = t.column("image");
  const bool has_mask = t.has_column("mask");
  const size_t mask_col = has_mask ? t.column("mask") : 0;

  const fs::path dir = fs::path(pool_dir) / name;
  fs::create_directories(dir);
  std::string text;
  for (size_t c = 0; c < t.header.size(); ++c)
    text += (c ? "," : "") + data::csv_escape(t.header[c]);
  text += "\n";
  for (size_t r = 0; r < size_t(count); ++r) {
    for (size_t c = 0; c < t.header.size(); ++c) {
      std::string field = t.rows[r][c];
      // The pool's paths are relative to the pool, the subset folder is one level below it.
      if ((c == image_col || (has_mask && c == mask_col)) && !field.empty() &&
          !fs::path(field).is_absolute())
        field = (fs::path("..") / field).string();
      text += (c ? "," : "") + data::csv_escape(field);
    }
    text += "\n";
  }
  write_file_atomic((dir / "synthetic.csv").string(), text, "subset synthetic.csv");
  return dir.string();
}

}  // namespace cxr::experiments
