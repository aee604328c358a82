// The GEMM driver: Goto / BLIS five loops (Goto & van de Geijn, ACM TOMS 34(3) 2008; BLIS
// docs/Multithreading.md) around the per-ISA micro-kernels of gemm_kernels.h, with packing from
// general strides, OpenMP threading over M (or N) and run-time ISA dispatch.
//
//   for jc in N step NC           loop 5
//     for pc in K step KC         loop 4: B~ = pack B[pc:pc+KC, jc:jc+NC] (L3, shared by threads)
//       for ic in M step MC       loop 3: A~ = pack A[ic:ic+MC, pc:pc+KC] (L2, one per thread)
//         for jr in NC step NR    loop 2: the B~ micro-panel stays in L1
//           for ir in MC step MR  loop 1: micro-kernel, C tile += A~ micro-panel x B~ micro-panel
//
// C is computed column-major (the micro-kernels store columns); a row-major C is computed as C^T.
#include "tensor/cpu/gemm.h"

#include <immintrin.h>  // _mm_pause (SSE2, baseline x86-64)
#include <omp.h>        // omp_get_max_threads, omp_get_thread_num, omp_in_parallel

#include <algorithm>  // std::min, std::max
#include <atomic>     // the team barrier
#include <chrono>     // the barrier's spin limit
#include <cstdlib>    // std::aligned_alloc, std::free, std::getenv
#include <cstring>    // std::strcmp
#include <memory>     // std::unique_ptr
#include <vector>

#include "tensor/cpu/gemm_kernels.h"
#include "tensor/error.h"

namespace cxr::cpu {
namespace {

using gemm_detail::GemmKernel;
using gemm_detail::MicroKernel;

// An operand as the packing sees it: lines (the rows of A, the columns of B) along the reduction
// index k; the value of (line l, index p) is data[l*stride_line + p*stride_k], unless `source`
// produces the panels itself.
template <typename T>
struct Operand {
  const T* data;
  int64_t stride_line, stride_k;
  const PanelSource<T>* source;
};

// A stored A operand: its lines are its rows. A stored B operand: its lines are its columns, so
// the strides swap. A B produced by a PanelSource.
template <typename T>
Operand<T> stored_a(const T* a, int64_t rsa, int64_t csa) {
  return {a, rsa, csa, nullptr};
}
template <typename T>
Operand<T> stored_b(const T* b, int64_t rsb, int64_t csb) {
  return {b, csb, rsb, nullptr};
}
template <typename T>
Operand<T> sourced(const PanelSource<T>& source) {
  return {nullptr, 0, 0, &source};
}

// One GEMM call: C[i,j] = alpha * sum_p a(i, p) b(j, p) + beta * C[i,j], C[i,j] at c[i*rsc +
// j*csc].
template <typename T>
struct Problem {
  int64_t m, n, k;
  T alpha;
  Operand<T> a, b;
  T beta;
  T* c;
  int64_t rsc, csc;
};

// C^T = B^T A^T: the same product with the roles of rows and columns exchanged (A's lines, its
// rows, are the lines of the new B, its columns).
template <typename T>
Problem<T> transposed(const Problem<T>& p) {
  return {p.n, p.m, p.k, p.alpha, p.b, p.a, p.beta, p.c, p.csc, p.rsc};
}

// A block of lines of an operand, as one packing call sees it: lines [line0, line0 + len), packed
// into panels of width w, the first of which is panel number panel0 of the destination buffer.
template <typename T>
struct Block {
  const Operand<T>* op;
  int64_t line0, len, panel0, w;
};

// Packs reduction indices [k0, k0 + kc) of a block into `buffer` (panels w * kc values apart).
template <typename T>
void pack(const GemmKernel<T>& kr, const Block<T>& b, int64_t k0, int64_t kc, T* buffer) {
  if (b.len <= 0) return;
  T* dst = buffer + b.panel0 * b.w * kc;
  const Operand<T>& op = *b.op;
  if (op.source != nullptr) {
    op.source->pack(b.line0, b.len, k0, kc, static_cast<int>(b.w), dst);
    return;
  }
  kr.pack(b.len, kc, op.data + b.line0 * op.stride_line + k0 * op.stride_k, op.stride_line,
          op.stride_k, static_cast<int>(b.w), dst, b.w * kc);
}

// The cache lines that packing a block will read, handed to the micro-kernels of the block
// computed before it, which prefetch them into L2 a line per k step (gemm_kernels.h). Packing
// reads its source in short runs far apart (a cache line per line per step when it transposes),
// which from memory is slow however far ahead the packer prefetches: a convolution's weight
// gradient, both operands read along pixels from memory, spent 28 % of its time there. Fetched
// during the arithmetic instead, the reads overlap it. Stored operands with one contiguous
// direction are listed, and PanelSources list what they read; the list stops at its capacity
// (kMaxPrefetchLines).
class PrefetchList {
 public:
  explicit PrefetchList(const void** lines) : lines_(lines) {}

