// models/sd_folder.h: the tiny Stable Diffusion ControlNet pipeline folder that diffusers 0.42's
// save_pretrained wrote (tests/fixtures/sd_tiny/, tests/golden/gen_sd_folder.py) loads strictly,
// every tensor bitwise the file's; a folder saved here reloads bitwise (weights, configs,
// scheduler, tokenizer); components are optional; missing, corrupt and mismatched files give
// errors naming the file (and the key), and non-strict loading reports them.
#include <gtest/gtest.h>

#include <filesystem>

#include "models/sd_folder.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/files.h"
#include "tensor/safetensors.h"

using namespace cxr;
using namespace cxr::models;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(CXR_FIXTURE_DIR) + "/sd_tiny";

// Every entry of `module`'s state dict equals the same-named tensor of `expected`, and the key
// sets are the same.
void expect_state_equal(const nn::Module& module, const nn::StateDict& expected) {
  const nn::StateDict actual = module.state_dict();
  ASSERT_EQ(actual.size(), expected.size()) << module.type_name();
  for (const auto& [key, t] : actual) {
    auto it = expected.find(key);
    ASSERT_NE(it, expected.end()) << key;
    EXPECT_TRUE(test::bitwise_equal(t, it->second)) << key;
  }
}

nn::StateDict file_tensors(const std::string& relative) {
  return load_safetensors(kTiny + "/" + relative).tensors;
}

// A writable copy of the fixture folder.
void copy_tiny(const fs::path& to) {
  fs::copy(kTiny, to, fs::copy_options::recursive);
}

}  // namespace

