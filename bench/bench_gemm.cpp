// Benchmarks cxr::cpu::sgemm against OpenBLAS cblas_sgemm (same thread count, same run) on square
// sizes and on the im2col GEMMs of ResNet-50 (batch 8) and Stable Diffusion UNet (batch 1)
// convolutions, in the NN, NT and TN cases. Each row reports GFLOP/s; our rows also report
// `vs_openblas` = our GFLOP/s / OpenBLAS GFLOP/s (without OpenBLAS: `vs_naive` against
// cxr::cpu::sgemm_naive, for small shapes only). Threads: OMP_NUM_THREADS (default: all cores).
//
//   build/<dir>/bench/bench_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <omp.h>  // omp_get_max_threads

#include <chrono>  // std::chrono::steady_clock for the reference timing
#include <map>
#include <random>  // std::mt19937
#include <string>
#include <thread>  // std::this_thread::sleep_for
#include <vector>

#if CXR_HAVE_OPENBLAS
#include <cblas.h>  // cblas_sgemm, openblas_set_num_threads
#endif

#include "tensor/cpu/gemm.h"

namespace {

// One GEMM shape; a conv's im2col GEMM has M = out channels, N = batch * OH * OW, K = IC * KH * KW.
struct Shape {
  std::string name;
  int64_t m, n, k;
};

Shape conv(const std::string& name, int64_t batch, int64_t in_ch, int64_t out_ch, int64_t kernel,
           int64_t out_hw) {
  return {name, out_ch, batch * out_hw * out_hw, in_ch * kernel * kernel};
}

std::vector<Shape> shapes() {
  std::vector<Shape> s;
  for (int64_t n : {256, 512, 1024, 2048}) s.push_back({"square" + std::to_string(n), n, n, n});
  // ResNet-50 (torchvision, stride on the 3x3 conv) at batch 8, 224x224 input.
  s.push_back(conv("rn50.conv1_7x7s2", 8, 3, 64, 7, 112));
  s.push_back(conv("rn50.layer1.3x3", 8, 64, 64, 3, 56));
  s.push_back(conv("rn50.layer1.1x1_64to256", 8, 64, 256, 1, 56));
  s.push_back(conv("rn50.layer2.3x3", 8, 128, 128, 3, 28));
  s.push_back(conv("rn50.layer2.1x1_512to128", 8, 512, 128, 1, 28));
  s.push_back(conv("rn50.layer3.3x3", 8, 256, 256, 3, 14));
  s.push_back(conv("rn50.layer3.1x1_256to1024", 8, 256, 1024, 1, 14));
  s.push_back(conv("rn50.layer4.3x3", 8, 512, 512, 3, 7));
  s.push_back(conv("rn50.layer4.1x1_2048to512", 8, 2048, 512, 1, 7));
  // Stable Diffusion UNet 3x3 convs at batch 1 on a 64x64 latent (512x512 image).
  s.push_back(conv("sdunet.320ch_64x64", 1, 320, 320, 3, 64));
  s.push_back(conv("sdunet.640ch_32x32", 1, 640, 640, 3, 32));
  s.push_back(conv("sdunet.1280ch_16x16", 1, 1280, 1280, 3, 16));
  s.push_back(conv("sdunet.1280ch_8x8", 1, 1280, 1280, 3, 8));
  return s;
}

// How A and B are stored; C is always row-major M x N. NN: A is M x K and B is K x N, row-major
// (conv forward); NT: B is stored as N x K (B^T, like a weight gradient); TN: A is stored as K x M.
enum class Case { kNN, kNT, kTN };

const char* case_name(Case c) {
  return c == Case::kNN ? "NN" : c == Case::kNT ? "NT" : "TN";
}

// Operands of one shape, filled with values in [-1, 1].
struct Operands {
  Shape shape;
  Case layout;
  std::vector<float> a, b, c;
  int64_t rsa, csa, rsb, csb;

  Operands(const Shape& s, Case l)
      : shape(s),
        layout(l),
        a(static_cast<size_t>(s.m * s.k)),
        b(static_cast<size_t>(s.k * s.n)),
        c(static_cast<size_t>(s.m * s.n), 0.0f) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& v : a) v = dist(gen);
    for (float& v : b) v = dist(gen);
    rsa = l == Case::kTN ? 1 : s.k;
    csa = l == Case::kTN ? s.m : 1;
    rsb = l == Case::kNT ? 1 : s.n;
    csb = l == Case::kNT ? s.k : 1;
  }
  double flops() const { return 2.0 * shape.m * shape.n * shape.k; }

  void run_ours() {
    cxr::cpu::sgemm(shape.m, shape.n, shape.k, 1.0f, a.data(), rsa, csa, b.data(), rsb, csb, 0.0f,
                    c.data(), shape.n, 1);
  }
  void run_naive() {
    cxr::cpu::sgemm_naive(shape.m, shape.n, shape.k, 1.0f, a.data(), rsa, csa, b.data(), rsb, csb,
                          0.0f, c.data(), shape.n, 1);
  }
