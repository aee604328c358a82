// The UNet's blocks (models/unet_blocks.h) on their own: the sinusoidal timestep embedding against
// diffusers' get_timestep_embedding (tests/fixtures/unet2d_condition.safetensors, written by
// tests/golden/gen_unet2d_condition.py), the blocks' state-dict names, and their input errors.
// Their numerics inside the model are checked against diffusers by test_unet2d_condition.cpp.
#include <gtest/gtest.h>

#include "models/unet_blocks.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::models;

namespace {

Tensor fx(const std::string& key) {
  return test::fixture_tensor("unet2d_condition.safetensors", key);
}

std::map<std::string, Shape> shapes(const nn::Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [key, t] : m.state_dict()) out[key] = t.shape();
  return out;
}

Transformer2DOptions attention(int64_t heads, bool linear = false) {
  return {.num_attention_heads = heads,
          .num_layers = 1,
          .cross_attention_dim = 6,
          .norm_num_groups = 2,
          .use_linear_projection = linear};
}

UNetBlockOptions block(int64_t layers, bool add_sample) {
  return {.num_layers = layers, .temb_channels = 12, .groups = 2, .add_sample = add_sample};
}

}  // namespace

TEST(TimestepEmbedding, MatchesDiffusers) {
  // float32 on both sides; sin/cos of arguments up to ~1000 rad: 1e-4 absolute.
  const Tensor t = fx("temb.t");
  EXPECT_ALL_CLOSE(timestep_embedding(t, 320, true, 0.0), fx("temb.sd"), 0.0, 1e-4);
  EXPECT_ALL_CLOSE(timestep_embedding(t, 7, false, 1.0, 2.0), fx("temb.odd"), 0.0, 1e-4);
  EXPECT_ALL_CLOSE(timestep_embedding(fx("temb.t_int"), 8, true, 0.0), fx("temb.int"), 0.0, 1e-4);
  Timesteps proj(320, true, 0.0);
  EXPECT_TRUE(test::bitwise_equal(proj.forward(t), timestep_embedding(t, 320, true, 0.0)));
  EXPECT_ERROR_CONTAINS(timestep_embedding(raw::zeros({2, 1}), 8, true, 0.0),
                        "timestep_embedding: expected timesteps [B]");
  EXPECT_ERROR_CONTAINS(timestep_embedding(t, 8, true, 4.0), "must differ from");
}

TEST(UNetBlocks, StateDictNamesAreDiffusers) {
  const std::map<std::string, Shape> down =
      shapes(CrossAttnDownBlock2D(4, 8, block(1, true), attention(2)));
  EXPECT_EQ(down.at("attentions.0.proj_in.weight"), (Shape{8, 8, 1, 1}));
  EXPECT_EQ(down.at("attentions.0.transformer_blocks.0.attn2.to_k.weight"), (Shape{8, 6}));
  EXPECT_EQ(down.at("attentions.0.transformer_blocks.0.ff.net.0.proj.weight"), (Shape{64, 8}));
  EXPECT_EQ(down.at("attentions.0.transformer_blocks.0.ff.net.2.weight"), (Shape{8, 32}));
  EXPECT_EQ(down.at("resnets.0.conv_shortcut.weight"), (Shape{8, 4, 1, 1}));
  EXPECT_EQ(down.at("resnets.0.time_emb_proj.weight"), (Shape{8, 12}));
  EXPECT_EQ(down.at("downsamplers.0.conv.weight"), (Shape{8, 8, 3, 3}));
  EXPECT_FALSE(down.count("attentions.0.transformer_blocks.0.attn1.to_q.bias"));  // no q/k/v bias

  const std::map<std::string, Shape> linear =
      shapes(UNetMidBlock2DCrossAttn(8, block(1, false), attention(4, true)));
  EXPECT_EQ(linear.at("attentions.0.proj_out.weight"), (Shape{8, 8}));
  EXPECT_TRUE(linear.count("resnets.1.norm2.bias"));

  // Up block: resnet j sees (prev if j == 0 else out) + (in if j is the last else out) channels.
  const std::map<std::string, Shape> up = shapes(UpBlock2D(4, 16, 8, block(3, true)));
  EXPECT_EQ(up.at("resnets.0.conv1.weight"), (Shape{8, 24, 3, 3}));
  EXPECT_EQ(up.at("resnets.1.conv1.weight"), (Shape{8, 16, 3, 3}));
  EXPECT_EQ(up.at("resnets.2.conv1.weight"), (Shape{8, 12, 3, 3}));
  EXPECT_EQ(up.at("upsamplers.0.conv.weight"), (Shape{8, 8, 3, 3}));
  EXPECT_FALSE(up.count("attentions.0.norm.weight"));
}

TEST(UNetBlocks, ShapesAndSkips) {
  CrossAttnDownBlock2D down(4, 8, block(2, true), attention(2));
  const Tensor temb = raw::zeros({1, 12});
  const Tensor ctx = raw::zeros({1, 3, 6});
  const std::vector<Tensor> states = down.forward(raw::zeros({1, 4, 5, 7}), temb, ctx);
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[1].sizes(), (Shape{1, 8, 5, 7}));
  EXPECT_EQ(states[2].sizes(), (Shape{1, 8, 3, 4}));  // stride 2, padding 1

  CrossAttnUpBlock2D up(4, 8, 8, block(2, true), attention(2));
  const std::vector<Tensor> skips = {raw::zeros({1, 4, 3, 4}), raw::zeros({1, 8, 3, 4})};
  EXPECT_EQ(up.forward(raw::zeros({1, 8, 3, 4}), skips, temb, ctx).sizes(), (Shape{1, 8, 6, 8}));
  EXPECT_EQ(
      up.forward(raw::zeros({1, 8, 3, 4}), skips, temb, ctx, std::pair<int64_t, int64_t>{5, 7})
          .sizes(),
      (Shape{1, 8, 5, 7}));
  EXPECT_ERROR_CONTAINS(up.forward(raw::zeros({1, 8, 3, 4}), {skips[0]}, temb, ctx),
                        "CrossAttnUpBlock2D: expected 2 skip tensors, got 1");
  EXPECT_ERROR_CONTAINS(
      up.forward(raw::zeros({1, 8, 3, 4}), {skips[0], raw::zeros({1, 8, 2, 4})}, temb, ctx),
      "CrossAttnUpBlock2D: skip tensor 1 is");
  EXPECT_ERROR_CONTAINS(down.forward(raw::zeros({1, 3, 4, 4}), temb, ctx),
                        "CrossAttnDownBlock2D: expected input [B, 4, H, W]");
  EXPECT_ERROR_CONTAINS(Transformer2DModel(6, attention(4)),
                        "num_attention_heads (4) must divide in_channels (6)");
}
