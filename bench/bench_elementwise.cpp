// Elementwise ops and reductions on large float32 tensors against memcpy. Each row reports
//   GB/s         bytes the op must move (inputs read + output written) per second
//   memcpy_GB/s  an OpenMP-parallel memcpy moving the same number of bytes (half read, half
//                written), cut into the same 128 KiB pieces as the elementwise loops, timed
//                alternately with the op in the same loop
//   vs_memcpy    GB/s / memcpy_GB/s (1.0 = at the copy bandwidth)
// Out-of-place ops include allocating their output, as every caller pays it; the "_" rows run
// the in-place form (no allocation) to show the kernel alone.
// Threads: OMP_NUM_THREADS (default: all cores). Sizes: 16 MiB and 64 MiB per tensor.
//
//   build/<dir>/bench/bench_elementwise --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>   // timing of the loop and of the memcpy reference
#include <cstring>  // std::memcpy
#include <functional>
#include <vector>

#include "tensor/ops.h"

namespace {

using namespace cxr;

// A parallel memcpy moving `traffic` bytes (traffic / 2 read, traffic / 2 written), cut into the
// elementwise loops' parallel grain (32768 floats).
class Memcpy {
 public:
  explicit Memcpy(double traffic)
      : bytes_(int64_t(traffic / 2)),
        src_(static_cast<size_t>(bytes_), 1),
        dst_(static_cast<size_t>(bytes_), 0) {}
  void operator()() {
    constexpr int64_t kPiece = 32768 * 4;
    const int64_t pieces = (bytes_ + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pieces; ++p)
      std::memcpy(dst_.data() + p * kPiece, src_.data() + p * kPiece,
                  size_t(std::min(kPiece, bytes_ - p * kPiece)));
    benchmark::DoNotOptimize(dst_.data());
  }

