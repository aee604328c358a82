// conv2d and its two backward passes on CUDA (tensor/cuda/conv.cu, cuDNN) against the CPU in
// float64 on the same (dtype-rounded) inputs: stride, padding, dilation, groups (depthwise too),
// pointwise and whole-image kernels, with and without bias, every floating dtype, non-contiguous
// inputs, empty sizes, the algorithm cache (same problem twice: the same bits) and the errors (same
// messages as on the CPU). Tolerances are relative to the largest expected magnitude: TF32
// (float32) 5e-3, float16 1e-2, bfloat16 4e-2, float64 1e-12. Every test skips without a CUDA
// device.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using test::cpu_f64;
using test::kFloatDtypes;
using test::spread_input;
using test::to_cuda;

struct Case {
  std::string name;
  Shape x, w;
  Conv2dParams p;
  bool bias;
};

std::vector<Case> cases() {
  return {
      {"3x3 pad 1", {2, 3, 11, 13}, {5, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true},
      {"3x2 stride 2", {2, 3, 12, 9}, {4, 3, 3, 2}, {{2, 2}, {0, 0}, {1, 1}, 1}, false},
      {"dilation 2 pad 2", {1, 2, 10, 11}, {3, 2, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1}, true},
      {"groups 2, stride (2, 1), pad (1, 0)",
       {2, 4, 9, 8},
       {6, 2, 3, 3},
       {{2, 1}, {1, 0}, {1, 1}, 2},
       true},
      {"depthwise 3x3", {2, 6, 10, 7}, {6, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 6}, false},
      {"depthwise x2 stride 2", {1, 4, 9, 9}, {8, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 4}, true},
      {"pointwise", {3, 8, 7, 5}, {4, 8, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}, true},
      {"whole-image kernel", {2, 3, 5, 5}, {7, 3, 5, 5}, {{1, 1}, {0, 0}, {1, 1}, 1}, false},
      {"7x7 stride 2 pad 3", {2, 3, 17, 19}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}, true},
  };
}

// Forward and both backward passes of one case in one dtype; `view` makes the input (and the output
// gradient) non-contiguous or leaves them as they are.
template <typename View>
void check_case(const Case& c, DType dtype, View view) {
  const Tensor x = spread_input(c.x, dtype), w = spread_input(c.w, dtype);
  const Tensor b = c.bias ? spread_input({c.w[0]}, dtype) : Tensor();
  const Tensor y64 = raw::conv2d(view(cpu_f64(x)), cpu_f64(w), c.bias ? cpu_f64(b) : Tensor(), c.p);
  const Tensor y = raw::conv2d(view(to_cuda(x)), to_cuda(w), c.bias ? to_cuda(b) : Tensor(), c.p);
  test::expect_matches_tf32_reference(y, y64, dtype, c.name + " conv2d");

  const Tensor gy = spread_input(y64.sizes(), dtype);
  const Shape xs = view(x).sizes();
  test::expect_matches_tf32_reference(
      raw::conv2d_backward_input(view(to_cuda(gy)), to_cuda(w), xs, c.p),
      raw::conv2d_backward_input(view(cpu_f64(gy)), cpu_f64(w), xs, c.p), dtype,
      c.name + " conv2d_backward_input");
  test::expect_matches_tf32_reference(
      raw::conv2d_backward_weight(view(to_cuda(gy)), view(to_cuda(x)), c.w, c.p),
      raw::conv2d_backward_weight(view(cpu_f64(gy)), view(cpu_f64(x)), c.w, c.p), dtype,
      c.name + " conv2d_backward_weight");
}

TEST(CudaConv, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  auto same = [](const Tensor& t) { return t; };
  for (const Case& c : cases())
    for (DType dtype : kFloatDtypes) check_case(c, dtype, same);
}

TEST(CudaConv, NonContiguousInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  // Transposing H and W twice over (a view of the same sizes with swapped strides).
  auto swapped = [](const Tensor& t) {
    return raw::transpose(raw::contiguous(raw::transpose(t, 2, 3)), 2, 3);
  };
  for (DType dtype : kFloatDtypes) check_case(cases()[3], dtype, swapped);
  // A channel slice of a wider tensor.
  const Case c = cases()[0];
  for (DType dtype : kFloatDtypes) {
    const Tensor wide = spread_input({2, 5, 11, 13}, dtype), w = spread_input(c.w, dtype);
    auto sl = [](const Tensor& t) { return raw::slice(t, 1, 1, 4); };
    test::expect_matches_tf32_reference(raw::conv2d(sl(to_cuda(wide)), to_cuda(w), Tensor(), c.p),
                                        raw::conv2d(sl(cpu_f64(wide)), cpu_f64(w), Tensor(), c.p),
                                        dtype, "channel slice");
  }
}

