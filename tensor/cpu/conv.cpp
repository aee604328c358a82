// 2-D convolution on NCHW tensors as GEMMs (spec/kernels.md §2), per group and per chunk of images:
//   forward          Y[oc, p]  = W[oc, k] · col(X)[k, p]          (+ bias, written into Y first)
//   backward input   dcol[k, p] = Wᵀ[k, oc] · dY[oc, p], then col2im adds dcol into dX
//   backward weight  dW[oc, k] += dY[oc, p] · col(X)ᵀ[p, k]      (chunks summed in a fixed order)
// with k = (ic, kh, kw) and p = (oh, ow). A 1x1 stride-1 unpadded convolution needs no im2col: the
// image itself is the [IC, H·W] matrix. Images with few output pixels are grouped into one chunk
// (their columns side by side) so every GEMM has a useful width; large images are cut into column
// tiles in the forward pass.
//
// Threading (see Plan): the GEMM-sized items either run in parallel, each GEMM single-threaded
// inside the parallel region (robust when another process shares the cores: no barriers), or one
// after another with each GEMM and im2col/col2im threaded. Every output element is written by
// exactly one GEMM, col2im adds in a fixed order, and dW sums its chunks in an order fixed by the
// shape, so results are bitwise identical for any thread count.
//
// CUDA tensors are validated here and computed by tensor/cuda/conv.cu (cuDNN).
#include <omp.h>  // omp_get_max_threads

#include <algorithm>  // std::min, std::max, std::clamp, std::fill
#include <vector>

#include "tensor/backend.h"
#include "tensor/conv.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/prefetch.h"
#include "tensor/cpu/run_items.h"
#include "tensor/creation.h"
#include "tensor/cuda/conv.h"

namespace cxr::raw {
namespace {

using cpu::gemm;

// Sizes of one convolution. Output size (as torch): floor((H + 2p - d(K-1) - 1) / s) + 1.
struct ConvShape {
  int64_t n, c, h, w;        // input
  int64_t oc, kh, kw;        // weight [OC, C/groups, KH, KW]
  int64_t oh, ow;            // output
  int64_t groups, icg, ocg;  // channels per group
  int64_t sh, sw, ph, pw, dh, dw;

