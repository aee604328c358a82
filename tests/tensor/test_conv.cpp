// conv2d and its two backward passes: PyTorch golden values (tests/golden/gen_conv.py), a direct
// 7-loop reference for odd channel counts, non-contiguous inputs, half types, bitwise determinism
// across thread counts and the errors for bad shapes.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using raw::Conv2dParams;

namespace {

const std::map<std::string, Tensor>& fixture() {
  static const auto f = test::load_fixture("conv.safetensors");
  return f;
}
Tensor fx(const std::string& key) {
  return test::fixture_tensor(fixture(), key);
}

struct GoldenCase {
  const char* name;
  Conv2dParams p;
  bool bias;
};

// The cases of gen_conv.py's CONV table.
const GoldenCase kGolden[] = {
    {"basic", {{1, 1}, {0, 0}, {1, 1}, 1}, true},  {"s2p1", {{2, 2}, {1, 1}, {1, 1}, 1}, true},
    {"dil2", {{1, 1}, {2, 2}, {2, 2}, 1}, false},  {"g2", {{2, 1}, {1, 0}, {1, 1}, 2}, true},
    {"dw", {{1, 1}, {1, 1}, {1, 1}, 5}, true},     {"dwmult", {{1, 1}, {0, 0}, {1, 1}, 3}, false},
    {"pw", {{1, 1}, {0, 0}, {1, 1}, 1}, true},     {"pw_s2", {{2, 2}, {0, 0}, {1, 1}, 1}, false},
    {"k7s2", {{2, 2}, {3, 3}, {1, 1}, 1}, true},   {"rect", {{1, 2}, {1, 2}, {2, 1}, 1}, true},
    {"batch9", {{1, 1}, {1, 1}, {1, 1}, 1}, true},
};

// The same values in a channels-last layout: a non-contiguous NCHW view.
Tensor channels_last(const Tensor& t) {
  return raw::permute(raw::contiguous(raw::permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

// Direct definition in double: y[n,o,i,j] = b[o] + sum_{c,u,v} x[n, g*icg + c, i*s - p + u*d,
// j*s - p + v*d] * w[o, c, u, v] with g = o / ocg (zero outside the input).
std::vector<double> reference_conv(const Tensor& x, const Tensor& w, const Tensor& b,
                                   const Conv2dParams& p, Shape& out_shape) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t oc = w.size(0), icg = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t oh = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
  const int64_t ow = (wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
  const int64_t ocg = oc / p.groups;
  out_shape = {n, oc, oh, ow};
  std::vector<double> y(size_t(n * oc * oh * ow));
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = bv.empty() ? 0.0 : bv[size_t(o)];
          for (int64_t ci = 0; ci < icg; ++ci)
            for (int64_t u = 0; u < kh; ++u)
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t ih = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                const int64_t iw = j * p.stride[1] - p.padding[1] + v * p.dilation[1];
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const int64_t ch = (o / ocg) * icg + ci;
                acc += xv[size_t(((in * c + ch) * h + ih) * wd + iw)] *
                       wv[size_t(((o * icg + ci) * kh + u) * kw + v)];
              }
          y[size_t(((in * oc + o) * oh + i) * ow + j)] = acc;
        }
  return y;
}

double dot(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += av[i] * bv[i];
  return s;
}

}  // namespace

TEST(Conv2d, ForwardAndBothBackwardPassesMatchPyTorch) {
  for (const GoldenCase& c : kGolden) {
    SCOPED_TRACE(c.name);
    const std::string k = std::string("conv_") + c.name + ".";
    const Tensor x = fx(k + "x"), w = fx(k + "w"), gy = fx(k + "gy");
    const Tensor b = c.bias ? fx(k + "b") : Tensor();
    EXPECT_ALL_CLOSE(raw::conv2d(x, w, b, c.p), fx(k + "out"), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_input(gy, w, x.sizes(), c.p), fx(k + "grad_x"), 1e-4,
                     1e-4);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_weight(gy, x, w.sizes(), c.p), fx(k + "grad_w"), 1e-4,
                     1e-4);
  }
}

