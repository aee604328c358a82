// Layer, group and batch normalisation and the embedding on CUDA devices against the CPU
// (tensor/cuda/norm.cu, tensor/cuda/embedding.cu): forward outputs, the saved statistics (same
// dtype and shape), the backward gradients and the batch-norm running statistics, for every
// floating dtype, odd sizes (channels not a multiple of 32, 1x1 and 7x9 maps, 1 and 32 groups,
// normalised over 1 and 2 dims), without affine parameters, non-contiguous and empty inputs,
// batch 1 and 2 with large maps and few long layer-norm rows (statistics split over several
// blocks or warps, tensor/cuda/norm.cu); the embedding with repeated indices, int32/int64 indices
// and out-of-range errors; mixed-device errors. Every test skips without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

const Device kGpu = Device::cuda(0);
using test::kFloatDtypes;

Tensor gpu(const Tensor& t) {
  return t.defined() ? raw::to(t, kGpu) : t;
}

// Inputs drawn on the CPU in dtype dt; `offset` shifts the values (weights around 1).
Tensor random(const Shape& shape, DType dt, uint64_t seed, double offset = 0.0) {
  Generator g(seed);
  return raw::randn(shape, g, dt, offset, 1.0);
}

struct Tol {
  double rtol, atol;
};
// The shared per-dtype tolerance (support/devices.h) as both rtol and atol; float64 uses rtol
// 1e-11, atol 1e-12.
Tol tol(DType dt) {
  if (dt == kFloat64) return {1e-11, 1e-12};
  const double t = test::cuda_tolerance(dt);
  return {t, t};
}

// The GPU result lives on the device and matches the CPU's dtype, shape and values (or both are
// undefined).
void expect_match(const Tensor& on_gpu, const Tensor& on_cpu, DType dt, const std::string& what,
                  double scale = 1.0) {
  SCOPED_TRACE(what);
  ASSERT_EQ(on_gpu.defined(), on_cpu.defined());
  if (!on_cpu.defined()) return;
  EXPECT_TRUE(on_gpu.device().is_cuda()) << on_gpu.device().str();
  EXPECT_EQ(on_gpu.dtype(), on_cpu.dtype());
  ASSERT_EQ(on_gpu.sizes(), on_cpu.sizes());
  const Tol t = tol(dt);
  EXPECT_ALL_CLOSE(on_gpu, on_cpu, t.rtol * scale, t.atol * scale);
}

void expect_norm_match(const raw::NormResult& g, const raw::NormResult& c, DType dt,
                       const std::string& what) {
  expect_match(g.out, c.out, dt, what + " out");
  expect_match(g.mean, c.mean, dt, what + " mean");
  expect_match(g.rstd, c.rstd, dt, what + " rstd");
}

// Parameter gradients sum many terms: compare them on the scale of the sum.
void expect_grads_match(const raw::NormGrads& g, const raw::NormGrads& c, DType dt,
                        const std::string& what, double param_scale) {
  expect_match(g.input, c.input, dt, what + " grad input", 4.0);
  expect_match(g.weight, c.weight, dt, what + " grad weight", param_scale);
  expect_match(g.bias, c.bias, dt, what + " grad bias", param_scale);
}

std::string name(const char* op, const Shape& shape, DType dt) {
  return std::string(op) + " " + shape_str(shape) + " " + std::string(dtype_name(dt));
}

}  // namespace

// ---- layer norm
// ----------------------------------------------------------------------------------