  int64_t kdim() const { return icg * kh * kw; }  // GEMM reduction length per group
  int64_t pixels() const { return oh * ow; }      // output pixels per image
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

std::string int2_str(Int2 v) {
  return detail::cat("(", v[0], ", ", v[1], ")");
}

// Validates a convolution of input `xs` with weight `ws` and returns its sizes.
ConvShape conv_shape(const char* op, const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  CXR_CHECK(xs.size() == 4, op, ": expected a 4-D input [N, C, H, W], got shape ", shape_str(xs));
  CXR_CHECK(ws.size() == 4, op, ": expected a 4-D weight [OC, C/groups, KH, KW], got shape ",
            shape_str(ws));
  CXR_CHECK(p.stride[0] > 0 && p.stride[1] > 0, op, ": stride must be positive, got ",
            int2_str(p.stride));
  CXR_CHECK(p.dilation[0] > 0 && p.dilation[1] > 0, op, ": dilation must be positive, got ",
            int2_str(p.dilation));
  CXR_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0, op, ": padding must be non-negative, got ",
            int2_str(p.padding));
  CXR_CHECK(p.groups > 0, op, ": groups must be positive, got ", p.groups);
  ConvShape s{};
  s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3];
  s.oc = ws[0], s.kh = ws[2], s.kw = ws[3];
  s.groups = p.groups;
  CXR_CHECK(s.c % p.groups == 0, op, ": groups ", p.groups, " do not divide the ", s.c,
            " input channels of input shape ", shape_str(xs));
  CXR_CHECK(s.oc % p.groups == 0, op, ": groups ", p.groups, " do not divide the ", s.oc,
            " output channels of weight shape ", shape_str(ws));
  s.icg = s.c / p.groups, s.ocg = s.oc / p.groups;
  CXR_CHECK(ws[1] == s.icg, op, ": weight shape ", shape_str(ws), " expects ", ws[1] * p.groups,
            " input channels (", ws[1], " per group x ", p.groups, " groups), but input shape ",
            shape_str(xs), " has ", s.c);
  CXR_CHECK(s.kh > 0 && s.kw > 0, op, ": empty kernel in weight shape ", shape_str(ws));
  s.sh = p.stride[0], s.sw = p.stride[1];
  s.ph = p.padding[0], s.pw = p.padding[1];
  s.dh = p.dilation[0], s.dw = p.dilation[1];
  const int64_t eff_h = s.dh * (s.kh - 1) + 1, eff_w = s.dw * (s.kw - 1) + 1;
  const int64_t pad_h = s.h + 2 * s.ph, pad_w = s.w + 2 * s.pw;
  CXR_CHECK(pad_h >= eff_h && pad_w >= eff_w, op, ": padded input size (", pad_h, " x ", pad_w,
            ") is smaller than the dilated kernel size (", eff_h, " x ", eff_w,
            ") for input shape ", shape_str(xs), " and weight shape ", shape_str(ws));
  s.oh = (pad_h - eff_h) / s.sh + 1;
  s.ow = (pad_w - eff_w) / s.sw + 1;
  return s;
}

void check_tensor(const char* op, const char* what, const Tensor& t) {
  CXR_CHECK(t.defined(), op, ": ", what, " is undefined");
  CXR_CHECK(is_floating(t.dtype()), op, ": ", what, " must be floating, got ", describe(t));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  CXR_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", describe(a), " and ", describe(b));
}

// A 4-D tensor's element strides (n, c, h, w).
struct Strides4 {
  int64_t n, c, h, w;
};
Strides4 strides4(const Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

// Scratch memory that only grows, one per calling thread and slot, reused across calls so large
// im2col buffers are not faulted in afresh on every convolution.
template <typename T>
T* scratch(int slot, int64_t count) {
  thread_local std::vector<T> buffers[3];  // slot 0: dcol, 1: a chunk matrix, 2: Im2col blocks
  std::vector<T>& b = buffers[slot];
  if (int64_t(b.size()) < count) b.resize(size_t(count));
  return b.data();
}

// Where kernel tap k = (ic, ki, kj) reads from an input of strides xs: output pixel (oh, ow) reads
// input row oh*sh + row_off and input column ow*sw + col_off of plane `plane` (an offset), which
// lies inside the image for the output columns [ow_lo, ow_hi).
struct Tap {
  int64_t plane, row_off, col_off, ow_lo, ow_hi;
};
Tap conv_tap(const ConvShape& s, int64_t plane_stride, int64_t k) {
  const int64_t taps = s.kh * s.kw;
  const int64_t ic = k / taps, ki = (k % taps) / s.kw, kj = k % s.kw;
  const int64_t off_w = kj * s.dw - s.pw;
  const int64_t ow_lo = off_w >= 0 ? 0 : std::min(s.ow, (-off_w + s.sw - 1) / s.sw);
  const int64_t ow_hi = s.w - 1 - off_w < 0 ? 0 : std::min(s.ow, (s.w - 1 - off_w) / s.sw + 1);
  return {ic * plane_stride, ki * s.dh - s.ph, off_w, ow_lo, ow_hi};
}

// im2col for rows [k_begin, k_end) of the columns [j0, j0 + count) of a group of images: col[k, j]
// is the input pixel that kernel tap k of output pixel p0 + j % np of image j / np reads (0 in the
// padding), the columns image by image. `x` points at channel 0 of the group in image 0 (image i
// at x + i * xs.n); row k is written at col + (k - k_begin) * ld, column j0 first. The columns are
// cut into runs along output rows once, and each tap's geometry is worked out once, so the loops
// that copy hold no divisions. `taps` holds conv_tap(s, xs.c, k) for every k of the group.
template <typename T>
void im2col_rows(const T* x, const Strides4& xs, const ConvShape& s, const Tap* taps, int64_t p0,
                 int64_t np, int64_t j0, int64_t count, int64_t k_begin, int64_t k_end, T* col,
                 int64_t ld) {
  struct Run {
    int64_t j;         // the run's first column, relative to j0
    int64_t oh;        // its output row
    int64_t ow0, ow1;  // its output columns
    const T* image;    // channel 0 of the group in its image
  };
  constexpr int64_t kMaxRuns = 64;
  constexpr int64_t kTapsAhead = 4;
  Run runs[kMaxRuns];
  int64_t span_end[kMaxRuns];          // runs [r, span_end[r]) are copied as one block (see below)
  const int64_t sw = s.sw, xw = xs.w;  // locals: the copy loops must not reload them
  const bool one_tap = s.kh == 1 && s.kw == 1;
  // With unit strides and input rows as long as output rows (a "same" convolution), the pixels
  // that a tap reads for consecutive whole output rows are consecutive in the input, as the
  // columns are: such runs are copied as one block, and then the columns in the padding are
  // zeroed. A ResNet-50 layer1 run is just 56 values, and handling each on its own cost more than
  // copying it.
  const bool rows_join = s.sh == 1 && sw == 1 && xw == 1 && xs.h == s.ow;

  // Writes run r of tap `tap` into row `row` of col.
  auto copy_run = [&](const Tap& tap, const Run& run, T* row) {
    T* dst = row + run.j - run.ow0;  // dst[ow] for ow in [ow0, ow1)
    const int64_t ih = run.oh * s.sh + tap.row_off;
    if (ih < 0 || ih >= s.h) {
      std::fill(dst + run.ow0, dst + run.ow1, T(0));
      return;
    }
    const T* src = run.image + tap.plane + ih * xs.h;  // src[iw * xs.w] = x[ih, iw]
    const int64_t lo = std::clamp(tap.ow_lo, run.ow0, run.ow1);
    const int64_t hi = std::clamp(tap.ow_hi, lo, run.ow1);
    std::fill(dst + run.ow0, dst + lo, T(0));
    if (sw == 1 && xw == 1) {
      std::copy(src + lo + tap.col_off, src + hi + tap.col_off, dst + lo);
    } else if (sw == 2 && xw == 1) {  // a constant stride, which the compiler vectorises
      const T* in = src + tap.col_off;
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = in[2 * ow];
    } else if (xw == 1) {
      const T* in = src + tap.col_off;
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = in[ow * sw];
    } else {
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[(ow * sw + tap.col_off) * xw];
    }
    std::fill(dst + hi, dst + run.ow1, T(0));
  };
  // Writes the joined runs [r0, r1) of `tap`: those whose input row is in the image as one copy
  // from the first one's first valid column to the last one's last (the source rows are
  // consecutive and as long as the output rows, so source and destination advance together),
  // then zeros over the columns outside [ow_lo, ow_hi) of each run, which that copy filled with
  // the neighbouring row's pixels, and over the runs whose input row is in the padding.
  auto copy_joined = [&](const Tap& tap, int64_t r0, int64_t r1, T* row) {
    if (tap.ow_lo >= tap.ow_hi) {  // every column in the padding
      for (int64_t r = r0; r < r1; ++r) copy_run(tap, runs[r], row);
      return;
    }
    int64_t a = r0, b = r1;  // the runs with an input row in the image
    while (a < b && runs[a].oh + tap.row_off < 0) copy_run(tap, runs[a++], row);
    while (b > a && runs[b - 1].oh + tap.row_off >= s.h) copy_run(tap, runs[--b], row);
    if (a == b) return;
    const int64_t lo = std::clamp(tap.ow_lo, runs[a].ow0, runs[a].ow1);
    const int64_t hi = std::clamp(tap.ow_hi, runs[b - 1].ow0, runs[b - 1].ow1);
    T* begin = row + runs[a].j + (lo - runs[a].ow0);
    T* end = row + runs[b - 1].j + (hi - runs[b - 1].ow0);
    if (end > begin)
      std::copy_n(runs[a].image + tap.plane + (runs[a].oh + tap.row_off) * xs.h + lo + tap.col_off,
                  end - begin, begin);
    for (int64_t r = a; r < b; ++r) {
      T* dst = row + runs[r].j - runs[r].ow0;
      const int64_t run_lo = std::clamp(tap.ow_lo, runs[r].ow0, runs[r].ow1);
      const int64_t run_hi = std::clamp(tap.ow_hi, run_lo, runs[r].ow1);
      std::fill(dst + runs[r].ow0, dst + run_lo, T(0));
      std::fill(dst + run_hi, dst + runs[r].ow1, T(0));
    }
  };

  for (int64_t j = 0; j < count;) {
    int64_t n_runs = 0;
    for (; j < count && n_runs < kMaxRuns; ++n_runs) {
      const int64_t c = j0 + j, i = c / np, q = p0 + (c - i * np), oh = q / s.ow, ow0 = q % s.ow;
      const int64_t ow1 = std::min({s.ow, ow0 + (count - j), ow0 + (np - (c - i * np))});
      runs[n_runs] = {j, oh, ow0, ow1, x + i * xs.n};
      j += ow1 - ow0;
    }
    // Runs join while each ends its output row and the next begins the next row of the same
    // image (rows_join above).
    for (int64_t r = n_runs - 1; r >= 0; --r)
      span_end[r] = rows_join && r + 1 < n_runs && runs[r].ow1 == s.ow && runs[r + 1].ow0 == 0 &&
                            runs[r + 1].image == runs[r].image && runs[r + 1].oh == runs[r].oh + 1
                        ? span_end[r + 1]
                        : r + 1;
    for (int64_t k = k_begin; k < k_end; ++k) {
      const Tap& tap = taps[k];
      // The runs' input pixels for the tap kTapsAhead on, for 1x1 kernels: there each tap is a
      // channel, a different plane read a few hundred bytes at a time, too little for the
      // hardware prefetchers to pick up. The taps of a larger kernel share their channel's rows,
      // so most of them hit the cache anyway: prefetching there cost the 3x3 weight gradients
      // and forward passes 2-5 %.
      if (const Tap* ahead = k + kTapsAhead < k_end ? &taps[k + kTapsAhead] : nullptr;
          one_tap && ahead && xw == 1)
        for (int64_t r = 0; r < n_runs; ++r) {
          const Run& run = runs[r];
          const int64_t ih = run.oh * s.sh + ahead->row_off;
          const int64_t lo = std::clamp(ahead->ow_lo, run.ow0, run.ow1);
          const int64_t hi = std::clamp(ahead->ow_hi, lo, run.ow1);
          if (ih >= 0 && ih < s.h && hi > lo)
            cpu::prefetch_span(run.image + ahead->plane + ih * xs.h + lo * sw + ahead->col_off,
                               (hi - 1 - lo) * sw + 1);
        }
      T* row = col + (k - k_begin) * ld;
      for (int64_t r = 0; r < n_runs; r = span_end[r]) {
        if (span_end[r] > r + 1)
          copy_joined(tap, r, span_end[r], row);
        else
          copy_run(tap, runs[r], row);
      }
    }
  }
}

// col2im for input channels [c_begin, c_end) of one image: dx (contiguous [icg, H, W] planes of
// the group) = sum over taps of dcol scattered back to the pixels they read. Each channel's plane
// is written by one caller, in a fixed tap order.
template <typename T>
void col2im_channels(const T* col, int64_t ld, const ConvShape& s, int64_t c_begin, int64_t c_end,
                     T* dx) {
  const int64_t taps = s.kh * s.kw, hw = s.h * s.w;
  for (int64_t ic = c_begin; ic < c_end; ++ic) {
    std::fill(dx + ic * hw, dx + (ic + 1) * hw, T(0));
    for (int64_t k = ic * taps; k < (ic + 1) * taps; ++k) {
      const Tap tap = conv_tap(s, hw, k);
      const T* row = col + k * ld;
      for (int64_t oh = 0; oh < s.oh; ++oh) {
        const int64_t ih = oh * s.sh + tap.row_off;
        if (ih < 0 || ih >= s.h) continue;
        T* dst = dx + tap.plane + ih * s.w;  // dst[iw] = dx[ic, ih, iw]
        const T* src = row + oh * s.ow;
        if (s.sw == 1) {
          for (int64_t ow = tap.ow_lo; ow < tap.ow_hi; ++ow) dst[ow + tap.col_off] += src[ow];
        } else if (s.sw == 2) {  // a constant stride, which the compiler vectorises
          T* out = dst + tap.col_off;
          for (int64_t ow = tap.ow_lo; ow < tap.ow_hi; ++ow) out[2 * ow] += src[ow];
        } else {
          for (int64_t ow = tap.ow_lo; ow < tap.ow_hi; ++ow)
            dst[ow * s.sw + tap.col_off] += src[ow];
        }
      }
    }
  }
}

// Copies channels [0, ch) of images [0, nb) of a strided 4-D tensor (rows x cols pixels) into a
// matrix m[c, i * rows * cols + pixel], the layout of a multi-image chunk.
template <typename T>
void gather_chunk(const T* t, const Strides4& ts, int64_t nb, int64_t ch, int64_t rows,
                  int64_t cols, T* m) {
  const int64_t pix = rows * cols, ld = nb * pix;
#pragma omp parallel for collapse(2) schedule(static) if (nb * ch * pix >= 65536)
  for (int64_t c = 0; c < ch; ++c)
    for (int64_t i = 0; i < nb; ++i) {
      T* dst = m + c * ld + i * pix;
      const T* src = t + i * ts.n + c * ts.c;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < cols; ++q) dst[r * cols + q] = src[r * ts.h + q * ts.w];
    }
}

// The inverse of gather_chunk into a contiguous tensor whose images are `image` elements apart.
template <typename T>
void scatter_chunk(const T* m, int64_t nb, int64_t ch, int64_t pix, int64_t image, T* t) {
  const int64_t ld = nb * pix;
#pragma omp parallel for collapse(2) schedule(static) if (nb * ch * pix >= 65536)
  for (int64_t c = 0; c < ch; ++c)
    for (int64_t i = 0; i < nb; ++i)
      std::copy(m + c * ld + i * pix, m + c * ld + (i + 1) * pix, t + i * image + c * pix);
}

// How the work of one pass is cut into GEMM-sized items. The columns (output pixels of the whole
// batch) are cut into chunks of whole images when images are small, or else into tiles of at most
// kMaxTileColumns of one image; each (chunk or tile, group) is one item. Items run in parallel
// (each GEMM single-threaded) when there are enough of them to keep every thread busy, else one
// after another with each GEMM threaded. An output element's value depends only on its row of A,
// its column of B and the reduction length, not on the GEMM's threading or on how the columns are
// cut, so none of these choices changes a bit of the forward or backward-input result. The weight
// gradient reduces over the columns, so its cut depends on the shape only.
struct Plan {
  int64_t per_chunk;  // images per chunk
  int64_t chunks;
  int64_t tiles;  // column tiles per image (1 when a chunk holds several images)
  int64_t items;  // chunks * tiles * groups
  bool parallel_items;
};

// GEMM columns targeted per chunk in the forward / backward-input passes and in the weight pass
// (whose reduction runs over the columns, so wider is better), and the widest forward tile.
constexpr int64_t kMinColumns = 256;
constexpr int64_t kMinColumnsWeight = 1024;
constexpr int64_t kMaxTileColumns = 2048;
// The most elements a merged chunk's im2col (or output) matrix may hold.
constexpr int64_t kMaxChunkElements = int64_t(4) << 20;

// Whether `items` independent GEMMs of `cols` columns should be spread over the threads.
bool spread(int64_t items, int64_t cols, double total_macs) {
  const int64_t threads = omp_get_max_threads();
  if (threads < 2 || total_macs < 262144.0) return false;
  // One GEMM per item repacks the weights, which pays off once each item has a few hundred
  // columns; with just one or two items per thread, an uneven split would idle a thread.
  return items >= 4 * threads || (items % threads == 0 && cols >= 384);
}

Plan make_plan(const ConvShape& s, int64_t min_cols, bool allow_tiles, bool merge_when_serial) {
  Plan pl{};
  const int64_t pix = s.pixels();
  auto cut = [&](int64_t per_chunk) {
    pl.chunks = (s.n + per_chunk - 1) / per_chunk;
    pl.per_chunk = (s.n + pl.chunks - 1) / pl.chunks;  // balanced: 8 images as 4 + 4, not 6 + 2
  };
  cut(std::clamp<int64_t>((min_cols + pix - 1) / pix, 1, s.n));
  pl.tiles = allow_tiles && pl.per_chunk == 1 ? (pix + kMaxTileColumns - 1) / kMaxTileColumns : 1;
  pl.items = pl.chunks * pl.tiles * s.groups;
  const int64_t cols = pl.per_chunk * pix / pl.tiles;
  pl.parallel_items = spread(
      pl.items, cols, double(s.ocg) * double(s.kdim()) * double(s.n * pix) * double(s.groups));
  // Run one after another, fewer and wider GEMMs are better (each packs the weights once). Only
  // where chunks already group images: an image's GEMM is wide enough by itself.
  if (merge_when_serial && !pl.parallel_items && pl.per_chunk > 1) {
    cut(std::clamp<int64_t>(kMaxChunkElements / (std::max<int64_t>(s.kdim(), s.ocg) * pix),
                            pl.per_chunk, s.n));
    pl.items = pl.chunks * s.groups;
  }
  return pl;
}

// One item: group g, images [n0, n0 + nb), output pixels [p0, p0 + np) of each.
struct Item {
  int64_t g, n0, nb, p0, np;
  int64_t cols() const { return nb * np; }
};

// Runs body(item) for every item of the plan, in parallel or in order.
template <typename F>
void for_each_item(const ConvShape& s, const Plan& pl, F&& body) {
  const int64_t pix = s.pixels();
  cpu::run_items(pl.items, pl.parallel_items, [&](int64_t it) {
    const int64_t g = it % s.groups, rest = it / s.groups;
    const int64_t tile = rest % pl.tiles, chunk = rest / pl.tiles;
    const int64_t n0 = chunk * pl.per_chunk, nb = std::min(pl.per_chunk, s.n - n0);
    const int64_t p0 = tile * pix / pl.tiles, p1 = (tile + 1) * pix / pl.tiles;
    body(Item{g, n0, nb, p0, p1 - p0});
  });
}

// The im2col matrix of an item as a GEMM operand that is packed block by block as the GEMM asks for
// it and never stored whole: col[k, j] for tap k = (ic, kh, kw) and column j = output pixel
// p0 + j % np of image j / np. A block is written by im2col_rows into a small buffer that stays in
// L1 and packed from there, instead of writing all of col (7 MB per ResNet-50 layer1 image) to
// memory and reading it back. The packed values are exactly those of the stored col.
//   by_pixel: lines are the columns j, k the taps: the forward pass's B = col [kdim, cols];
//   else:     lines are the taps, k the columns: the weight gradient's B = colᵀ [cols, kdim].
template <typename T>
class Im2col final : public cpu::PanelSource<T> {
 public:
  Im2col(const T* xg, const Strides4& xs, const ConvShape& s, const Item& it, bool by_pixel)
      : xg_(xg), xs_(xs), s_(s), it_(it), by_pixel_(by_pixel), taps_(size_t(s.kdim())) {
    for (int64_t k = 0; k < s.kdim(); ++k) taps_[size_t(k)] = conv_tap(s, xs.c, k);
  }

