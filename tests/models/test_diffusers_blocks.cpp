// The diffusers building blocks (models/diffusers_blocks.h) against diffusers 0.42 on
// tests/fixtures/diffusers_blocks.safetensors (tests/golden/gen_diffusers_blocks.py): each block in
// a tiny configuration loads diffusers' state dict strictly (same names and shapes) and matches
// the output, the input (and time-embedding) gradient and every parameter gradient; plus the
// input and configuration errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "autograd/engine.h"
#include "models/diffusers_blocks.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::models;

namespace {

const char* const kFixture = "diffusers_blocks.safetensors";

bool has(const std::string& key) {
  return test::cached_fixture(kFixture).count(key) > 0;
}
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

nn::StateDict entries(const std::string& prefix) {
  return test::fixture_entries(kFixture, prefix);
}

// actual ~ expected within rel * (|expected| + max(max |expected|, floor)): the reference is
// float64, ours float32. The floor covers gradients that are zero in exact arithmetic (to_k's bias
// cancels in the softmax) and so only hold rounding.
::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double rel = 1e-4,
                                 double floor = 0) {
  return test::close_to_reference(actual, expected, rel, floor);
}

using Forward = std::function<Tensor(const Tensor& x, const Tensor& temb)>;

// Loads the case's diffusers weights into `m` (strictly), runs `fwd` on the stored input (and
// time embedding), backpropagates the stored loss weight and compares output and gradients.
void expect_matches_diffusers(const std::string& c, nn::Module& m, const Forward& fwd) {
  SCOPED_TRACE(c);
  nn::LoadReport report = m.load_state_dict(entries(c + ".param."));
  ASSERT_TRUE(report.ok()) << report.str();
  m.eval();
  Tensor x = raw::clone(fx(c + ".x"));
  x.set_requires_grad(true);
  Tensor temb;
  if (has(c + ".temb")) {
    temb = raw::clone(fx(c + ".temb"));
    temb.set_requires_grad(true);
  }
  Tensor out = fwd(x, temb);
  EXPECT_TRUE(close(out, fx(c + ".out")));
  backward(out, fx(c + ".gy"));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(close(x.grad(), fx(c + ".grad_x")));
  if (temb.defined()) {
    ASSERT_TRUE(temb.grad().defined());
    EXPECT_TRUE(close(temb.grad(), fx(c + ".grad_temb")));
  }
  int compared = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE("grad of " + name);
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(close(p.grad(), fx(c + ".grad." + name), 2e-4, 1e-2));
    ++compared;
  }
  EXPECT_EQ(compared, int(entries(c + ".grad.").size()));
}

Forward single(nn::Module& m) {
  return [&m](const Tensor& x, const Tensor&) { return m.forward(x); };
}

}  // namespace

TEST(ResnetBlock2D, MatchesDiffusersWithTimeEmbeddingAndShortcut) {
  ResnetBlock2D m(4, {.out_channels = 8, .temb_channels = 6, .groups = 2, .eps = 1e-5});
  ASSERT_TRUE(m.time_emb_proj && m.conv_shortcut);
  expect_matches_diffusers("resnet_temb", m,
                           [&](const Tensor& x, const Tensor& temb) { return m.forward(x, temb); });
}

TEST(ResnetBlock2D, MatchesDiffusersWithoutTimeEmbedding) {
  ResnetBlock2D m(8, {.groups = 4, .eps = 1e-6, .output_scale_factor = 2.0});
  EXPECT_FALSE(m.time_emb_proj);
  EXPECT_FALSE(m.conv_shortcut);
  EXPECT_EQ(m.out_channels, 8);
  expect_matches_diffusers("resnet_plain", m, single(m));
}

TEST(Downsample2D, MatchesDiffusersWithAsymmetricPadding) {
  Downsample2D m(4, 6, /*padding=*/0);
  expect_matches_diffusers("down_pad0", m, single(m));
}

TEST(Downsample2D, MatchesDiffusersWithPaddingOne) {
  Downsample2D m(4, 6, /*padding=*/1);
  expect_matches_diffusers("down_pad1", m, single(m));
}

TEST(Upsample2D, MatchesDiffusersTimesTwo) {
  Upsample2D m(4, 6);
  expect_matches_diffusers("up_x2", m, single(m));
}

