// `cxr sample`: prompts and/or masks in, images out, through the study's generator
// (models/latent_diffusion.h) loaded from a diffusers-format model folder (models/sd_folder.h).
// Jobs come from --jobs CSV or from --prompt/--mask flags; each image has its own seed, is written
// with the mask it was conditioned on and a JSON sidecar of its settings, and the output folder's
// synthetic.csv makes it a synthetic training set (experiments/sample_jobs.h). A killed run
// continues where it stopped when started again with the same arguments.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/transforms.h"
#include "experiments/commands.h"
#include "experiments/progress.h"
#include "experiments/sample_jobs.h"
#include "models/latent_diffusion.h"
#include "models/sd_folder.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace cxr::experiments {

namespace {

struct SampleCommandOptions {
  std::string model, controlnet, jobs, out, mode, scheduler = "pndm";
  std::vector<std::string> prompts, masks;
  uint64_t seed = 0;
  int64_t repeats = 1, steps = 50, height = 0, width = 0, batch = 4;
  double guidance = 7.5, conditioning_scale = 1.0, eta = 0.0;
};

// A mask file as the ControlNet condition: RGB in {0, 1} at the image size (nearest).
Tensor read_condition(const std::string& path, int64_t height, int64_t width) {
  Tensor m = data::read_image(path, data::ColorMode::RGB);
  if (m.size(-2) != height || m.size(-1) != width)
    m = data::resize(m, height, width, data::Interp::Nearest);
  return raw::to(raw::compare(CompareOp::Gt, m, 0.5), kFloat32);
}

void run_sample(const SampleCommandOptions& o) {
  CXR_CHECK(!o.out.empty(), "sample: --out is required");
  CXR_CHECK(o.jobs.empty() || (o.prompts.empty() && o.masks.empty()),
            "sample: give --jobs or --prompt/--mask, not both");
  CXR_CHECK(o.batch >= 1 && o.steps >= 1, "sample: --batch and --steps must be >= 1");
  const SampleJobs jobs = o.jobs.empty() ? make_sample_jobs(o.prompts, o.masks, o.seed, o.repeats)
                                         : read_sample_jobs(o.jobs);

  models::SdFolderOptions load;
  load.controlnet = o.controlnet.empty() ? models::SdFolderOptions::ControlNet::IfPresent
                                         : models::SdFolderOptions::ControlNet::Skip;
  models::SdFolder folder = models::load_sd_folder(o.model, load);
  models::LatentDiffusion ld;
  ld.vae = folder.vae;
  ld.text_encoder = folder.text_encoder;
  ld.tokenizer = folder.tokenizer;
  ld.unet = folder.unet;
  ld.controlnet = o.controlnet.empty() ? folder.controlnet : models::load_controlnet(o.controlnet);
  ld.noise = folder.scheduler->config();
  ld.validate();
  ld.vae->eval();
  ld.text_encoder->eval();
  ld.unet->eval();
  if (ld.controlnet) ld.controlnet->eval();

  models::SampleOptions so;
  so.scheduler = o.scheduler;
  so.steps = o.steps;
  so.guidance_scale = o.guidance;
  so.conditioning_scale = o.conditioning_scale;
  so.eta = o.eta;
  so.mode =
      models::parse_condition_mode(o.mode.empty() ? (ld.controlnet ? "tm2i" : "t2i") : o.mode);
  // The native size: the UNet's sample_size (latent side; 64 for SD v1) times the VAE's factor.
  const std::vector<int64_t>& latent = ld.unet->config().sample_size;
  const int64_t f = ld.vae->downsampling_factor();
  const int64_t native_h = (latent.empty() ? 64 : latent.front()) * f;
  const int64_t native_w = (latent.empty() ? 64 : latent.back()) * f;
  so.height = o.height > 0 ? o.height : native_h;
  so.width = o.width > 0 ? o.width : native_w;
  const bool uses_masks = so.mode != models::ConditionMode::Text;
  CXR_CHECK(!uses_masks || ld.controlnet, "sample: mode ", models::condition_mode_name(so.mode),
            " needs a ControlNet (a controlnet/ folder in --model, or --controlnet)");

  const nlohmann::json settings = {{"model", o.model},
                                   {"controlnet", o.controlnet},
                                   {"mode", models::condition_mode_name(so.mode)},
                                   {"scheduler", so.scheduler},
                                   {"steps", so.steps},
                                   {"guidance_scale", so.guidance_scale},
                                   {"conditioning_scale", so.conditioning_scale},
                                   {"eta", so.eta},
                                   {"height", so.height},
                                   {"width", so.width}};
  SampleOutput out(o.out, settings, jobs.label_names);
  std::vector<const SampleJob*> pending;
  for (const auto& job : jobs.jobs)
    if (!out.done(job)) pending.push_back(&job);
  std::fprintf(stderr, "sample: %zu jobs, %zu already done, %zu to generate (%s, %lld steps, %s)\n",
               jobs.jobs.size(), jobs.jobs.size() - pending.size(), pending.size(),
               so.scheduler.c_str(), (long long)so.steps, models::condition_mode_name(so.mode));

  const int64_t batches = (int64_t(pending.size()) + o.batch - 1) / o.batch;
  Progress progress(1, std::max<int64_t>(batches, 1), 1);
  for (int64_t b = 0; b < batches; ++b) {
    const size_t first = size_t(b * o.batch),
                 last = std::min(pending.size(), first + size_t(o.batch));
    std::vector<std::string> prompts;
    std::vector<uint64_t> seeds;
    std::vector<Tensor> conds;
    for (size_t i = first; i < last; ++i) {
      prompts.push_back(pending[i]->prompt);
      seeds.push_back(pending[i]->seed);
      conds.push_back(pending[i]->mask_path.empty() || !uses_masks
                          ? raw::zeros({3, so.height, so.width})
                          : read_condition(pending[i]->mask_path, so.height, so.width));
    }
    const Tensor masks = uses_masks ? raw::stack(conds, 0) : Tensor();
    const Tensor images = models::sample_images(ld, prompts, masks, seeds, so);
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
  std::fprintf(stderr, "sample: %zu images in %s (synthetic.csv lists them)\n", jobs.jobs.size(),
               o.out.c_str());
}

}  // namespace

Command register_sample(CLI::App& app) {
  auto o = std::make_shared<SampleCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "sample", "Generate images from prompts and/or masks with a diffusers-format model folder");
  sub->add_option("--model", o->model,
                  "model folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/, optional "
                  "controlnet/)")
      ->required();
  sub->add_option("--controlnet", o->controlnet,
                  "a ControlNet folder to use instead of <model>/controlnet");
  sub->add_option("--jobs", o->jobs,
                  "CSV of jobs: id,prompt,mask,seed[,labels...] (mask paths relative to the CSV)");
  sub->add_option("--prompt", o->prompts, "a prompt (repeatable; \"N/A\" = no text condition)");
  sub->add_option("--mask", o->masks, "a mask PNG (repeatable; black = no mask condition)");
  sub->add_option("--seed", o->seed, "seed of the first command-line job (then +1 per image)");
  sub->add_option("--repeats", o->repeats, "images per command-line prompt/mask");
  sub->add_option("--out", o->out, "output folder (images/, masks/, synthetic.csv)")->required();
  sub->add_option("--mode", o->mode,
                  "t2i | m2i | tm2i (default: tm2i with a ControlNet, else t2i); the same rule as "
                  "training: N/A text and black masks are zero conditions");
  sub->add_option("--scheduler", o->scheduler, "ddpm | ddim | pndm | euler_ancestral")
      ->capture_default_str();
  sub->add_option("--steps", o->steps, "denoising steps")->capture_default_str();
  sub->add_option("--guidance", o->guidance, "classifier-free guidance scale (1 = none)")
      ->capture_default_str();
  sub->add_option("--conditioning-scale", o->conditioning_scale, "ControlNet residual scale")
      ->capture_default_str();
  sub->add_option("--eta", o->eta, "DDIM eta")->capture_default_str();
  sub->add_option("--height", o->height,
                  "image height (default: the UNet's sample size x the VAE factor)");
  sub->add_option("--width", o->width, "image width (default: as height)");
  sub->add_option("--batch", o->batch, "images per batch (results do not depend on it)")
      ->capture_default_str();
  return {sub, [o] { run_sample(*o); }};
}

}  // namespace cxr::experiments