  void clear() { count_ = 0; }

  // Adds the reads of part `part` of `parts` of the block (its contiguous runs split evenly).
  template <typename T>
  void add(const Block<T>& b, int64_t k0, int64_t kc, int64_t part = 0, int64_t parts = 1) {
    const Operand<T>& op = *b.op;
    if (b.len <= 0 || kc <= 0) return;
    if (op.source != nullptr) {  // the source's own list, for the whole block
      if (part == 0)
        op.source->reads(b.line0, b.len, k0, kc,
                         [&](const void* p, int64_t bytes) { add_range(p, bytes); });
      return;
    }
    // The block's contiguous runs: its lines (k contiguous) or its k-slices (lines contiguous).
    const T* first = op.data + b.line0 * op.stride_line + k0 * op.stride_k;
    int64_t runs, run_length, run_stride;
    if (op.stride_k == 1) {
      runs = b.len, run_length = kc, run_stride = op.stride_line;
    } else if (op.stride_line == 1) {
      runs = kc, run_length = b.len, run_stride = op.stride_k;
    } else {
      return;
    }
    for (int64_t r = runs * part / parts; r < runs * (part + 1) / parts; ++r)
      add_range(first + r * run_stride, run_length * int64_t(sizeof(T)));
  }

  // Adds the cache lines of [p, p + bytes).
  void add_range(const void* p, int64_t bytes) {
    const auto begin = reinterpret_cast<uintptr_t>(p);
    const uintptr_t end = begin + static_cast<uintptr_t>(bytes);
    for (uintptr_t line = begin & ~uintptr_t(kLineBytes - 1); line < end; line += kLineBytes) {
      if (count_ == kMaxPrefetchLines) return;
      lines_[count_++] = reinterpret_cast<const void*>(line);
    }
  }

  // Spreads the list over `tiles` micro-kernel calls of k steps each: call t's share.
  void share(int64_t t, int64_t tiles, int64_t k, const void* const** pf, int64_t* npf) const {
    const int64_t per_tile = std::min(k, (count_ + tiles - 1) / tiles);
    *pf = lines_ + std::min(count_, t * per_tile);
    *npf = std::clamp<int64_t>(count_ - t * per_tile, 0, per_tile);
  }

  // 192 KiB: next to the packed blocks in a 1 MiB L2 (a larger next block is prefetched in part).
  static constexpr int64_t kMaxPrefetchLines = 3072;

