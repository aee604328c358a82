// Host entry points of the CUDA random kernels (tensor/cuda/random.cu): draws of tensor/random.h
// and the dropout mask of tensor/nn_ops.h on a CUDA device. The caller (tensor/random.cpp,
// tensor/cpu/dropout.cpp) validates the arguments, allocates the contiguous outputs on the device
// and reserves the Philox blocks [first, ...) from its Generator; element i takes word i % 4 (two
// words for randint) of block first + i / 4 (i / 2) of the stream of `seed`, as on the CPU, and
// its value comes from the shared functions of tensor/random_math.h, so both give the same bits.
// Plain C++ header; the functions exist only in CUDA builds.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::cuda {

// out <- low + span * uniform[0, 1), any floating dtype.
void rand(const Tensor& out, uint64_t seed, uint64_t first, double low, double span);
// out <- mean + std * normal (Box-Muller), any floating dtype.
void randn(const Tensor& out, uint64_t seed, uint64_t first, double mean, double std);
// out (int64) <- low + (64 random bits mod range), two elements per block.
void randint(const Tensor& out, uint64_t seed, uint64_t first, int64_t low, uint64_t range);
// out <- 1 where uniform < p, else 0 (any dtype); with `probs` defined (float64, contiguous, out's
// numel) p is probs[i], otherwise the scalar p.
void bernoulli(const Tensor& out, const Tensor& probs, uint64_t seed, uint64_t first,
               double p = 0.0);
// Sets *index to the first i with probs[i] outside [0, 1] (NaN included) and *value to probs[i];
// *index = -1 when all are valid. probs is float64 and contiguous. (Reads back a device flag.)
void find_invalid_probability(const Tensor& probs, int64_t* index, double* value);
// Inverted dropout of contiguous x into out and mask (x's dtype and shape): element i is kept
// when uniform_closed_open(word) >= p, mask = kept ? 1 / (1 - p) : 0 in compute_t, out = x * mask.
void dropout(const Tensor& x, const Tensor& out, const Tensor& mask, double p, uint64_t seed,
             uint64_t first);

}  // namespace cxr::cuda
