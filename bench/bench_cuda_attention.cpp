// Benchmarks the CUDA memory-efficient scaled dot-product attention (tensor/cuda/attention.cu)
// on the Stable Diffusion 1.x UNet shapes at batch 2, 8 heads: self-attention at 64x64 / 32x32 /
// 16x16 latents (L = S = 4096 / 1024 / 256, d = 40 / 80 / 160) and cross-attention to the 77 CLIP
// tokens, in float16, bfloat16 and float32. float16/bfloat16 cases run twice, with the SIMT kernels
// (.../simt) and with the default selection (.../auto: the tensor-core kernels of
// tensor/cuda/attention_tc.cu), side by side; float32 has only the SIMT kernels (.../auto).
// Each row reports:
//   TFLOPs       forward 4·L·S·d per head (QKᵀ and PV); backward 10·L·S·d (five products)
//   ref_TFLOPs   the same attention unfused on the GPU, measured in the same run: forward
//                matmul(q·scale, kᵀ) -> softmax -> matmul(P, v); backward matmul(dO, vᵀ) ->
//                softmax_backward -> matmul(dS, k), matmul(dSᵀ, q), matmul(Pᵀ, dO) (the L×S score
//                matrix materialised; cuBLAS for the products)
//   vs_unfused   ref time / fused time (> 1: the fused kernel is faster)
// Without a usable CUDA device the program says so and exits 0. A reference the build cannot run
// (an op without its CUDA kernel) leaves ref_TFLOPs and vs_unfused out and says why in the label.
//
//   build/<dir>/bench/bench_cuda_attention --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <chrono>  // wall time around a synchronised device
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "tensor/backend.h"         // kCudaBuilt
#include "tensor/cuda/attention.h"  // set_attention_kernel (defined in CUDA builds only)
#include "tensor/cuda/runtime.h"    // synchronize (defined in CUDA builds only)
#include "tensor/ops.h"