 private:
  static constexpr int64_t kLineBytes = 64;
  const void** lines_;
  int64_t count_ = 0;
};

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

// Splits `total` into equal blocks of at most `max_block` (rounded up to `align`), so that a K of
// 1.1 KC becomes two blocks of 0.55 KC rather than KC + 0.1 KC (OpenBLAS level3_thread.c halves
// the same way).
int64_t balanced_block(int64_t total, int64_t max_block, int64_t align) {
  const int64_t blocks = ceil_div(total, max_block);
  return std::min(round_up(ceil_div(total, blocks), align), round_up(total, align));
}

// A page-aligned buffer that only grows; kept per calling thread and reused across calls, so
// packing does not allocate (and fault in fresh pages) on every GEMM.
class PackBuffer {
 public:
  void* get(size_t bytes) {
    if (bytes > capacity_) {
      constexpr size_t kPage = 4096;
      const size_t size = (bytes + kPage - 1) / kPage * kPage;
      data_.reset(std::aligned_alloc(kPage, size));
      CXR_CHECK(data_ != nullptr, "gemm: cannot allocate ", size, " bytes of packing buffer");
      capacity_ = size;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data_;
  size_t capacity_ = 0;
};

// The packing buffers of one calling thread (see blocked_gemm for their roles). All are allocated
// before the parallel region, so nothing inside it can throw.
std::vector<PackBuffer>& workspace(size_t count) {
  thread_local std::vector<PackBuffer> buffers;
  if (buffers.size() < count) buffers.resize(count);
  return buffers;
}

// A barrier for one GEMM's thread team that spins for a short while and then sleeps (a futex, via
// std::atomic::wait). libgomp's barrier spins up to GOMP_SPINCOUNT = 300000 rounds (milliseconds)
// before sleeping; on this 2-core machine shared with other processes, a thread spinning there
// keeps its core while its partner waits for a time slice, and a GEMM with a dozen barriers then
// runs ten times slower. Sleeping hands the core over at once. The spin covers the usual skew
// between the threads (microseconds), so an uncontended barrier costs no system call.
class TeamBarrier {
 public:
  void arrive_and_wait(int team) {
    const uint32_t generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == team) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      generation_.notify_all();
      return;
    }
    using Clock = std::chrono::steady_clock;
    const auto spin_until = Clock::now() + std::chrono::microseconds(50);
    for (int round = 1; generation_.load(std::memory_order_acquire) == generation; ++round) {
      _mm_pause();
      if (round % 64 == 0 && Clock::now() > spin_until) {
        while (generation_.load(std::memory_order_acquire) == generation)
          generation_.wait(generation, std::memory_order_acquire);
        return;
      }
    }
  }

