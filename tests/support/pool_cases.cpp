// Pooling test cases (pool_cases.h).
#include "support/pool_cases.h"

namespace cxr::test {

raw::Pool2dParams pool_params(raw::Int2 kernel, raw::Int2 stride, raw::Int2 padding,
                              raw::Int2 dilation, bool ceil_mode, bool count_include_pad) {
  raw::Pool2dParams p;
  p.kernel = kernel, p.stride = stride, p.padding = padding, p.dilation = dilation;
  p.ceil_mode = ceil_mode, p.count_include_pad = count_include_pad;
  return p;
}

Tensor channels_last_copy(const Tensor& t) {
  if (t.dim() == 3) return raw::permute(raw::contiguous(raw::permute(t, {1, 2, 0})), {2, 0, 1});
  return raw::permute(raw::contiguous(raw::permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

const std::vector<PoolCase>& golden_max_pool_cases() {
  static const std::vector<PoolCase> cases = {
      {"k3s2p1", pool_params({3, 3}, {2, 2}, {1, 1})},
      {"ceil", pool_params({3, 3}, {2, 2}, {0, 0}, {1, 1}, true)},
      {"dil2", pool_params({3, 3}, {1, 1}, {1, 1}, {2, 2})},
      {"k2", pool_params({2, 2}, {2, 2}, {0, 0})},
      {"rect", pool_params({3, 2}, {2, 1}, {1, 0}, {1, 1}, true)},
  };
  return cases;
}

const std::vector<PoolCase>& golden_avg_pool_cases() {
  static const std::vector<PoolCase> cases = {
      {"k3s2p1_incl", pool_params({3, 3}, {2, 2}, {1, 1})},
      {"k3s2p1_excl", pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false)},
      {"ceil_incl", pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true)},
      {"ceil_excl", pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false)},
      {"k2", pool_params({2, 2}, {2, 2}, {0, 0})},
      {"rect", pool_params({3, 2}, {2, 1}, {1, 0}, {1, 1}, true, false)},
  };
  return cases;
}

}  // namespace cxr::test
