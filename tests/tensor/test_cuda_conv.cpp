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
#include "support/tensors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

const DType kDtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

double tolerance(DType dtype) {
  switch (dtype) {
    case kFloat64:
      return 1e-12;
    case kFloat32:
      return 5e-3;  // TF32 tensor cores
    case kFloat16:
      return 1e-2;
    default:
      return 4e-2;
  }
}

Tensor cuda0(const Tensor& t) {
  return raw::to(t, Device::cuda(0));
}

Tensor input(const Shape& shape, DType dtype) {
  return raw::to(test::spread_values(shape, -2.0, 2.0), dtype);
}

Tensor f64(const Tensor& t) {
  return raw::to(raw::to(t, Device::cpu()), kFloat64);
}

void expect_matches(const Tensor& got, const Tensor& expected, DType dtype,
                    const std::string& what) {
  SCOPED_TRACE(what + " " + std::string(dtype_name(dtype)));
  ASSERT_TRUE(got.device().is_cuda()) << describe(got);
  EXPECT_EQ(got.dtype(), dtype);
  EXPECT_EQ(got.sizes(), expected.sizes()) << describe(got) << " vs " << describe(expected);
  EXPECT_TRUE(test::close_to_reference(f64(got), expected, tolerance(dtype), 1.0));
}

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
  const Tensor x = input(c.x, dtype), w = input(c.w, dtype);
  const Tensor b = c.bias ? input({c.w[0]}, dtype) : Tensor();
  const Tensor y64 = raw::conv2d(view(f64(x)), f64(w), c.bias ? f64(b) : Tensor(), c.p);
  const Tensor y = raw::conv2d(view(cuda0(x)), cuda0(w), c.bias ? cuda0(b) : Tensor(), c.p);
  expect_matches(y, y64, dtype, c.name + " conv2d");

  const Tensor gy = input(y64.sizes(), dtype);
  const Shape xs = view(x).sizes();
  expect_matches(raw::conv2d_backward_input(view(cuda0(gy)), cuda0(w), xs, c.p),
                 raw::conv2d_backward_input(view(f64(gy)), f64(w), xs, c.p), dtype,
                 c.name + " conv2d_backward_input");
  expect_matches(raw::conv2d_backward_weight(view(cuda0(gy)), view(cuda0(x)), c.w, c.p),
                 raw::conv2d_backward_weight(view(f64(gy)), view(f64(x)), c.w, c.p), dtype,
                 c.name + " conv2d_backward_weight");
}

TEST(CudaConv, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  auto same = [](const Tensor& t) { return t; };
  for (const Case& c : cases())
    for (DType dtype : kDtypes) check_case(c, dtype, same);
}

TEST(CudaConv, NonContiguousInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  // Transposing H and W twice over (a view of the same sizes with swapped strides).
  auto swapped = [](const Tensor& t) {
    return raw::transpose(raw::contiguous(raw::transpose(t, 2, 3)), 2, 3);
  };
  for (DType dtype : kDtypes) check_case(cases()[3], dtype, swapped);
  // A channel slice of a wider tensor.
  const Case c = cases()[0];
  for (DType dtype : kDtypes) {
    const Tensor wide = input({2, 5, 11, 13}, dtype), w = input(c.w, dtype);
    auto sl = [](const Tensor& t) { return raw::slice(t, 1, 1, 4); };
    expect_matches(raw::conv2d(sl(cuda0(wide)), cuda0(w), Tensor(), c.p),
                   raw::conv2d(sl(f64(wide)), f64(w), Tensor(), c.p), dtype, "channel slice");
  }
}

