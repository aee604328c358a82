// The generator commands' configuration, training loop and run folder (generator_trainer.h).
#include "experiments/generator_trainer.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "autograd/autocast.h"
#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "data/candid_ptx.h"
#include "data/csv.h"
#include "data/dicom.h"
#include "data/image_io.h"
#include "data/siim.h"
#include "data/transforms.h"
#include "experiments/config_keys.h"
#include "experiments/progress.h"
#include "experiments/run_log.h"
#include "experiments/train_config.h"  // apply_overrides
#include "nn/checkpoint.h"
#include "nn/grad_utils.h"
#include "nn/loss_scaler.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/indexing.h"
#include "tensor/views.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

// Visits every key of GeneratorConfig that a kind uses, once; reading, documenting and writing
// are its three modes, so the key list exists once.

void visit_keys(GeneratorKind kind, GeneratorConfig& c, KeyVisitor& v) {
  const bool cn = kind == GeneratorKind::ControlNet, unet = kind == GeneratorKind::UNet,
             vae = kind == GeneratorKind::Vae;
  if (cn)
    v("model", c.model, "path",
      "diffusers folder with unet/ vae/ text_encoder/ tokenizer/ scheduler/ (frozen); its "
      "controlnet/ is trained further when present, else a ControlNet is made from the UNet "
      "(required)");
  if (unet) {
    v("model", c.model, "path",
      "diffusers folder to fine-tune (unet/ vae/ text_encoder/ tokenizer/ scheduler/); empty: "
      "from scratch with model_config, vae and tokenizer_merges");
    v("model_config", c.model_config, "object",
      "from scratch: {\"unet\": {UNet2DConditionModel keys}, \"text_encoder\": {CLIPTextModel "
      "keys}, \"scheduler\": {scheduler_config keys}}");
    v("vae", c.vae, "path",
      "from scratch: a trained vae folder (from cxr train-vae); a from-scratch UNet needs one");
    v("tokenizer_merges", c.tokenizer_merges, "int",
      "from scratch: BPE merges learned from the training captions (ClipTokenizer::train)");
    v("train_text_encoder", c.train_text_encoder, "bool",
      "train the text encoder with the UNet (as RoentGen fine-tuned SD); saved with the model");
  }
  if (vae) {
    v("model", c.model, "path",
      "vae folder to continue (config.json + weights); empty: "
      "from scratch with model_config");
    v("model_config", c.model_config, "object",
      "from scratch: AutoencoderKL keys (diffusers' vae/config.json), e.g. "
      "{\"block_out_channels\": [8, 16], \"norm_num_groups\": 4}");
    v("reconstruction", c.reconstruction, "string", "reconstruction loss: l1 | mse");
    v("kl_weight", c.kl_weight, "number", "weight of the KL term (mean over the batch)");
  }
  if (cn)
    v("mode", c.mode, "string",
      "conditions the ControlNet is trained under: tm2i (text + mask), m2i (mask only: zero "
      "text), t2i (text only: zero residuals)");
  v("dataset", c.dataset, "string", "dataset reader: siim | candid-ptx");
  v("data_root", c.data_root, "path", "the dataset's folder in its published layout (required)");
  v("mask_size", c.mask_size, "int",
    "side of the square grid the RLE masks are written on (1024 for SIIM-ACR and CANDID-PTX); 0 "
    "= the side of the dataset's first image");
  v("image_size", c.image_size, "int", "square training size in pixels");
  if (!vae)
    v("empty_prompt_fraction", c.empty_prompt_fraction, "number",
      "probability that a sample's prompt is replaced by \"N/A\" (zero text condition)");
  if (cn)
    v("empty_mask_fraction", c.empty_mask_fraction, "number",
      "probability that a sample's mask is replaced by black (zero control residuals)");
  v("workers", c.workers, "int", "data loading threads (results do not depend on it)");
  v("steps", c.steps, "int", "optimizer steps");
  v("batch_size", c.batch_size, "int", "images per micro-batch");
  v("gradient_accumulation", c.gradient_accumulation, "int",
    "micro-batches per optimizer step (the paper: 16)");
  v("lr", c.lr, "number", "peak learning rate (AdamW)");
  v("weight_decay", c.weight_decay, "number", "AdamW's decoupled weight decay");
  v("schedule", c.schedule, "string", "learning-rate schedule: constant | cosine | linear");
  v("warmup_steps", c.warmup_steps, "int", "linear warm-up steps");
  v("grad_clip", c.grad_clip, "number", "max gradient L2 norm; 0 = off");
  v("ema_decay", c.ema_decay, "number",
    "EMA of the trained weights (saved model holds the average); 0 = off");
  v("log_every", c.log_every, "int", "steps per losses.csv row (mean loss over them)");
  v("checkpoint_every", c.checkpoint_every, "int",
    "steps between checkpoints/last.safetensors (also written at the end); 0 = end only");
  v("sample_every", c.sample_every, "int", "steps between samples/step_<k>.png grids; 0 = off");
  if (!vae) v("sample_steps", c.sample_steps, "int", "denoising steps (DDIM) of the sample grids");
  v("seed", c.seed, "int", "seed of initialisation, order, noise, timesteps and condition drops");
  v("device", c.device, "string", "cpu or cuda:N");
  v("mixed_precision", c.mixed_precision, "string",
    "no | bf16 | fp16: run matmul/conv/attention under autocast in that dtype (float32 weights "
    "and optimizer state); fp16 adds dynamic loss scaling");
}

