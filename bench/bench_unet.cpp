// Stable Diffusion's UNet (models/unet2d_condition.h) and a ControlNet training step
// (models/controlnet.h), random weights (PyTorch's default initialisation):
//   BM_unet_tiny_forward         tiny UNet (block_out_channels (32, 64), 1 layer per block, cross
//                                attention dim 32), batch 2 at a 32x32 latent, text [2, 77, 32]
//   BM_unet_sd_forward           SD v1.x UNet (859.5 M parameters), a 64x64 latent (512 px), text
//                                [B, 77, 768]; batch 1 on the CPU, 2 on CUDA (the GPU target:
//                                --dtype=float16 latency against diffusers with SDPA)
//   BM_controlnet_sd_train_step  SD v1.x ControlNet (from_unet, 361 M parameters) in front of the
//                                frozen SD v1.x UNet: ControlNet forward, UNet forward with its
//                                residuals, MSE against the noise in float32, backward into the
//                                ControlNet only, AdamW step. CPU: batch 1 at a 32x32 latent (256
//                                px, about 9 GB); CUDA: batch 4 at a 64x64 latent (512 px) with
//                                gradient checkpointing (the GPU target: --autocast=bf16 under 16
//                                GiB of peak memory). With autocast the frozen UNet's weights are
//                                stored in the autocast dtype and the ControlNet's stay float32,
//                                as in diffusers' examples/controlnet/train_controlnet.py.
// The forwards run in eval mode without autograd, with --dtype weights and inputs. Each row
// reports images_per_s (wall clock, after one untimed warm-up iteration; on CUDA each iteration
// ends with a device synchronisation), the real time per iteration and on CUDA peak_GiB, the memory
// pool's peak since the case began (weights included). bench/diffusers_unet.py runs the same three
// in diffusers on PyTorch on the same machine and prints both figures and their ratio. Threads:
// OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_unet --benchmark_counters_tabular=true
//   build/<dir>/bench/bench_unet --device=cuda --dtype=float16 --benchmark_filter=sd_forward
//   build/<dir>/bench/bench_unet --device=cuda --autocast=bf16 --benchmark_filter=controlnet
// Flags of bench/model_bench.h: --device, --autocast, --dtype, --checkpointing, --batch, --iters.
#include <benchmark/benchmark.h>

#include <memory>

#include "autograd/autocast.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "autograd/views.h"  // to(): the loss in float32
#include "bench/model_bench.h"
#include "models/controlnet.h"
#include "models/unet2d_condition.h"
#include "nn/optim.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;
using bench::ModelBenchOptions;
using models::ControlNetModel;
using models::UNet2DConditionConfig;
using models::UNet2DConditionModel;

// A case's batch, latent side and timed iterations on one kind of device; bench/diffusers_unet.py
// has the same constants.
struct Shape3 {
  int64_t batch, latent, iters;
};
struct Case {
  const char* name;
  Shape3 cpu, cuda;
};
constexpr Case kTiny{"BM_unet_tiny_forward", {2, 32, 20}, {2, 32, 20}};
constexpr Case kSd{"BM_unet_sd_forward", {1, 64, 3}, {2, 64, 10}};
constexpr Case kTrain{"BM_controlnet_sd_train_step", {1, 32, 3}, {4, 64, 5}};
constexpr int64_t kTextLength = 77, kTimestep = 500;

// The case's shape on o.device, with --batch and --iters applied.
Shape3 shape_of(const Case& c, const ModelBenchOptions& o) {
  Shape3 s = o.device.is_cuda() ? c.cuda : c.cpu;
  if (o.batch) s.batch = o.batch;
  if (o.iters) s.iters = o.iters;
  return s;
}

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

// Seeded normal values as `dtype` on `device`.
Tensor randn_on(const cxr::Shape& shape, Generator& gen, DType dtype, Device device) {
  return raw::to(raw::to(raw::randn(shape, gen), dtype), device);
}