TEST(CudaConv, EmptySizes) {
  CXR_SKIP_WITHOUT_CUDA();
  const Conv2dParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  for (DType dtype : kDtypes) {
    // No images.
    const Tensor x0 = input({0, 3, 6, 6}, dtype), w = input({4, 3, 3, 3}, dtype);
    const Tensor y0 = raw::conv2d(cuda0(x0), cuda0(w), Tensor(), p);
    EXPECT_EQ(y0.sizes(), (Shape{0, 4, 6, 6}));
    const Tensor gy0 = input({0, 4, 6, 6}, dtype);
    expect_matches(raw::conv2d_backward_weight(cuda0(gy0), cuda0(x0), w.sizes(), p),
                   raw::conv2d_backward_weight(f64(gy0), f64(x0), w.sizes(), p), dtype,
                   "weight gradient of no images (zeros)");
    // No input channels: the output is the bias.
    const Tensor xc = input({2, 0, 6, 6}, dtype), wc = input({4, 0, 3, 3}, dtype);
    const Tensor b = input({4}, dtype);
    expect_matches(raw::conv2d(cuda0(xc), cuda0(wc), cuda0(b), p),
                   raw::conv2d(f64(xc), f64(wc), f64(b), p), dtype, "no input channels");
    // No output channels: the input gradient is zero.
    const Tensor x = input({2, 3, 6, 6}, dtype), wo = input({0, 3, 3, 3}, dtype);
    const Tensor gyo = input({2, 0, 6, 6}, dtype);
    expect_matches(raw::conv2d_backward_input(cuda0(gyo), cuda0(wo), x.sizes(), p),
                   raw::conv2d_backward_input(f64(gyo), f64(wo), x.sizes(), p), dtype,
                   "input gradient of no output channels (zeros)");
  }
}

TEST(CudaConv, AlgorithmCacheGivesTheSameBits) {
  CXR_SKIP_WITHOUT_CUDA();
  const Case c = cases()[3];
  for (DType dtype : kDtypes) {
    const Tensor x = cuda0(input(c.x, dtype)), w = cuda0(input(c.w, dtype));
    const Tensor b = cuda0(input({c.w[0]}, dtype));
    const Tensor y1 = raw::conv2d(x, w, b, c.p), y2 = raw::conv2d(x, w, b, c.p);
    EXPECT_TRUE(test::bitwise_equal(y1, y2)) << "conv2d " << dtype_name(dtype);
    const Tensor gy = cuda0(input(y1.sizes(), dtype));
    EXPECT_TRUE(test::bitwise_equal(raw::conv2d_backward_input(gy, w, c.x, c.p),
                                    raw::conv2d_backward_input(gy, w, c.x, c.p)))
        << "conv2d_backward_input " << dtype_name(dtype);
    EXPECT_TRUE(test::bitwise_equal(raw::conv2d_backward_weight(gy, x, c.w, c.p),
                                    raw::conv2d_backward_weight(gy, x, c.w, c.p)))
        << "conv2d_backward_weight " << dtype_name(dtype);
  }
}

// The CPU error message of f(cpu tensors) equals the CUDA one without describe()'s "@cuda:0".
template <typename F>
void expect_same_error(F f, const Tensor& a, const Tensor& b) {
  const std::string cpu = test::error_message([&] { f(a, b); });
  std::string gpu = test::error_message([&] { f(cuda0(a), cuda0(b)); });
  ASSERT_FALSE(cpu.empty());
  for (size_t at; (at = gpu.find("@cuda:0")) != std::string::npos;) gpu.erase(at, 7);
  EXPECT_EQ(gpu, cpu);
}

TEST(CudaConv, Errors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Conv2dParams p{};
  const Tensor x = input({2, 3, 8, 8}, kFloat32), w = input({4, 3, 3, 3}, kFloat32);
  EXPECT_ERROR_CONTAINS(raw::conv2d(cuda0(x), w, Tensor(), p),
                        "expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(raw::conv2d(cuda0(x), cuda0(w), input({4}, kFloat32), p),
                        "expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(
      raw::conv2d_backward_weight(cuda0(input({2, 4, 6, 6}, kFloat32)), x, w.sizes(), p),
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
  expect_same_error(conv, x, input({4, 2, 3, 3}, kFloat32));        // channel mismatch
  expect_same_error(conv, input({3, 8, 8}, kFloat32), w);           // 3-D input
  expect_same_error(conv, input({2, 3, 2, 2}, kFloat32), w);        // input smaller than kernel
  expect_same_error(conv, x, input({4, 3, 3, 3}, kFloat64));        // dtypes differ
  expect_same_error(grouped, x, input({4, 1, 3, 3}, kFloat32));     // 2 groups, 3 channels
  expect_same_error(back_in, input({2, 4, 5, 5}, kFloat32), w);     // wrong grad_out shape
  expect_same_error(back_w, input({2, 4, 5, 5}, kFloat32), x);      // wrong grad_out shape
  expect_same_error(conv, raw::to(x, kInt64), raw::to(w, kInt64));  // not floating
}

}  // namespace