namespace {

using namespace cxr;

struct Case {
  const char* name;
  int64_t batch, heads, L, S, D;
};
const Case kCases[] = {
    {"sd_self_64x64_d40", 2, 8, 4096, 4096, 40}, {"sd_self_32x32_d80", 2, 8, 1024, 1024, 80},
    {"sd_self_16x16_d160", 2, 8, 256, 256, 160}, {"sd_cross_64x64_d40", 2, 8, 4096, 77, 40},
    {"sd_cross_32x32_d80", 2, 8, 1024, 77, 80},  {"sd_cross_16x16_d160", 2, 8, 256, 77, 160},
};
const DType kDtypes[] = {kFloat16, kBFloat16, kFloat32};

const Device kGpu = Device::cuda(0);

struct Inputs {
  Tensor q, k, v, gy;
  double scale;
  Inputs(const Case& c, DType dt) {
    Generator gen(1);
    auto make = [&](int64_t rows) {
      return raw::to(raw::to(raw::randn({c.batch, c.heads, rows, c.D}, gen), dt), kGpu);
    };
    q = make(c.L);
    k = make(c.S);
    v = make(c.S);
    gy = make(c.L);
    scale = 1.0 / std::sqrt(double(c.D));
  }
};

void sync() {
  if constexpr (kCudaBuilt) cuda::synchronize(0);
}

void select_kernel(cuda::AttentionKernel kernel) {
  if constexpr (kCudaBuilt) cuda::set_attention_kernel(kernel);
}

// Seconds per call of f (after a warm-up call), the device synchronised around the timing.
double seconds_per_call(const std::function<void()>& f, int reps) {
  f();
  sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  sync();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// The unfused forward; returns P as well for the unfused backward.
Tensor unfused_forward(const Inputs& in, Tensor* p_out) {
  const Tensor scores =
      raw::matmul(raw::binary(BinaryOp::Mul, in.q, in.scale), raw::transpose(in.k, -1, -2));
  Tensor p = raw::softmax(scores, -1);
  Tensor out = raw::matmul(p, in.v);
  if (p_out) *p_out = p;
  return out;
}

void unfused_backward(const Inputs& in, const Tensor& p) {
  const Tensor dp = raw::matmul(in.gy, raw::transpose(in.v, -1, -2));
  const Tensor ds = raw::softmax_backward(dp, p, -1);
  benchmark::DoNotOptimize(raw::matmul(ds, in.k));
  benchmark::DoNotOptimize(raw::matmul(raw::transpose(ds, -1, -2), in.q));
  benchmark::DoNotOptimize(raw::matmul(raw::transpose(p, -1, -2), in.gy));
}

// Reports the fused rate of `fused` and, when `reference` runs, the unfused rate and the ratio.
void report(benchmark::State& state, double flops, const std::function<void()>& fused,
            const std::function<void()>& reference) {
  double fused_s = 0;
  for (auto _ : state) {
    fused_s = seconds_per_call(fused, 5);
    state.SetIterationTime(fused_s);
  }
  state.counters["TFLOPs"] = flops / fused_s * 1e-12;
  try {
    const double ref_s = seconds_per_call(reference, 3);
    state.counters["ref_TFLOPs"] = flops / ref_s * 1e-12;
    state.counters["vs_unfused"] = ref_s / fused_s;
  } catch (const Error& e) {
    state.SetLabel(std::string("unfused reference unavailable: ") + e.what());
  }
}

void forward(benchmark::State& state, const Case& c, DType dt) {
  const Inputs in(c, dt);
  const double flops = 4.0 * double(c.batch * c.heads * c.L * c.S * c.D);
  report(
      state, flops,
      [&] {
        benchmark::DoNotOptimize(
            raw::scaled_dot_product_attention(in.q, in.k, in.v, {}, false, in.scale));
      },
      [&] { benchmark::DoNotOptimize(unfused_forward(in, nullptr)); });
}

void backward(benchmark::State& state, const Case& c, DType dt) {
  const Inputs in(c, dt);
  const raw::AttentionResult saved =
      raw::scaled_dot_product_attention(in.q, in.k, in.v, {}, false, in.scale);
  const double flops = 10.0 * double(c.batch * c.heads * c.L * c.S * c.D);
  Tensor p;
  report(
      state, flops,
      [&] {
        benchmark::DoNotOptimize(raw::scaled_dot_product_attention_backward(
            in.gy, in.q, in.k, in.v, saved, {}, false, in.scale));
      },
      [&] {
        if (!p.defined()) unfused_forward(in, &p);  // P once, outside the timed loop's repeats
        unfused_backward(in, p);
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (cxr::cuda_device_count() == 0) {
    std::printf(
        "bench_cuda_attention: no CUDA device is usable here (build without CUDA, no "
        "driver or no GPU); nothing to measure\n");
    return 0;
  }
  using cxr::cuda::AttentionKernel;
  for (const Case& c : kCases)
    for (cxr::DType dt : kDtypes)
      for (AttentionKernel kernel : {AttentionKernel::Simt, AttentionKernel::Auto}) {
        if (dt == cxr::kFloat32 && kernel == AttentionKernel::Simt) continue;  // Auto is Simt
        const std::string suffix = std::string(c.name) + "/" + std::string(cxr::dtype_name(dt)) +
                                   (kernel == AttentionKernel::Simt ? "/simt" : "/auto");
        benchmark::RegisterBenchmark(("cuda_attention_forward/" + suffix).c_str(),
                                     [c, dt, kernel](benchmark::State& s) {
                                       select_kernel(kernel);
                                       forward(s, c, dt);
                                       select_kernel(AttentionKernel::Auto);
                                     })
            ->UseManualTime()
            ->Iterations(3)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("cuda_attention_backward/" + suffix).c_str(),
                                     [c, dt, kernel](benchmark::State& s) {
                                       select_kernel(kernel);
                                       backward(s, c, dt);
                                       select_kernel(AttentionKernel::Auto);
                                     })
            ->UseManualTime()
            ->Iterations(3)
            ->Unit(benchmark::kMillisecond);
      }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