TEST(CudaLayerNorm, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int64_t normalized_ndim;
  };
  const std::vector<Case> cases = {{{3, 37}, 1},   {{2, 5, 7, 9}, 2}, {{4, 1}, 1},
                                   {{300, 67}, 1}, {{2, 1000}, 1},    {{0, 8}, 1}};
  for (const Case& c : cases)
    for (DType dt : kFloatDtypes)
      for (int affine = 0; affine < 4; ++affine) {  // bit 0: weight, bit 1: bias
        const Shape norm_shape(c.shape.end() - c.normalized_ndim, c.shape.end());
        Tensor x = random(c.shape, dt, 1);
        Tensor w = affine & 1 ? random(norm_shape, dt, 2, 1.0) : Tensor();
        Tensor b = affine & 2 ? random(norm_shape, dt, 3) : Tensor();
        Tensor gy = random(c.shape, dt, 4);
        const std::string what =
            name("layer_norm", c.shape, dt) + " affine " + std::to_string(affine);
        raw::NormResult rc = raw::layer_norm(x, c.normalized_ndim, w, b, 1e-5);
        raw::NormResult rg = raw::layer_norm(gpu(x), c.normalized_ndim, gpu(w), gpu(b), 1e-5);
        expect_norm_match(rg, rc, dt, what);
        raw::NormGrads gc = raw::layer_norm_backward(gy, x, rc, w, c.normalized_ndim);
        raw::NormGrads gg =
            raw::layer_norm_backward(gpu(gy), gpu(x), rg, gpu(w), c.normalized_ndim);
        expect_grads_match(gg, gc, dt, what, 10.0);
      }
}

// Few long rows: each row's statistics split over several blocks (a part count that does not
// divide the row), then an elementwise pass.
TEST(CudaLayerNorm, FewLongRowsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : std::vector<Shape>{{3, 20001}, {1, 70001}, {2, 3, 4099}})
    for (DType dt : kFloatDtypes)
      for (bool affine : {true, false}) {
        const Shape norm_shape = {shape.back()};
        Tensor x = random(shape, dt, 8, 0.5);
        Tensor w = affine ? random(norm_shape, dt, 9, 1.0) : Tensor();
        Tensor b = affine ? random(norm_shape, dt, 10) : Tensor();
        Tensor gy = random(shape, dt, 11);
        const std::string what = name("layer_norm", shape, dt) + (affine ? " affine" : "");
        raw::NormResult rc = raw::layer_norm(x, 1, w, b, 1e-5);
        raw::NormResult rg = raw::layer_norm(gpu(x), 1, gpu(w), gpu(b), 1e-5);
        expect_norm_match(rg, rc, dt, what);
        expect_grads_match(raw::layer_norm_backward(gpu(gy), gpu(x), rg, gpu(w), 1),
                           raw::layer_norm_backward(gy, x, rc, w, 1), dt, what, 10.0);
      }
}

TEST(CudaLayerNorm, NonContiguousInput) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor x = raw::transpose(random({33, 6}, kFloat32, 5), 0, 1);  // [6, 33], strided
  Tensor w = random({33}, kFloat32, 6, 1.0);
  raw::NormResult rc = raw::layer_norm(x, 1, w, Tensor(), 1e-6);
  raw::NormResult rg = raw::layer_norm(gpu(x), 1, gpu(w), Tensor(), 1e-6);
  expect_norm_match(rg, rc, kFloat32, "layer_norm of a transposed input");
  Tensor gy = raw::transpose(random({33, 6}, kFloat32, 7), 0, 1);
  expect_grads_match(raw::layer_norm_backward(gpu(gy), gpu(x), rg, gpu(w), 1),
                     raw::layer_norm_backward(gy, x, rc, w, 1), kFloat32,
                     "layer_norm_backward of transposed inputs", 10.0);
}

// ---- group norm
// ----------------------------------------------------------------------------------

TEST(CudaGroupNorm, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int64_t groups;
  };
  const std::vector<Case> cases = {{{2, 40, 7, 9}, 1},  {{2, 40, 7, 9}, 8}, {{3, 64, 1, 1}, 32},
                                   {{1, 96, 7, 9}, 32}, {{2, 6, 5}, 3},     {{0, 8, 3, 3}, 4}};
  for (const Case& c : cases)
    for (DType dt : kFloatDtypes)
      for (bool silu : {false, true})
        for (bool affine : {true, false}) {
          Tensor x = random(c.shape, dt, 11);
          Tensor w = affine ? random({c.shape[1]}, dt, 12, 1.0) : Tensor();
          Tensor b = affine ? random({c.shape[1]}, dt, 13) : Tensor();
          Tensor gy = random(c.shape, dt, 14);
          const std::string what = name("group_norm", c.shape, dt) + " groups " +
                                   std::to_string(c.groups) + (silu ? " silu" : "") +
                                   (affine ? " affine" : "");
          raw::NormResult rc = raw::group_norm(x, c.groups, w, b, 1e-5, silu);
          raw::NormResult rg = raw::group_norm(gpu(x), c.groups, gpu(w), gpu(b), 1e-5, silu);
          expect_norm_match(rg, rc, dt, what);
          raw::NormGrads gc = raw::group_norm_backward(gy, x, rc, w, b, c.groups, silu);
          raw::NormGrads gg =
              raw::group_norm_backward(gpu(gy), gpu(x), rg, gpu(w), gpu(b), c.groups, silu);
          expect_grads_match(gg, gc, dt, what, 10.0);
        }
}

