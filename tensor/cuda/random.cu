// CUDA random draws and dropout (random.h): one thread per Philox block, which computes the block's
// four words with the shared philox_block and writes the (up to four) elements that take them, with
// the same value functions as the CPU loops (tensor/random_math.h). The caller has reserved the
// blocks from the Generator, so the host generator advances exactly as for a CPU draw.
#include "tensor/convert.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/random.h"
#include "tensor/dtype.h"
#include "tensor/random_math.h"

namespace cxr::cuda {

namespace {

// Value functors: element `i`, lane j of its block's words w.
struct UniformFn {
  double low, span;
  __device__ double operator()(const uint32_t* w, int j, int64_t) const {
    return rng::uniform_value(w[j], low, span);
  }
};
struct NormalFn {
  double mean, stddev;
  __device__ double operator()(const uint32_t* w, int j, int64_t) const {
    return rng::normal_value(w, j, mean, stddev);
  }
};
struct BernoulliFn {
  const double* probs;  // null: the scalar p
  double p;
  __device__ double operator()(const uint32_t* w, int j, int64_t i) const {
    return rng::bernoulli_value(w[j], probs ? probs[i] : p) ? 1.0 : 0.0;
  }
};

// Element i = per_block * b + j takes lane j of block first + b.
template <typename T, int per_block, typename F>
__global__ void draw_kernel(T* out, int64_t n, uint64_t seed, uint64_t first, F f) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    uint32_t w[4];
    rng::philox_block(seed, first + uint64_t(b), w);
    for (int j = 0; j < per_block && b * per_block + j < n; ++j)
      out[b * per_block + j] = convert<T>(f(w, j, b * per_block + j));
  }
}

struct RandintFn {
  int64_t low;
  uint64_t range;
  __device__ int64_t operator()(const uint32_t* w, int j, int64_t) const {
    return rng::randint_value(w, j, low, range);
  }
};

template <typename T, int per_block, typename F>
void launch_draw_t(const Tensor& out, uint64_t seed, uint64_t first, F f) {
  const int64_t n = out.numel();
  const int64_t blocks = (n + per_block - 1) / per_block;
  draw_kernel<T, per_block><<<blocks_for(blocks), kThreads, 0, stream(out.device().index)>>>(
      static_cast<T*>(out.data_ptr()), n, seed, first, f);
  CXR_CUDA_LAUNCH_CHECK("random draw_kernel");
}

template <int per_block, typename F>
void launch_draw(const Tensor& out, uint64_t seed, uint64_t first, F f, const char* op) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  CXR_DISPATCH_ALL(out.dtype(), op,
                   [&]<typename T>() { (launch_draw_t<T, per_block, F>)(out, seed, first, f); });
}

// *first_bad <- min over i of the indices with probs[i] outside [0, 1] (integer atomicMin: the
// result is the same whatever the order).
__global__ void invalid_probability_kernel(const double* probs, int64_t n,
                                           unsigned long long* first_bad) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    if (!(probs[i] >= 0 && probs[i] <= 1)) atomicMin(first_bad, (unsigned long long)i);
}

// Dropout: lane l of block first + b decides element 4b + l.
template <typename T>
__global__ void dropout_kernel(const T* x, T* out, T* mask, int64_t n, double p, uint64_t seed,
                               uint64_t first) {
  using C = compute_t<T>;
  const C scale = C(1.0 / (1.0 - p));
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    uint32_t w[4];
    rng::philox_block(seed, first + uint64_t(b), w);
    for (int l = 0; l < 4 && b * 4 + l < n; ++l) {
      const int64_t i = b * 4 + l;
      const C m = rng::bernoulli_value(w[l], p) ? C(0) : scale;
      mask[i] = convert<T>(m);
      out[i] = convert<T>(C(x[i]) * m);
    }
  }
}

template <typename T>
void launch_dropout(const Tensor& x, const Tensor& out, const Tensor& mask, double p, uint64_t seed,
                    uint64_t first) {
  const int64_t n = x.numel();
  dropout_kernel<T><<<blocks_for((n + 3) / 4), kThreads, 0, stream(x.device().index)>>>(
      static_cast<const T*>(x.data_ptr()), static_cast<T*>(out.data_ptr()),
      static_cast<T*>(mask.data_ptr()), n, p, seed, first);
  CXR_CUDA_LAUNCH_CHECK("dropout_kernel");
}

}  // namespace

void rand(const Tensor& out, uint64_t seed, uint64_t first, double low, double span) {
  launch_draw<4>(out, seed, first, UniformFn{low, span}, "rand");
}

void randn(const Tensor& out, uint64_t seed, uint64_t first, double mean, double std) {
  launch_draw<4>(out, seed, first, NormalFn{mean, std}, "randn");
}

void randint(const Tensor& out, uint64_t seed, uint64_t first, int64_t low, uint64_t range) {
  CXR_CHECK(out.dtype() == kInt64, "randint: the CUDA draw writes int64, got ", describe(out));
  launch_draw<2>(out, seed, first, RandintFn{low, range}, "randint");
}

void bernoulli(const Tensor& out, const Tensor& probs, uint64_t seed, uint64_t first, double p) {
  const double* pp = probs.defined() ? static_cast<const double*>(probs.data_ptr()) : nullptr;
  launch_draw<4>(out, seed, first, BernoulliFn{pp, p}, "bernoulli");
}

void find_invalid_probability(const Tensor& probs, int64_t* index, double* value) {
  *index = -1;
  *value = 0;
  const int64_t n = probs.numel();
  if (n == 0) return;
  DeviceGuard guard(probs.device());
  cudaStream_t s = stream(probs.device().index);
  Tensor flag = Tensor::empty({1}, kInt64, probs.device());
  auto* first_bad = static_cast<unsigned long long*>(flag.data_ptr());
  const unsigned long long none = ~0ull;  // all bytes 0xff
  CXR_CUDA_CHECK(cudaMemsetAsync(first_bad, 0xff, sizeof(none), s));
  invalid_probability_kernel<<<blocks_for(n), kThreads, 0, s>>>(
      static_cast<const double*>(probs.data_ptr()), n, first_bad);
  CXR_CUDA_LAUNCH_CHECK("invalid_probability_kernel");
  unsigned long long bad = none;
  CXR_CUDA_CHECK(cudaMemcpyAsync(&bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost, s));
  CXR_CUDA_CHECK(cudaStreamSynchronize(s));
  if (bad == none) return;
  *index = int64_t(bad);
  CXR_CUDA_CHECK(cudaMemcpyAsync(value, static_cast<const double*>(probs.data_ptr()) + bad,
                                 sizeof(double), cudaMemcpyDeviceToHost, s));
  CXR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void dropout(const Tensor& x, const Tensor& out, const Tensor& mask, double p, uint64_t seed,
             uint64_t first) {
  const int64_t n = x.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device());
  CXR_DISPATCH_FLOAT(x.dtype(), "dropout",
                     [&]<typename T>() { launch_dropout<T>(x, out, mask, p, seed, first); });
}

}  // namespace cxr::cuda