void validate(GeneratorKind kind, const GeneratorConfig& c, const std::string& src) {
  auto fail_unless = [&](bool ok, const char* key, const std::string& what) {
    CXR_CHECK(ok, src, ": key '", key, "' ", what);
  };
  if (kind == GeneratorKind::ControlNet) {
    fail_unless(!c.model.empty(), "model", "is required (a diffusers folder)");
    fail_unless(c.mode == "t2i" || c.mode == "m2i" || c.mode == "tm2i", "mode",
                "must be t2i, m2i or tm2i, got '" + c.mode + "'");
  }
  fail_unless(c.model.empty() || fs::is_directory(c.model), "model",
              "names no folder: '" + c.model + "'");
  if (kind == GeneratorKind::UNet) {
    fail_unless(!c.model.empty() || !c.vae.empty(), "vae",
                "is required when training from scratch (model empty): a vae folder from "
                "cxr train-vae");
    fail_unless(c.vae.empty() || fs::is_directory(c.vae), "vae",
                "names no folder: '" + c.vae + "'");
    fail_unless(c.tokenizer_merges >= 0, "tokenizer_merges", "must be >= 0");
  }
  if (kind == GeneratorKind::Vae) {
    fail_unless(c.reconstruction == "l1" || c.reconstruction == "mse", "reconstruction",
                "must be l1 or mse, got '" + c.reconstruction + "'");
    fail_unless(c.kl_weight >= 0, "kl_weight", "must be >= 0");
  }
  fail_unless(c.dataset == "siim" || c.dataset == "candid-ptx", "dataset",
              "must be siim or candid-ptx, got '" + c.dataset + "'");
  fail_unless(!c.data_root.empty(), "data_root", "is required (the dataset's folder)");
  fail_unless(fs::is_directory(c.data_root), "data_root", "names no folder: '" + c.data_root + "'");
  fail_unless(c.mask_size >= 0, "mask_size", "must be >= 0");
  fail_unless(c.image_size >= 8 && c.image_size % 8 == 0, "image_size",
              "must be a multiple of 8, >= 8");
  fail_unless(c.empty_prompt_fraction >= 0 && c.empty_prompt_fraction <= 1, "empty_prompt_fraction",
              "must be in [0, 1]");
  fail_unless(c.empty_mask_fraction >= 0 && c.empty_mask_fraction <= 1, "empty_mask_fraction",
              "must be in [0, 1]");
  fail_unless(c.workers >= 0, "workers", "must be >= 0");
  fail_unless(c.steps >= 1, "steps", "must be >= 1");
  fail_unless(c.batch_size >= 1, "batch_size", "must be >= 1");
  fail_unless(c.gradient_accumulation >= 1, "gradient_accumulation", "must be >= 1");
  fail_unless(c.lr > 0, "lr", "must be > 0");
  fail_unless(c.weight_decay >= 0, "weight_decay", "must be >= 0");
  fail_unless(c.schedule == "constant" || c.schedule == "cosine" || c.schedule == "linear",
              "schedule", "must be constant, cosine or linear, got '" + c.schedule + "'");
  fail_unless(c.warmup_steps >= 0, "warmup_steps", "must be >= 0");
  fail_unless(c.grad_clip >= 0, "grad_clip", "must be >= 0");
  fail_unless(c.ema_decay >= 0 && c.ema_decay < 1, "ema_decay", "must be in [0, 1)");
  fail_unless(c.log_every >= 1, "log_every", "must be >= 1");
  fail_unless(c.checkpoint_every >= 0, "checkpoint_every", "must be >= 0");
  fail_unless(c.sample_every >= 0, "sample_every", "must be >= 0");
  fail_unless(c.sample_steps >= 1, "sample_steps", "must be >= 1");
  fail_unless(c.device == "cpu" || c.device.rfind("cuda", 0) == 0, "device",
              "must be cpu or cuda:N, got '" + c.device + "'");
  fail_unless(
      c.mixed_precision == "no" || c.mixed_precision == "bf16" || c.mixed_precision == "fp16",
      "mixed_precision", "must be no, bf16 or fp16, got '" + c.mixed_precision + "'");
}

