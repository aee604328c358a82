// `cxr train-unet`: text-to-image latent diffusion training of the generator's UNet (Eq. 1 through
// LatentDiffusion::training_loss, prompts replaced by "N/A" with empty_prompt_fraction so that
// classifier-free guidance has its unconditional branch), behind a frozen VAE and text encoder.
// Either fine-tunes the UNet of a diffusers folder (`model`), or, for miniature runs, builds the
// pipeline from scratch: the VAE from a trained vae folder (`vae`, from `cxr train-vae`), a
// tokenizer whose BPE merges are learned from the training captions (`tokenizer_merges`), and a
// text encoder and UNet from `model_config` (their sizes wired to the tokenizer and the VAE). The
// result is a diffusers folder in <out>/model that `cxr sample` loads.
#include "experiments/commands.h"
#include "experiments/generator_trainer.h"
#include "experiments/tasks.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/indexing.h"

namespace cxr::experiments {

namespace {

constexpr int64_t kSampleCount = 4;  // images in a sample grid

class UNetTask : public GeneratorTask {
 public:
  explicit UNetTask(const GeneratorConfig& c) : config_(c) {
    data_ = load_generator_data(c);
    if (!c.model.empty()) {
      CXR_CHECK(
          c.model_config.empty() && c.vae.empty() && c.tokenizer_merges == 0,
          "train-unet: model (a diffusers folder to fine-tune) excludes the from-scratch keys "
          "model_config, vae and tokenizer_merges");
      models::SdFolderOptions load;
      load.controlnet = models::SdFolderOptions::ControlNet::Skip;
      const models::SdFolder folder = models::load_sd_folder(c.model, load);
      ld_ = latent_diffusion_of(folder);
      scheduler_ = folder.scheduler;
    } else {
      from_scratch();
    }
    ld_.validate();
    const int64_t f = ld_.vae->downsampling_factor();
    CXR_CHECK(c.image_size % f == 0, "config key 'image_size' ", c.image_size,
              " must be a multiple of the VAE's downsampling factor ", f);
    device_ = Device::parse(c.device);
    place_module(*ld_.vae, /*trainable=*/false, device_);
    place_module(*ld_.text_encoder, /*trainable=*/c.train_text_encoder, device_);
    place_module(*ld_.unet, /*trainable=*/true, device_);
    samples_ = first_examples(data_, kSampleCount);
  }

  std::string summary() const override {
    int64_t n = 0;
    for (const Tensor& p : trainable_parameters()) n += p.numel();
    return std::string("unet (") +
           (config_.model.empty() ? "from scratch, vae " + config_.vae : config_.model) + ", " +
           std::to_string(n) + " trainable parameters) on " + config_.dataset + ": " +
           std::to_string(data_.dataset->size()) + " images";
  }
  std::shared_ptr<const data::ExampleSource> train_source() const override { return data_.source; }
  // The UNet's state (under its own names), and the text encoder's under "text_encoder." when it
  // is trained too.
  nn::StateDict trainable_state() const override {
    nn::StateDict state = ld_.unet->state_dict();
    if (config_.train_text_encoder)
      for (auto& [name, t] : ld_.text_encoder->state_dict()) state["text_encoder." + name] = t;
    return state;
  }
  std::vector<Tensor> trainable_parameters() const override {
    std::vector<Tensor> params = ld_.unet->parameters();
    if (config_.train_text_encoder)
      for (const Tensor& p : ld_.text_encoder->parameters()) params.push_back(p);
    return params;
  }

  Tensor loss(const data::Batch& batch, Generator& gen) override {
    std::vector<std::string> prompts;
    for (int64_t i = 0; i < batch.size(); ++i) {
      const bool drop = uniform(gen) < config_.empty_prompt_fraction;
      prompts.push_back(drop ? "N/A" : data_.captions[size_t(batch.indices[size_t(i)])]);
    }
    const Tensor images =
        raw::to(to_model_images(batch.images, ld_.vae->config().in_channels), device_);
    return ld_.training_loss(images, prompts, Tensor(), models::ConditionMode::Text, gen);
  }

  void write_samples(const std::string& path) override {
    ld_.unet->eval();
    // Rows: the real images, generations from their captions.
    write_grid(path, {raw::repeat(raw::to(samples_.images, kFloat32), {1, 3, 1, 1}),
                      sample_examples(ld_, data_, samples_, Tensor(), models::ConditionMode::Text,
                                      config_)});
    ld_.unet->train();
  }

  void save_model(const std::string& dir) override { save_pipeline(dir, ld_, scheduler_); }

 private:
  // The pipeline of a from-scratch run (see the top of the file).
  void from_scratch() {
    models::JsonConfig mc(config_.model_config, "model_config");
    models::JsonConfig unet_json = mc.get_object("unet");
    models::JsonConfig text_json = mc.get_object("text_encoder");
    models::JsonConfig scheduler_json = mc.get_object("scheduler");
    mc.check_all_used();
    ld_.vae = models::load_vae(config_.vae);
    ld_.tokenizer = std::make_shared<models::ClipTokenizer>(
        models::ClipTokenizer::train(data_.captions, config_.tokenizer_merges));
    models::ClipTextConfig text = models::ClipTextConfig::from_json(text_json);
    text.vocab_size = ld_.tokenizer->vocab_size();
    text.bos_token_id = ld_.tokenizer->bos_id();
    text.eos_token_id = ld_.tokenizer->eos_id();
    text.pad_token_id = ld_.tokenizer->pad_id();
    text.max_position_embeddings = ld_.tokenizer->model_max_length();
    models::UNet2DConditionConfig unet = models::UNet2DConditionConfig::from_json(unet_json);
    unet.in_channels = unet.out_channels = ld_.vae->config().latent_channels;
    unet.cross_attention_dim = text.hidden_size;
    // Trained at this size: what `cxr sample` takes as its default.
    if (unet.sample_size.empty())
      unet.sample_size = {config_.image_size / ld_.vae->downsampling_factor()};
    // Stable Diffusion's scheduler (PNDM, scaled-linear betas) unless model_config.scheduler
    // says otherwise.
    models::SchedulerConfig noise;
    if (!scheduler_json.json().empty())
      noise = models::SchedulerConfig::from_json(scheduler_json, models::SchedulerKind::PNDM);
    scheduler_ = models::make_scheduler(models::SchedulerKind::PNDM, noise);
    ld_.noise = noise;
    manual_seed(config_.seed);  // the layers' initialisation
    ld_.text_encoder = std::make_shared<models::ClipTextModel>(text);
    ld_.unet = std::make_shared<models::UNet2DConditionModel>(unet);
  }

  GeneratorConfig config_;
  GeneratorData data_;
  models::LatentDiffusion ld_;
  std::shared_ptr<models::Scheduler> scheduler_;
  Device device_;
  data::Batch samples_;
};

}  // namespace

std::unique_ptr<GeneratorTask> make_unet_task(const GeneratorConfig& config) {
  return std::make_unique<UNetTask>(config);
}

Command register_train_unet(CLI::App& app) {
  return register_generator_command(
      app, GeneratorKind::UNet, "train-unet",
      "Train the text-to-image UNet of a latent diffusion model (frozen VAE and text encoder): "
      "fine-tune a diffusers folder, or a miniature model from scratch (needs a VAE from "
      "cxr train-vae)",
      make_unet_task);
}

}  // namespace cxr::experiments