 private:
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> generation_{0};
};

// Below this many multiply-adds a second thread costs more (waking it, the barriers) than it saves;
// OpenBLAS interface/gemm.c uses the same limit, 65536 x GEMM_MULTITHREAD_THRESHOLD (4).
constexpr double kMinParallelMacs = 262144.0;

// Computes one tile of C from packed micro-panels: straight into C when its columns are
// contiguous and the tile has all MR rows, otherwise through a contiguous copy (BLIS's temporary
// C tile) with the same kernel, so every element gets exactly the same arithmetic either way.
template <typename T>
void compute_tile(const GemmKernel<T>& kr, int64_t kc, T alpha, const T* a_panel, const T* b_panel,
                  T beta, T* c, int64_t rsc, int64_t csc, int64_t m_tile, int64_t n_tile,
                  const void* const* pf, int64_t npf) {
  const MicroKernel<T> ukr = kr.ukr[n_tile - 1];
  if (m_tile == kr.mr && rsc == 1) {
    ukr(kc, alpha, a_panel, b_panel, beta, c, csc, pf, npf);
    return;
  }
  alignas(64) T tile[32 * 12];  // no kernel has a larger MR x NR
  const int64_t mr = kr.mr;
  if (beta != T(0))
    for (int64_t j = 0; j < n_tile; ++j)
      for (int64_t i = 0; i < m_tile; ++i) tile[i + j * mr] = c[i * rsc + j * csc];
  ukr(kc, alpha, a_panel, b_panel, beta, tile, mr, pf, npf);
  for (int64_t j = 0; j < n_tile; ++j)
    for (int64_t i = 0; i < m_tile; ++i) c[i * rsc + j * csc] = tile[i + j * mr];
}

// Runs the blocked product; fastest when rsc == 1 (other C strides go through a temporary tile).
//
// Threads split M when M is large: all pack the shared B~ of a (jc, pc) step, then take MC-row
// blocks of M one at a time from a shared counter, packing each block's A~ into their own buffer
// (BLIS and OpenBLAS also split M and share B~ on 2 threads, spec/kernels.md §1.2-1.3). When M fits
// one MC block and is the smaller side, the roles swap: all pack the shared A~, then take chunks
// of B~ micro-panels, packing each chunk themselves. Taking work from a counter rather than in
// fixed shares keeps both cores busy when one thread is slowed (this machine is shared with other
// processes); the shared operand is double-buffered by step parity, so one barrier per step
// suffices. The K loop is never split, and which thread computes a tile does not change its
// arithmetic, so results are bitwise independent of the thread count and the scheduling.
template <typename T>
void blocked_gemm(const GemmKernel<T>& kr, const Problem<T>& p) {
  const int64_t mr = kr.mr, nr = kr.nr;
  const int64_t kc_max = balanced_block(p.k, kr.kc, 8);
  const int64_t nc_max = balanced_block(p.n, kr.nc, nr);

  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (static_cast<double>(p.m) * p.n * p.k < kMinParallelMacs) threads = 1;
  const bool split_m = p.m > kr.mc || p.m >= p.n;
  // Work units: about 4 per thread so a slowed thread can be covered, but MC-row blocks no smaller
  // than needed (long blocks read a strided A in long contiguous runs), and at least one panel.
  // Splitting N, about 8 per thread: every K step ends at a barrier, and with a long K (a
  // convolution over merged small images: ResNet-50 layer4, K = 4608 in 18 steps) the last unit
  // of each step is waited for 18 times; halving the units' size took those forward passes from
  // about 290 to 317 GFLOP/s on two threads.
  const int64_t mc_max =
      split_m ? std::min(kr.mc, round_up(ceil_div(p.m, 4 * threads), mr)) : round_up(p.m, mr);
  const int64_t chunk_panels =
      split_m ? 0
              : std::max<int64_t>(1, ceil_div(ceil_div(std::min(p.n, nc_max), nr), 8 * threads));
  const int64_t m_blocks = ceil_div(p.m, mc_max);
  threads = static_cast<int>(std::min<int64_t>(
      threads, split_m ? m_blocks : ceil_div(ceil_div(std::min(p.n, nc_max), nr), chunk_panels)));

  // Buffers: [0], [1] the shared operand of even and odd steps; [2 + t] thread t's own A~ (split
  // M) or, at [2], the one B~ whose chunks the threads pack (split N); after those, each thread's
  // prefetch list.
  const size_t a_size = sizeof(T) * kc_max * mc_max;
  const size_t b_size = sizeof(T) * kc_max * round_up(nc_max, nr);
  const size_t owns = split_m ? threads : 1;
  std::vector<PackBuffer>& ws = workspace(2 + owns + threads);
  T* shared[2];
  for (int i = 0; i < 2; ++i) shared[i] = static_cast<T*>(ws[i].get(split_m ? b_size : a_size));
  std::vector<T*> own(owns);
  for (size_t t = 0; t < owns; ++t)
    own[t] = static_cast<T*>(ws[2 + t].get(split_m ? a_size : b_size));
  std::vector<const void**> prefetch_lines(threads);
  for (int t = 0; t < threads; ++t)
    prefetch_lines[t] = static_cast<const void**>(
        ws[2 + owns + t].get(sizeof(const void*) * PrefetchList::kMaxPrefetchLines));

  // The B columns of the step that starts at column jc, and their B~ micro-panels.
  auto nc_of = [&](int64_t jc) { return std::min(nc_max, p.n - jc); };
  auto n_panels_of = [&](int64_t jc) { return ceil_div(nc_of(jc), nr); };
  // The shared operand's panels of a step with B columns from jc, the ones `tid` of `team` packs.
  auto shared_block = [&](int64_t jc, int tid, int team) {
    const int64_t nc = nc_of(jc);
    const int64_t panels = split_m ? n_panels_of(jc) : ceil_div(p.m, mr);
    const int64_t first = panels * tid / team, last = panels * (tid + 1) / team;
    return split_m
               ? Block<T>{&p.b, jc + first * nr, std::min(nc, last * nr) - first * nr, first, nr}
               : Block<T>{&p.a, first * mr, std::min(p.m, last * mr) - first * mr, first, mr};
  };
  // Work unit u of a step: its rows [i0, i1) and B~ panels [q0, q1), and the block of its own
  // operand that it packs.
  struct Unit {
    int64_t i0, i1, q0, q1;
  };
  auto unit_of = [&](int64_t jc, int64_t u) {
    const int64_t n_panels = n_panels_of(jc);
    return split_m ? Unit{u * mc_max, std::min(p.m, (u + 1) * mc_max), 0, n_panels}
                   : Unit{0, p.m, u * chunk_panels, std::min(n_panels, (u + 1) * chunk_panels)};
  };
  auto own_block = [&](int64_t jc, const Unit& w) {
    const int64_t nc = nc_of(jc);
    return split_m ? Block<T>{&p.a, w.i0, w.i1 - w.i0, 0, mr}
                   : Block<T>{&p.b, jc + w.q0 * nr, std::min(nc, w.q1 * nr) - w.q0 * nr, w.q0, nr};
  };
  auto units_of = [&](int64_t jc) {
    return split_m ? m_blocks : ceil_div(n_panels_of(jc), chunk_panels);
  };

  TeamBarrier barrier;
  std::atomic<int64_t> next_unit[2] = {0, 0};  // the work counter of even and odd steps
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int tid = omp_get_thread_num();
    const int team = omp_get_num_threads();
    auto sync = [&] {
      if (team > 1) barrier.arrive_and_wait(team);
    };
    PrefetchList prefetch(prefetch_lines[tid]);
    int64_t step = 0;
    for (int64_t jc = 0; jc < p.n; jc += nc_max) {
      for (int64_t pc = 0; pc < p.k; pc += kc_max, ++step) {
        const int64_t kc = std::min(kc_max, p.k - pc);
        const T beta = pc == 0 ? p.beta : T(1);  // later K blocks accumulate onto the first
        // The step after this one, if any: its B columns from jc_next, K block [pc_next, +kc_next).
        const bool last_step = pc + kc_max >= p.k && jc + nc_max >= p.n;
        const int64_t jc_next = pc + kc_max < p.k ? jc : jc + nc_max;
        const int64_t pc_next = pc + kc_max < p.k ? pc + kc_max : 0;
        const int64_t kc_next = std::min(kc_max, p.k - pc_next);
        T* shared_pack = shared[step % 2];
        // Pack this thread's share of the shared operand; after the barrier all of it is ready
        // and every thread has finished the previous step (whose buffer is packed next).
        pack(kr, shared_block(jc, tid, team), pc, kc, shared_pack);
        sync();
        if (tid == 0) next_unit[(step + 1) % 2].store(0, std::memory_order_relaxed);
        const int64_t units = units_of(jc);
        int64_t taken = 0;  // units this thread has taken in this step
        for (int64_t u;
             (u = next_unit[step % 2].fetch_add(1, std::memory_order_relaxed)) < units;) {
          const Unit w = unit_of(jc, u);
          T* own_pack = own[split_m ? tid : 0];
          pack(kr, own_block(jc, w), pc, kc, own_pack);
          const T* a_pack = split_m ? own_pack : shared_pack;
          const T* b_pack = split_m ? shared_pack : own_pack;
          // What to prefetch while computing. Alone: the next unit's block, a part of the next
          // step's shared operand (spread over the units) and, at the last unit, the next step's
          // first unit. In a team, whose units are taken as they come: a part of this thread's
          // share of the next step's shared operand, spread over the units it can expect to take.
          prefetch.clear();
          if (team == 1) {
            if (u + 1 < units) prefetch.add(own_block(jc, unit_of(jc, u + 1)), pc, kc);
            if (!last_step) {
              prefetch.add(shared_block(jc_next, tid, team), pc_next, kc_next, u, units);
              if (u + 1 == units)
                prefetch.add(own_block(jc_next, unit_of(jc_next, 0)), pc_next, kc_next);
            }
          } else if (!last_step && taken < ceil_div(units, team)) {
            prefetch.add(shared_block(jc_next, tid, team), pc_next, kc_next, taken,
                         ceil_div(units, team));
          }
          ++taken;
          // Loop 2 (JR) over B~ micro-panels, loop 1 (IR) over A~ micro-panels of the unit.
          const int64_t tiles = (w.q1 - w.q0) * ceil_div(w.i1 - w.i0, mr);
          int64_t t = 0;
          for (int64_t q = w.q0; q < w.q1; ++q) {
            const int64_t j = jc + q * nr;
            for (int64_t i = w.i0; i < w.i1; i += mr, ++t) {
              const void* const* pf;
              int64_t npf;
              prefetch.share(t, tiles, kc, &pf, &npf);
              compute_tile(kr, kc, p.alpha, a_pack + (i - (split_m ? w.i0 : 0)) * kc,
                           b_pack + q * nr * kc, beta, p.c + i * p.rsc + j * p.csc, p.rsc, p.csc,
                           std::min(mr, w.i1 - i), std::min(nr, p.n - j), pf, npf);
            }
          }
        }
      }
    }
    sync();  // wait here (sleeping if long) rather than in the OpenMP join (which spins)
  }
}

template <typename T>
void gemm(const char* op, const GemmKernel<T>& kr, const Problem<T>& p) {
  CXR_CHECK(p.m >= 0 && p.n >= 0 && p.k >= 0, op, ": sizes must be non-negative, got M=", p.m,
            " N=", p.n, " K=", p.k);
  if (p.m == 0 || p.n == 0) return;
  CXR_CHECK(p.c != nullptr, op, ": C is null");
  if (p.k == 0 || p.alpha == T(0)) {  // C = beta * C; A and B are not read (BLAS semantics)
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.n; ++j) {
        T& c = p.c[i * p.rsc + j * p.csc];
        c = p.beta == T(0) ? T(0) : p.beta * c;
      }
    return;
  }
  CXR_CHECK((p.a.data != nullptr || p.a.source != nullptr) &&
                (p.b.data != nullptr || p.b.source != nullptr),
            op, ": A or B is null");
  // The micro-kernels store columns of C; if C's columns are the strided direction (row-major C),
  // compute C^T = B^T A^T instead, so the kernel's vectors run along the contiguous direction.
  const bool c_row_major = std::abs(p.csc) < std::abs(p.rsc);
  blocked_gemm(kr, c_row_major ? transposed(p) : p);
}

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

