// AutoencoderKL (models/autoencoder_kl.h) against diffusers 0.42 on
// tests/fixtures/autoencoder_kl.safetensors (tests/golden/gen_autoencoder_kl.py): tiny models with
// random weights built from diffusers' own config.json (encode mean/logvar/KL and input gradient,
// decode and its latent gradient, forward), the real SD v1 VAE's state-dict names, shapes and
// parameter count, legacy attention names, the posterior, and config and input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "autograd/engine.h"
#include "autograd/reduce.h"
#include "models/autoencoder_kl.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::models;

namespace {

const char* const kFixture = "autoencoder_kl.safetensors";

Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

nn::StateDict entries(const std::string& prefix) {
  return test::fixture_entries(kFixture, prefix);
}

// The config.json diffusers wrote for `c` (stored as bytes).
nlohmann::json fixture_json(const std::string& c) {
  return test::fixture_json(kFixture, c + ".config");
}

AutoencoderKLConfig config_of(const nlohmann::json& j) {
  JsonConfig json(j, "test config");
  return AutoencoderKLConfig::from_json(json);
}

// actual ~ expected within rel * (|expected| + max |expected|): the reference is float64.
::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double rel = 2e-4) {
  return test::close_to_reference(actual, expected, rel);
}

// Builds the case's model from diffusers' config.json, loads its weights strictly and compares
// encode, decode (with gradients) and forward.
void expect_matches_diffusers(const std::string& c) {
  SCOPED_TRACE(c);
  AutoencoderKL m(config_of(fixture_json(c)));
  nn::LoadReport report = m.load_state_dict(entries(c + ".param."));
  ASSERT_TRUE(report.ok()) << report.str();
  m.eval();

  Tensor x = raw::clone(fx(c + ".x"));
  x.set_requires_grad(true);
  DiagonalGaussianDistribution dist = m.encode(x);
  EXPECT_TRUE(close(dist.mean, fx(c + ".mean")));
  EXPECT_TRUE(close(dist.logvar, fx(c + ".logvar")));
  EXPECT_TRUE(close(dist.kl(), fx(c + ".kl")));
  autograd::backward({dist.mean, dist.logvar}, {fx(c + ".gm"), fx(c + ".gl")});
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(close(x.grad(), fx(c + ".encode_grad_x")));

  Tensor z = raw::clone(fx(c + ".z"));
  z.set_requires_grad(true);
  Tensor sample = m.decode(z);
  EXPECT_TRUE(close(sample, fx(c + ".decode")));
  backward(sample, fx(c + ".gy"));
  ASSERT_TRUE(z.grad().defined());
  EXPECT_TRUE(close(z.grad(), fx(c + ".decode_grad_z")));

  EXPECT_TRUE(close(m.forward(fx(c + ".x")), fx(c + ".forward")));
}

}  // namespace

TEST(AutoencoderKL, TinyMatchesDiffusers) {
  expect_matches_diffusers("tiny");
}

TEST(AutoencoderKL, TinyWithoutQuantConvsAndMidAttentionMatchesDiffusers) {
  AutoencoderKL m(config_of(fixture_json("tiny_bare")));
  EXPECT_FALSE(m.quant_conv);
  EXPECT_FALSE(m.post_quant_conv);
  EXPECT_EQ(m.encoder->mid_block->attentions->size(), 0u);
  EXPECT_EQ(m.downsampling_factor(), 4);
  expect_matches_diffusers("tiny_bare");
}

TEST(AutoencoderKL, StableDiffusionStateDictIsDiffusers) {
  const nlohmann::json j = fixture_json("sd");
  const AutoencoderKLConfig config = config_of(j);
  const AutoencoderKLConfig sd = AutoencoderKLConfig::stable_diffusion();
  EXPECT_EQ(config.block_out_channels, sd.block_out_channels);
  EXPECT_EQ(config.layers_per_block, sd.layers_per_block);
  EXPECT_EQ(config.norm_num_groups, sd.norm_num_groups);
  EXPECT_EQ(config.latent_channels, sd.latent_channels);
  EXPECT_DOUBLE_EQ(config.scaling_factor, 0.18215);
  EXPECT_FALSE(config.shift_factor);

  AutoencoderKL m(config);
  EXPECT_EQ(m.downsampling_factor(), 8);
  EXPECT_EQ(m.num_parameters(), fx("sd.num_parameters").to_vector<int64_t>()[0]);
  const nn::StateDict ours = m.state_dict();
  const nn::StateDict shapes = entries("sd.shape.");
  EXPECT_EQ(ours.size(), shapes.size());
  for (const auto& [name, shape] : shapes) {
    auto it = ours.find(name);
    ASSERT_NE(it, ours.end()) << "missing " << name;
    EXPECT_EQ(it->second.sizes(), Shape(shape.to_vector<int64_t>())) << name;
  }
  // Loading by name: the model's own tensors under the legacy attention names, renamed back.
  nn::StateDict legacy;
  for (const auto& [name, t] : ours) {
    std::string key = name;
    for (const auto& [now, old] : {std::pair<std::string, std::string>{".to_q.", ".query."},
                                   {".to_k.", ".key."},
                                   {".to_v.", ".value."},
                                   {".to_out.0.", ".proj_attn."}})
      if (auto pos = key.find(now); pos != key.npos) key.replace(pos, now.size(), old);
    legacy[key] = t;
  }
  EXPECT_TRUE(legacy.count("encoder.mid_block.attentions.0.proj_attn.weight"));
  EXPECT_FALSE(m.load_state_dict(legacy, /*strict=*/false).ok());
  EXPECT_TRUE(m.load_state_dict(m.rename_legacy_keys(legacy)).ok());
}

