// ResNet-50 (models/resnet.h, torchvision layout) at 224x224, random weights:
//   BM_resnet50_train_step  forward in train mode, cross-entropy over 1000 classes, backward,
//                           SGD step (momentum 0.9, weight decay 1e-4)
//   BM_resnet50_inference   forward in eval mode without autograd
// Batch 8 on the CPU, 256 on CUDA (the GPU target: training step in bfloat16 autocast against
// PyTorch eager AMP on the same GPU). Each row reports images_per_s (wall clock, after one untimed
// warm-up step; on CUDA every step ends with a device synchronisation) and on CUDA peak_GiB, the
// memory pool's peak. bench/torch_resnet50.py runs the same two loops in PyTorch on the same
// machine and prints both figures and their ratio. Threads: OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_resnet --benchmark_counters_tabular=true
//   build/<dir>/bench/bench_resnet --device=cuda --autocast=bf16 --benchmark_counters_tabular=true
// Flags of bench/model_bench.h: --device, --autocast, --dtype, --batch, --iters.
#include <benchmark/benchmark.h>

#include <memory>

#include "autograd/autocast.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "bench/model_bench.h"
#include "models/resnet.h"
#include "nn/optim.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;
using bench::ModelBenchOptions;

constexpr int64_t kCpuBatch = 8, kCudaBatch = 256, kSide = 224, kClasses = 1000;
constexpr int kSteps = 5;  // timed steps after one warm-up (torch_resnet50.py's STEPS)

struct Setup {
  std::shared_ptr<models::ResNet> model;
  Tensor x, target;
  int64_t batch = 0;
};

Setup make_setup(const ModelBenchOptions& o) {
  bench::reset_peak_memory(o.device);
  Generator gen(1);
  Setup s;
  s.batch = o.batch ? o.batch : (o.device.is_cuda() ? kCudaBatch : kCpuBatch);
  s.model = std::make_shared<models::ResNet>(models::ResNetConfig::named("resnet50"), gen);
  s.model->to(o.dtype);
  s.model->to(o.device);
  s.x = raw::to(raw::to(raw::randn({s.batch, 3, kSide, kSide}, gen), o.dtype), o.device);
  s.target = raw::to(raw::randint(0, kClasses, {s.batch}, gen), o.device);
  return s;
}

void resnet50_train_step(benchmark::State& state, const ModelBenchOptions& o) {
  Setup s = make_setup(o);
  s.model->train();
  nn::SGD opt(s.model->parameters(), {.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4});
  bench::run_timed(state, o.device, s.batch, [&] {
    opt.zero_grad();
    Tensor loss;
    {
      AutocastGuard amp(o.autocast);
      // cross_entropy is on autocast's float32 list (as in PyTorch): its input is cast up.
      loss = cross_entropy(autocast_upcast(s.model->forward(s.x)), s.target);
    }
    autograd::backward({loss});
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  });
}

void resnet50_inference(benchmark::State& state, const ModelBenchOptions& o) {
  Setup s = make_setup(o);
  s.model->eval();
  autograd::NoGradGuard no_grad;
  AutocastGuard amp(o.autocast);
  bench::run_timed(state, o.device, s.batch,
                   [&] { benchmark::DoNotOptimize(s.model->forward(s.x).data_ptr()); });
}

}  // namespace

int main(int argc, char** argv) {
  const ModelBenchOptions o = bench::parse_model_bench_flags(argc, argv);
  const int64_t iters = o.iters ? o.iters : kSteps;
  benchmark::AddCustomContext("device", o.device.str());
  benchmark::AddCustomContext("autocast", bench::autocast_name(o.autocast));
  benchmark::AddCustomContext("dtype", std::string(dtype_name(o.dtype)));
  for (auto [name, fn] : {std::pair{"BM_resnet50_train_step", &resnet50_train_step},
                          std::pair{"BM_resnet50_inference", &resnet50_inference}})
    benchmark::RegisterBenchmark(name, [fn, o](benchmark::State& state) { fn(state, o); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(iters);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