  void pack(int64_t line0, int64_t len, int64_t k0, int64_t kc, int w, T* dst) const override {
    if (by_pixel_) {
      // kSlices taps at a time over all `len` columns, then into the panels' k-slices.
      constexpr int64_t kSlices = 16;
      T* buf = scratch<T>(2, kSlices * len);
      for (int64_t p = 0; p < kc; p += kSlices) {
        const int64_t n = std::min(kSlices, kc - p);
        rows(k0 + p, k0 + p + n, line0, len, buf, len);
        cpu::pack_panels(len, n, buf, 1, len, w, dst + p * w, w * kc);
      }
    } else {
      // One panel's w taps at a time over the kc columns, transposed into the panel.
      T* buf = scratch<T>(2, w * kc);
      for (int64_t l = 0; l < len; l += w) {
        const int64_t n = std::min<int64_t>(w, len - l);
        rows(line0 + l, line0 + l + n, k0, kc, buf, kc);
        cpu::pack_panels(n, kc, buf, kc, 1, w, dst + l * kc, w * kc);
      }
    }
  }

  // The input rows of the block's channels that its columns' output rows read, channel by channel.
  void reads(int64_t line0, int64_t len, int64_t k0, int64_t kc,
             const std::function<void(const void*, int64_t)>& read) const override {
    if (xs_.w != 1) return;  // rows not contiguous
    const int64_t t0 = by_pixel_ ? k0 : line0, t1 = t0 + (by_pixel_ ? kc : len);
    const int64_t c0 = by_pixel_ ? line0 : k0, c1 = c0 + (by_pixel_ ? len : kc);
    const int64_t taps = s_.kh * s_.kw, ch0 = t0 / taps, ch1 = (t1 - 1) / taps + 1;
    const int64_t np = it_.np;
    for (int64_t i = c0 / np; i <= (c1 - 1) / np; ++i) {
      const int64_t q0 = it_.p0 + std::max(c0 - i * np, int64_t(0));
      const int64_t q1 = it_.p0 + std::min(c1 - i * np, np) - 1;
      const int64_t ih0 = std::max<int64_t>(0, q0 / s_.ow * s_.sh - s_.ph);
      const int64_t ih1 = std::min(s_.h - 1, q1 / s_.ow * s_.sh - s_.ph + (s_.kh - 1) * s_.dh);
      if (ih0 > ih1) continue;
      for (int64_t c = ch0; c < ch1; ++c)
        read(xg_ + i * xs_.n + c * xs_.c + ih0 * xs_.h,
             ((ih1 - ih0) * xs_.h + s_.w) * int64_t(sizeof(T)));
    }
  }

