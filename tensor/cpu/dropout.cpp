// Dropout on the CPU with the counter-based Philox generator: element i of the draw is kept when
// the uniform from word i % 4 of block (first + i / 4) is >= p, so the mask depends only on
// (seed, generator offset, element index), never on the thread count. Kept elements are scaled by
// 1 / (1 - p) (inverted dropout, as torch.nn.functional.dropout). On a CUDA device the mask is
// drawn there (tensor/cuda/random.cu) from the same reserved blocks with the same decision
// (rng::bernoulli_value of tensor/random_math.h), so CPU and GPU training drop the same elements.
#include <cmath>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/random.h"
#include "tensor/nn_ops.h"
#include "tensor/random_math.h"

namespace cxr::raw {
namespace {

template <typename T>
void dropout_kernel(const T* x, T* out, T* mask, int64_t n, double p, uint64_t first,
                    const Generator& gen) {
  using C = compute_t<T>;
  const C scale = C(1.0 / (1.0 - p));
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= 32768)
  for (int64_t b = 0; b < blocks; ++b) {
    const std::array<uint32_t, 4> words = gen.block(first + uint64_t(b));
    for (int64_t l = 0; l < 4 && b * 4 + l < n; ++l) {
      const int64_t i = b * 4 + l;
      const C m = rng::bernoulli_value(words[size_t(l)], p) ? C(0) : scale;  // dropped w.p. p
      mask[i] = convert<T>(m);
      out[i] = convert<T>(C(x[i]) * m);
    }
  }
}

}  // namespace

DropoutResult dropout(const Tensor& x_in, double p, Generator& gen) {
  CXR_CHECK(x_in.defined() && is_floating(x_in.dtype()), "dropout: expected a floating input, got ",
            x_in.defined() ? describe(x_in) : std::string("undefined"));
  CXR_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p);
  DropoutResult r;
  if (p == 0.0) {  // identity; no random numbers are drawn
    r.out = clone(x_in);
    r.mask = ones_like(x_in);
    return r;
  }
  if (p == 1.0) {  // everything dropped; no random numbers are drawn
    r.out = zeros_like(x_in);
    r.mask = zeros_like(x_in);
    return r;
  }
  Tensor x = contiguous(x_in);
  r.out = empty_like(x);
  r.mask = empty_like(x);
  const int64_t n = x.numel();
  const uint64_t first = gen.reserve(uint64_t((n + 3) / 4));
  if constexpr (kCudaBuilt) {
    if (x.device().is_cuda()) {
      cuda::dropout(x, r.out, r.mask, p, gen.seed(), first);
      return r;
    }
  }
  CXR_DISPATCH_FLOAT(x.dtype(), "dropout", [&]<typename T>() {
    dropout_kernel<T>(x.data<T>(), r.out.data<T>(), r.mask.data<T>(), n, p, first, gen);
  });
  return r;
}

}  // namespace cxr::raw
