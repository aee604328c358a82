// `cxr env`: what a bug report needs — version, build options (CUDA, cuDNN, NCCL, MPI, BLAS),
// compiler, CPU model and vector features, OpenMP threads, GPUs found.
//
// Build facts come from compile definitions: CXR_WITH_CUDA (set by tensor/ when the CUDA backend
// is built), CXR_WITH_CUDNN / CXR_WITH_NCCL / CXR_WITH_MPI (for the layers that add them),
// CXR_BUILD_TYPE, CXR_VERSION and CXR_OPENBLAS_FOUND (experiments/CMakeLists.txt).
#include <omp.h>  // omp_get_max_threads

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>  // hardware_concurrency

#include "experiments/commands.h"
#include "tensor/cpu/gemm.h"  // gemm_isa
#include "tensor/device.h"    // cuda_device_count
#include "tensor/error.h"     // cxr::Error

#ifndef CXR_VERSION
#define CXR_VERSION "unknown"
#endif
#ifndef CXR_BUILD_TYPE
#define CXR_BUILD_TYPE "unknown"
#endif

namespace cxr::experiments {

namespace {

const char* yes_no(bool v) {
  return v ? "yes" : "no";
}

// "model name" of the first processor in /proc/cpuinfo (Linux), or "unknown".
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
  return "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string sanitizers() {
  std::string s;
#if defined(__SANITIZE_ADDRESS__)
  s += "address ";
#endif
#if defined(__SANITIZE_THREAD__)
  s += "thread ";
#endif
  return s.empty() ? "none" : s.substr(0, s.size() - 1);
}

// x86 vector features the kernels care about (GCC's CPUID-based __builtin_cpu_supports).
void cpu_features(std::string& present, std::string& missing) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  struct Feature {
    const char* name;
    bool on;
  };
  const Feature features[] = {
      {"sse4.2", bool(__builtin_cpu_supports("sse4.2"))},
      {"avx", bool(__builtin_cpu_supports("avx"))},
      {"avx2", bool(__builtin_cpu_supports("avx2"))},
      {"fma", bool(__builtin_cpu_supports("fma"))},
      {"f16c", bool(__builtin_cpu_supports("f16c"))},
      {"avx512f", bool(__builtin_cpu_supports("avx512f"))},
      {"avx512dq", bool(__builtin_cpu_supports("avx512dq"))},
      {"avx512bw", bool(__builtin_cpu_supports("avx512bw"))},
      {"avx512vl", bool(__builtin_cpu_supports("avx512vl"))},
      {"avx512vnni", bool(__builtin_cpu_supports("avx512vnni"))},
      {"avx512bf16", bool(__builtin_cpu_supports("avx512bf16"))},
  };
  for (const Feature& f : features) (f.on ? present : missing) += std::string(f.name) + " ";
#else
  missing = "(not an x86 CPU) ";
#endif
  if (!present.empty()) present.pop_back();
  if (!missing.empty()) missing.pop_back();
}

void run_env() {
#ifdef CXR_WITH_CUDA
  const bool cuda = true;
#else
  const bool cuda = false;
#endif
#ifdef CXR_WITH_CUDNN
  const bool cudnn = true;
#else
  const bool cudnn = false;
#endif
#ifdef CXR_WITH_NCCL
  const bool nccl = true;
#else
  const bool nccl = false;
#endif
#ifdef CXR_WITH_MPI
  const bool mpi = true;
#else
  const bool mpi = false;
#endif
#if defined(CXR_OPENBLAS_FOUND) && CXR_OPENBLAS_FOUND
  const bool openblas = true;
#else
  const bool openblas = false;
#endif
  std::string gemm;
  try {
    gemm = cpu::gemm_isa();
  } catch (const Error& e) {  // a bad CXR_GEMM_ISA: report it rather than fail the report
    gemm = std::string("error: ") + e.what();
  }
  std::string present, missing;
  cpu_features(present, missing);
  const char* omp_env = std::getenv("OMP_NUM_THREADS");
  const int gpus = cuda_device_count();

  std::printf("synthcxr %s\n", CXR_VERSION);
  std::printf("build\n");
  std::printf("  type:        %s (%s, C++%ld, sanitizers: %s)\n", CXR_BUILD_TYPE,
              compiler().c_str(), long(__cplusplus / 100 % 100), sanitizers().c_str());
  std::printf("  CUDA:        %s\n", cuda ? "yes" : "no (built without CUDA)");
  std::printf("  cuDNN:       %s\n", yes_no(cudnn));
  std::printf("  NCCL:        %s\n", yes_no(nccl));
  std::printf("  MPI:         %s\n", yes_no(mpi));
  std::printf("  BLAS:        own packed GEMM, micro-kernel %s; OpenBLAS %s\n", gemm.c_str(),
              openblas ? "linked into the benchmarks for comparison" : "not found");
  std::printf("cpu\n");
  std::printf("  model:       %s\n", cpu_model().c_str());
  std::printf("  cores:       %u logical\n", std::thread::hardware_concurrency());
  std::printf("  features:    %s\n", present.empty() ? "-" : present.c_str());
  std::printf("  missing:     %s\n", missing.empty() ? "-" : missing.c_str());
  std::printf("  OpenMP:      %d threads (OMP_NUM_THREADS %s)\n", omp_get_max_threads(),
              omp_env ? omp_env : "unset");
  std::printf("gpu\n");
  std::printf("  CUDA devices: %d%s\n", gpus,
              cuda ? (gpus == 0 ? " (no usable GPU or driver)" : "") : " (CPU-only build)");
}

}  // namespace

Command register_env(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "env", "Print version, build options, CPU features, threads and GPUs (for bug reports)");
  return {sub, [] { run_env(); }};
}

}  // namespace cxr::experiments
