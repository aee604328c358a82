// `cxr train-vae`: trains the generator's AutoencoderKL (from scratch with config keys, or from a
// vae folder) on a dataset's images with a reconstruction loss (L1 or MSE) plus kl_weight times
// the posterior's KL to N(0, 1), the objective of diffusers' VAE fine-tuning examples without the
// perceptual and adversarial terms. The result is a vae/ folder (config.json + weights) under
// <out>/model, loadable by load_vae, the sd folder code and diffusers.
#include <filesystem>

#include "autograd/elementwise.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "autograd/reduce.h"
#include "experiments/commands.h"
#include "experiments/generator_trainer.h"
#include "experiments/tasks.h"
#include "models/autoencoder_kl.h"
#include "models/sd_folder.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/error.h"
#include "tensor/indexing.h"
#include "tensor/views.h"

namespace cxr::experiments {

namespace {

constexpr int64_t kSampleCount = 4;  // images in a reconstruction grid

class VaeTask : public GeneratorTask {
 public:
  explicit VaeTask(const GeneratorConfig& c) : config_(c) {
    data_ = load_generator_data(c);
    if (!c.model.empty()) {
      CXR_CHECK(c.model_config.empty(),
                "train-vae: give model (a vae folder to continue) or "
                "model_config (from scratch), not both");
      vae_ = models::load_vae(c.model);
    } else {
      // The block types follow block_out_channels unless given (AutoencoderKL has one kind).
      nlohmann::json keys = c.model_config;
      const size_t blocks = keys.value("block_out_channels", nlohmann::json::array({64})).size();
      if (!keys.contains("down_block_types"))
        keys["down_block_types"] = std::vector<std::string>(blocks, "DownEncoderBlock2D");
      if (!keys.contains("up_block_types"))
        keys["up_block_types"] = std::vector<std::string>(blocks, "UpDecoderBlock2D");
      models::JsonConfig json(keys, "model_config");
      Generator init{c.seed};
      vae_ = std::make_shared<models::AutoencoderKL>(models::AutoencoderKLConfig::from_json(json),
                                                     init);
    }
    const int64_t f = vae_->downsampling_factor();
    CXR_CHECK(c.image_size % f == 0, "config key 'image_size' ", c.image_size,
              " must be a multiple of the VAE's downsampling factor ", f);
    device_ = Device::parse(c.device);
    place_module(*vae_, /*trainable=*/true, device_);
    samples_ = first_examples(data_, kSampleCount);
  }

  std::string summary() const override {
    int64_t n = 0;
    for (const Tensor& p : vae_->parameters()) n += p.numel();
    return std::string("vae (") +
           (config_.model.empty() ? "from scratch, " : config_.model + ", ") + std::to_string(n) +
           " parameters, " + config_.reconstruction + " + " + std::to_string(config_.kl_weight) +
           " KL) on " + config_.dataset + ": " + std::to_string(data_.dataset->size()) + " images";
  }
  std::shared_ptr<const data::ExampleSource> train_source() const override { return data_.source; }
  nn::StateDict trainable_state() const override { return vae_->state_dict(); }
  std::vector<Tensor> trainable_parameters() const override { return vae_->parameters(); }

  Tensor loss(const data::Batch& batch, Generator& gen) override {
    const Tensor x = raw::to(to_model_images(batch.images, vae_->config().in_channels), device_);
    const models::DiagonalGaussianDistribution posterior = vae_->encode(x);
    const Tensor recon = vae_->decode(posterior.sample(gen));
    const Tensor rec = config_.reconstruction == "l1" ? l1_loss(recon, x) : mse_loss(recon, x);
    return rec + mean(posterior.kl()) * config_.kl_weight;
  }

  void write_samples(const std::string& path) override {
    vae_->eval();
    Tensor recon;
    {
      autograd::NoGradGuard no_grad;
      const Tensor x =
          raw::to(to_model_images(samples_.images, vae_->config().in_channels), device_);
      recon = raw::to(vae_->forward(x), Device::cpu());
    }
    vae_->train();
    auto shown = [](const Tensor& t) -> Tensor {  // [-1, 1], any channels -> [0, 1], 3 channels
      Tensor u =
          raw::clamp(raw::binary(BinaryOp::Mul, raw::binary(BinaryOp::Add, t, 1.0), 0.5), 0.0, 1.0);
      return u.size(1) == 3 ? u : raw::repeat(raw::narrow(u, 1, 0, 1), {1, 3, 1, 1});
    };
    // Rows: the real images, their reconstructions (posterior mean).
    write_grid(path, {shown(to_model_images(samples_.images, 1)), shown(recon)});
  }

  void save_model(const std::string& dir) override {
    vae_->to(Device::cpu());
    models::save_vae((std::filesystem::path(dir) / "vae").string(), *vae_);
  }

 private:
  GeneratorConfig config_;
  GeneratorData data_;
  std::shared_ptr<models::AutoencoderKL> vae_;
  Device device_;
  data::Batch samples_;
};

}  // namespace

std::unique_ptr<GeneratorTask> make_vae_task(const GeneratorConfig& config) {
  return std::make_unique<VaeTask>(config);
}

Command register_train_vae(CLI::App& app) {
  return register_generator_command(
      app, GeneratorKind::Vae, "train-vae",
      "Train the generator's VAE (AutoencoderKL: reconstruction + KL) from scratch or from a vae "
      "folder; writes <out>/model/vae",
      make_vae_task);
}

}  // namespace cxr::experiments