TEST(Upsample2D, MatchesDiffusersWithExplicitSize) {
  Upsample2D m(4, 6);
  expect_matches_diffusers("up_size", m, [&](const Tensor& x, const Tensor&) {
    return m.forward(x, std::make_pair(int64_t(7), int64_t(10)));
  });
}

TEST(DownEncoderBlock2D, MatchesDiffusers) {
  DownEncoderBlock2D m(4, 8, 2, 4, 1e-6, true);
  ASSERT_TRUE(m.downsamplers);
  expect_matches_diffusers("down_encoder", m, single(m));
}

TEST(UpDecoderBlock2D, MatchesDiffusers) {
  UpDecoderBlock2D m(8, 4, 2, 2, 1e-6, true);
  ASSERT_TRUE(m.upsamplers);
  expect_matches_diffusers("up_decoder", m, single(m));
}

TEST(UNetMidBlock2D, MatchesDiffusersWithAttention) {
  UNetMidBlock2D m(8, 4, 1e-6);
  EXPECT_EQ(m.attentions->size(), 1u);
  expect_matches_diffusers("mid", m, single(m));
}

TEST(UNetMidBlock2D, MatchesDiffusersWithoutAttention) {
  UNetMidBlock2D m(8, 4, 1e-6, /*add_attention=*/false);
  EXPECT_EQ(m.attentions->size(), 0u);
  expect_matches_diffusers("mid_noattn", m, single(m));
}

TEST(DiffusersBlocks, BlocksWithoutSamplersHaveNoSamplerKeys) {
  DownEncoderBlock2D down(4, 8, 1, 4, 1e-6, false);
  UpDecoderBlock2D up(8, 4, 1, 2, 1e-6, false);
  EXPECT_FALSE(down.downsamplers);
  EXPECT_FALSE(up.upsamplers);
  for (const auto& [name, t] : down.state_dict()) EXPECT_EQ(name.find("downsamplers"), name.npos);
  for (const auto& [name, t] : up.state_dict()) EXPECT_EQ(name.find("upsamplers"), name.npos);
}

TEST(DiffusersBlocks, RejectBadInputs) {
  ResnetBlock2D plain(8, {.groups = 4});
  ResnetBlock2D timed(4, {.out_channels = 8, .temb_channels = 6, .groups = 2});
  EXPECT_ERROR_CONTAINS(plain.forward(raw::zeros({1, 4, 3, 3})),
                        "ResnetBlock2D: expected input [N, 8, H, W]");
  EXPECT_ERROR_CONTAINS(plain.forward(raw::zeros({1, 8, 3, 3}), raw::zeros({1, 6})),
                        "no time_emb_proj");
  EXPECT_ERROR_CONTAINS(timed.forward(raw::zeros({1, 4, 3, 3}), raw::zeros({1, 5})),
                        "expected temb [1, 6]");
  EXPECT_ERROR_CONTAINS(Downsample2D(4).forward(raw::zeros({1, 3, 4, 4})),
                        "Downsample2D: expected input [N, 4, H, W]");
  EXPECT_ERROR_CONTAINS(Upsample2D(4).forward(raw::zeros({4, 4})),
                        "Upsample2D: expected input [N, 4, H, W]");
  EXPECT_ERROR_CONTAINS(Upsample2D(4).forward(raw::zeros({1, 4, 2, 2}), std::make_pair(0, 3)),
                        "output size must be positive");
}

TEST(DiffusersBlocks, RejectBadConfigurations) {
  EXPECT_ERROR_CONTAINS(ResnetBlock2D(6, {.groups = 4}), "groups (4) must divide in_channels (6)");
  EXPECT_ERROR_CONTAINS(ResnetBlock2D(4, {.out_channels = 6, .groups = 4}), "and out_channels (6)");
  EXPECT_ERROR_CONTAINS(ResnetBlock2D(4, {.groups = 4, .output_scale_factor = 0}),
                        "output_scale_factor must not be 0");
  EXPECT_ERROR_CONTAINS(Downsample2D(4, 4, -1), "padding must be >= 0");
  EXPECT_ERROR_CONTAINS(DownEncoderBlock2D(4, 8, 0, 4, 1e-6, true), "num_layers must be positive");
  EXPECT_ERROR_CONTAINS(UpDecoderBlock2D(4, 8, 0, 4, 1e-6, true), "num_layers must be positive");
}
