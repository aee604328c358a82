// Benchmarks the memory-efficient scaled dot-product attention (raw forward and backward) on the
// shapes of a plain 8-head N=4096, d=64 layer and of the Stable Diffusion 1.x UNet (batch 1,
// 8 heads: self-attention at 64x64/32x32/16x16 latents with d=40/80/160, and cross-attention to
// the 77 CLIP tokens). Each row reports:
//   GFLOPs       forward 4·L·S·d per head (QKᵀ and PV); backward 10·L·S·d (five GEMMs)
//   vs_sgemm     our GFLOP/s / cxr::cpu::sgemm GFLOP/s on the equivalent GEMM (M=L, N=S, K=d,
//                the score product of all heads in one call) measured in the same run
//   mem_ratio    forward peak memory (inputs + output + LSE + workspace reported by
//                raw::scaled_dot_product_attention_workspace_bytes) / (inputs + output)
//   rss_ratio    the same with the measured peak RSS growth of one forward call (VmHWM after
//                resetting it through /proc/self/clear_refs) instead of the computed bytes
//   cpu_GFLOPs, cpu_vs_sgemm  the same rates from the main thread's CPU time instead of wall time:
//                robust to other processes sharing the machine when OMP_NUM_THREADS=1
// Target: mem_ratio <= 2. Threads: OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_attention --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <malloc.h>  // malloc_trim, so freed heap pages do not hide the op's RSS growth
#include <omp.h>     // omp_get_max_threads

#include <time.h>  // clock_gettime(CLOCK_THREAD_CPUTIME_ID)

#include <chrono>   // reference timing of sgemm
#include <fstream>  // /proc/self/status, /proc/self/clear_refs
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;

struct Case {
  const char* name;
  int64_t heads, L, S, D;
};
const Case kCases[] = {
    {"self_N4096_d64", 8, 4096, 4096, 64},    {"sd_self_64x64_d40", 8, 4096, 4096, 40},
    {"sd_self_32x32_d80", 8, 1024, 1024, 80}, {"sd_self_16x16_d160", 8, 256, 256, 160},
    {"sd_cross_64x64_d40", 8, 4096, 77, 40},  {"sd_cross_32x32_d80", 8, 1024, 77, 80},
    {"sd_cross_16x16_d160", 8, 256, 77, 160},
};

struct Inputs {
  Tensor q, k, v;
  explicit Inputs(const Case& c) {
    Generator gen(1);
    q = raw::randn({1, c.heads, c.L, c.D}, gen);
    k = raw::randn({1, c.heads, c.S, c.D}, gen);
    v = raw::randn({1, c.heads, c.S, c.D}, gen);
  }
  int64_t bytes() const { return (q.numel() + k.numel() + v.numel()) * 4; }
};

// kB value of a /proc/self/status field ("VmRSS", "VmHWM").
int64_t status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

// Peak RSS growth (bytes) during one forward call, or -1 where the kernel does not allow
// resetting the high-water mark.
int64_t measured_forward_growth(const Inputs& in) {
  malloc_trim(0);
  const int64_t before = status_kb("VmRSS");
  {
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";
    if (!reset.good()) return -1;
  }
  if (status_kb("VmHWM") > before + 64) return -1;  // the reset did not take
  raw::AttentionResult r = raw::scaled_dot_product_attention(in.q, in.k, in.v, {}, false, 0);
  benchmark::DoNotOptimize(r.out.data_ptr());
  return (status_kb("VmHWM") - before) * 1024;
}

// Seconds of CPU time used by the calling thread.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Wall and main-thread CPU time of a timed region.
struct Timer {
  std::chrono::steady_clock::time_point wall0 = std::chrono::steady_clock::now();
  double cpu0 = thread_cpu_seconds();
  double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  }
  double cpu() const { return thread_cpu_seconds() - cpu0; }
};

struct Rates {
  double wall_gflops, cpu_gflops;
};