constexpr const char* kIsaNames[] = {"scalar", "avx2", "avx512"};

Isa parse_isa(const char* name, const char* what) {
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(name, kIsaNames[i]) == 0) return static_cast<Isa>(i);
  CXR_FAIL("gemm: ", what, " must be avx512, avx2 or scalar, got '", name, "'");
}

Isa best_supported_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kScalar;
}

// The ISA in use: the best this CPU supports, lowered by CXR_GEMM_ISA (read once).
Isa active_isa() {
  static const Isa isa = [] {
    const Isa best = best_supported_isa();
    const char* env = std::getenv("CXR_GEMM_ISA");
    if (env == nullptr || *env == '\0') return best;
    return std::min(best, parse_isa(env, "CXR_GEMM_ISA"));
  }();
  return isa;
}

// The kernel descriptors are built on first use and only for a supported ISA: the getters live in
// files compiled for that ISA and may themselves use its instructions.
const GemmKernel<float>& sgemm_kernel(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: {
      static const GemmKernel<float> kernel = gemm_detail::sgemm_kernel_avx512();
      return kernel;
    }
    case Isa::kAvx2: {
      static const GemmKernel<float> kernel = gemm_detail::sgemm_kernel_avx2();
      return kernel;
    }
    case Isa::kScalar:
      break;
  }
  static const GemmKernel<float> kernel = gemm_detail::sgemm_kernel_scalar();
  return kernel;
}