// A UNet forward without autograd on random inputs.
void unet_forward(benchmark::State& state, const UNet2DConditionConfig& config, const Shape3& s,
                  const ModelBenchOptions& o) {
  bench::reset_peak_memory(o.device);
  Generator gen(1);
  UNet2DConditionModel unet(config);
  unet.reset_parameters(gen);
  unet.eval();
  unet.to(o.dtype);
  unet.to(o.device);
  const Tensor sample =
      randn_on({s.batch, config.in_channels, s.latent, s.latent}, gen, o.dtype, o.device);
  const Tensor text =
      randn_on({s.batch, kTextLength, config.cross_attention_dim}, gen, o.dtype, o.device);
  const Tensor t = raw::full({s.batch}, double(kTimestep), kInt64, o.device);
  autograd::NoGradGuard no_grad;
  AutocastGuard amp(o.autocast);
  bench::run_timed(state, o.device, s.batch,
                   [&] { benchmark::DoNotOptimize(unet.forward(sample, t, text).data_ptr()); });
}

// diffusers' examples/controlnet/train_controlnet.py step on given latents: the UNet frozen, the
// ControlNet trained with AdamW (lr 1e-5, its default weight decay 1e-2).
void controlnet_train_step(benchmark::State& state, const Shape3& s, const ModelBenchOptions& o) {
  bench::reset_peak_memory(o.device);
  const UNet2DConditionConfig config = UNet2DConditionConfig::stable_diffusion_v1();
  Generator gen(1);
  UNet2DConditionModel unet(config);
  unet.reset_parameters(gen);
  unet.requires_grad(false);
  std::shared_ptr<ControlNetModel> controlnet = ControlNetModel::from_unet(unet);
  controlnet->train();
  controlnet->to(o.device);
  if (o.autocast) unet.to(*o.autocast);  // the frozen weights in the autocast dtype
  unet.to(o.device);
  const bool checkpointing = o.checkpointing.value_or(o.device.is_cuda());
  controlnet->gradient_checkpointing = checkpointing;
  unet.gradient_checkpointing = checkpointing;
  const int64_t cond_side = s.latent * controlnet->config().conditioning_downscale();
  const Tensor noisy =
      randn_on({s.batch, config.in_channels, s.latent, s.latent}, gen, kFloat32, o.device);
  const Tensor noise = randn_on(noisy.shape(), gen, kFloat32, o.device);
  const Tensor cond = raw::to(raw::rand({s.batch, 3, cond_side, cond_side}, gen), o.device);
  const Tensor text =
      randn_on({s.batch, kTextLength, config.cross_attention_dim}, gen, kFloat32, o.device);
  const Tensor t = raw::full({s.batch}, double(kTimestep), kInt64, o.device);
  nn::AdamOptions options = nn::AdamW::default_options();
  options.lr = 1e-5;
  nn::AdamW opt(controlnet->parameters(), options);
  bench::run_timed(state, o.device, s.batch, [&] {
    opt.zero_grad();
    // Backward runs inside the scope too: checkpointed blocks recompute their forward during
    // backward, and autograd::checkpoint does not record the forward's autocast state.
    AutocastGuard amp(o.autocast);
    const models::ControlNetOutput res = controlnet->forward(noisy, t, text, cond);
    const Tensor pred =
        unet.forward(noisy, t, text, res.down_block_res_samples, res.mid_block_res_sample);
    Tensor loss = mse_loss(to(pred, kFloat32), noise);  // as train_controlnet.py: in float32
    autograd::backward({loss});
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  });
}

}  // namespace

int main(int argc, char** argv) {
  const ModelBenchOptions o = bench::parse_model_bench_flags(argc, argv);
  benchmark::AddCustomContext("device", o.device.str());
  benchmark::AddCustomContext("autocast", bench::autocast_name(o.autocast));
  benchmark::AddCustomContext("dtype", std::string(dtype_name(o.dtype)));
  const auto add = [&o](const Case& c, auto fn) {
    const Shape3 s = shape_of(c, o);
    benchmark::RegisterBenchmark(c.name, [fn, s, o](benchmark::State& state) { fn(state, s, o); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(s.iters);
  };
  add(kTiny, [](benchmark::State& st, const Shape3& s, const ModelBenchOptions& opt) {
    unet_forward(st, tiny_config(), s, opt);
  });
  add(kSd, [](benchmark::State& st, const Shape3& s, const ModelBenchOptions& opt) {
    unet_forward(st, UNet2DConditionConfig::stable_diffusion_v1(), s, opt);
  });
  add(kTrain, &controlnet_train_step);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
