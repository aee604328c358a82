// run_items: a loop over independent work items that is either spread over the OpenMP threads or
// run in order on the calling thread.
#pragma once

#include <cstdint>  // int64_t

namespace cxr::cpu {

// Calls item(i) for i in [0, n), spread over the threads (dynamic, one item at a time) when
// `parallel`, else in order on this thread. Deliberately not `#pragma omp parallel for if
// (parallel)`: a serialized region still counts as a nesting level, so a parallel region opened
// by an item (a threaded GEMM, an im2col loop) would be a nested one, for which libgomp starts
// and ends fresh threads every time.
template <typename F>
void run_items(int64_t n, bool parallel, F&& item) {
  if (parallel) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) item(i);
  } else {
    for (int64_t i = 0; i < n; ++i) item(i);
  }
}

}  // namespace cxr::cpu
