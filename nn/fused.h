// Internal helper of the optimizer-side code (optimizers, EMA, loss scaler): one pass over N
// same-shaped, same-dtype tensors, calling f(e0, e1, ...) with a reference to each tensor's
// element. Rows come from the strided loop of tensor/cpu/loops.h, so any layout works, large
// tensors are split across OpenMP threads, and results never depend on the thread count.
#pragma once

#include <array>
#include <utility>  // std::index_sequence

#include "tensor/cpu/loops.h"  // cpu::for_each_row

namespace cxr::nn::detail {

template <typename T, size_t N, typename F>
void for_each_element(const std::array<const Tensor*, N>& ts, F&& f) {
  cpu::for_each_row<int(N)>(
      ts[0]->sizes(), ts,
      [&](const std::array<char*, N>& ptrs, const std::array<int64_t, N>& strides, int64_t n) {
        [&]<size_t... I>(std::index_sequence<I...>) {
          if (((strides[I] == 1) && ...)) {  // the common case: contiguous rows, vectorisable
            for (int64_t j = 0; j < n; ++j) f(reinterpret_cast<T*>(ptrs[I])[j]...);
          } else {
            for (int64_t j = 0; j < n; ++j) f(reinterpret_cast<T*>(ptrs[I])[j * strides[I]]...);
          }
        }
        (std::make_index_sequence<N>{});
      });
}

}  // namespace cxr::nn::detail