 private:
  // Rows [k_begin, k_end) of col over the columns [j0, j0 + count) into m (row k at
  // m + (k - k_begin) * ld).
  void rows(int64_t k_begin, int64_t k_end, int64_t j0, int64_t count, T* m, int64_t ld) const {
    im2col_rows(xg_, xs_, s_, taps_.data(), it_.p0, it_.np, j0, count, k_begin, k_end, m, ld);
  }

  const T* xg_;
  Strides4 xs_;
  const ConvShape& s_;
  Item it_;
  bool by_pixel_;
  std::vector<Tap> taps_;  // conv_tap of every k, worked out once
};

template <typename T>
void forward_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const ConvShape& s) {
  const T* xp = x.data<T>();
  const T* wp = weight.data<T>();  // contiguous [OC, kdim]
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();  // contiguous
  const Strides4 xs = strides4(x);
  const int64_t kdim = s.kdim(), pix = s.pixels();
  const bool direct_input = s.pointwise() && xs.h == s.w * xs.w;  // [IC, H·W] with one stride
  for_each_item(s, make_plan(s, kMinColumns, true, true), [&](const Item& it) {
    const int64_t cols = it.cols();
    const T* xg = xp + it.n0 * xs.n + it.g * s.icg * xs.c;
    // C = the [ocg, cols] output, in place for one image, else a chunk matrix scattered after.
    T* yg = yp + it.n0 * s.oc * pix + it.g * s.ocg * pix;
    T* c = it.nb == 1 ? yg + it.p0 : scratch<T>(1, s.ocg * cols);
    const int64_t ldc = it.nb == 1 ? pix : cols;
    if (bp) {
#pragma omp parallel for schedule(static) if (s.ocg * cols >= 65536)
      for (int64_t o = 0; o < s.ocg; ++o)
        std::fill(c + o * ldc, c + o * ldc + cols, bp[it.g * s.ocg + o]);
    }
    // B = the [kdim, cols] input matrix: the image itself, or its im2col.
    const T* a = wp + it.g * s.ocg * kdim;
    const T beta = bp ? T(1) : T(0);
    if (direct_input && it.nb == 1)
      gemm(s.ocg, cols, kdim, a, kdim, 1, xg + it.p0 * xs.w, xs.c, xs.w, beta, c, ldc, 1);
    else
      gemm(s.ocg, cols, kdim, a, kdim, 1, Im2col<T>(xg, xs, s, it, true), beta, c, ldc, 1);
    if (it.nb > 1) scatter_chunk(c, it.nb, s.ocg, pix, s.oc * pix, yg);
  });
}