TEST(Conv2d, NonContiguousInputsMatchPyTorch) {
  for (const GoldenCase& c : kGolden) {
    SCOPED_TRACE(c.name);
    const std::string k = std::string("conv_") + c.name + ".";
    const Tensor x = channels_last(fx(k + "x")), gy = channels_last(fx(k + "gy"));
    ASSERT_FALSE(x.is_contiguous());
    // A weight that is a transposed view of its storage.
    const Tensor w = raw::transpose(raw::contiguous(raw::transpose(fx(k + "w"), 2, 3)), 2, 3);
    const Tensor b = c.bias ? fx(k + "b") : Tensor();
    EXPECT_ALL_CLOSE(raw::conv2d(x, w, b, c.p), fx(k + "out"), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_input(gy, w, x.sizes(), c.p), fx(k + "grad_x"), 1e-4,
                     1e-4);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_weight(gy, x, w.sizes(), c.p), fx(k + "grad_w"), 1e-4,
                     1e-4);
  }
}

TEST(Conv2d, SlicedInputWithStridedRowsMatchesReference) {
  Generator gen(7);
  // Every other column of a wider tensor: w stride 2, so no plane is a flat matrix.
  const Tensor wide = raw::randn({2, 5, 9, 14}, gen);
  const Tensor x = raw::slice(wide, 3, 0, 14, 2);
  const Tensor w = raw::randn({3, 5, 1, 1}, gen), b = raw::randn({3}, gen);
  for (const Conv2dParams& p : {Conv2dParams{}, Conv2dParams{{2, 1}, {1, 0}, {1, 1}, 1}}) {
    Shape shape;
    const auto ref = reference_conv(x, w, b, p, shape);
    EXPECT_ALL_CLOSE(raw::conv2d(x, w, b, p), raw::from_vector(ref, shape, kFloat32), 1e-5, 1e-5);
  }
}