// Batch 1 and 2 with 32 groups and large maps: few statistics, each row split over several blocks
// (forward) and warps (backward), the parts combined in order.
TEST(CudaGroupNorm, SmallBatchLargeMapsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int64_t groups;
  };
  const std::vector<Case> cases = {
      {{2, 320, 64, 64}, 32}, {{1, 64, 67, 67}, 32}, {{1, 32, 181, 181}, 32}, {{2, 8, 4099}, 2}};
  for (const Case& c : cases)
    for (DType dt : kFloatDtypes)
      for (bool silu : {false, true}) {
        Tensor x = random(c.shape, dt, 15, 0.5);
        Tensor w = random({c.shape[1]}, dt, 16, 1.0), b = random({c.shape[1]}, dt, 17);
        Tensor gy = random(c.shape, dt, 18);
        const std::string what = name("group_norm", c.shape, dt) + " groups " +
                                 std::to_string(c.groups) + (silu ? " silu" : "");
        raw::NormResult rc = raw::group_norm(x, c.groups, w, b, 1e-5, silu);
        raw::NormResult rg = raw::group_norm(gpu(x), c.groups, gpu(w), gpu(b), 1e-5, silu);
        expect_norm_match(rg, rc, dt, what);
        expect_grads_match(
            raw::group_norm_backward(gpu(gy), gpu(x), rg, gpu(w), gpu(b), c.groups, silu),
            raw::group_norm_backward(gy, x, rc, w, b, c.groups, silu), dt, what, 10.0);
      }
}

// ---- batch norm
// ----------------------------------------------------------------------------------

namespace {

// batch_norm in training mode (momentum 0.1, eps 1e-5) run `steps` times on the CPU tensors and
// on GPU copies, each side updating its own copy of the float32 running statistics rm_c / rv_c:
// the outputs, the running statistics and the backward pass of the last step match.
void check_batch_norm_training(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy,
                               Tensor rm_c, Tensor rv_c, int steps, const std::string& what) {
  const DType dt = x.dtype();
  Tensor rm_g = gpu(rm_c), rv_g = gpu(rv_c);
  raw::NormResult rc, rg;
  for (int step = 0; step < steps; ++step) {
    rc = raw::batch_norm(x, w, b, rm_c, rv_c, true, 0.1, 1e-5);
    rg = raw::batch_norm(gpu(x), gpu(w), gpu(b), rm_g, rv_g, true, 0.1, 1e-5);
  }
  expect_norm_match(rg, rc, dt, what);
  expect_match(rm_g, rm_c, kFloat32, what + " running_mean");
  expect_match(rv_g, rv_c, kFloat32, what + " running_var");
  expect_grads_match(raw::batch_norm_backward(gpu(gy), gpu(x), rg, gpu(w), true),
                     raw::batch_norm_backward(gy, x, rc, w, true), dt, what, 10.0);
}

}  // namespace

TEST(CudaBatchNorm, TrainingMatchesCpuWithRunningStatistics) {
  CXR_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{5, 37}, {4, 37, 7, 9}, {2, 3, 1, 1}, {3, 64, 5, 5}};
  for (const Shape& shape : shapes)
    for (DType dt : kFloatDtypes)
      for (bool affine : {true, false}) {
        const int64_t c = shape[1];
        Tensor x = random(shape, dt, 21, 0.5);
        Tensor w = affine ? random({c}, dt, 22, 1.0) : Tensor();
        Tensor b = affine ? random({c}, dt, 23) : Tensor();
        Tensor gy = random(shape, dt, 24);
        // float32 running statistics (as nn::BatchNorm2d keeps them), updated twice.
        Tensor rm_c = random({c}, kFloat32, 25), rv_c = raw::full({c}, 1.5, kFloat32);
        check_batch_norm_training(x, w, b, gy, rm_c, rv_c, 2,
                                  name("batch_norm train", shape, dt) + (affine ? " affine" : ""));
      }
}