template <typename T>
void backward_input_kernel(const Tensor& gy, const Tensor& weight, const Tensor& gx,
                           const ConvShape& s) {
  const T* gyp = gy.data<T>();
  const T* wp = weight.data<T>();  // contiguous [OC, kdim]
  T* gxp = gx.data<T>();           // contiguous
  const Strides4 gs = strides4(gy);
  const int64_t kdim = s.kdim(), pix = s.pixels(), hw = s.h * s.w;
  const bool direct_grad = gs.h == s.ow * gs.w;
  // col2im adds overlapping windows, so an item owns whole images (no column tiles).
  for_each_item(s, make_plan(s, kMinColumns, false, true), [&](const Item& it) {
    const int64_t cols = it.cols();
    const T* gyg = gyp + it.n0 * gs.n + it.g * s.ocg * gs.c;
    // B = the [ocg, cols] output gradient.
    const T* b = gyg;
    int64_t rsb = gs.c, csb = gs.w;
    if (!(direct_grad && it.nb == 1)) {
      T* m = scratch<T>(1, s.ocg * cols);
      gather_chunk(gyg, gs, it.nb, s.ocg, s.oh, s.ow, m);
      b = m, rsb = cols, csb = 1;
    }
    T* gxg = gxp + it.n0 * s.c * hw + it.g * s.icg * hw;
    const T* a = wp + it.g * s.ocg * kdim;  // Wᵀ: element (k, o) at a[o * kdim + k]
    if (s.pointwise() && it.nb == 1) {
      gemm(kdim, cols, s.ocg, a, 1, kdim, b, rsb, csb, T(0), gxg, hw, 1);
      return;
    }
    T* dcol = scratch<T>(0, kdim * cols);
    gemm(kdim, cols, s.ocg, a, 1, kdim, b, rsb, csb, T(0), dcol, cols, 1);
    if (s.pointwise()) {  // dcol is already the [icg, cols] chunk of dX
      scatter_chunk(dcol, it.nb, s.icg, pix, s.c * hw, gxg);
      return;
    }
    const int64_t planes = it.nb * s.icg;
#pragma omp parallel for schedule(static) if (planes * kdim * pix >= 65536)
    for (int64_t q = 0; q < planes; ++q) {
      const int64_t i = q / s.icg, ic = q % s.icg;
      col2im_channels(dcol + i * pix, cols, s, ic, ic + 1, gxg + i * s.c * hw);
    }
  });
}