TEST(CudaConv, EmptySizes) {
  CXR_SKIP_WITHOUT_CUDA();
  const Conv2dParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  for (DType dtype : kFloatDtypes) {
    // No images.
    const Tensor x0 = spread_input({0, 3, 6, 6}, dtype), w = spread_input({4, 3, 3, 3}, dtype);
    const Tensor y0 = raw::conv2d(to_cuda(x0), to_cuda(w), Tensor(), p);
    EXPECT_EQ(y0.sizes(), (Shape{0, 4, 6, 6}));
    const Tensor gy0 = spread_input({0, 4, 6, 6}, dtype);
    test::expect_matches_tf32_reference(
        raw::conv2d_backward_weight(to_cuda(gy0), to_cuda(x0), w.sizes(), p),
        raw::conv2d_backward_weight(cpu_f64(gy0), cpu_f64(x0), w.sizes(), p), dtype,
        "weight gradient of no images (zeros)");
    // No input channels: the output is the bias.
    const Tensor xc = spread_input({2, 0, 6, 6}, dtype), wc = spread_input({4, 0, 3, 3}, dtype);
    const Tensor b = spread_input({4}, dtype);
    test::expect_matches_tf32_reference(raw::conv2d(to_cuda(xc), to_cuda(wc), to_cuda(b), p),
                                        raw::conv2d(cpu_f64(xc), cpu_f64(wc), cpu_f64(b), p), dtype,
                                        "no input channels");
    // No output channels: the input gradient is zero.
    const Tensor x = spread_input({2, 3, 6, 6}, dtype), wo = spread_input({0, 3, 3, 3}, dtype);
    const Tensor gyo = spread_input({2, 0, 6, 6}, dtype);
    test::expect_matches_tf32_reference(
        raw::conv2d_backward_input(to_cuda(gyo), to_cuda(wo), x.sizes(), p),
        raw::conv2d_backward_input(cpu_f64(gyo), cpu_f64(wo), x.sizes(), p), dtype,
        "input gradient of no output channels (zeros)");
  }
}

TEST(CudaConv, AlgorithmCacheGivesTheSameBits) {
  CXR_SKIP_WITHOUT_CUDA();
  const Case c = cases()[3];
  for (DType dtype : kFloatDtypes) {
    const Tensor x = to_cuda(spread_input(c.x, dtype)), w = to_cuda(spread_input(c.w, dtype));
    const Tensor b = to_cuda(spread_input({c.w[0]}, dtype));
    const Tensor y1 = raw::conv2d(x, w, b, c.p), y2 = raw::conv2d(x, w, b, c.p);
    EXPECT_TRUE(test::bitwise_equal(y1, y2)) << "conv2d " << dtype_name(dtype);
    const Tensor gy = to_cuda(spread_input(y1.sizes(), dtype));
    EXPECT_TRUE(test::bitwise_equal(raw::conv2d_backward_input(gy, w, c.x, c.p),
                                    raw::conv2d_backward_input(gy, w, c.x, c.p)))
        << "conv2d_backward_input " << dtype_name(dtype);
    EXPECT_TRUE(test::bitwise_equal(raw::conv2d_backward_weight(gy, x, c.w, c.p),
                                    raw::conv2d_backward_weight(gy, x, c.w, c.p)))
        << "conv2d_backward_weight " << dtype_name(dtype);
  }
}

TEST(CudaConv, Errors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Conv2dParams p{};
  const Tensor x = spread_input({2, 3, 8, 8}, kFloat32), w = spread_input({4, 3, 3, 3}, kFloat32);
  EXPECT_ERROR_CONTAINS(raw::conv2d(to_cuda(x), w, Tensor(), p),
                        "expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(raw::conv2d(to_cuda(x), to_cuda(w), spread_input({4}, kFloat32), p),
                        "expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(
      raw::conv2d_backward_weight(to_cuda(spread_input({2, 4, 6, 6}, kFloat32)), x, w.sizes(), p),
      "expected all tensors on one device");
  auto conv = [&](const Tensor& a, const Tensor& b) { raw::conv2d(a, b, Tensor(), p); };
  auto grouped = [&](const Tensor& a, const Tensor& b) {
    raw::conv2d(a, b, Tensor(), {{1, 1}, {0, 0}, {1, 1}, 2});
  };
  auto back_in = [&](const Tensor& g, const Tensor& b) {
    raw::conv2d_backward_input(g, b, x.sizes(), p);
  };
  auto back_w = [&](const Tensor& g, const Tensor& a) {
    raw::conv2d_backward_weight(g, a, w.sizes(), p);
  };
  EXPECT_SAME_ERROR(conv, x, spread_input({4, 2, 3, 3}, kFloat32));     // channel mismatch
  EXPECT_SAME_ERROR(conv, spread_input({3, 8, 8}, kFloat32), w);        // 3-D input
  EXPECT_SAME_ERROR(conv, spread_input({2, 3, 2, 2}, kFloat32), w);     // input smaller than kernel
  EXPECT_SAME_ERROR(conv, x, spread_input({4, 3, 3, 3}, kFloat64));     // dtypes differ
  EXPECT_SAME_ERROR(grouped, x, spread_input({4, 1, 3, 3}, kFloat32));  // 2 groups, 3 channels
  EXPECT_SAME_ERROR(back_in, spread_input({2, 4, 5, 5}, kFloat32), w);  // wrong grad_out shape
  EXPECT_SAME_ERROR(back_w, spread_input({2, 4, 5, 5}, kFloat32), x);   // wrong grad_out shape
  EXPECT_SAME_ERROR(conv, raw::to(x, kInt64), raw::to(w, kInt64));      // not floating
}

}  // namespace