// Batch 1 and 2 with large maps: each (sample, channel) plane split over several warps.
TEST(CudaBatchNorm, SmallBatchLargeMapsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : std::vector<Shape>{{2, 8, 100, 100}, {1, 3, 257, 129}})
    for (DType dt : kFloatDtypes) {
      const int64_t c = shape[1];
      Tensor x = random(shape, dt, 26, 0.5);
      Tensor w = random({c}, dt, 27, 1.0), b = random({c}, dt, 28);
      Tensor gy = random(shape, dt, 29);
      Tensor rm_c = raw::zeros({c}, kFloat32), rv_c = raw::ones({c}, kFloat32);
      check_batch_norm_training(x, w, b, gy, rm_c, rv_c, 1, name("batch_norm train", shape, dt));
    }
}

TEST(CudaBatchNorm, RunningStatisticsOfOtherDtypesAndStrides) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor x = random({6, 10, 3, 3}, kFloat32, 31);
  for (DType rd : {kFloat64, kFloat16}) {
    // Every other element of a [20] buffer: a strided 1-D view.
    Tensor base_c = raw::full({20}, 0.25, rd), var_c = raw::full({10}, 2.0, rd);
    Tensor base_g = gpu(base_c), var_g = gpu(var_c);
    Tensor rm_c = raw::slice(base_c, 0, 0, 20, 2), rm_g = raw::slice(base_g, 0, 0, 20, 2);
    raw::batch_norm(x, Tensor(), Tensor(), rm_c, var_c, true, 0.3, 1e-5);
    raw::batch_norm(gpu(x), Tensor(), Tensor(), rm_g, var_g, true, 0.3, 1e-5);
    expect_match(base_g, base_c, rd,
                 std::string("strided running_mean ") + std::string(dtype_name(rd)));
    expect_match(var_g, var_c, rd, std::string("running_var ") + std::string(dtype_name(rd)));
  }
  // Training without running statistics.
  raw::NormResult rc = raw::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  raw::NormResult rg =
      raw::batch_norm(gpu(x), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  expect_norm_match(rg, rc, kFloat32, "batch_norm train without running stats");
}

TEST(CudaBatchNorm, EvalMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : std::vector<Shape>{{5, 37}, {2, 37, 7, 9}, {3, 4, 1, 1}})
    for (DType dt : kFloatDtypes) {
      const int64_t c = shape[1];
      Tensor x = random(shape, dt, 41);
      Tensor w = random({c}, dt, 42, 1.0), b = random({c}, dt, 43);
      Tensor rm = random({c}, kFloat32, 44);
      Generator vg(45);
      Tensor rv = raw::rand({c}, vg, kFloat32, 0.5, 1.5);
      Tensor gy = random(shape, dt, 46);
      const std::string what = name("batch_norm eval", shape, dt);
      raw::NormResult rc = raw::batch_norm(x, w, b, rm, rv, false, 0.1, 1e-5);
      raw::NormResult rg =
          raw::batch_norm(gpu(x), gpu(w), gpu(b), gpu(rm), gpu(rv), false, 0.1, 1e-5);
      expect_norm_match(rg, rc, dt, what);
      expect_grads_match(raw::batch_norm_backward(gpu(gy), gpu(x), rg, gpu(w), false),
                         raw::batch_norm_backward(gy, x, rc, w, false), dt, what, 10.0);
    }
}

// ---- errors
// --------------------------------------------------------------------------------------

TEST(CudaNorm, MixedDevicesAndBadShapesThrow) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor x = gpu(random({2, 8, 3, 3}, kFloat32, 51));
  Tensor w_cpu = random({8}, kFloat32, 52);
  EXPECT_ERROR_CONTAINS(raw::group_norm(x, 4, w_cpu, Tensor(), 1e-5), "cuda");
  EXPECT_ERROR_CONTAINS(raw::group_norm(x, 4, w_cpu, Tensor(), 1e-5), "cpu");
  EXPECT_ERROR_CONTAINS(raw::layer_norm(x, 1, w_cpu, Tensor(), 1e-5), "layer_norm");
  EXPECT_ERROR_CONTAINS(raw::batch_norm(x, w_cpu, Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                        "batch_norm");
  EXPECT_ERROR_CONTAINS(raw::group_norm(x, 3, Tensor(), Tensor(), 1e-5), "cannot be split into 3");
  EXPECT_ERROR_CONTAINS(raw::layer_norm(x, 1, gpu(random({8}, kFloat32, 53)), Tensor(), 1e-5),
                        "weight has shape");
  EXPECT_ERROR_CONTAINS(
      raw::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5),
      "evaluation mode needs running_mean");
}