#if CXR_HAVE_OPENBLAS
  void run_openblas() {
    const auto ta = layout == Case::kTN ? CblasTrans : CblasNoTrans;
    const auto tb = layout == Case::kNT ? CblasTrans : CblasNoTrans;
    const auto lda = layout == Case::kTN ? shape.m : shape.k;
    const auto ldb = layout == Case::kNT ? shape.k : shape.n;
    cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(shape.m), static_cast<int>(shape.n),
                static_cast<int>(shape.k), 1.0f, a.data(), static_cast<int>(lda), b.data(),
                static_cast<int>(ldb), 0.0f, c.data(), static_cast<int>(shape.n));
  }
#endif
};

// The reference figure (GFLOP/s) per row name, measured by the reference's own row when it ran
// first, or else timed here for about 0.3 s.
std::map<std::string, double>& reference_gflops() {
  static std::map<std::string, double> cache;
  return cache;
}

template <typename Run>
double time_gflops(double flops, Run run) {
  using Clock = std::chrono::steady_clock;
  run();  // warm up: pack buffers, threads, caches
  const auto start = Clock::now();
  int64_t iterations = 0;
  double seconds = 0;
  do {
    run();
    ++iterations;
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (seconds < 0.3);
  return flops * static_cast<double>(iterations) / seconds * 1e-9;
}

void set_counters(benchmark::State& state, const Operands& ops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(ops.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("M=" + std::to_string(ops.shape.m) + " N=" + std::to_string(ops.shape.n) +
                 " K=" + std::to_string(ops.shape.k));
}

std::string key(const Shape& s, Case c) {
  return s.name + "/" + case_name(c);
}

// OpenBLAS's idle threads keep spinning for a while after a call (GOTO_THREAD_TIMEOUT), and so do
// libgomp's (GOMP_SPINCOUNT); on 2 cores they would steal the next row's CPU, so each row first
// lets the other library's threads fall asleep.
void let_other_threads_sleep() {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

void bench_ours(benchmark::State& state, const Shape& s, Case c) {
  Operands ops(s, c);
  let_other_threads_sleep();
  ops.run_ours();  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ops.run_ours();
    benchmark::DoNotOptimize(ops.c.data());
    benchmark::ClobberMemory();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double ours = ops.flops() * static_cast<double>(state.iterations()) / seconds * 1e-9;
  set_counters(state, ops);
  std::map<std::string, double>& ref = reference_gflops();
#if CXR_HAVE_OPENBLAS
  if (!ref.count(key(s, c))) {
    let_other_threads_sleep();
    ref[key(s, c)] = time_gflops(ops.flops(), [&] { ops.run_openblas(); });
  }
  state.counters["vs_openblas"] = ours / ref[key(s, c)];
#else
  if (ops.flops() <= 2.0 * 512 * 512 * 512) {
    if (!ref.count(key(s, c))) ref[key(s, c)] = time_gflops(ops.flops(), [&] { ops.run_naive(); });
    state.counters["vs_naive"] = ours / ref[key(s, c)];
  }
#endif
}

#if CXR_HAVE_OPENBLAS
void bench_openblas(benchmark::State& state, const Shape& s, Case c) {
  Operands ops(s, c);
  let_other_threads_sleep();
  ops.run_openblas();  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ops.run_openblas();
    benchmark::DoNotOptimize(ops.c.data());
    benchmark::ClobberMemory();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  reference_gflops()[key(s, c)] =
      ops.flops() * static_cast<double>(state.iterations()) / seconds * 1e-9;
  set_counters(state, ops);
  state.counters["vs_openblas"] = 1.0;  // keeps one table with our rows
}
#endif

// Registers, per shape and case, the OpenBLAS row first (its figure feeds the ratio) then ours.
const bool kRegistered = [] {
  for (const Shape& s : shapes()) {
    const bool square = s.name.rfind("square", 0) == 0;
    for (Case c : {Case::kNN, Case::kNT, Case::kTN}) {
      if (c == Case::kTN && !square) continue;  // convs: forward (NN) and weight-gradient-like NT
#if CXR_HAVE_OPENBLAS
      benchmark::RegisterBenchmark((key(s, c) + "/openblas").c_str(), bench_openblas, s, c)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
#endif
      benchmark::RegisterBenchmark((key(s, c) + "/ours").c_str(), bench_ours, s, c)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
#if CXR_HAVE_OPENBLAS
  openblas_set_num_threads(omp_get_max_threads());  // the same thread count as ours
#endif
  benchmark::AddCustomContext("threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("cxr_gemm_isa", cxr::cpu::gemm_isa());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
