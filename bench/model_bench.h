// What the model benchmarks (bench_resnet, bench_unet) share: their own command-line flags, parsed
// before Google Benchmark's, and the timed loop that reports images/s, and on CUDA synchronises
// the device around every step and reports the pool's peak memory.
//
//   --device=cpu|cuda|cuda:N      where the model runs (default cpu)
//   --autocast=none|bf16|fp16     AutocastGuard around the forward (default none)
//   --dtype=float32|float16|bfloat16  the models' weights and inputs (default float32)
//   --checkpointing=on|off        gradient checkpointing of the training cases that have it
//                                 (bench_unet's ControlNet step; default: on for CUDA, off on CPU)
//   --batch=N                     batch of every case (default: each case's own, per device)
//   --iters=N                     timed iterations of every case (default: each case's own)
// Header-only (inline) because it is shared by two benchmark programs and nothing else.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/backend.h"         // kCudaBuilt
#include "tensor/cuda/allocator.h"  // memory_stats, reset_peak_memory
#include "tensor/cuda/runtime.h"    // synchronize
#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"

namespace cxr::bench {

struct ModelBenchOptions {
  Device device = Device::cpu();
  std::optional<DType> autocast;
  DType dtype = kFloat32;
  std::optional<bool> checkpointing;  // nullopt: the device's default
  int64_t batch = 0;                  // 0: each case's default
  int64_t iters = 0;                  // 0: each case's default
};

// "bf16"/"bfloat16" or "fp16"/"float16"; nullopt for anything else.
inline std::optional<DType> parse_half(std::string_view text) {
  if (text == "bf16" || text == "bfloat16") return kBFloat16;
  if (text == "fp16" || text == "float16") return kFloat16;
  return std::nullopt;
}

// --autocast's value: "none" or a half type.
inline std::optional<DType> parse_autocast(std::string_view text) {
  if (text == "none") return std::nullopt;
  const std::optional<DType> half = parse_half(text);
  CXR_CHECK(half, "--autocast: expected none, bf16 or fp16, got '", text, "'");
  return half;
}

// --dtype's value: "float32" or a half type.
inline DType parse_model_dtype(std::string_view text) {
  if (text == "float32" || text == "fp32") return kFloat32;
  const std::optional<DType> half = parse_half(text);
  CXR_CHECK(half, "--dtype: expected float32, float16 or bfloat16, got '", text, "'");
  return *half;
}

inline std::string autocast_name(const std::optional<DType>& autocast) {
  return autocast ? std::string(dtype_name(*autocast)) : std::string("none");
}

inline int64_t positive_count(const char* flag, std::string_view text) {
  char* end = nullptr;
  const std::string s(text);
  const long long n = std::strtoll(s.c_str(), &end, 10);
  CXR_CHECK(!s.empty() && *end == '\0' && n > 0, flag, ": expected a positive count, got '", text,
            "'");
  return n;
}

// Takes this header's flags out of argv, leaving the rest for benchmark::Initialize. Exits with
// status 2 and a message on a bad value or an unusable device.
inline ModelBenchOptions parse_model_bench_flags(int& argc, char** argv) {
  ModelBenchOptions o;
  int kept = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      const auto value_of = [&](std::string_view flag) -> std::optional<std::string_view> {
        if (arg.size() > flag.size() + 1 && arg.substr(0, flag.size()) == flag &&
            arg[flag.size()] == '=')
          return arg.substr(flag.size() + 1);
        return std::nullopt;
      };
      if (auto v = value_of("--device")) {
        o.device = Device::parse(*v);
      } else if (auto a = value_of("--autocast")) {
        o.autocast = parse_autocast(*a);
      } else if (auto d = value_of("--dtype")) {
        o.dtype = parse_model_dtype(*d);
      } else if (auto c = value_of("--checkpointing")) {
        CXR_CHECK(*c == "on" || *c == "off", "--checkpointing: expected on or off, got '", *c, "'");
        o.checkpointing = *c == "on";
      } else if (auto b = value_of("--batch")) {
        o.batch = positive_count("--batch", *b);
      } else if (auto n = value_of("--iters")) {
        o.iters = positive_count("--iters", *n);
      } else {
        argv[kept++] = argv[i];
      }
    }
    check_device_available(o.device);
  } catch (const Error& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    std::exit(2);
  }
  argc = kept;
  return o;
}

// Waits for the work queued on a CUDA device (timings of asynchronous kernels); nothing on CPU.
inline void synchronize(Device device) {
  if constexpr (kCudaBuilt)
    if (device.is_cuda()) cuda::synchronize(device.index);
}

inline void reset_peak_memory(Device device) {
  if constexpr (kCudaBuilt)
    if (device.is_cuda()) cuda::reset_peak_memory(device.index);
}

// Runs `step` once (warm-up: first allocations, cuDNN algorithm search, optimizer state), then as
// often as the benchmark asks, each step followed by a device synchronisation, and reports
// images/s of wall time and, on CUDA, the memory pool's peak (GiB) since reset_peak_memory (call
// it before building the case's model to count its weights).
template <typename F>
void run_timed(benchmark::State& state, Device device, int64_t batch, F&& step) {
  step();
  synchronize(device);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    step();
    synchronize(device);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["images_per_s"] = double(batch) * double(state.iterations()) / secs;
  if constexpr (kCudaBuilt)
    if (device.is_cuda())
      state.counters["peak_GiB"] =
          double(cuda::memory_stats(device.index).peak) / double(int64_t(1) << 30);
}

}  // namespace cxr::bench
