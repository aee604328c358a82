// Benchmarks raw::matmul on cuda:0 (tensor/cuda/linalg.cu) against the same GEMM as one direct
// cublasGemmEx call on the same cuBLAS handle and stream (cuda::reference_gemm, measured in the
// same run), for square row-major products in float32 (TF32 tensor cores) and bfloat16 (float32
// accumulation) at 4096^3 and 8192^3. Each iteration queues kRepeats products and waits for the
// device (cuda::synchronize), timed on the host. Rows report TFLOP/s; our rows also report
// vs_cublas = our TFLOP/s / cuBLAS TFLOP/s (target: at least 0.95). Without a CUDA device, or in a
// build without CUDA, it prints a skip line and exits 0.
//
//   build/<dir>/bench/bench_cuda_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "tensor/backend.h"
#include "tensor/cuda/linalg.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops.h"

namespace {

using namespace cxr;

constexpr int kRepeats = 10;  // products per timed iteration (amortises the synchronisation)

// cuBLAS's TFLOP/s per problem, written by the reference rows (registered first, so they run
// before ours).
std::map<std::string, double>& reference_tflops() {
  static std::map<std::string, double> cache;
  return cache;
}

// Row-major a [n, n], b [n, n] on cuda:0 with values uniform in [-1, 1).
struct Operands {
  Tensor a, b;
  Operands(int64_t n, DType dtype) {
    Generator gen(42);
    a = raw::to(raw::to(raw::rand({n, n}, gen, kFloat32, -1.0, 1.0), dtype), Device::cuda(0));
    b = raw::to(raw::to(raw::rand({n, n}, gen, kFloat32, -1.0, 1.0), dtype), Device::cuda(0));
  }
};

// Times `run` (which queues one product) kRepeats times per iteration; returns TFLOP/s.
template <typename Run>
double time_iterations(benchmark::State& state, int64_t n, Run run) {
  using Clock = std::chrono::steady_clock;
  const double flops = 2.0 * double(n) * double(n) * double(n) * kRepeats;
  double seconds = 0.0;
  run();  // warm-up: cuBLAS's kernel selection and module loading
  if constexpr (kCudaBuilt) cuda::synchronize(0);
  for (auto _ : state) {
    const auto start = Clock::now();
    for (int r = 0; r < kRepeats; ++r) run();
    if constexpr (kCudaBuilt) cuda::synchronize(0);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(s);
    seconds += s;
  }
  state.counters["TFLOP/s"] =
      benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  return flops * 1e-12 * double(state.iterations()) / seconds;
}

void bm_cublas(benchmark::State& state, int64_t n, DType dtype, const std::string& key) {
  const Operands ops(n, dtype);
  const Tensor c = raw::empty({n, n}, dtype, Device::cuda(0));
  reference_tflops()[key] = time_iterations(state, n, [&] {
    if constexpr (kCudaBuilt)
      cuda::reference_gemm(0, dtype, n, n, n, ops.a.data_ptr(), ops.b.data_ptr(), c.data_ptr());
  });
}

void bm_ours(benchmark::State& state, int64_t n, DType dtype, const std::string& key) {
  const Operands ops(n, dtype);
  const double ours =
      time_iterations(state, n, [&] { benchmark::DoNotOptimize(raw::matmul(ops.a, ops.b)); });
  const auto ref = reference_tflops().find(key);
  if (ref != reference_tflops().end()) state.counters["vs_cublas"] = ours / ref->second;
}

}  // namespace

int main(int argc, char** argv) {
  if (cxr::cuda_device_count() == 0) {
    std::printf("bench_cuda_gemm: skipped, no CUDA device is usable here\n");
    return 0;
  }
  if constexpr (cxr::kCudaBuilt)
    std::printf("device: %s\n", cxr::cuda::device_description(0).c_str());
  for (const cxr::DType dtype : {cxr::kFloat32, cxr::kBFloat16}) {
    for (const int64_t n : {4096, 8192}) {
      const std::string key =
          std::string(dtype == cxr::kFloat32 ? "tf32" : "bf16") + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("cublas_gemm_ex/" + key).c_str(), bm_cublas, n, dtype, key)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("raw_matmul/" + key).c_str(), bm_ours, n, dtype, key)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