// The autocast dtype of a mixed_precision setting (nullopt: full float32).
std::optional<DType> autocast_of(const GeneratorConfig& c) {
  if (c.mixed_precision == "bf16") return kBFloat16;
  if (c.mixed_precision == "fp16") return kFloat16;
  return std::nullopt;
}

// Where the run stands, stored in each checkpoint's config field. The interval sums are kept so
// that a resumed run logs the same losses.csv rows.
struct RunState {
  int64_t step = 0;      // optimizer steps done
  int64_t epoch = 0;     // the loader's current epoch
  int64_t consumed = 0;  // batches of that epoch already used
  double interval_sum = 0;
  int64_t interval_steps = 0;
  double loss_scale = 0;  // fp16 loss scaling: the scaler's scale and clean-step count
  int64_t growth_tracker = 0;

  std::string json() const {
    return nlohmann::json{{"step", step},
                          {"epoch", epoch},
                          {"consumed", consumed},
                          {"interval_sum", interval_sum},
                          {"interval_steps", interval_steps},
                          {"loss_scale", loss_scale},
                          {"growth_tracker", growth_tracker}}
        .dump();
  }
  static RunState parse(const std::string& text, const std::string& source) {
    RunState s;
    try {
      const auto j = nlohmann::json::parse(text);
      s.step = j.at("step").get<int64_t>();
      s.epoch = j.at("epoch").get<int64_t>();
      s.consumed = j.at("consumed").get<int64_t>();
      s.interval_sum = j.at("interval_sum").get<double>();
      s.interval_steps = j.at("interval_steps").get<int64_t>();
      s.loss_scale = j.value("loss_scale", 0.0);  // absent in checkpoints of float32 runs
      s.growth_tracker = j.value("growth_tracker", int64_t(0));
    } catch (const nlohmann::json::exception& e) {
      CXR_FAIL(source, ": not a checkpoint of a generator training run (", e.what(), ")");
    }
    return s;
  }
};

nn::Schedule make_schedule(const GeneratorConfig& c) {
  if (c.schedule == "cosine") return nn::Schedule::cosine(c.warmup_steps, c.steps);
  if (c.schedule == "linear") return nn::Schedule::linear(c.warmup_steps, c.steps);
  return nn::Schedule::constant(c.warmup_steps);
}

// The RLE grid side: the config's, or the side of the dataset's first image (task_data.cpp's
// rule: SIIM-style RLEs are written on the image's own pixel grid).
template <typename Options, typename Reader>
data::Dataset read_with_mask_size(const GeneratorConfig& c, Reader read) {
  Options o;
  if (c.mask_size > 0) {
    o.mask_size = c.mask_size;
    return read(c.data_root, o);
  }
  const data::Dataset probe = read(c.data_root, o);
  if (probe.samples.empty()) return probe;
  const Tensor first = data::read_any_image(probe.samples.front().image_path);
  CXR_CHECK(first.size(-1) == first.size(-2), "mask_size: the first image of ", c.dataset, " ('",
            probe.samples.front().image_path, "') is not square (", first.size(-2), "x",
            first.size(-1), "); set mask_size to the side of the RLE grid");
  o.mask_size = first.size(-1);
  return read(c.data_root, o);
}

}  // namespace