TEST(AutoencoderKL, LegacyAttentionNamesLoadAsTheCurrentOnes) {
  AutoencoderKL current(config_of(fixture_json("tiny")));
  AutoencoderKL legacy(config_of(fixture_json("tiny")));
  nn::StateDict dict = entries("tiny.param.");
  ASSERT_TRUE(current.load_state_dict(dict).ok());
  const std::string attn = "decoder.mid_block.attentions.0.";
  for (const auto& [now, old] : {std::pair<std::string, std::string>{"to_q", "query"},
                                 {"to_k", "key"},
                                 {"to_v", "value"},
                                 {"to_out.0", "proj_attn"}})
    for (const std::string leaf : {".weight", ".bias"}) {
      dict[attn + old + leaf] = dict.at(attn + now + leaf);
      dict.erase(attn + now + leaf);
    }
  const nn::StateDict renamed = legacy.rename_legacy_keys(dict);
  EXPECT_TRUE(renamed.count(attn + "to_out.0.weight"));
  EXPECT_FALSE(renamed.count(attn + "proj_attn.weight"));
  ASSERT_TRUE(legacy.load_state_dict(renamed).ok());
  EXPECT_TRUE(test::bitwise_equal(legacy.decode(fx("tiny.z")), current.decode(fx("tiny.z"))));
}

TEST(DiagonalGaussianDistribution, ClampsLogvarAndSamplesFromTheGenerator) {
  // mean channels 0..1, logvar channels 2..3 with values beyond both clamp bounds.
  const Tensor moments = raw::from_vector(
      std::vector<float>{0.5f, -1.0f, 2.0f, 3.0f, 50.0f, -50.0f, 0.0f, std::log(4.0f)},
      {1, 4, 1, 2});
  DiagonalGaussianDistribution d(moments);
  EXPECT_EQ(d.logvar.to_vector<float>(), (std::vector<float>{20.0f, -30.0f, 0.0f, std::log(4.0f)}));
  EXPECT_TRUE(test::all_close(d.stddev(), raw::exp(raw::mul(d.logvar, 0.5))));
  EXPECT_TRUE(test::bitwise_equal(d.mode(), d.mean));

  Generator a(7), b(7), c(8), noise(7);
  const Tensor s = d.sample(a);
  EXPECT_TRUE(test::bitwise_equal(s, d.sample(b)));
  EXPECT_FALSE(test::bitwise_equal(s, d.sample(c)));
  const Tensor eps = raw::randn({1, 2, 1, 2}, noise);
  EXPECT_TRUE(test::all_close(s, raw::add(d.mean, raw::mul(d.stddev(), eps))));
}

TEST(AutoencoderKL, RejectsUnsupportedConfigs) {
  nlohmann::json j = fixture_json("tiny");
  auto expect_rejected = [&](const std::string& key, const nlohmann::json& value,
                             const std::string& text) {
    nlohmann::json bad = j;
    bad[key] = value;
    EXPECT_ERROR_CONTAINS(config_of(bad), text);
  };
  expect_rejected("down_block_types", {"DownEncoderBlock2D", "AttnDownEncoderBlock2D"},
                  "'down_block_types' entry \"AttnDownEncoderBlock2D\" is not supported");
  expect_rejected("up_block_types", {"UpDecoderBlock2D"},
                  "'up_block_types' lists 1 blocks but block_out_channels has 2");
  expect_rejected("act_fn", "gelu", "act_fn \"gelu\" is not supported");
  expect_rejected("norm_num_groups", 3, "must be positive multiples of norm_num_groups (3)");
  expect_rejected("layers_per_block", 0, "layers_per_block must be positive");
  expect_rejected("use_quant_conv", "yes", "use_quant_conv");
  expect_rejected("norm_type", "spatial", "norm_type");
  // Keys that do not change the architecture are accepted.
  nlohmann::json ok = j;
  ok["_name_or_path"] = "some/vae";
  ok["sample_size"] = {256, 256};
  ok["force_upcast"] = false;
  ok["shift_factor"] = 0.1159;
  EXPECT_DOUBLE_EQ(*config_of(ok).shift_factor, 0.1159);
}

TEST(AutoencoderKL, RejectsBadInputs) {
  AutoencoderKL m(config_of(fixture_json("tiny")));
  EXPECT_ERROR_CONTAINS(m.encode(raw::zeros({1, 4, 8, 8})),
                        "AutoencoderKL encoder: expected sample [N, 3, H, W]");
  EXPECT_ERROR_CONTAINS(m.decode(raw::zeros({1, 3, 4, 4})),
                        "AutoencoderKL decode: expected latents [N, 4, h, w]");
  EXPECT_ERROR_CONTAINS(DiagonalGaussianDistribution(raw::zeros({1, 3, 2, 2})),
                        "expected moments [N, 2 * latent_channels, h, w]");
}
