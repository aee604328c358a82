// `cxr train-controlnet`: trains the mask ControlNet of the generator (spec/diffusion.md §4.4)
// behind a frozen VAE, text encoder and UNet (gradients flow through the frozen UNet into the
// ControlNet), on a pneumothorax dataset's images, captions and masks. Each sample's prompt is
// replaced by "N/A" and its mask by black with the configured probabilities, so every condition
// combination (t2i, m2i, tm2i) is learned; LatentDiffusion applies the condition rules.
#include "autograd/elementwise.h"
#include "experiments/commands.h"
#include "experiments/generator_trainer.h"
#include "experiments/tasks.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/indexing.h"
#include "tensor/random.h"

namespace cxr::experiments {

namespace {

constexpr int64_t kSampleCount = 4;  // images in a sample grid

// diffusers' conditioning_embedding_out_channels (16, 32, 96, 256) downscale the mask by 8, the
// SD VAE's factor; a VAE with another factor gets the prefix whose downscale matches it.
std::vector<int64_t> conditioning_channels(int64_t vae_factor) {
  const std::vector<int64_t> sd = {16, 32, 96, 256};
  size_t n = 1;
  while ((int64_t(1) << (n - 1)) < vae_factor && n < sd.size()) ++n;
  CXR_CHECK((int64_t(1) << (n - 1)) == vae_factor, "train-controlnet: the VAE downsamples by ",
            vae_factor, "; a ControlNet from the UNet supports 1, 2, 4 or 8");
  return {sd.begin(), sd.begin() + ptrdiff_t(n)};
}

class ControlNetTask : public GeneratorTask {
 public:
  explicit ControlNetTask(const GeneratorConfig& c) : config_(c) {
    data_ = load_generator_data(c);
    models::SdFolder folder = models::load_sd_folder(c.model);
    scheduler_ = folder.scheduler;
    ld_ = latent_diffusion_of(folder);
    continued_ = ld_.controlnet != nullptr;
    if (!continued_) {
      manual_seed(c.seed);  // the conditioning embedding's initialisation
      ld_.controlnet = models::ControlNetModel::from_unet(
          *ld_.unet, conditioning_channels(ld_.vae->downsampling_factor()));
    }
    ld_.validate();
    mode_ = models::parse_condition_mode(c.mode);
    device_ = Device::parse(c.device);
    for (nn::Module* m :
         std::initializer_list<nn::Module*>{ld_.vae.get(), ld_.text_encoder.get(), ld_.unet.get()})
      place_module(*m, /*trainable=*/false, device_);
    place_module(*ld_.controlnet, /*trainable=*/true, device_);
    samples_ = first_examples(data_, kSampleCount);
  }

  std::string summary() const override {
    int64_t n = 0;
    for (const Tensor& p : ld_.controlnet->parameters()) n += p.numel();
    return std::string("controlnet (") + (continued_ ? "continued from " : "from the UNet of ") +
           config_.model + ", " + std::to_string(n) + " trainable parameters, mode " +
           config_.mode + ") on " + config_.dataset + ": " + std::to_string(data_.dataset->size()) +
           " images";
  }
  std::shared_ptr<const data::ExampleSource> train_source() const override { return data_.source; }
  nn::StateDict trainable_state() const override { return ld_.controlnet->state_dict(); }
  std::vector<Tensor> trainable_parameters() const override { return ld_.controlnet->parameters(); }

  Tensor loss(const data::Batch& batch, Generator& gen) override {
    const int64_t b = batch.size();
    std::vector<std::string> prompts;
    std::vector<float> keep_mask;
    for (int64_t i = 0; i < b; ++i) {
      const bool drop_prompt = uniform(gen) < config_.empty_prompt_fraction;
      const bool drop_mask = uniform(gen) < config_.empty_mask_fraction;
      prompts.push_back(drop_prompt ? "N/A" : data_.captions[size_t(batch.indices[size_t(i)])]);
      keep_mask.push_back(drop_mask ? 0.0f : 1.0f);
    }
    const Tensor keep = raw::from_vector(keep_mask, {b, 1, 1, 1});
    const Tensor masks = masks_of(batch) * keep;
    return ld_.training_loss(
        raw::to(to_model_images(batch.images, ld_.vae->config().in_channels), device_), prompts,
        raw::to(masks, device_), mode_, gen);
  }

  void write_samples(const std::string& path) override {
    ld_.controlnet->eval();
    const Tensor masks = masks_of(samples_);
    // Rows: the real images, their masks, the generations from (caption, mask).
    write_grid(path, {raw::repeat(raw::to(samples_.images, kFloat32), {1, 3, 1, 1}), masks,
                      sample_examples(ld_, data_, samples_, masks, mode_, config_)});
    ld_.controlnet->train();
  }

  void save_model(const std::string& dir) override { save_pipeline(dir, ld_, scheduler_); }

 private:
  // The union masks (uint8 [B, 1, H, W]) as the ControlNet condition [B, 3, H, W] in {0, 1}.
  static Tensor masks_of(const data::Batch& batch) {
    CXR_CHECK(batch.masks.defined(), "train-controlnet: the dataset gave no masks");
    return raw::repeat(raw::to(batch.masks, kFloat32), {1, 3, 1, 1});
  }

  GeneratorConfig config_;
  GeneratorData data_;
  models::LatentDiffusion ld_;
  std::shared_ptr<models::Scheduler> scheduler_;
  models::ConditionMode mode_ = models::ConditionMode::TextMask;
  Device device_;
  bool continued_ = false;
  data::Batch samples_;
};

}  // namespace

std::unique_ptr<GeneratorTask> make_controlnet_task(const GeneratorConfig& config) {
  return std::make_unique<ControlNetTask>(config);
}

Command register_train_controlnet(CLI::App& app) {
  return register_generator_command(
      app, GeneratorKind::ControlNet, "train-controlnet",
      "Train the mask ControlNet of a latent diffusion model (frozen VAE, text encoder and UNet) "
      "on a pneumothorax dataset",
      make_controlnet_task);
}

}  // namespace cxr::experiments