GeneratorConfig default_generator_config(GeneratorKind kind) {
  GeneratorConfig c;
  c.model_config = nlohmann::json::object();
  if (kind == GeneratorKind::Vae) {
    c.lr = 4.5e-6;
    c.gradient_accumulation = 1;
    c.batch_size = 4;
    c.image_size = 256;
  }
  if (kind == GeneratorKind::UNet) c.lr = 1e-5;
  return c;
}

GeneratorConfig parse_generator_config(GeneratorKind kind, const nlohmann::json& json,
                                       const std::string& source) {
  GeneratorConfig c = default_generator_config(kind);
  read_keys(c, json, source,
            [&](GeneratorConfig& cfg, KeyVisitor& v) { visit_keys(kind, cfg, v); });
  validate(kind, c, source);
  return c;
}

std::vector<GeneratorKeyDoc> generator_config_keys(GeneratorKind kind) {
  return document_keys(default_generator_config(kind),
                       [&](GeneratorConfig& cfg, KeyVisitor& v) { visit_keys(kind, cfg, v); });
}

std::string generator_config_help(GeneratorKind kind) {
  return keys_help(generator_config_keys(kind));
}

nlohmann::json generator_config_json(GeneratorKind kind, const GeneratorConfig& config) {
  return write_keys(config, [&](GeneratorConfig& cfg, KeyVisitor& v) { visit_keys(kind, cfg, v); });
}

std::vector<std::string> sample_captions(const data::Dataset& dataset) {
  // Phantom datasets list a caption per image id in phantoms.csv.
  std::map<std::string, std::string> phantom_captions;
  const fs::path manifest = fs::path(dataset.root) / "phantoms.csv";
  if (!dataset.root.empty() && fs::exists(manifest)) {
    const data::CsvTable t = data::read_csv(manifest.string());
    const size_t id = t.column("id"), caption = t.column("caption");
    for (const auto& row : t.rows) phantom_captions[row[id]] = row[caption];
  }
  std::vector<std::string> captions;
  for (const auto& s : dataset.samples) {
    auto it = phantom_captions.find(s.id);
    captions.push_back(!s.report.empty()              ? s.report
                       : it != phantom_captions.end() ? it->second
                                                      : "N/A");
  }
  return captions;
}

GeneratorData load_generator_data(const GeneratorConfig& c) {
  auto ds = std::make_shared<data::Dataset>(
      c.dataset == "siim" ? read_with_mask_size<data::SiimOptions>(
                                c, [](const std::string& r,
                                      const data::SiimOptions& o) { return data::read_siim(r, o); })
                          : read_with_mask_size<data::CandidPtxOptions>(
                                c, [](const std::string& r, const data::CandidPtxOptions& o) {
                                  return data::read_candid_ptx(r, o);
                                }));
  CXR_CHECK(!ds->samples.empty(), "data_root '", c.data_root, "': the ", c.dataset,
            " reader found no image");
  GeneratorData out;
  out.captions = sample_captions(*ds);
  out.dataset = ds;
  out.source = data::dataset_source(ds, data::eval_pipeline(c.image_size), /*with_masks=*/true);
  return out;
}

Tensor to_model_images(const Tensor& images, int64_t channels) {
  Tensor x = raw::to(images, kFloat32);
  if (channels != x.size(1)) x = raw::repeat(x, {1, channels, 1, 1});
  return x * 2.0 - 1.0;
}

void place_module(nn::Module& module, bool trainable, Device device) {
  module.requires_grad(trainable);
  module.train(trainable);
  module.to(device);
}

double uniform(Generator& gen) {
  return raw::rand({1}, gen).item();
}

void write_grid(const std::string& path, const std::vector<Tensor>& rows) {
  std::vector<Tensor> lines;
  for (const Tensor& row : rows) {
    std::vector<Tensor> tiles;
    for (int64_t i = 0; i < row.size(0); ++i) tiles.push_back(raw::select(row, 0, i));
    lines.push_back(raw::cat(tiles, 2));
  }
  data::write_png(path, raw::contiguous(raw::cat(lines, 1)));
}

data::Batch first_examples(const GeneratorData& data, int64_t count) {
  const int64_t n = std::min<int64_t>(count, data.source->size());
  std::vector<data::Example> examples;
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < n; ++i) {
    Generator gen{uint64_t(i)};  // the evaluation pipeline draws nothing
    examples.push_back(data.source->get(i, gen));
    indices.push_back(i);
  }
  return data::collate(examples, indices);
}

