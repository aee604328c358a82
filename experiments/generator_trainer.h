// The step-based training loop of the generator commands (`cxr train-controlnet`, `cxr
// train-unet`, `cxr train-vae`), their one configuration struct with its key list, and the run
// folder they keep:
//   config.json                   the resolved configuration (every key of the command)
//   log.txt                       what was printed, with times (appended across resumptions)
//   losses.csv                    step, lr, mean loss over each logging interval
//   checkpoints/last.safetensors  every checkpoint_every steps and at the end (nn/checkpoint.h:
//                                 trainable weights, AdamW, lr schedule, EMA, generator, position)
//   samples/step_<k>.png          a grid every sample_every steps (watch the model learn)
//   model/                        the final model as a diffusers folder (or vae/ component)
// One optimizer step = gradient_accumulation micro-batches of batch_size images. The loader's
// order depends only on (seed, epoch) and every other random draw comes from one Generator saved
// in the checkpoint, so --stop-after-steps then --resume ends bit for bit where an uninterrupted
// run does (CPU).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "data/sample.h"
#include "experiments/commands.h"
#include "experiments/config_keys.h"
#include "models/json_config.h"
#include "models/latent_diffusion.h"
#include "models/sd_folder.h"
#include "nn/module.h"
#include "tensor/random.h"

