// Memory-bound NN kernels against memcpy: softmax (last and middle dim), layer norm (CLIP and SD
// transformer widths), group norm with and without the fused SiLU (SD ResNet blocks), forward and
// backward. Each row reports
//   GBps        bytes the op must move (forward: read x, write y; backward: read grad and x or y,
//               write dx) per second
//   memcpy_GBps an OpenMP-parallel memcpy of the same tensor (read + write) in the same run
//   vs_memcpy   GBps / memcpy_GBps (1.0 = at the copy bandwidth)
//   cpu_GBps, cpu_vs_memcpy  the same from the main thread's CPU time instead of wall time: robust
//               to other processes sharing the machine when OMP_NUM_THREADS=1
// Threads: OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_norm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <time.h>  // clock_gettime(CLOCK_THREAD_CPUTIME_ID)

#include <chrono>   // reference timing of memcpy
#include <cstring>  // std::memcpy
#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace {

using namespace cxr;

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Rates {
  double wall_gbps, cpu_gbps;
};

// GB/s of a parallel memcpy of `bytes` (read + write counted), best of a few runs.
Rates memcpy_gbps(int64_t bytes) {
  std::vector<char> src(static_cast<size_t>(bytes), 1), dst(static_cast<size_t>(bytes));
  constexpr int64_t kChunk = 1 << 20;
  const int64_t chunks = (bytes + kChunk - 1) / kChunk;
  double best_wall = 1e30, best_cpu = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c)
      std::memcpy(dst.data() + c * kChunk, src.data() + c * kChunk,
                  size_t(std::min(kChunk, bytes - c * kChunk)));
    best_cpu = std::min(best_cpu, thread_cpu_seconds() - c0);
    best_wall = std::min(
        best_wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  benchmark::DoNotOptimize(dst.data());
  return {2.0 * double(bytes) / best_wall * 1e-9, 2.0 * double(bytes) / best_cpu * 1e-9};
}

// Times `op` and reports GB/s for `bytes_per_call` and the ratio to memcpy of `tensor_bytes`.
void run(benchmark::State& state, const std::function<void()>& op, double bytes_per_call,
         int64_t tensor_bytes) {
  op();  // warm-up (page faults of the outputs' first allocation)
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu_seconds();
  for (auto _ : state) op();
  const double cpu_s = thread_cpu_seconds() - c0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bytes = bytes_per_call * double(state.iterations());
  const Rates ref = memcpy_gbps(tensor_bytes);
  state.counters["GBps"] = bytes / secs * 1e-9;
  state.counters["memcpy_GBps"] = ref.wall_gbps;
  state.counters["vs_memcpy"] = bytes / secs * 1e-9 / ref.wall_gbps;
  state.counters["cpu_GBps"] = bytes / cpu_s * 1e-9;
  state.counters["cpu_vs_memcpy"] = bytes / cpu_s * 1e-9 / ref.cpu_gbps;
}

Tensor randn(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return raw::randn(s, gen);
}

void BM_softmax(benchmark::State& state, Shape shape, int64_t dim, bool backward) {
  Tensor x = randn(shape, 1);
  const double nb = double(x.numel()) * 4;
  if (!backward) {
    run(
        state, [&] { benchmark::DoNotOptimize(raw::softmax(x, dim).data_ptr()); }, 2 * nb,
        x.numel() * 4);
  } else {
    Tensor y = raw::softmax(x, dim), g = randn(shape, 2);
    run(
        state, [&] { benchmark::DoNotOptimize(raw::softmax_backward(g, y, dim).data_ptr()); },
        3 * nb, x.numel() * 4);
  }
}

void BM_layer_norm(benchmark::State& state, Shape shape, bool backward) {
  Tensor x = randn(shape, 3);
  const int64_t c = shape.back();
  Tensor w = randn({c}, 4), b = randn({c}, 5);
  const double nb = double(x.numel()) * 4;
  if (!backward) {
    run(
        state, [&] { benchmark::DoNotOptimize(raw::layer_norm(x, 1, w, b, 1e-5).out.data_ptr()); },
        2 * nb, x.numel() * 4);
  } else {
    raw::NormResult r = raw::layer_norm(x, 1, w, b, 1e-5);
    Tensor g = randn(shape, 6);
    run(
        state,
        [&] { benchmark::DoNotOptimize(raw::layer_norm_backward(g, x, r, w, 1).input.data_ptr()); },
        3 * nb, x.numel() * 4);
  }
}

void BM_group_norm(benchmark::State& state, Shape shape, int64_t groups, bool silu, bool backward) {
  Tensor x = randn(shape, 7);
  Tensor w = randn({shape[1]}, 8), b = randn({shape[1]}, 9);
  const double nb = double(x.numel()) * 4;
  if (!backward) {
    run(
        state,
        [&] {
          benchmark::DoNotOptimize(raw::group_norm(x, groups, w, b, 1e-5, silu).out.data_ptr());
        },
        2 * nb, x.numel() * 4);
  } else {
    raw::NormResult r = raw::group_norm(x, groups, w, b, 1e-5, silu);
    Tensor g = randn(shape, 10);
    run(
        state,
        [&] {
          benchmark::DoNotOptimize(
              raw::group_norm_backward(g, x, r, w, b, groups, silu).input.data_ptr());
        },
        3 * nb, x.numel() * 4);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto reg = [](const std::string& name, auto fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  };
  for (bool bwd : {false, true}) {
    const std::string dir = bwd ? "_backward" : "";
    reg("softmax" + dir + "/rows4096x1024_last", BM_softmax, Shape{4096, 1024}, int64_t(1), bwd);
    reg("softmax" + dir + "/64x1024x64_dim1", BM_softmax, Shape{64, 1024, 64}, int64_t(1), bwd);
    reg("layer_norm" + dir + "/4096x320", BM_layer_norm, Shape{4096, 320}, bwd);
    reg("layer_norm" + dir + "/2x77x768", BM_layer_norm, Shape{2, 77, 768}, bwd);
    reg("layer_norm" + dir + "/8192x768", BM_layer_norm, Shape{8192, 768}, bwd);
    reg("group_norm" + dir + "/1x320x64x64_g32", BM_group_norm, Shape{1, 320, 64, 64}, int64_t(32),
        false, bwd);
    reg("group_norm_silu" + dir + "/1x320x64x64_g32", BM_group_norm, Shape{1, 320, 64, 64},
        int64_t(32), true, bwd);
    reg("group_norm_silu" + dir + "/2x640x32x32_g32", BM_group_norm, Shape{2, 640, 32, 32},
        int64_t(32), true, bwd);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
