// Stable Diffusion's UNet (models/unet2d_condition.h) and a ControlNet training step
// (models/controlnet.h) on the CPU, float32, random weights (PyTorch's default initialisation):
//   BM_unet_tiny_forward         tiny UNet (block_out_channels (32, 64), 1 layer per block, cross
//                                attention dim 32), batch 2 at a 32x32 latent, text [2, 77, 32]
//   BM_unet_sd_forward           SD v1.x UNet (859.5 M parameters, 3.4 GB of float32 weights),
//                                batch 1 at a 64x64 latent (512 px), text [1, 77, 768]
//   BM_controlnet_sd_train_step  SD v1.x ControlNet (from_unet, 361 M parameters) in front of the
//                                frozen SD v1.x UNet, batch 1 at a 32x32 latent (256 px):
//                                ControlNet forward, UNet forward with its residuals, MSE against
//                                the noise, backward into the ControlNet only, AdamW step (about 9
//                                GB: both models' weights, the ControlNet's gradients and Adam
//                                moments)
// The forwards run in eval mode without autograd. Each row reports images_per_s (wall clock, after
// one untimed warm-up iteration) and the real time per iteration. bench/diffusers_unet.py runs the
// same three in diffusers on PyTorch on the same machine and prints both figures and their ratio.
// Threads: OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_unet --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "models/controlnet.h"
#include "models/unet2d_condition.h"
#include "nn/optim.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;
using models::ControlNetModel;
using models::UNet2DConditionConfig;
using models::UNet2DConditionModel;

// Shapes and timed iterations; bench/diffusers_unet.py has the same constants.
constexpr int64_t kTinyBatch = 2, kTinyLatent = 32, kTinyIters = 20;
constexpr int64_t kSdBatch = 1, kSdLatent = 64, kSdIters = 3;
constexpr int64_t kTrainBatch = 1, kTrainLatent = 32, kTrainIters = 3;
constexpr int64_t kTextLength = 77, kTimestep = 500;

// A tiny UNet: a cross-attention block and a plain block, 1 layer each, 8 heads, 32 groups
// (bench/diffusers_unet.py's tiny_unet()).
UNet2DConditionConfig tiny_config() {
  UNet2DConditionConfig c;
  c.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  c.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  c.block_out_channels = {32, 64};
  c.layers_per_block = {1, 1};
  c.transformer_layers_per_block = {1, 1};
  c.attention_head_dim = {8, 8};
  c.cross_attention_dim = 32;
  return c;
}

// Runs `step` once (warm-up: first allocations, optimizer state), then as often as the benchmark
// asks, and reports images per second of wall time.
template <typename F>
void run(benchmark::State& state, int64_t batch, F&& step) {
  step();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["images_per_s"] = double(batch) * double(state.iterations()) / secs;
}

// A UNet forward without autograd on random inputs.
void unet_forward(benchmark::State& state, const UNet2DConditionConfig& config, int64_t batch,
                  int64_t latent) {
  Generator gen(1);
  UNet2DConditionModel unet(config);
  unet.reset_parameters(gen);
  unet.eval();
  const Tensor sample = raw::randn({batch, config.in_channels, latent, latent}, gen);
  const Tensor text = raw::randn({batch, kTextLength, config.cross_attention_dim}, gen);
  const Tensor t = raw::full({batch}, double(kTimestep), kInt64);
  autograd::NoGradGuard no_grad;
  run(state, batch, [&] { benchmark::DoNotOptimize(unet.forward(sample, t, text).data_ptr()); });
}

void BM_unet_tiny_forward(benchmark::State& state) {
  unet_forward(state, tiny_config(), kTinyBatch, kTinyLatent);
}

void BM_unet_sd_forward(benchmark::State& state) {
  unet_forward(state, UNet2DConditionConfig::stable_diffusion_v1(), kSdBatch, kSdLatent);
}

// diffusers' examples/controlnet/train_controlnet.py step on given latents: the UNet frozen, the
// ControlNet trained with AdamW (lr 1e-5, its default weight decay 1e-2).
void BM_controlnet_sd_train_step(benchmark::State& state) {
  const UNet2DConditionConfig config = UNet2DConditionConfig::stable_diffusion_v1();
  Generator gen(1);
  UNet2DConditionModel unet(config);
  unet.reset_parameters(gen);
  unet.requires_grad(false);
  std::shared_ptr<ControlNetModel> controlnet = ControlNetModel::from_unet(unet);
  controlnet->train();
  const int64_t cond_side = kTrainLatent * controlnet->config().conditioning_downscale();
  const Tensor noisy =
      raw::randn({kTrainBatch, config.in_channels, kTrainLatent, kTrainLatent}, gen);
  const Tensor noise = raw::randn(noisy.shape(), gen);
  const Tensor cond = raw::rand({kTrainBatch, 3, cond_side, cond_side}, gen);
  const Tensor text = raw::randn({kTrainBatch, kTextLength, config.cross_attention_dim}, gen);
  const Tensor t = raw::full({kTrainBatch}, double(kTimestep), kInt64);
  nn::AdamOptions options = nn::AdamW::default_options();
  options.lr = 1e-5;
  nn::AdamW opt(controlnet->parameters(), options);
  run(state, kTrainBatch, [&] {
    opt.zero_grad();
    const models::ControlNetOutput res = controlnet->forward(noisy, t, text, cond);
    const Tensor pred =
        unet.forward(noisy, t, text, res.down_block_res_samples, res.mid_block_res_sample);
    Tensor loss = mse_loss(pred, noise);
    autograd::backward({loss});
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  });
}

BENCHMARK(BM_unet_tiny_forward)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(kTinyIters);
BENCHMARK(BM_unet_sd_forward)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(kSdIters);
BENCHMARK(BM_controlnet_sd_train_step)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(kTrainIters);

}  // namespace

BENCHMARK_MAIN();
