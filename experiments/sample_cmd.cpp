// `cxr sample`: prompts and/or masks in, images out, through the study's generator
// (models/latent_diffusion.h) loaded from a diffusers-format model folder (models/sd_folder.h).
// Jobs come from --jobs CSV or from --prompt/--mask flags; each image has its own seed, is written
// with the mask it was conditioned on and a JSON sidecar of its settings, and the output folder's
// synthetic.csv makes it a synthetic training set (experiments/sample_jobs.h). A killed run
// continues where it stopped when started again with the same arguments.
#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "experiments/sample_jobs.h"
#include "experiments/synthetic_sets.h"
#include "models/latent_diffusion.h"
#include "models/sd_folder.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace {

struct SampleCommandOptions {
  std::string model, controlnet, jobs, out, mode, scheduler = "pndm", device = "cpu";
  std::vector<std::string> prompts, masks;
  uint64_t seed = 0;
  int64_t repeats = 1, steps = 50, height = 0, width = 0, batch = 4;
  double guidance = 7.5, conditioning_scale = 1.0, eta = 0.0;
};

void run_sample(const SampleCommandOptions& o) {
  CXR_CHECK(!o.out.empty(), "sample: --out is required");
  CXR_CHECK(o.jobs.empty() || (o.prompts.empty() && o.masks.empty()),
            "sample: give --jobs or --prompt/--mask, not both");
  CXR_CHECK(o.batch >= 1 && o.steps >= 1, "sample: --batch and --steps must be >= 1");
  const SampleJobs jobs = o.jobs.empty() ? make_sample_jobs(o.prompts, o.masks, o.seed, o.repeats)
                                         : read_sample_jobs(o.jobs);

  const models::LatentDiffusion ld =
      load_sampling_pipeline(o.model, o.controlnet, Device::parse(o.device));

  models::SampleOptions so;
  so.scheduler = o.scheduler;
  so.steps = o.steps;
  so.guidance_scale = o.guidance;
  so.conditioning_scale = o.conditioning_scale;
  so.eta = o.eta;
  so.mode =
      models::parse_condition_mode(o.mode.empty() ? (ld.controlnet ? "tm2i" : "t2i") : o.mode);
  const std::array<int64_t, 2> native = models::native_image_size(ld);
  so.height = o.height > 0 ? o.height : native[0];
  so.width = o.width > 0 ? o.width : native[1];
  const bool uses_masks = so.mode != models::ConditionMode::Text;
  CXR_CHECK(!uses_masks || ld.controlnet, "sample: mode ", models::condition_mode_name(so.mode),
            " needs a ControlNet (a controlnet/ folder in --model, or --controlnet)");

  nlohmann::json settings = sampling_settings(so);
  settings["model"] = o.model;
  settings["controlnet"] = o.controlnet;
  SampleOutput out(o.out, settings, jobs.label_names);
  run_sample_jobs(ld, jobs, out, so, o.batch);
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
  sub->add_option("--device", o->device,
                  "cpu or cuda:N (the same noise on either; not part of the settings a resumed "
                  "run must keep)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "images per batch (results do not depend on it)")
      ->capture_default_str();
  return {sub, [o] { run_sample(*o); }};
}

}  // namespace cxr::experiments