// GFLOP/s of sgemm C[L, S] = Q[L, d] Kᵀ for every head, best of a few runs.
Rates sgemm_gflops(const Case& c) {
  std::vector<float> a(size_t(c.L * c.D), 0.5f), b(size_t(c.S * c.D), 0.25f),
      out(size_t(c.L * c.S));
  double best_wall = 1e30, best_cpu = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    Timer t;
    for (int64_t h = 0; h < c.heads; ++h)
      cpu::sgemm(c.L, c.S, c.D, 1.0f, a.data(), c.D, 1, b.data(), 1, c.D, 0.0f, out.data(), c.S, 1);
    best_wall = std::min(best_wall, t.wall());
    best_cpu = std::min(best_cpu, t.cpu());
  }
  const double flops = 2.0 * double(c.heads * c.L * c.S * c.D);
  return {flops / best_wall * 1e-9, flops / best_cpu * 1e-9};
}

// GFLOP/s of the timed loop and its ratio to sgemm on the equivalent GEMM.
void report_flops(benchmark::State& state, double flops_per_iter, const Timer& t, const Case& c) {
  const double wall = t.wall(), cpu_s = t.cpu();
  const double iters = double(state.iterations());
  const Rates ref = sgemm_gflops(c);
  state.counters["GFLOPs"] = flops_per_iter * iters / wall * 1e-9;
  state.counters["sgemm_GFLOPs"] = ref.wall_gflops;
  state.counters["vs_sgemm"] = state.counters["GFLOPs"] / ref.wall_gflops;
  state.counters["cpu_GFLOPs"] = flops_per_iter * iters / cpu_s * 1e-9;
  state.counters["cpu_vs_sgemm"] = state.counters["cpu_GFLOPs"] / ref.cpu_gflops;
}

void BM_sdpa_forward(benchmark::State& state, Case c) {
  Inputs in(c);
  const int64_t out_bytes = c.heads * c.L * c.D * 4, lse_bytes = c.heads * c.L * 4;
  const int64_t ws =
      raw::scaled_dot_product_attention_workspace_bytes(in.q, in.k, in.v, omp_get_max_threads());
  const int64_t growth = measured_forward_growth(in);
  const Timer t0;
  for (auto _ : state) {
    raw::AttentionResult r = raw::scaled_dot_product_attention(in.q, in.k, in.v, {}, false, 0);
    benchmark::DoNotOptimize(r.out.data_ptr());
  }
  report_flops(state, 4.0 * double(c.heads * c.L * c.S * c.D), t0, c);
  const double base = double(in.bytes() + out_bytes);
  state.counters["mem_ratio"] = (base + double(lse_bytes + ws)) / base;
  state.counters["rss_ratio"] = growth < 0 ? -1.0 : (double(in.bytes()) + double(growth)) / base;
  state.counters["ws_KiB"] = double(ws) / 1024.0;
}

void BM_sdpa_backward(benchmark::State& state, Case c) {
  Inputs in(c);
  Generator gen(2);
  Tensor gy = raw::randn({1, c.heads, c.L, c.D}, gen);
  raw::AttentionResult r = raw::scaled_dot_product_attention(in.q, in.k, in.v, {}, false, 0);
  const Timer t0;
  for (auto _ : state) {
    raw::AttentionGrads g =
        raw::scaled_dot_product_attention_backward(gy, in.q, in.k, in.v, r, {}, false, 0);
    benchmark::DoNotOptimize(g.q.data_ptr());
  }
  report_flops(state, 10.0 * double(c.heads * c.L * c.S * c.D), t0, c);
}

}  // namespace

int main(int argc, char** argv) {
  for (const Case& c : kCases) {
    benchmark::RegisterBenchmark((std::string("sdpa_forward/") + c.name).c_str(), BM_sdpa_forward,
                                 c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("sdpa_backward/") + c.name).c_str(), BM_sdpa_backward,
                                 c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