// dW sums over every image. The chunks are split into `partials` consecutive runs (a number fixed
// by the shape) whose sums are computed independently, in parallel when there are enough, and
// then added in order: partial 0 + partial 1 + ..., the same for any thread count.
constexpr int64_t kMaxPartials = 8;
constexpr double kMaxPartialElements = 8.0 * 1024 * 1024;

template <typename T>
void backward_weight_kernel(const Tensor& gy, const Tensor& x, const Tensor& gw,
                            const ConvShape& s) {
  const T* gyp = gy.data<T>();
  const T* xp = x.data<T>();
  const Strides4 gs = strides4(gy), xs = strides4(x);
  const int64_t kdim = s.kdim(), pix = s.pixels(), dw_size = s.oc * kdim;
  const bool direct_grad = gs.h == s.ow * gs.w;
  const bool direct_input = s.pointwise() && xs.h == s.w * xs.w;
  const Plan pl = make_plan(s, kMinColumnsWeight, false, false);
  const int64_t partials = std::clamp<int64_t>(int64_t(kMaxPartialElements / double(dw_size)), 1,
                                               std::min(pl.chunks, kMaxPartials));
  // Partial 0 accumulates into gw itself, the others into a scratch tensor.
  Tensor extra = partials > 1 ? empty({partials - 1, dw_size}, gw.dtype()) : Tensor();
  auto partial_ptr = [&](int64_t q) {
    return q == 0 ? gw.data<T>() : extra.data<T>() + (q - 1) * dw_size;
  };
  const int64_t items = partials * s.groups;
  // Spread the partial sums over the threads whenever they split evenly, even at one per thread
  // (ResNet-50's stages 2-3 at batch 8: 4 and 2 partials): on an idle machine this is as fast as
  // threaded GEMMs over the long reduction, and faster when another process shares the cores, as
  // the threads then do not meet at every GEMM barrier (bench/README.md, ResNet-50 section).
  const bool parallel =
      spread(items, pl.per_chunk * pix * pl.chunks / partials, double(dw_size) * double(s.n * pix));
  cpu::run_items(items, parallel, [&](int64_t item) {
    const int64_t q = item / s.groups, g = item % s.groups;
    const int64_t c0 = q * pl.chunks / partials, c1 = (q + 1) * pl.chunks / partials;
    T* gwg = partial_ptr(q) + g * s.ocg * kdim;
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t n0 = chunk * pl.per_chunk, nb = std::min(pl.per_chunk, s.n - n0);
      const int64_t cols = nb * pix;
      const T* gyg = gyp + n0 * gs.n + g * s.ocg * gs.c;
      const T* xg = xp + n0 * xs.n + g * s.icg * xs.c;
      // A = the [ocg, cols] output gradient.
      const T* a = gyg;
      int64_t rsa = gs.c, csa = gs.w;
      if (!(direct_grad && nb == 1)) {
        T* m = scratch<T>(1, s.ocg * cols);
        gather_chunk(gyg, gs, nb, s.ocg, s.oh, s.ow, m);
        a = m, rsa = cols, csa = 1;
      }
      // B = col(X)ᵀ, [cols, kdim]: the image itself, or its im2col.
      const T beta = chunk == c0 ? T(0) : T(1);
      if (direct_input && nb == 1)
        gemm(s.ocg, kdim, cols, a, rsa, csa, xg, xs.w, xs.c, beta, gwg, kdim, 1);
      else
        gemm(s.ocg, kdim, cols, a, rsa, csa, Im2col<T>(xg, xs, s, Item{g, n0, nb, 0, pix}, false),
             beta, gwg, kdim, 1);
    }
  });
  if (partials > 1) {
    T* out = gw.data<T>();
    const T* ex = extra.data<T>();
#pragma omp parallel for schedule(static) if (dw_size >= 65536)
    for (int64_t e = 0; e < dw_size; ++e) {
      T acc = out[e];
      for (int64_t q = 1; q < partials; ++q) acc += ex[(q - 1) * dw_size + e];
      out[e] = acc;
    }
  }
}