TEST(Conv2d, OddChannelCountsMatchDirectReference) {
  Generator gen(11);
  struct Case {
    int64_t n, c, h, w, oc, k;
    Conv2dParams p;
  };
  const Case cases[] = {
      {1, 1, 5, 4, 1, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {2, 7, 6, 5, 63, 3, {{2, 2}, {1, 1}, {1, 1}, 1}},
      {3, 65, 4, 6, 7, 1, {{1, 1}, {0, 0}, {1, 1}, 1}},
      {2, 63, 5, 5, 65, 3, {{1, 1}, {2, 2}, {2, 2}, 1}},
      {1, 65, 7, 3, 65, 3, {{1, 2}, {1, 1}, {1, 1}, 65}},
      {9, 7, 3, 3, 63, 1, {{1, 1}, {0, 0}, {1, 1}, 7}},
      // More than 2048 output pixels per image: the forward pass cuts each image into tiles.
      {2, 7, 47, 50, 5, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
      // Several small images per GEMM: the im2col operand is packed in blocks (of output pixels
      // in the forward pass, of the reduction in the weight gradient) that begin and end inside
      // an image: 9 x 100 pixels in blocks of 128 or 256, and a reduction of 9 x 49 in two halves.
      {9, 5, 10, 10, 6, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {9, 5, 7, 7, 6, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {9, 6, 14, 14, 4, 1, {{2, 2}, {0, 0}, {1, 1}, 2}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "C=" << c.c << " OC=" << c.oc << " k=" << c.k << " groups=" << c.p.groups);
    const Tensor x = raw::randn({c.n, c.c, c.h, c.w}, gen, kFloat64);
    const Tensor w = raw::randn({c.oc, c.c / c.p.groups, c.k, c.k}, gen, kFloat64);
    const Tensor b = raw::randn({c.oc}, gen, kFloat64);
    Shape shape;
    const auto ref = reference_conv(x, w, b, c.p, shape);
    EXPECT_ALL_CLOSE(raw::conv2d(x, w, b, c.p), raw::from_vector(ref, shape, kFloat64), 1e-12,
                     1e-12);
    // float32 goes through sgemm.
    EXPECT_ALL_CLOSE(
        raw::conv2d(raw::to(x, kFloat32), raw::to(w, kFloat32), raw::to(b, kFloat32), c.p),
        raw::from_vector(ref, shape, kFloat64), 1e-4, 1e-4);
    // Backward passes through the adjoint identity <conv(x, w), g> = <x, dX(g)> = <w, dW(g)>.
    const auto plain = reference_conv(x, w, Tensor(), c.p, shape);
    const Tensor g = raw::randn(shape, gen, kFloat64);
    const auto gv = g.to_vector<double>();
    double yg = 0;
    for (size_t i = 0; i < gv.size(); ++i) yg += plain[i] * gv[i];
    EXPECT_NEAR(dot(x, raw::conv2d_backward_input(g, w, x.sizes(), c.p)), yg, 1e-9 * std::abs(yg));
    const Tensor gw = raw::conv2d_backward_weight(g, x, w.sizes(), c.p);
    EXPECT_NEAR(dot(w, gw), yg, 1e-9 * std::abs(yg));
    // float32 backward passes (sgemm's blocking differs from dgemm's) against the float64 ones.
    const Tensor g32 = raw::to(g, kFloat32), x32 = raw::to(x, kFloat32);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_input(g32, raw::to(w, kFloat32), x.sizes(), c.p),
                     raw::conv2d_backward_input(g, w, x.sizes(), c.p), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(raw::conv2d_backward_weight(g32, x32, w.sizes(), c.p), gw, 1e-4, 1e-4);
  }
}

TEST(Conv2d, BackwardPassesAreAdjointsOfTheForward) {
  // <conv(x, w), g> = <x, backward_input(g, w)> = <w, backward_weight(g, x)>: the backward passes
  // are the transposes of the (bilinear) forward map, whatever the shape.
  Generator gen(5);
  const Conv2dParams ps[] = {
      {{2, 2}, {1, 1}, {1, 1}, 1}, {{1, 1}, {2, 2}, {2, 2}, 1}, {{1, 3}, {0, 1}, {1, 2}, 2}};
  for (const Conv2dParams& p : ps) {
    const Tensor x = raw::randn({3, 4, 9, 8}, gen, kFloat64);
    const Tensor w = raw::randn({6, 4 / p.groups, 3, 3}, gen, kFloat64);
    const Tensor y = raw::conv2d(x, w, Tensor(), p);
    const Tensor g = raw::randn(y.sizes(), gen, kFloat64);
    const double yg = dot(y, g);
    EXPECT_NEAR(dot(x, raw::conv2d_backward_input(g, w, x.sizes(), p)), yg, 1e-9 * std::abs(yg));
    EXPECT_NEAR(dot(w, raw::conv2d_backward_weight(g, x, w.sizes(), p)), yg, 1e-9 * std::abs(yg));
  }
}

TEST(Conv2d, HalfTypesComputeInFloat32) {
  const std::string k = "conv_s2p1.";
  const Conv2dParams p{{2, 2}, {1, 1}, {1, 1}, 1};
  for (DType dt : {kFloat16, kBFloat16}) {
    const double tol = dt == kFloat16 ? 2e-2 : 1e-1;
    const Tensor y = raw::conv2d(raw::to(fx(k + "x"), dt), raw::to(fx(k + "w"), dt),
                                 raw::to(fx(k + "b"), dt), p);
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_ALL_CLOSE(y, fx(k + "out"), tol, tol);
    const Tensor gx = raw::conv2d_backward_input(raw::to(fx(k + "gy"), dt),
                                                 raw::to(fx(k + "w"), dt), fx(k + "x").sizes(), p);
    EXPECT_EQ(gx.dtype(), dt);
    EXPECT_ALL_CLOSE(gx, fx(k + "grad_x"), tol, tol);
    const Tensor gw = raw::conv2d_backward_weight(raw::to(fx(k + "gy"), dt),
                                                  raw::to(fx(k + "x"), dt), fx(k + "w").sizes(), p);
    EXPECT_ALL_CLOSE(gw, fx(k + "grad_w"), 5 * tol, 5 * tol);
  }
}

TEST(Conv2d, ResultsAreBitwiseIdenticalForAnyThreadCount) {
  Generator gen(3);
  struct Case {
    Shape x, w;
    Conv2dParams p;
  };
  // A 3x3 conv with one image per GEMM (and dW summed in 8 partials), a small-image conv whose
  // images share GEMMs, a 1x1 conv, a depthwise conv whose groups run in parallel, and images cut
  // into column tiles; the cut into GEMMs may differ with the thread count, the bits may not.
  const Case cases[] = {
      {{8, 8, 34, 34}, {16, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {{8, 32, 7, 7}, {48, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {{3, 64, 20, 20}, {96, 64, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}},
      {{4, 32, 16, 16}, {32, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 32}},
      {{2, 8, 48, 48}, {16, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
      // Chunks of 2 images spread over 2 threads, merged into one 8-image GEMM on 1 thread.
      {{8, 16, 14, 14}, {24, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
  };
  const int saved = omp_get_max_threads();
  for (const Case& c : cases) {
    const Tensor x = raw::randn(c.x, gen), w = raw::randn(c.w, gen), b = raw::randn({c.w[0]}, gen);
    const Tensor g = raw::randn(raw::conv2d(x, w, b, c.p).sizes(), gen);
    std::vector<std::vector<Tensor>> runs;
    for (int threads : {1, 2, 1, 2}) {
      omp_set_num_threads(threads);
      runs.push_back({raw::conv2d(x, w, b, c.p), raw::conv2d_backward_input(g, w, x.sizes(), c.p),
                      raw::conv2d_backward_weight(g, x, w.sizes(), c.p)});
    }
    for (size_t r = 1; r < runs.size(); ++r)
      for (size_t i = 0; i < 3; ++i)
        EXPECT_TRUE(test::bitwise_equal(runs[0][i], runs[r][i])) << r << i;
  }
  omp_set_num_threads(saved);
}

TEST(Conv2d, BadShapesGiveClearErrors) {
  const Tensor x = raw::zeros({2, 4, 5, 5}), w = raw::zeros({6, 4, 3, 3});
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 3, 3, 3}), Tensor(), {});
      },
      "expects 3 input channels");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 4, 7, 7}), Tensor(), {});
      },
      "smaller than the dilated kernel size (7 x 7)");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 4, 3, 3}), Tensor(), {{1, 1}, {0, 0}, {3, 3}, 1});
      },
      "dilated kernel size (7 x 7)");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 1, 3, 3}), Tensor(), {{1, 1}, {0, 0}, {1, 1}, 3});
      },
      "groups 3 do not divide the 4 input channels");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({5, 2, 3, 3}), Tensor(), {{1, 1}, {0, 0}, {1, 1}, 2});
      },
      "do not divide the 5 output channels");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(raw::zeros({4, 5, 5}), w, Tensor(), {});
      },
      "expected a 4-D input");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 4, 3}), Tensor(), {});
      },
      "expected a 4-D weight");
  EXPECT_ERROR_CONTAINS({ raw::conv2d(x, w, raw::zeros({5}), {}); }, "bias must be [6]");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, raw::zeros({6, 4, 3, 3}, kFloat64), Tensor(), {});
      },
      "dtypes differ");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(raw::zeros({2, 4, 5, 5}, kInt64), w, Tensor(), {});
      },
      "must be floating");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, w, Tensor(), {{0, 1}, {0, 0}, {1, 1}, 1});
      },
      "stride must be positive");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d(x, w, Tensor(), {{1, 1}, {-1, 0}, {1, 1}, 1});
      },
      "padding must be non-negative");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d_backward_input(raw::zeros({2, 6, 4, 4}), w, x.sizes(), {});
      },
      "does not match the output shape [2, 6, 3, 3]");
  EXPECT_ERROR_CONTAINS(
      {
        raw::conv2d_backward_weight(raw::zeros({2, 6, 3, 3}), x, {6, 4, 3}, {});
      },
      "expected a 4-D weight");
}

TEST(Conv2d, EmptyBatchAndZeroInputChannels) {
  const Tensor y = raw::conv2d(raw::zeros({0, 3, 5, 5}), raw::zeros({4, 3, 3, 3}), Tensor(), {});
  EXPECT_EQ(y.sizes(), (Shape{0, 4, 3, 3}));
  // No input channels: the output is the bias.
  const Tensor b = raw::from_vector(std::vector<float>{1, -2}, {2});
  const Tensor y2 = raw::conv2d(raw::zeros({1, 0, 4, 4}), raw::zeros({2, 0, 3, 3}), b, {});
  EXPECT_EQ(y2.at({0, 0, 1, 1}), 1.0);
  EXPECT_EQ(y2.at({0, 1, 0, 0}), -2.0);
}
