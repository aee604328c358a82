// The generator commands' configuration (experiments/generator_trainer.h): one key list serves
// parsing, --help and the resolved config.json; bad values fail naming the key.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "experiments/generator_trainer.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::experiments {
namespace {

const std::string kSdTiny = std::string(CXR_FIXTURE_DIR) + "/sd_tiny";

nlohmann::json minimal(const test::TempDir& dir) {
  return {{"model", kSdTiny}, {"data_root", dir.dir.string()}};
}

std::set<std::string> keys(GeneratorKind kind) {
  std::set<std::string> out;
  for (const auto& d : generator_config_keys(kind)) out.insert(d.key);
  return out;
}

TEST(GeneratorConfig, ParsesOverDefaultsAndWritesEveryKeyBack) {
  test::TempDir dir;
  nlohmann::json j = minimal(dir);
  j["steps"] = 7;
  j["gradient_accumulation"] = 3;
  j["mode"] = "m2i";
  j["empty_mask_fraction"] = 0.25;
  const GeneratorConfig c = parse_generator_config(GeneratorKind::ControlNet, j, "cfg");
  EXPECT_EQ(c.steps, 7);
  EXPECT_EQ(c.gradient_accumulation, 3);
  EXPECT_EQ(c.mode, "m2i");
  EXPECT_DOUBLE_EQ(c.empty_mask_fraction, 0.25);
  EXPECT_DOUBLE_EQ(c.lr, 1e-4);  // the paper's
  const nlohmann::json back = generator_config_json(GeneratorKind::ControlNet, c);
  EXPECT_EQ(back.size(), keys(GeneratorKind::ControlNet).size());
  const GeneratorConfig again = parse_generator_config(GeneratorKind::ControlNet, back, "back");
  EXPECT_EQ(generator_config_json(GeneratorKind::ControlNet, again), back);
}

TEST(GeneratorConfig, EachCommandHasItsOwnKeys) {
  const auto cn = keys(GeneratorKind::ControlNet), unet = keys(GeneratorKind::UNet),
             vae = keys(GeneratorKind::Vae);
  for (const char* k : {"mode", "empty_mask_fraction", "empty_prompt_fraction"})
    EXPECT_TRUE(cn.count(k)) << k;
  for (const char* k : {"model_config", "vae", "tokenizer_merges", "train_text_encoder"})
    EXPECT_TRUE(unet.count(k) && !cn.count(k)) << k;
  for (const char* k : {"reconstruction", "kl_weight"}) EXPECT_TRUE(vae.count(k) && !cn.count(k));
  EXPECT_FALSE(vae.count("mode"));
  EXPECT_FALSE(vae.count("empty_prompt_fraction"));
  const std::string help = generator_config_help(GeneratorKind::Vae);
  EXPECT_NE(help.find("  kl_weight (number, default "), std::string::npos) << help;
}

TEST(GeneratorConfig, BadValuesFailNamingTheKey) {
  test::TempDir dir;
  auto fails = [&](GeneratorKind kind, nlohmann::json patch, const std::string& text) {
    nlohmann::json j = minimal(dir);
    j.merge_patch(patch);
    EXPECT_ERROR_CONTAINS(parse_generator_config(kind, j, "cfg"), text);
  };
  fails(GeneratorKind::ControlNet, {{"stepz", 1}}, "stepz");
  fails(GeneratorKind::ControlNet, {{"steps", 0}}, "key 'steps'");
  fails(GeneratorKind::ControlNet, {{"steps", "ten"}}, "steps");
  fails(GeneratorKind::ControlNet, {{"model", ""}}, "key 'model'");
  fails(GeneratorKind::ControlNet, {{"mode", "i2i"}}, "key 'mode'");
  fails(GeneratorKind::ControlNet, {{"empty_prompt_fraction", -0.1}},
        "key 'empty_prompt_fraction'");
  fails(GeneratorKind::ControlNet, {{"image_size", 12}}, "key 'image_size'");
  fails(GeneratorKind::ControlNet, {{"schedule", "step"}}, "key 'schedule'");
  fails(GeneratorKind::ControlNet, {{"ema_decay", 1.0}}, "key 'ema_decay'");
  fails(GeneratorKind::ControlNet, {{"data_root", "/nonexistent"}}, "key 'data_root'");
  fails(GeneratorKind::ControlNet, {{"kl_weight", 1.0}}, "kl_weight");  // not a ControlNet key
  fails(GeneratorKind::Vae, {{"reconstruction", "l3"}}, "key 'reconstruction'");
  fails(GeneratorKind::UNet, {{"model", ""}}, "key 'vae'");  // from scratch needs a VAE
  fails(GeneratorKind::UNet, {{"train_text_encoder", "yes"}}, "key 'train_text_encoder'");
}

}  // namespace
}  // namespace cxr::experiments
