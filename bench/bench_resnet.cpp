// ResNet-50 (models/resnet.h, torchvision layout) on the CPU, float32, batch 8 at 224x224:
//   BM_resnet50_train_step  forward in train mode, cross-entropy over 1000 classes, backward,
//                           SGD step (momentum 0.9, weight decay 1e-4)
//   BM_resnet50_inference   forward in eval mode without autograd
// Each row reports images_per_s (wall clock). bench/torch_resnet50.py runs the same two loops in
// PyTorch on the same machine and prints both figures and their ratio. Threads: OMP_NUM_THREADS
// (default: all cores).
//
//   build/<dir>/bench/bench_resnet --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "models/resnet.h"
#include "nn/optim.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;

constexpr int64_t kBatch = 8, kSide = 224, kClasses = 1000;
constexpr int kSteps = 5;  // timed steps after one warm-up (torch_resnet50.py's STEPS)

struct Setup {
  std::shared_ptr<models::ResNet> model;
  Tensor x, target;
};

Setup make_setup() {
  Generator gen(1);
  Setup s;
  s.model = std::make_shared<models::ResNet>(models::ResNetConfig::named("resnet50"), gen);
  s.x = raw::randn({kBatch, 3, kSide, kSide}, gen);
  s.target = raw::randint(0, kClasses, {kBatch}, gen);
  return s;
}

// Runs `step` once (warm-up: first allocations, optimizer state), then as often as the benchmark
// asks, and reports images per second of wall time.
template <typename F>
void run(benchmark::State& state, F&& step) {
  step();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["images_per_s"] = double(kBatch) * double(state.iterations()) / secs;
}

void BM_resnet50_train_step(benchmark::State& state) {
  Setup s = make_setup();
  s.model->train();
  nn::SGD opt(s.model->parameters(), {.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4});
  run(state, [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(s.model->forward(s.x), s.target);
    autograd::backward({loss});
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  });
}

void BM_resnet50_inference(benchmark::State& state) {
  Setup s = make_setup();
  s.model->eval();
  autograd::NoGradGuard no_grad;
  run(state, [&] { benchmark::DoNotOptimize(s.model->forward(s.x).data_ptr()); });
}

BENCHMARK(BM_resnet50_train_step)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(kSteps);
BENCHMARK(BM_resnet50_inference)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(kSteps);

}  // namespace

BENCHMARK_MAIN();