models::LatentDiffusion latent_diffusion_of(const models::SdFolder& folder) {
  models::LatentDiffusion ld;
  ld.vae = folder.vae;
  ld.text_encoder = folder.text_encoder;
  ld.tokenizer = folder.tokenizer;
  ld.unet = folder.unet;
  ld.controlnet = folder.controlnet;
  ld.noise = folder.scheduler->config();
  return ld;
}

void save_pipeline(const std::string& dir, const models::LatentDiffusion& model,
                   std::shared_ptr<models::Scheduler> scheduler) {
  models::SdFolder folder;
  folder.unet = model.unet;
  folder.vae = model.vae;
  folder.text_encoder = model.text_encoder;
  folder.tokenizer = model.tokenizer;
  folder.scheduler = std::move(scheduler);
  folder.controlnet = model.controlnet;
  for (nn::Module* m : std::initializer_list<nn::Module*>{model.vae.get(), model.text_encoder.get(),
                                                          model.unet.get(), model.controlnet.get()})
    if (m) m->to(Device::cpu());
  models::save_sd_folder(dir, folder);
}

Tensor sample_examples(const models::LatentDiffusion& model, const GeneratorData& data,
                       const data::Batch& examples, const Tensor& masks, models::ConditionMode mode,
                       const GeneratorConfig& config) {
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < examples.size(); ++i) {
    prompts.push_back(data.captions[size_t(examples.indices[size_t(i)])]);
    seeds.push_back(uint64_t(i));
  }
  models::SampleOptions o;
  o.scheduler = "ddim";
  o.steps = config.sample_steps;
  o.guidance_scale = 1.0;
  o.height = o.width = config.image_size;
  o.mode = mode;
  const Device device = model.unet->conv_in->weight.device();
  Tensor images =
      raw::to(models::sample_images(model, prompts,
                                    masks.defined() ? raw::to(masks, device) : masks, seeds, o),
              Device::cpu());
  return images.size(1) == 3 ? images : raw::repeat(images, {1, 3, 1, 1});
}

