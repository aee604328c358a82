// Benchmarks raw::conv2d and its two backward passes on the convolution shapes of ResNet-50
// (torchvision, stride on the 3x3 conv; no bias, as in ResNet-50) at batch 8, 224x224 input. Each
// row reports GFLOP/s (2·N·OH·OW·OC·IC/groups·KH·KW per pass), `gemm_GFLOP/s` = our sgemm on a
// 2048³ square product timed just before the row (best of 3 calls) and `ratio_to_gemm` = the
// first over the second. Threads: OMP_NUM_THREADS (default: all cores). Rows are named
// pass/layer, e.g.
//
//   build/<dir>/bench/bench_conv --benchmark_counters_tabular=true
//   build/<dir>/bench/bench_conv --benchmark_filter='fwd/layer3'
//   build/<dir>/bench/bench_conv --benchmark_filter='3x3' --benchmark_min_time=1
//   build/<dir>/bench/bench_conv --benchmark_counters_tabular=true --benchmark_min_time=0.1
//     --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//     (on a shared machine: read the `_median` rows, as bench/README.md does; the `_max` rows give
//     each counter's best repetition on its own, so their ratio is not max GFLOP/s over max
//     reference)
#include <benchmark/benchmark.h>

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock for the reference timing
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/ops.h"

namespace {

using cxr::Tensor;
using cxr::raw::Conv2dParams;

struct Layer {
  std::string name;
  int64_t in_ch, out_ch, kernel, stride, in_hw;
  int64_t out_hw() const { return (in_hw + 2 * (kernel / 2) - kernel) / stride + 1; }
  double flops(int64_t batch) const {
    return 2.0 * double(batch) * double(out_hw() * out_hw()) * double(out_ch) * double(in_ch) *
           double(kernel * kernel);
  }
};

constexpr int64_t kBatch = 8;

// Per stage: the 1x1 reduce (from the 4C block output), the 3x3, the 1x1 expand, and for stages
// 2-4 the strided 3x3 and the strided 1x1 downsample of the first block.
std::vector<Layer> layers() {
  std::vector<Layer> l{{"conv1_7x7s2_3to64_224", 3, 64, 7, 2, 224}};
  const int64_t widths[] = {64, 128, 256, 512}, sizes[] = {56, 28, 14, 7};
  for (int s = 0; s < 4; ++s) {
    const int64_t c = widths[s], hw = sizes[s];
    const std::string stage = "layer" + std::to_string(s + 1) + ".", at = "_" + std::to_string(hw);
    const std::string cs = std::to_string(c), c4 = std::to_string(4 * c);
    l.push_back({stage + "1x1_reduce_" + c4 + "to" + cs + at, 4 * c, c, 1, 1, hw});
    l.push_back({stage + "3x3_" + cs + at, c, c, 3, 1, hw});
    l.push_back({stage + "1x1_expand_" + cs + "to" + c4 + at, c, 4 * c, 1, 1, hw});
    if (s > 0) {
      l.push_back({stage + "3x3s2_" + cs + "_" + std::to_string(2 * hw), c, c, 3, 2, 2 * hw});
      l.push_back({stage + "1x1s2_downsample_" + std::to_string(2 * c) + "to" + c4 + "_" +
                       std::to_string(2 * hw),
                   2 * c, 4 * c, 1, 2, 2 * hw});
    }
  }
  return l;
}

// The 2048³ operands of the reference product.
struct Square {
  static constexpr int64_t n = 2048;
  Tensor a, b, c;
  Square() {
    cxr::Generator gen(1);
    a = cxr::raw::randn({n, n}, gen), b = cxr::raw::randn({n, n}, gen);
    c = cxr::raw::empty({n, n});
  }
  void run() {
    cxr::cpu::sgemm(n, n, n, 1.0f, a.data<float>(), n, 1, b.data<float>(), n, 1, 0.0f,
                    c.data<float>(), n, 1);
  }
  static double flops() { return 2.0 * double(n) * double(n) * double(n); }
};
Square& square() {
  static Square sq;
  return sq;
}

// Our sgemm's GFLOP/s on the 2048³ product now: the best of `calls` timed calls after a warm-up.
// Each conv row measures it just before its own timing, so the ratio compares the row with what
// the GEMM does on the machine at that moment: on a shared VM the speed of both drifts by 10-20 %
// over minutes, and one reference for the whole run would move every ratio with it.
double gemm_gflops_now(int calls) {
  square().run();
  double fastest = 0;
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    square().run();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fastest = std::max(fastest, Square::flops() / s * 1e-9);
  }
  return fastest;
}

void bench_gemm(benchmark::State& state) {
  square().run();  // warm up: packing buffers, threads
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    square().run();
    benchmark::ClobberMemory();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.counters["GFLOP/s"] = Square::flops() * double(state.iterations()) / seconds * 1e-9;
}

enum class Pass { kForward, kBackwardInput, kBackwardWeight };
const char* pass_name(Pass p) {
  return p == Pass::kForward ? "fwd" : p == Pass::kBackwardInput ? "bwd_input" : "bwd_weight";
}

void bench_conv(benchmark::State& state, const Layer& l, Pass pass) {
  cxr::Generator gen(2);
  const Conv2dParams p{{l.stride, l.stride}, {l.kernel / 2, l.kernel / 2}, {1, 1}, 1};
  const Tensor x = cxr::raw::randn({kBatch, l.in_ch, l.in_hw, l.in_hw}, gen);
  const Tensor w =
      cxr::raw::randn({l.out_ch, l.in_ch, l.kernel, l.kernel}, gen, cxr::kFloat32, 0.0, 0.05);
  const Tensor gy = cxr::raw::randn({kBatch, l.out_ch, l.out_hw(), l.out_hw()}, gen);
  auto run = [&] {
    switch (pass) {
      case Pass::kForward:
        return cxr::raw::conv2d(x, w, Tensor(), p);
      case Pass::kBackwardInput:
        return cxr::raw::conv2d_backward_input(gy, w, x.sizes(), p);
      case Pass::kBackwardWeight:
        break;
    }
    return cxr::raw::conv2d_backward_weight(gy, x, w.sizes(), p);
  };
  run();                                        // warm up: scratch buffers, threads
  const double reference = gemm_gflops_now(3);  // outside this row's clock
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(run());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double gflops = l.flops(kBatch) * double(state.iterations()) / seconds * 1e-9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["gemm_GFLOP/s"] = reference;
  state.counters["ratio_to_gemm"] = gflops / reference;
}

// With --benchmark_repetitions=N, the `_max` aggregate is each counter's best repetition: on a
// machine shared with other work, the figure the kernel reaches when it has the cores.
double max_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

const bool kRegistered = [] {
  benchmark::RegisterBenchmark("gemm/square2048", bench_gemm)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond)
      ->ComputeStatistics("max", max_of);
  for (Pass pass : {Pass::kForward, Pass::kBackwardInput, Pass::kBackwardWeight})
    for (const Layer& l : layers())
      benchmark::RegisterBenchmark((std::string(pass_name(pass)) + "/" + l.name).c_str(),
                                   bench_conv, l, pass)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->ComputeStatistics("max", max_of);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