 private:
  int64_t bytes_;
  std::vector<char> src_, dst_;
};

// Times `op` and, interleaved with it (so both see the same machine load), the memcpy reference;
// the benchmark's own time is the op's (manual time: the work runs on OpenMP threads). `reset`
// (untimed, every 16 iterations) restores the input of an in-place op before its values drift
// into subnormals or infinities.
void run(benchmark::State& state, const std::function<void()>& op, double traffic,
         const std::function<void()>& reset = {}) {
  Memcpy copy(traffic);
  op();  // warm-up: first-touch page faults
  copy();
  double t_op = 0, t_copy = 0;
  int64_t iteration = 0;
  for (auto _ : state) {
    if (reset && iteration++ % 16 == 0) reset();
    const auto t0 = std::chrono::steady_clock::now();
    op();
    const auto t1 = std::chrono::steady_clock::now();
    copy();
    const auto t2 = std::chrono::steady_clock::now();
    const double op_s = std::chrono::duration<double>(t1 - t0).count();
    t_op += op_s;
    t_copy += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(op_s);
  }
  const double n = double(state.iterations());
  state.counters["GB/s"] = traffic * n / t_op * 1e-9;
  state.counters["memcpy_GB/s"] = traffic * n / t_copy * 1e-9;
  state.counters["vs_memcpy"] = t_copy / t_op;
}

Tensor randn(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return raw::randn(s, gen);
}

constexpr int64_t kRow = 1024;  // row length of the 2-D layouts

// ---- binary -----------------------------------------------------------------------------------

void BM_binary(benchmark::State& state, BinaryOp op) {
  const int64_t n = state.range(0);
  Tensor a = randn({n}, 1), b = randn({n}, 2);
  run(
      state, [&] { benchmark::DoNotOptimize(raw::binary(op, a, b).data_ptr()); }, 12.0 * n);
}

void BM_binary_inplace(benchmark::State& state, BinaryOp op) {
  const int64_t n = state.range(0);
  Tensor a0 = randn({n}, 1), a = raw::clone(a0), b = raw::add(raw::mul(randn({n}, 2), 0.1), 1.0);
  run(
      state, [&] { raw::binary_(op, a, b); }, 12.0 * n, [&] { raw::copy_(a, a0); });
}

// [n / 1024, 1024] op [1024] (a bias row) or op [n / 1024, 1] (a per-row scale).
void BM_binary_broadcast(benchmark::State& state, BinaryOp op, bool row) {
  const int64_t n = state.range(0), rows = n / kRow;
  Tensor a = randn({rows, kRow}, 1);
  Tensor b = row ? randn({kRow}, 2) : randn({rows, 1}, 2);
  run(
      state, [&] { benchmark::DoNotOptimize(raw::binary(op, a, b).data_ptr()); },
      8.0 * n + 4.0 * double(b.numel()));
}

// ---- unary ------------------------------------------------------------------------------------

void BM_unary(benchmark::State& state, UnaryOp op) {
  const int64_t n = state.range(0);
  Tensor x = randn({n}, 3);
  run(
      state, [&] { benchmark::DoNotOptimize(raw::unary(op, x).data_ptr()); }, 8.0 * n);
}

void BM_unary_inplace(benchmark::State& state, UnaryOp op) {
  const int64_t n = state.range(0);
  Tensor x0 = randn({n}, 3), x = raw::clone(x0);
  run(
      state, [&] { raw::unary_(op, x); }, 8.0 * n, [&] { raw::copy_(x, x0); });
}

// ---- reductions -------------------------------------------------------------------------------

// sum / mean of [n / 1024, 1024] over the last dim, the first dim, or all dims.
enum class Over { Last, First, All };

void BM_reduce(benchmark::State& state, bool mean, Over over) {
  const int64_t n = state.range(0), rows = n / kRow;
  Tensor x = randn({rows, kRow}, 4);
  const std::vector<int64_t> dims =
      over == Over::Last ? std::vector<int64_t>{1}
                         : (over == Over::First ? std::vector<int64_t>{0} : std::vector<int64_t>{});
  const double out = over == Over::Last ? double(rows) : (over == Over::First ? double(kRow) : 1.0);
  run(
      state,
      [&] { benchmark::DoNotOptimize((mean ? raw::mean(x, dims) : raw::sum(x, dims)).data_ptr()); },
      4.0 * double(n) + 4.0 * out);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(int64_t(1) << 22)->Arg(int64_t(1) << 24)->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK_CAPTURE(BM_binary, add, BinaryOp::Add)->Apply(sizes);
BENCHMARK_CAPTURE(BM_binary, mul, BinaryOp::Mul)->Apply(sizes);
BENCHMARK_CAPTURE(BM_binary_inplace, add_, BinaryOp::Add)->Apply(sizes);
BENCHMARK_CAPTURE(BM_binary_inplace, mul_, BinaryOp::Mul)->Apply(sizes);
BENCHMARK_CAPTURE(BM_binary_broadcast, add_row, BinaryOp::Add, true)->Apply(sizes);
BENCHMARK_CAPTURE(BM_binary_broadcast, mul_column, BinaryOp::Mul, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary, exp, UnaryOp::Exp)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary, gelu, UnaryOp::Gelu)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary, silu, UnaryOp::Silu)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary_inplace, exp_, UnaryOp::Exp)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary_inplace, silu_, UnaryOp::Silu)->Apply(sizes);
BENCHMARK_CAPTURE(BM_unary_inplace, gelu_, UnaryOp::Gelu)->Apply(sizes);
BENCHMARK_CAPTURE(BM_reduce, sum_last, false, Over::Last)->Apply(sizes);
BENCHMARK_CAPTURE(BM_reduce, sum_first, false, Over::First)->Apply(sizes);
BENCHMARK_CAPTURE(BM_reduce, sum_all, false, Over::All)->Apply(sizes);
BENCHMARK_CAPTURE(BM_reduce, mean_last, true, Over::Last)->Apply(sizes);
BENCHMARK_CAPTURE(BM_reduce, mean_all, true, Over::All)->Apply(sizes);

BENCHMARK_MAIN();