nlohmann::json run_generator_training(GeneratorKind kind, const GeneratorConfig& config,
                                      GeneratorTask& task, const GeneratorRunOptions& opt) {
  CXR_CHECK(!opt.out.empty(), "--out (the run folder) is required");
  const fs::path dir(opt.out), ckpt_dir = dir / "checkpoints", samples_dir = dir / "samples";
  const fs::path last_path = ckpt_dir / "last.safetensors", losses_path = dir / "losses.csv";
  if (opt.resume)
    CXR_CHECK(fs::exists(last_path), "--resume: '", opt.out,
              "' has no checkpoints/last.safetensors to resume from");
  else
    CXR_CHECK(!fs::exists(dir / "config.json"), "run folder '", opt.out,
              "' already holds a run; continue it with --resume or choose another --out");

  data::Loader loader(task.train_source(),
                      {.batch_size = config.batch_size,
                       .shuffle = true,
                       .drop_last = task.train_source()->size() >= config.batch_size,
                       .seed = config.seed,
                       .workers = int(config.workers),
                       .pin_memory = Device::parse(config.device).is_cuda()});
  CXR_CHECK(loader.batches_per_epoch() > 0, "the training set yields no batch");
  const std::vector<Tensor> params = task.trainable_parameters();
  nn::AdamOptions adam{.lr = config.lr, .weight_decay = config.weight_decay};
  nn::AdamW optimizer(params, adam);
  nn::LRScheduler scheduler(optimizer, make_schedule(config));
  std::unique_ptr<nn::EMA> ema;
  if (config.ema_decay > 0)
    ema = std::make_unique<nn::EMA>(params, nn::EMAOptions{.decay = config.ema_decay});
  nn::GradAccumulator accumulator(config.gradient_accumulation);
  Generator gen(config.seed);  // noise, timesteps, posterior samples, condition drops
  const std::optional<DType> amp = autocast_of(config);
  nn::LossScaler scaler({.enabled = config.mixed_precision == "fp16"});

  if (!opt.resume) {
    fs::create_directories(ckpt_dir);
    write_file_atomic((dir / "config.json").string(),
                      generator_config_json(kind, config).dump(2) + "\n", "config.json");
  }
  RunLog log(dir / "log.txt");
  log(std::string(opt.resume ? "resuming " : "starting ") + task.summary());

  RunState state;
  auto training_state = [&] {
    nn::TrainingState ts;
    ts.model = task.trainable_state();
    ts.optimizer = &optimizer;
    ts.scheduler = &scheduler;
    ts.ema = ema.get();
    ts.generator = &gen;
    ts.step = state.step;
    state.loss_scale = scaler.get_scale();
    state.growth_tracker = scaler.growth_tracker();
    ts.config = state.json();
    return ts;
  };
  std::vector<std::string> loss_rows;
  if (opt.resume) {
    nn::TrainingState ts = training_state();
    nn::load_checkpoint(last_path.string(), ts);
    state = RunState::parse(ts.config, last_path.string());
    if (scaler.enabled() && state.loss_scale > 0) {
      std::map<std::string, Tensor> scaler_state = scaler.state_dict();
      scaler_state["scale"] = raw::scalar_tensor(state.loss_scale, kFloat32);
      scaler_state["growth_tracker"] = raw::scalar_tensor(double(state.growth_tracker), kInt64);
      scaler.load_state_dict(scaler_state);
    }
    if (fs::exists(losses_path)) {
      const data::CsvTable t = data::read_csv(losses_path.string());
      for (const auto& r : t.rows)
        if (std::stoll(r.at(0)) <= state.step) loss_rows.push_back(r[0] + "," + r[1] + "," + r[2]);
    }
    log("resumed after step " + std::to_string(state.step) + " of " + std::to_string(config.steps));
  }
  auto write_losses = [&] {
    std::string text = "step,lr,loss\n";
    for (const auto& r : loss_rows) text += r + "\n";
    write_file_atomic(losses_path.string(), text, "losses.csv");
  };
  auto save = [&] { nn::save_checkpoint(last_path.string(), training_state()); };

  // The loader continues where the checkpoint left it: same epoch, its used batches skipped.
  loader.start_epoch(state.epoch);
  for (int64_t i = 0; i < state.consumed; ++i) CXR_CHECK(loader.next(), "resume: epoch too short");
  auto next_batch = [&] {
    std::optional<data::Batch> b = loader.next();
    if (!b) {
      ++state.epoch;
      state.consumed = 0;
      loader.start_epoch(state.epoch);
      b = loader.next();
    }
    ++state.consumed;
    return *b;
  };

  Progress progress(1, config.steps, 1);
  int64_t steps_this_run = 0;
  double last_loss = NAN;
  while (state.step < config.steps) {
    if (opt.stop_after_steps > 0 && steps_this_run == opt.stop_after_steps) {
      save();
      log("stopping after " + std::to_string(steps_this_run) +
          " step(s) as asked (--stop-after-steps); continue with --resume");
      return nlohmann::json{{"stopped_after_step", state.step}};
    }
    optimizer.zero_grad();
    double step_loss = 0;
    int64_t images = 0;
    for (int64_t m = 0; m < config.gradient_accumulation; ++m) {
      const data::Batch batch = next_batch();
      Tensor loss;
      {
        AutocastGuard autocast(amp);
        loss = task.loss(batch, gen);
      }
      const double value = loss.item();
      CXR_CHECK(std::isfinite(value), "the training loss became ", value, " at step ",
                state.step + 1, " (lower lr?)");
      // A micro-batch whose conditions all reach the model through no trainable weight (e.g.
      // every mask dropped for a ControlNet) contributes a zero gradient.
      if (loss.requires_grad()) cxr::backward(scaler.scale(loss * accumulator.loss_scale()));
      accumulator.micro_step();
      step_loss += value / double(config.gradient_accumulation);
      images += batch.size();
    }
    scaler.unscale_(optimizer);  // no-op without fp16 loss scaling
    if (config.grad_clip > 0) nn::clip_grad_norm_(params, config.grad_clip);
    const double lr = scheduler.last_lrs().at(0);
    // With fp16 a step whose gradients overflowed is skipped and the loss scale backs off.
    const bool stepped = scaler.step(optimizer);
    scaler.update();
    scheduler.step();
    if (ema && stepped) ema->update();
    ++state.step;
    ++steps_this_run;
    state.interval_sum += step_loss;
    ++state.interval_steps;
    last_loss = step_loss;
    progress.update(1, state.step, step_loss, images);
    if (state.step % config.log_every == 0 || state.step == config.steps) {
      const double mean = state.interval_sum / double(state.interval_steps);
      loss_rows.push_back(std::to_string(state.step) + "," + format_number(lr) + "," +
                          format_number(mean));
      write_losses();
      state.interval_sum = 0;
      state.interval_steps = 0;
    }
    if (config.sample_every > 0 && state.step % config.sample_every == 0) {
      fs::create_directories(samples_dir);
      task.write_samples((samples_dir / ("step_" + std::to_string(state.step) + ".png")).string());
    }
    if ((config.checkpoint_every > 0 && state.step % config.checkpoint_every == 0) ||
        state.step == config.steps)
      save();
  }
  progress.end_epoch();
  // The saved model holds the averaged weights (the checkpoint keeps the live ones and the EMA).
  if (ema) ema->copy_to(params);
  const fs::path model_dir = dir / "model";
  task.save_model(model_dir.string());
  log("done: " + std::to_string(config.steps) + " steps, last loss " + format_number(last_loss) +
      "; model in " + model_dir.string());
  return nlohmann::json{{"steps", config.steps},
                        {"last_loss", last_loss},
                        {"model", model_dir.string()},
                        {"losses", losses_path.string()}};
}

