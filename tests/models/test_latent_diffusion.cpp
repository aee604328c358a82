// The generator's condition rules and sampling on the tiny diffusers pipeline folder of
// tests/fixtures/sd_tiny: "N/A" and empty prompts give a zero text condition in training and in
// sampling alike, null masks give exactly the UNet without ControlNet, and an image depends only
// on its seed and settings, not on the batch it is generated in.
#include <gtest/gtest.h>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "models/latent_diffusion.h"
#include "models/sd_folder.h"
#include "support/compare.h"
#include "support/errors.h"
#include "tensor/ops.h"

namespace cxr::models {
namespace {

LatentDiffusion tiny() {
  static const SdFolder folder = load_sd_folder(std::string(CXR_FIXTURE_DIR) + "/sd_tiny");
  LatentDiffusion m;
  m.vae = folder.vae;
  m.text_encoder = folder.text_encoder;
  m.tokenizer = folder.tokenizer;
  m.unet = folder.unet;
  m.controlnet = folder.controlnet;
  m.noise = folder.scheduler->config();
  m.validate();
  return m;
}

// A [B, 3, 16, 16] condition: a square finding in the rows of `with_finding`, black elsewhere.
Tensor masks(const std::vector<bool>& with_finding) {
  Tensor m = raw::zeros({int64_t(with_finding.size()), 3, 16, 16});
  for (size_t b = 0; b < with_finding.size(); ++b)
    if (with_finding[b])
      raw::fill_(raw::narrow(raw::narrow(raw::select(m, 0, int64_t(b)), 1, 4, 6), 2, 3, 5), 1.0);
  return m;
}

TEST(LatentDiffusion, NullConditionRules) {
  EXPECT_TRUE(is_null_prompt("N/A"));
  EXPECT_TRUE(is_null_prompt("  n/a "));
  EXPECT_TRUE(is_null_prompt(""));
  EXPECT_FALSE(is_null_prompt("NA"));
  EXPECT_FALSE(is_null_prompt("N/A left"));
  EXPECT_TRUE(is_null_mask(Tensor()));
  EXPECT_TRUE(is_null_mask(raw::zeros({3, 4, 4}, kUInt8)));
  EXPECT_FALSE(is_null_mask(masks({true})));
  EXPECT_EQ(parse_condition_mode("tm2i"), ConditionMode::TextMask);
  EXPECT_ERROR_CONTAINS(parse_condition_mode("i2i"), "expected t2i, m2i or tm2i");
}

TEST(LatentDiffusion, PromptsEncodeToZeroWhenNull) {
  LatentDiffusion m = tiny();
  const Tensor text = m.encode_prompts({"left pneumothorax", "N/A", ""}, ConditionMode::TextMask);
  EXPECT_EQ(raw::sum(raw::abs(raw::select(text, 0, 1))).item(), 0.0);
  EXPECT_EQ(raw::sum(raw::abs(raw::select(text, 0, 2))).item(), 0.0);
  // The real prompt is the text encoder's output, as encoded alone.
  const Tensor alone = m.encode_prompts({"left pneumothorax"}, ConditionMode::TextMask);
  EXPECT_GT(raw::sum(raw::abs(alone)).item(), 0.0);
  EXPECT_TRUE(test::all_close(raw::select(text, 0, 0), raw::select(alone, 0, 0), 1e-6, 1e-6));
  // m2i ignores every prompt.
  const Tensor m2i = m.encode_prompts({"left pneumothorax"}, ConditionMode::Mask);
  EXPECT_EQ(raw::sum(raw::abs(m2i)).item(), 0.0);
}

TEST(LatentDiffusion, NullMasksLeaveTheUNetAlone) {
  LatentDiffusion m = tiny();
  autograd::NoGradGuard no_grad;
  Generator gen(3);
  const Tensor z = raw::randn({2, 4, 8, 8}, gen);
  const Tensor t = raw::from_vector(std::vector<int64_t>{10, 500}, {2});
  const Tensor text = m.encode_prompts({"a", "b"}, ConditionMode::TextMask);
  const Tensor cond = masks({true, false});
  const auto active = m.active_masks(cond, 2, ConditionMode::TextMask);
  EXPECT_EQ(active, (std::vector<bool>{true, false}));
  const Tensor with = m.predict(z, t, text, cond, active);
  const Tensor plain = m.unet->forward(z, t, text);
  // Row 1 (black mask) is exactly the UNet without ControlNet; row 0 is changed by it.
  EXPECT_TRUE(test::bitwise_equal(raw::select(with, 0, 1), raw::select(plain, 0, 1)));
  EXPECT_GT(raw::amax(raw::abs(sub(raw::select(with, 0, 0), raw::select(plain, 0, 0)))).item(),
            1e-6);
  // t2i ignores masks.
  EXPECT_EQ(m.active_masks(cond, 2, ConditionMode::Text), (std::vector<bool>{false, false}));
}

// The known pitfall: training must apply the same "N/A" rule as sampling. With the same random
// draws, "N/A" trains exactly like the empty prompt and unlike a real one.
TEST(LatentDiffusion, TrainingAppliesTheSameNullRule) {
  LatentDiffusion m = tiny();
  Generator g0(9);
  const Tensor images = sub(mul(raw::rand({2, 3, 16, 16}, g0), 2.0), 1.0);
  auto loss = [&](const std::string& prompt) {
    Generator gen(5);
    return m
        .training_loss(images, {prompt, prompt}, masks({true, false}), ConditionMode::TextMask, gen)
        .item();
  };
  EXPECT_EQ(loss("N/A"), loss(""));
  EXPECT_NE(loss("N/A"), loss("right pneumothorax"));
  // Gradients reach the trainable ControlNet through the frozen UNet.
  m.unet->requires_grad(false);
  Generator gen(5);
  Tensor l =
      m.training_loss(images, {"a", "b"}, masks({true, false}), ConditionMode::TextMask, gen);
  backward(l);
  int with_grad = 0;
  for (const auto& [name, p] : m.controlnet->named_parameters()) with_grad += p.grad().defined();
  EXPECT_GT(with_grad, 0);
  m.controlnet->zero_grad();
  m.unet->requires_grad(true);
}

TEST(LatentDiffusion, ImagesDependOnlyOnTheirSeed) {
  LatentDiffusion m = tiny();
  SampleOptions o;
  o.scheduler = "ddim";
  o.steps = 3;
  o.guidance_scale = 2.0;
  o.height = o.width = 16;
  const Tensor pair = sample_images(m, {"a", "N/A"}, masks({true, false}), {11, 12}, o);
  EXPECT_EQ(pair.sizes(), (Shape{2, 3, 16, 16}));
  EXPECT_GE(raw::amin(pair).item(), 0.0);
  EXPECT_LE(raw::amax(pair).item(), 1.0);
  const Tensor alone = sample_images(m, {"N/A"}, masks({false}), {12}, o);
  EXPECT_TRUE(test::all_close(raw::select(pair, 0, 1), raw::select(alone, 0, 0), 1e-5, 1e-5));
  const Tensor again = sample_images(m, {"N/A"}, masks({false}), {12}, o);
  EXPECT_TRUE(test::bitwise_equal(alone, again));
  const Tensor other = sample_images(m, {"N/A"}, masks({false}), {13}, o);
  EXPECT_FALSE(test::all_close(alone, other, 1e-3, 1e-3));
  EXPECT_ERROR_CONTAINS(sample_images(m, {"a"}, Tensor(), {1, 2}, o), "one per image");
  o.height = 15;
  EXPECT_ERROR_CONTAINS(sample_images(m, {"a"}, Tensor(), {1}, o), "multiples of 2");
}

}  // namespace
}  // namespace cxr::models