// ---- embedding
// -----------------------------------------------------------------------------------

TEST(CudaEmbedding, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  // Repeated indices (3 four times, 0 twice), a 2-D index tensor, a dim that is not a multiple of
  // the block size and one above it.
  const std::vector<int64_t> idx = {3, 0, 3, 7, 3, 0, 9, 3, 1, 5, 2, 8};
  for (int64_t dim : {1, 5, 300})
    for (DType dt : kFloatDtypes)
      for (DType it : {kInt64, kInt32}) {
        Tensor table = random({10, dim}, dt, 61);
        Tensor indices = raw::to(raw::from_vector(idx, {3, 4}), it);
        Tensor gy = random({3, 4, dim}, dt, 62);
        const std::string what =
            name("embedding", {10, dim}, dt) + " indices " + std::string(dtype_name(it));
        Tensor oc = raw::embedding(table, indices);
        Tensor og = raw::embedding(gpu(table), gpu(indices));
        SCOPED_TRACE(what);
        EXPECT_TRUE(test::bitwise_equal(og, oc));
        Tensor bc = raw::embedding_backward(gy, indices, 10);
        Tensor bg = raw::embedding_backward(gpu(gy), gpu(indices), 10);
        EXPECT_TRUE(bg.device().is_cuda());
        // The sums run in index order on both, in the same compute type: the same bits.
        EXPECT_TRUE(test::bitwise_equal(bg, bc));
      }
  // Integer tables, transposed (non-contiguous) indices, empty indices.
  Tensor itable = raw::to(raw::arange(0, 12, 1, kInt64), kInt32);
  itable = raw::reshape(itable, {4, 3});
  Tensor ti =
      raw::transpose(raw::from_vector(std::vector<int64_t>{0, 1, 2, 3, 3, 2}, {2, 3}), 0, 1);
  EXPECT_TRUE(
      test::bitwise_equal(raw::embedding(gpu(itable), gpu(ti)), raw::embedding(itable, ti)));
  Tensor none = raw::from_vector(std::vector<int64_t>{}, {0});
  Tensor table = random({4, 6}, kFloat32, 63);
  EXPECT_EQ(raw::embedding(gpu(table), gpu(none)).sizes(), (Shape{0, 6}));
  Tensor empty_grad = raw::zeros({0, 6}, kFloat32, kGpu);
  EXPECT_TRUE(test::bitwise_equal(raw::embedding_backward(empty_grad, gpu(none), 4),
                                  raw::zeros({4, 6}, kFloat32)));
}

TEST(CudaEmbedding, ErrorsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor table = random({5, 4}, kFloat32, 71);
  Tensor bad = raw::from_vector(std::vector<int64_t>{1, 5, -1}, {3});
  const std::string cpu_msg = test::error_message([&] { raw::embedding(table, bad); });
  EXPECT_NE(cpu_msg.find("index 5 at position 1 is out of range for 5 embeddings"),
            std::string::npos)
      << cpu_msg;
  EXPECT_EQ(test::error_message([&] { raw::embedding(gpu(table), gpu(bad)); }), cpu_msg);
  Tensor gy = random({3, 4}, kFloat32, 72);
  EXPECT_EQ(test::error_message([&] { raw::embedding_backward(gpu(gy), gpu(bad), 5); }),
            test::error_message([&] { raw::embedding_backward(gy, bad, 5); }));
  EXPECT_ERROR_CONTAINS(raw::embedding(gpu(table), bad), "cpu");
  EXPECT_ERROR_CONTAINS(raw::embedding(gpu(table), gpu(raw::to(bad, kFloat32))),
                        "indices must be int64 or int32");
}