TEST(SdFolder, LoadsTheDiffusersTinyFolderStrictly) {
  const SdFolder f = load_sd_folder(kTiny);
  ASSERT_TRUE(f.unet && f.vae && f.text_encoder && f.tokenizer && f.scheduler && f.controlnet);
  EXPECT_TRUE(f.load_reports.empty());
  expect_state_equal(*f.unet, file_tensors("unet/diffusion_pytorch_model.safetensors"));
  expect_state_equal(*f.vae, file_tensors("vae/diffusion_pytorch_model.safetensors"));
  expect_state_equal(*f.controlnet, file_tensors("controlnet/diffusion_pytorch_model.safetensors"));
  // transformers 5 writes the text encoder's names without "text_model.".
  expect_state_equal(*f.text_encoder, ClipTextModel::checkpoint_state_dict(
                                          file_tensors("text_encoder/model.safetensors")));
  EXPECT_EQ(f.unet->config().block_out_channels, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(f.unet->config().cross_attention_dim, 8);
  EXPECT_EQ(f.controlnet->config().conditioning_embedding_out_channels,
            (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(f.vae->config().block_out_channels, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(f.text_encoder->config.hidden_size, 8);
  EXPECT_EQ(f.scheduler->kind(), SchedulerKind::PNDM);
  EXPECT_EQ(f.scheduler->config().beta_schedule, "scaled_linear");
  EXPECT_EQ(f.scheduler->config().steps_offset, 1);
  EXPECT_EQ(f.tokenizer->vocab_size(), 520);
  // "the" and "and" are merged words of the tiny vocabulary (ids 513 and 515).
  EXPECT_EQ(f.tokenizer->encode("the and"), (std::vector<int64_t>{513, 515}));
}

TEST(SdFolder, ComponentsAreOptional) {
  SdFolderOptions only;
  only.vae = only.text_encoder = only.tokenizer = only.scheduler = false;
  only.controlnet = SdFolderOptions::ControlNet::Required;
  const SdFolder f = load_sd_folder(kTiny, only);
  EXPECT_TRUE(f.unet && f.controlnet);
  EXPECT_FALSE(f.vae || f.text_encoder || f.tokenizer || f.scheduler);

  only.controlnet = SdFolderOptions::ControlNet::Skip;
  EXPECT_FALSE(load_sd_folder(kTiny, only).controlnet);

  test::TempDir tmp;
  copy_tiny(tmp.dir / "m");
  fs::remove_all(tmp.dir / "m" / "controlnet");
  fs::remove_all(tmp.dir / "m" / "vae");  // not read below
  only.controlnet = SdFolderOptions::ControlNet::IfPresent;
  EXPECT_FALSE(load_sd_folder((tmp.dir / "m").string(), only).controlnet);
  only.controlnet = SdFolderOptions::ControlNet::Required;
  EXPECT_ERROR_CONTAINS(load_sd_folder((tmp.dir / "m").string(), only), "has no controlnet/");
  only.vae = true;
  EXPECT_ERROR_CONTAINS(load_sd_folder((tmp.dir / "m").string(), only), "vae/config.json");
}

TEST(SdFolder, SavedFolderReloadsBitwise) {
  const SdFolder f = load_sd_folder(kTiny);
  test::TempDir tmp;
  const std::string dir = (tmp.dir / "saved").string();
  save_sd_folder(dir, f);
  for (const char* file :
       {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
        "tokenizer/merges.txt", "scheduler/scheduler_config.json", "controlnet/config.json",
        "controlnet/diffusion_pytorch_model.safetensors"})
    EXPECT_TRUE(fs::is_regular_file(fs::path(dir) / file)) << file;
  const nlohmann::json index = nlohmann::json::parse(test::read_text(dir + "/model_index.json"));
  EXPECT_EQ(index["_class_name"], "StableDiffusionControlNetPipeline");
  EXPECT_EQ(index["scheduler"], (nlohmann::json{"diffusers", "PNDMScheduler"}));

  const SdFolder g = load_sd_folder(dir);
  ASSERT_TRUE(g.unet && g.vae && g.text_encoder && g.tokenizer && g.scheduler && g.controlnet);
  expect_state_equal(*g.unet, f.unet->state_dict());
  expect_state_equal(*g.vae, f.vae->state_dict());
  expect_state_equal(*g.text_encoder, f.text_encoder->state_dict());
  expect_state_equal(*g.controlnet, f.controlnet->state_dict());
  EXPECT_EQ(g.unet->config().to_json(), f.unet->config().to_json());
  EXPECT_EQ(g.vae->config().to_json(), f.vae->config().to_json());
  EXPECT_EQ(g.text_encoder->config.to_json(), f.text_encoder->config.to_json());
  EXPECT_EQ(g.controlnet->config().to_json(), f.controlnet->config().to_json());
  EXPECT_EQ(g.scheduler->kind(), f.scheduler->kind());
  EXPECT_EQ(g.scheduler->config().to_json(g.scheduler->kind()),
            f.scheduler->config().to_json(f.scheduler->kind()));
  EXPECT_EQ(g.tokenizer->encode("the land on"), f.tokenizer->encode("the land on"));

  // Without a ControlNet or scheduler: a plain pipeline, the absent ones [null, null].
  SdFolder plain = f;
  plain.controlnet = nullptr;
  plain.scheduler = nullptr;
  save_sd_folder((tmp.dir / "plain").string(), plain);
  const nlohmann::json plain_index =
      nlohmann::json::parse(test::read_text((tmp.dir / "plain" / "model_index.json").string()));
  EXPECT_EQ(plain_index["_class_name"], "StableDiffusionPipeline");
  EXPECT_EQ(plain_index["scheduler"], (nlohmann::json{nullptr, nullptr}));
  EXPECT_FALSE(plain_index.contains("controlnet"));
  EXPECT_FALSE(fs::exists(tmp.dir / "plain" / "controlnet"));
}

TEST(SdFolder, ErrorsNameTheFileAndTheKey) {
  test::TempDir tmp;
  const fs::path m = tmp.dir / "m";
  copy_tiny(m);
  const std::string unet_weights = (m / "unet" / "diffusion_pytorch_model.safetensors").string();
  nn::StateDict unet = load_safetensors(unet_weights).tensors;
  for (auto& [k, t] : unet) t = raw::clone(t);  // detach from the file before rewriting it

  // A tensor of the wrong shape.
  nn::StateDict bad = unet;
  bad["conv_in.bias"] = raw::zeros({15});
  save_safetensors(unet_weights, bad);
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), unet_weights);
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), "conv_in.bias");
  // Non-strict: the rest loads and the report names the key.
  SdFolderOptions lenient;
  lenient.strict = false;
  const SdFolder f = load_sd_folder(m.string(), lenient);
  ASSERT_EQ(f.load_reports.size(), 1u);
  const nn::LoadReport& report = f.load_reports.at((m / "unet").string());
  ASSERT_EQ(report.shape_mismatches.size(), 1u);
  EXPECT_NE(report.shape_mismatches[0].find("conv_in.bias"), std::string::npos);

  // A missing and an unexpected key.
  bad = unet;
  bad.erase("mid_block.resnets.0.conv1.weight");
  bad["mid_block.extra"] = raw::zeros({1});
  save_safetensors(unet_weights, bad);
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), "mid_block.resnets.0.conv1.weight");
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), "mid_block.extra");

  // A corrupt (truncated) weights file and a missing one.
  test::write_bytes(unet_weights, test::read_text(unet_weights).substr(0, 100));
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), unet_weights);
  save_safetensors(unet_weights, unet);
  const std::string vae_weights = (m / "vae" / "diffusion_pytorch_model.safetensors").string();
  test::write_bytes(vae_weights, test::read_text(vae_weights).substr(0, 1000));
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), vae_weights);
  fs::remove(vae_weights);
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string()), "missing " + vae_weights);

  // A config with a key diffusers' class does not have, and broken JSON.
  const std::string controlnet_config = (m / "controlnet" / "config.json").string();
  nlohmann::json c = nlohmann::json::parse(test::read_text(controlnet_config));
  c["conv_out_kernel"] = 3;
  test::write_bytes(controlnet_config, c.dump());
  SdFolderOptions controlnet_only;
  controlnet_only.unet = controlnet_only.vae = controlnet_only.text_encoder = false;
  controlnet_only.tokenizer = controlnet_only.scheduler = false;
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string(), controlnet_only), "conv_out_kernel");
  test::write_bytes(controlnet_config, "{\"in_channels\": ");
  EXPECT_ERROR_CONTAINS(load_sd_folder(m.string(), controlnet_only), controlnet_config);
  EXPECT_ERROR_CONTAINS(load_sd_folder((tmp.dir / "nothing").string()), "is not a directory");
}