namespace {

struct GeneratorCommandOptions {
  std::string config, out;
  std::vector<std::string> set;
  bool resume = false;
  int64_t stop_after_steps = 0;
};

// The config of this invocation: the file (or, when resuming, the run's config.json) with the
// overrides applied. A resumed run must keep its configuration.
GeneratorConfig resolve_config(GeneratorKind kind, const GeneratorCommandOptions& o) {
  const std::string saved = (fs::path(o.out) / "config.json").string();
  if (o.resume) {
    CXR_CHECK(fs::exists(saved), "--resume: '", o.out,
              "' has no config.json (is it a run folder?)");
    const GeneratorConfig c =
        parse_generator_config(kind, models::JsonConfig::from_file(saved).json(), saved);
    if (!o.config.empty() || !o.set.empty()) {
      const nlohmann::json base = o.config.empty() ? generator_config_json(kind, c)
                                                   : models::JsonConfig::from_file(o.config).json();
      const GeneratorConfig given = parse_generator_config(kind, apply_overrides(base, o.set),
                                                           o.config.empty() ? "--set" : o.config);
      const nlohmann::json a = generator_config_json(kind, c),
                           b = generator_config_json(kind, given);
      for (const auto& [key, value] : a.items())
        CXR_CHECK(b.at(key) == value, "--resume: key '", key, "' is ", b.at(key).dump(),
                  " here but ", value.dump(), " in the run being resumed (", saved, ")");
    }
    return c;
  }
  const nlohmann::json json =
      o.config.empty() ? nlohmann::json::object() : models::JsonConfig::from_file(o.config).json();
  return parse_generator_config(kind, apply_overrides(json, o.set),
                                o.config.empty() ? "config" : o.config);
}

}  // namespace

Command register_generator_command(CLI::App& app, GeneratorKind kind, const std::string& name,
                                   const std::string& description, GeneratorTaskFactory make_task) {
  auto o = std::make_shared<GeneratorCommandOptions>();
  CLI::App* sub = app.add_subcommand(name, description);
  sub->add_option("--config", o->config, "JSON config file (keys below)");
  sub->add_option("--set", o->set,
                  "override a config key: --set key=value (repeatable; value as JSON, e.g. "
                  "--set steps=200 --set model_config.latent_channels=4)");
  sub->add_option("--out", o->out, "run folder (created; must not hold another run)")->required();
  sub->add_flag("--resume", o->resume,
                "continue the run in --out from its last checkpoint (bitwise the same result as "
                "an uninterrupted run)");
  sub->add_option("--stop-after-steps", o->stop_after_steps,
                  "stop (with a checkpoint) after this many optimizer steps of this invocation; "
                  "continue with --resume")
      ->check(CLI::NonNegativeNumber);
  sub->footer(generator_config_help(kind));
  return {sub, [=] {
            const GeneratorConfig config = resolve_config(kind, *o);
            std::unique_ptr<GeneratorTask> task = make_task(config);
            const nlohmann::json result = run_generator_training(
                kind, config, *task,
                {.out = o->out, .resume = o->resume, .stop_after_steps = o->stop_after_steps});
            std::printf("%s\n", result.dump(2).c_str());
          }};
}

}  // namespace cxr::experiments