const GemmKernel<double>& dgemm_kernel(Isa isa) {
  if (isa == Isa::kAvx512) {
    static const GemmKernel<double> kernel = gemm_detail::dgemm_kernel_avx512();
    return kernel;
  }
  static const GemmKernel<double> kernel = gemm_detail::dgemm_kernel_scalar();
  return kernel;
}

}  // namespace

void sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa, int64_t csa,
           const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
           int64_t csc) {
  gemm("sgemm", sgemm_kernel(active_isa()),
       Problem<float>{M, N, K, alpha, stored_a(A, rsa, csa), stored_b(B, rsb, csb), beta, C, rsc,
                      csc});
}

void dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa, int64_t csa,
           const double* B, int64_t rsb, int64_t csb, double beta, double* C, int64_t rsc,
           int64_t csc) {
  gemm("dgemm", dgemm_kernel(active_isa()),
       Problem<double>{M, N, K, alpha, stored_a(A, rsa, csa), stored_b(B, rsb, csb), beta, C, rsc,
                       csc});
}

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa,
          const PanelSource<float>& B, float beta, float* C, int64_t rsc, int64_t csc) {
  gemm("sgemm", sgemm_kernel(active_isa()),
       Problem<float>{M, N, K, 1.0f, stored_a(A, rsa, csa), sourced(B), beta, C, rsc, csc});
}