namespace cxr::experiments {

enum class GeneratorKind { ControlNet, UNet, Vae };

struct GeneratorConfig {
  // ---- model ----
  std::string model;             // diffusers folder (ControlNet, UNet) or vae folder (VAE)
  nlohmann::json model_config;   // from-scratch configs (UNet: unet/text_encoder; VAE: its keys)
  std::string vae;               // UNet from scratch: a vae folder from train-vae
  int64_t tokenizer_merges = 0;  // UNet from scratch: BPE merges learned from the captions
  bool train_text_encoder = false;
  std::string mode = "tm2i";  // ControlNet: which conditions the model sees (t2i | m2i | tm2i)
  // ---- data ----
  std::string dataset = "siim";  // siim | candid-ptx
  std::string data_root;
  int64_t mask_size = 0;  // side of the RLE grid; 0 = the side of the dataset's first image
  int64_t image_size = 512;
  double empty_prompt_fraction = 0.1;  // prompt replaced by "N/A" with this probability
  double empty_mask_fraction = 0.1;    // ControlNet: mask replaced by black
  int64_t workers = 2;
  // ---- optimisation ----
  int64_t steps = 1000, batch_size = 1, gradient_accumulation = 16;
  double lr = 1e-4, weight_decay = 1e-2;
  std::string schedule = "constant";  // constant | cosine | linear
  int64_t warmup_steps = 0;
  double grad_clip = 1.0;  // max gradient L2 norm; 0 = off
  double ema_decay = 0.0;  // 0 = no EMA; else the saved model holds the averaged weights
  // ---- VAE loss ----
  std::string reconstruction = "l1";  // l1 | mse
  double kl_weight = 1e-6;
  // ---- run ----
  int64_t log_every = 10, checkpoint_every = 500, sample_every = 500;
  int64_t sample_steps = 20;  // denoising steps of the sample grids
  uint64_t seed = 0;
  std::string device = "cpu";
  // no | bf16 | fp16: matmul/conv/attention under autocast in that dtype (float32 master weights
  // and optimizer state); fp16 adds dynamic loss scaling.
  std::string mixed_precision = "no";
};

using GeneratorKeyDoc = KeyDoc;

GeneratorConfig default_generator_config(GeneratorKind kind);
// Parses a config object over the kind's defaults and validates every value (before anything
// runs); errors name `source` and the key.
GeneratorConfig parse_generator_config(GeneratorKind kind, const nlohmann::json& json,
                                       const std::string& source);
std::vector<GeneratorKeyDoc> generator_config_keys(GeneratorKind kind);
std::string generator_config_help(GeneratorKind kind);
nlohmann::json generator_config_json(GeneratorKind kind, const GeneratorConfig& config);

// What differs between the three commands.
class GeneratorTask {
 public:
  virtual ~GeneratorTask() = default;
  // "controlnet (420k trainable parameters) on siim: 40 images".
  virtual std::string summary() const = 0;
  virtual std::shared_ptr<const data::ExampleSource> train_source() const = 0;
  // The trained modules' weights (checkpointed) and their trainable parameters.
  virtual nn::StateDict trainable_state() const = 0;
  virtual std::vector<Tensor> trainable_parameters() const = 0;
  // The loss of one micro-batch; every random draw from `gen`.
  virtual Tensor loss(const data::Batch& batch, Generator& gen) = 0;
  // Writes a PNG grid (generations or reconstructions) from fixed inputs and seeds.
  virtual void write_samples(const std::string& path) = 0;
  // Writes the final model under `dir`.
  virtual void save_model(const std::string& dir) = 0;
};

struct GeneratorRunOptions {
  std::string out;
  bool resume = false;
  int64_t stop_after_steps = 0;  // 0 = run to the end
};

// Runs (or resumes) the loop; returns a summary (steps done, final loss, model folder).
nlohmann::json run_generator_training(GeneratorKind kind, const GeneratorConfig& config,
                                      GeneratorTask& task, const GeneratorRunOptions& options);

// Registers a command: --config, --set, --out, --resume, --stop-after-steps, and --help listing
// every key. `make_task` builds the task from a validated config (it may throw on bad input
// before the run folder is written).
using GeneratorTaskFactory = std::function<std::unique_ptr<GeneratorTask>(const GeneratorConfig&)>;
Command register_generator_command(CLI::App& app, GeneratorKind kind, const std::string& name,
                                   const std::string& description, GeneratorTaskFactory make_task);

// Shared by the tasks: a reader's dataset (siim | candid-ptx, the RLE grid side from mask_size or
// the first image) and each sample's caption (the report, else phantoms.csv's caption by id, else
// "N/A"), in sample order.
struct GeneratorData {
  std::shared_ptr<const data::Dataset> dataset;
  std::vector<std::string> captions;
  std::shared_ptr<const data::ExampleSource> source;  // resized to image_size, with masks
};
GeneratorData load_generator_data(const GeneratorConfig& config);
// Each sample's caption, in sample order: its report, else the caption of its id in
// <dataset.root>/phantoms.csv, else "N/A".
std::vector<std::string> sample_captions(const data::Dataset& dataset);
// Grayscale [B, 1, H, W] in [0, 1] -> [B, channels, H, W] in [-1, 1] (what the VAE takes).
Tensor to_model_images(const Tensor& images, int64_t channels);
// Moves a module to `device` and sets it trainable (train mode, requires grad) or frozen (eval
// mode, no grad).
void place_module(nn::Module& module, bool trainable, Device device);
// One uniform draw in [0, 1) from `gen`.
double uniform(Generator& gen);
// Writes rows of images (each [B, 3, H, W] in [0, 1], same B, H, W) as one PNG grid.
void write_grid(const std::string& path, const std::vector<Tensor>& rows);
// The first min(count, dataset size) samples of `data` (no augmentation) as one batch.
data::Batch first_examples(const GeneratorData& data, int64_t count);

// The diffusion pipelines (train-controlnet, train-unet): a LatentDiffusion from a loaded folder's
// components (noise schedule from its scheduler), and back to a diffusers folder (components moved
// to the CPU; a null ControlNet is left out).
models::LatentDiffusion latent_diffusion_of(const models::SdFolder& folder);
void save_pipeline(const std::string& dir, const models::LatentDiffusion& model,
                   std::shared_ptr<models::Scheduler> scheduler);
// Generations for the captions of `examples` (and `masks` [B, 3, H, W] in [0, 1], or undefined)
// under `mode`: seeds 0..B-1, DDIM with config.sample_steps, no guidance (the conditional model as
// trained, one pass per step), config.image_size. Returns [B, 3, H, W] in [0, 1] on the CPU.
Tensor sample_examples(const models::LatentDiffusion& model, const GeneratorData& data,
                       const data::Batch& examples, const Tensor& masks, models::ConditionMode mode,
                       const GeneratorConfig& config);

}  // namespace cxr::experiments