// Half types compute in float32: inputs are converted in and the result converted back.
Tensor as_compute(const Tensor& t) {
  return t.defined() && (t.dtype() == kFloat16 || t.dtype() == kBFloat16) ? to(t, kFloat32) : t;
}
Tensor from_compute(const Tensor& t, DType dtype) {
  return t.dtype() == dtype ? t : to(t, dtype);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  check_tensor("conv2d", "input", x);
  check_tensor("conv2d", "weight", weight);
  common_device("conv2d", {x, weight, bias});
  check_same_dtype("conv2d", x, weight);
  const ConvShape s = conv_shape("conv2d", x.sizes(), weight.sizes(), p);
  if (bias.defined()) {
    check_tensor("conv2d", "bias", bias);
    check_same_dtype("conv2d", x, bias);
    CXR_CHECK(bias.dim() == 1 && bias.size(0) == s.oc, "conv2d: bias must be [", s.oc, "], got ",
              describe(bias));
  }
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) return cuda::conv2d(x, weight, bias, p, {s.n, s.oc, s.oh, s.ow});
  const Tensor xc = as_compute(x), wc = contiguous(as_compute(weight));
  const Tensor bc = bias.defined() ? contiguous(as_compute(bias)) : Tensor();
  Tensor y = empty({s.n, s.oc, s.oh, s.ow}, xc.dtype());
  if (y.numel() == 0) return from_compute(y, x.dtype());
  // An empty reduction (no input channels) is handled by the GEMM: C = bias or 0.
  if (xc.dtype() == kFloat64)
    forward_kernel<double>(xc, wc, bc, y, s);
  else
    forward_kernel<float>(xc, wc, bc, y, s);
  return from_compute(y, x.dtype());
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& p) {
  check_tensor("conv2d_backward_input", "grad_out", grad_out);
  check_tensor("conv2d_backward_input", "weight", weight);
  common_device("conv2d_backward_input", {grad_out, weight});
  check_same_dtype("conv2d_backward_input", grad_out, weight);
  const ConvShape s = conv_shape("conv2d_backward_input", input_shape, weight.sizes(), p);
  const Shape out_shape{s.n, s.oc, s.oh, s.ow};
  CXR_CHECK(grad_out.sizes() == out_shape, "conv2d_backward_input: grad_out ", describe(grad_out),
            " does not match the output shape ", shape_str(out_shape), " of the convolution");
  if constexpr (kCudaBuilt)
    if (grad_out.device().is_cuda())
      return cuda::conv2d_backward_input(grad_out, weight, input_shape, p);
  const Tensor gc = as_compute(grad_out), wc = contiguous(as_compute(weight));
  Tensor gx = empty(input_shape, gc.dtype());
  if (gx.numel() == 0) return from_compute(gx, grad_out.dtype());
  if (s.kdim() == 0 || s.ocg == 0 || s.pixels() == 0) {
    fill_(gx, 0.0);
  } else if (gc.dtype() == kFloat64) {
    backward_input_kernel<double>(gc, wc, gx, s);
  } else {
    backward_input_kernel<float>(gc, wc, gx, s);
  }
  return from_compute(gx, grad_out.dtype());
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& p) {
  check_tensor("conv2d_backward_weight", "grad_out", grad_out);
  check_tensor("conv2d_backward_weight", "input", x);
  common_device("conv2d_backward_weight", {grad_out, x});
  check_same_dtype("conv2d_backward_weight", grad_out, x);
  const ConvShape s = conv_shape("conv2d_backward_weight", x.sizes(), weight_shape, p);
  const Shape out_shape{s.n, s.oc, s.oh, s.ow};
  CXR_CHECK(grad_out.sizes() == out_shape, "conv2d_backward_weight: grad_out ", describe(grad_out),
            " does not match the output shape ", shape_str(out_shape), " of the convolution");
  if constexpr (kCudaBuilt)
    if (grad_out.device().is_cuda())
      return cuda::conv2d_backward_weight(grad_out, x, weight_shape, p);
  const Tensor gc = as_compute(grad_out), xc = as_compute(x);
  Tensor gw = empty(weight_shape, gc.dtype());
  if (gw.numel() == 0) return from_compute(gw, grad_out.dtype());
  if (s.n == 0 || s.pixels() == 0) {
    fill_(gw, 0.0);
  } else if (gc.dtype() == kFloat64) {
    backward_weight_kernel<double>(gc, xc, gw, s);
  } else {
    backward_weight_kernel<float>(gc, xc, gw, s);
  }
  return from_compute(gw, grad_out.dtype());
}

}  // namespace cxr::raw