void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsa, int64_t csa,
          const PanelSource<double>& B, double beta, double* C, int64_t rsc, int64_t csc) {
  gemm("dgemm", dgemm_kernel(active_isa()),
       Problem<double>{M, N, K, 1.0, stored_a(A, rsa, csa), sourced(B), beta, C, rsc, csc});
}

void pack_panels(int64_t len, int64_t k, const float* src, int64_t stride_len, int64_t stride_k,
                 int w, float* dst, int64_t panel_stride) {
  sgemm_kernel(active_isa()).pack(len, k, src, stride_len, stride_k, w, dst, panel_stride);
}

void pack_panels(int64_t len, int64_t k, const double* src, int64_t stride_len, int64_t stride_k,
                 int w, double* dst, int64_t panel_stride) {
  dgemm_kernel(active_isa()).pack(len, k, src, stride_len, stride_k, w, dst, panel_stride);
}

void sgemm_naive(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                 int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                 int64_t rsc, int64_t csc) {
  CXR_CHECK(M >= 0 && N >= 0 && K >= 0, "sgemm_naive: sizes must be non-negative, got M=", M,
            " N=", N, " K=", K);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc +=
            static_cast<double>(A[i * rsa + k * csa]) * static_cast<double>(B[k * rsb + j * csb]);
      float& c = C[i * rsc + j * csc];
      const double scaled = static_cast<double>(alpha) * acc;
      c = static_cast<float>(beta == 0.0f ? scaled : scaled + static_cast<double>(beta) * c);
    }
}

const char* gemm_isa() {
  return kIsaNames[static_cast<int>(active_isa())];
}

namespace gemm_detail {

bool gemm_isa_supported(const char* isa) {
  return parse_isa(isa, "the ISA") <= best_supported_isa();
}

void sgemm_with_isa(const char* isa, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t rsa, int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta,
                    float* C, int64_t rsc, int64_t csc) {
  CXR_CHECK(gemm_isa_supported(isa), "sgemm: this CPU does not support the ", isa, " kernel");
  gemm("sgemm", sgemm_kernel(parse_isa(isa, "the ISA")),
       Problem<float>{M, N, K, alpha, stored_a(A, rsa, csa), stored_b(B, rsb, csb), beta, C, rsc,
                      csc});
}

}  // namespace gemm_detail
}  // namespace cxr::cpu
