// ctest-label: slow
// The generator training commands end to end on the tiny diffusers folder (tests/fixtures/sd_tiny,
// 16x16 images) and a phantom SIIM dataset written by `cxr phantoms`: `cxr train-controlnet`
// lowers its loss, writes its run folder and a model folder that `cxr sample` loads, resumes
// bitwise, and rejects bad configs before writing anything.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/files.h"
#include "tensor/safetensors.h"

namespace cxr {
namespace {

namespace fs = std::filesystem;

const std::string kSdTiny = std::string(CXR_FIXTURE_DIR) + "/sd_tiny";

test::CommandResult cxr_run(const std::string& args) {
  // The models are tiny: thread start-up would dominate (and crawl on a busy machine). Results do
  // not depend on the thread count.
  setenv("OMP_NUM_THREADS", "1", 1);
  return test::run_command(CXR_BINARY, args);
}

// A 32 px phantom SIIM dataset (trained at 16 px), written once per process.
std::string phantoms() {
  const std::string dir = test::temp_path("gen_siim_32");
  if (!fs::exists(dir)) {
    auto r =
        cxr_run("phantoms --quiet --layout siim --out " + dir + " --count 32 --size 32 --seed 5");
    EXPECT_EQ(r.status, 0) << r.err;
  }
  return dir;
}

// The sd_tiny folder without its controlnet/ (a ControlNet is then made from the UNet).
std::string sd_tiny_without_controlnet() {
  const std::string dir = test::temp_path("sd_tiny_no_controlnet");
  if (!fs::exists(dir)) {
    fs::create_directories(dir);
    for (const char* c : {"unet", "vae", "text_encoder", "tokenizer", "scheduler"})
      fs::copy(kSdTiny + "/" + c, dir + "/" + c, fs::copy_options::recursive);
    fs::copy(kSdTiny + "/model_index.json", dir + "/model_index.json");
  }
  return dir;
}

// The loss column of losses.csv.
std::vector<double> losses(const fs::path& run) {
  std::ifstream in(run / "losses.csv");
  std::vector<double> out;
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "step,lr,loss");
  while (std::getline(in, line)) out.push_back(std::stod(line.substr(line.rfind(',') + 1)));
  return out;
}

double mean(const std::vector<double>& v, size_t first, size_t count) {
  return std::accumulate(v.begin() + ptrdiff_t(first), v.begin() + ptrdiff_t(first + count), 0.0) /
         double(count);
}

std::string controlnet_settings(const std::string& model) {
  return " --set model=" + model + " --set data_root=" + phantoms() +
         " --set image_size=16 --set batch_size=8 --set gradient_accumulation=1 --set lr=3e-3"
         " --set log_every=1 --set sample_steps=3 --set workers=1";
}

TEST(TrainControlNet, LearnsWritesItsRunFolderAndAModelThatSamples) {
  test::TempDir run;
  const fs::path out = run.dir / "run";
  auto r = cxr_run("train-controlnet --out " + out.string() +
                   controlnet_settings(sd_tiny_without_controlnet()) +
                   " --set steps=60 --set sample_every=30 --set checkpoint_every=25");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> l = losses(out);
  ASSERT_EQ(l.size(), 60u);
  // Only the ControlNet learns, behind a random frozen UNet: a clear, not a large, margin.
  EXPECT_LT(mean(l, 50, 10), mean(l, 0, 10) - 0.03) << r.err;
  for (const char* f : {"config.json", "log.txt", "losses.csv", "checkpoints/last.safetensors",
                        "samples/step_30.png", "samples/step_60.png", "model/model_index.json",
                        "model/controlnet/config.json", "model/unet/config.json",
                        "model/vae/config.json", "model/text_encoder/config.json",
                        "model/tokenizer/vocab.json", "model/scheduler/scheduler_config.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  // The trained model samples with a caption and a mask.
  const fs::path mask = run.dir / "mask.png";
  for (const auto& e : fs::recursive_directory_iterator(phantoms() + "/dicom-images-train"))
    if (e.path().extension() == ".png") {
      fs::copy(e.path(), mask);
      break;
    }
  auto s = cxr_run(
      "sample --model " + (out / "model").string() + " --out " + (run.dir / "samples").string() +
      " --prompt \"Large left pneumothorax\" --mask " + mask.string() + " --steps 2 --seed 1");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_TRUE(fs::exists(run.dir / "samples" / "synthetic.csv"));
}

TEST(TrainControlNet, StopAndResumeEqualsAnUninterruptedRun) {
  test::TempDir run;
  const std::string a = (run.dir / "a").string(), b = (run.dir / "b").string();
  // Accumulation, EMA, checkpoints that do not fall on the stop, logging intervals across it.
  const std::string common = controlnet_settings(kSdTiny) +
                             " --set steps=9 --set batch_size=4 --set gradient_accumulation=2"
                             " --set ema_decay=0.9 --set log_every=2 --set checkpoint_every=4"
                             " --set empty_prompt_fraction=0.3 --set empty_mask_fraction=0.3";
  auto ra = cxr_run("train-controlnet --out " + a + common);
  ASSERT_EQ(ra.status, 0) << ra.err;
  auto rb = cxr_run("train-controlnet --out " + b + common + " --stop-after-steps 3");
  ASSERT_EQ(rb.status, 0) << rb.err;
  EXPECT_FALSE(fs::exists(b + "/model"));
  rb = cxr_run("train-controlnet --out " + b + " --resume --stop-after-steps 3");
  ASSERT_EQ(rb.status, 0) << rb.err;
  rb = cxr_run("train-controlnet --out " + b + " --resume");
  ASSERT_EQ(rb.status, 0) << rb.err;
  const std::string weights = "/model/controlnet/diffusion_pytorch_model.safetensors";
  const std::string wa = test::read_text(a + weights), wb = test::read_text(b + weights);
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == wb) << "the resumed run's ControlNet differs";
  EXPECT_EQ(test::read_text(a + "/losses.csv"), test::read_text(b + "/losses.csv"));
  // The weights changed from the starting ControlNet.
  EXPECT_NE(wa, test::read_text(kSdTiny + "/controlnet/diffusion_pytorch_model.safetensors"));
  // A resumed run keeps its configuration.
  auto changed = cxr_run("train-controlnet --out " + b + " --resume --set lr=0.5");
  EXPECT_EQ(changed.status, 2);
  EXPECT_NE(changed.err.find("key 'lr'"), std::string::npos) << changed.err;
}

// mixed_precision: the forward runs under autocast (the first loss, taken before any update,
// differs from the float32 run's by bfloat16 rounding only), and an fp16 run with dynamic loss
// scaling resumes bitwise (the scaler's state travels in the checkpoint).
TEST(TrainControlNet, MixedPrecisionAutocastsAndResumesWithItsLossScale) {
  test::TempDir run;
  const std::string common = controlnet_settings(kSdTiny) + " --set steps=4";
  const std::string f32 = (run.dir / "f32").string(), bf16 = (run.dir / "bf16").string();
  ASSERT_EQ(cxr_run("train-controlnet --out " + f32 + common).status, 0);
  auto r = cxr_run("train-controlnet --out " + bf16 + common + " --set mixed_precision=bf16");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> lf = losses(f32), lb = losses(bf16);
  ASSERT_EQ(lf.size(), 4u);
  ASSERT_EQ(lb.size(), 4u);
  EXPECT_NE(lf[0], lb[0]) << "bf16 autocast left the forward pass in float32";
  EXPECT_NEAR(lb[0], lf[0], 0.05 * lf[0]) << "bf16 autocast changed the loss beyond its rounding";

  const std::string a = (run.dir / "fp16_a").string(), b = (run.dir / "fp16_b").string();
  const std::string fp16 = common + " --set mixed_precision=fp16 --set checkpoint_every=2";
  ASSERT_EQ(cxr_run("train-controlnet --out " + a + fp16).status, 0);
  ASSERT_EQ(cxr_run("train-controlnet --out " + b + fp16 + " --stop-after-steps 2").status, 0);
  r = cxr_run("train-controlnet --out " + b + " --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string weights = "/model/controlnet/diffusion_pytorch_model.safetensors";
  EXPECT_TRUE(test::read_text(a + weights) == test::read_text(b + weights))
      << "the resumed fp16 run's ControlNet differs";
  EXPECT_EQ(test::read_text(a + "/losses.csv"), test::read_text(b + "/losses.csv"));
}

TEST(TrainControlNet, BadConfigsFailBeforeWritingNamingTheKey) {
  test::TempDir run;
  const std::string out = (run.dir / "run").string();
  const std::string base = controlnet_settings(kSdTiny) + " --set steps=2";
  auto expect_fail = [&](const std::string& args, const std::string& text) {
    auto r = cxr_run("train-controlnet --out " + out + base + args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  };
  expect_fail(" --set stepz=3", "stepz");
  expect_fail(" --set lr=-1", "key 'lr'");
  expect_fail(" --set mode=x2i", "key 'mode'");
  expect_fail(" --set dataset=rsna", "key 'dataset'");
  expect_fail(" --set empty_mask_fraction=1.5", "key 'empty_mask_fraction'");
  expect_fail(" --set model=/nonexistent/folder", "key 'model'");
  expect_fail(" --set data_root=/nonexistent/folder", "key 'data_root'");
  expect_fail(" --set gradient_accumulation=0", "key 'gradient_accumulation'");
  expect_fail(" --set mixed_precision=fp8", "key 'mixed_precision'");
  // --help lists every key.
  auto h = cxr_run("train-controlnet --help");
  EXPECT_EQ(h.status, 0);
  for (const char* k : {"model",
                        "dataset",
                        "data_root",
                        "mask_size",
                        "image_size",
                        "steps",
                        "batch_size",
                        "gradient_accumulation",
                        "lr",
                        "empty_prompt_fraction",
                        "empty_mask_fraction",
                        "mode",
                        "sample_every",
                        "checkpoint_every",
                        "seed",
                        "device",
                        "ema_decay",
                        "warmup_steps",
                        "grad_clip",
                        "mixed_precision"})
    EXPECT_NE(h.out.find(std::string("  ") + k + " ("), std::string::npos) << k;
}

// A tiny VAE (factor 2, as sd_tiny's), trained from scratch.
const char* kTinyVae =
    " --set model_config.block_out_channels=[8,16] --set model_config.norm_num_groups=4"
    " --set model_config.latent_channels=4";

std::string vae_settings() {
  return " --set data_root=" + phantoms() +
         " --set image_size=16 --set batch_size=8 --set lr=3e-3 --set log_every=1"
         " --set workers=1";
}

TEST(TrainVae, FromScratchLowersTheLossAndSavesALoadableFolderToContinue) {
  test::TempDir run;
  const fs::path out = run.dir / "vae";
  auto r = cxr_run("train-vae --out " + out.string() + vae_settings() + kTinyVae +
                   " --set steps=30 --set sample_every=30");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> l = losses(out);
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT(mean(l, 20, 10), 0.8 * mean(l, 0, 10));
  for (const char* f : {"model/vae/config.json", "model/vae/diffusion_pytorch_model.safetensors",
                        "samples/step_30.png", "checkpoints/last.safetensors"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  // Continued from its folder: it starts where the first run ended (below that run's start).
  const fs::path more = run.dir / "more";
  r = cxr_run("train-vae --out " + more.string() + vae_settings() +
              " --set steps=5 --set model=" + (out / "model/vae").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_LT(mean(losses(more), 0, 5), mean(l, 0, 10));
  // model and model_config together are refused before anything is written.
  const fs::path both = run.dir / "both";
  r = cxr_run("train-vae --out " + both.string() + vae_settings() + kTinyVae +
              " --set model=" + (out / "model/vae").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("not both"), std::string::npos) << r.err;
}

std::string unet_settings() {
  return " --set data_root=" + phantoms() +
         " --set image_size=16 --set batch_size=8 --set gradient_accumulation=1 --set lr=3e-3"
         " --set log_every=1 --set sample_steps=3 --set workers=1";
}

// Samples one image from a model folder; true when it worked.
bool samples(const fs::path& model, const fs::path& out) {
  auto s = cxr_run("sample --model " + model.string() + " --out " + out.string() +
                   " --prompt \"Large left pneumothorax\" --steps 2 --height 16 --width 16");
  EXPECT_EQ(s.status, 0) << s.err;
  return s.status == 0 && fs::exists(out / "synthetic.csv");
}

TEST(TrainUNet, FineTuningLowersTheLossAndSavesAFolderThatSamples) {
  test::TempDir run;
  const fs::path out = run.dir / "unet";
  auto r = cxr_run("train-unet --out " + out.string() + unet_settings() +
                   " --set model=" + kSdTiny + " --set steps=30 --set sample_every=30");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> l = losses(out);
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT(mean(l, 20, 10), 0.8 * mean(l, 0, 10));
  EXPECT_TRUE(fs::exists(out / "samples/step_30.png"));
  EXPECT_NE(test::read_text((out / "model/unet/diffusion_pytorch_model.safetensors").string()),
            test::read_text(kSdTiny + "/unet/diffusion_pytorch_model.safetensors"));
  EXPECT_TRUE(samples(out / "model", run.dir / "samples"));
}

// train_text_encoder: the text encoder learns with the UNet (its saved weights change) and the
// run resumes like any other.
TEST(TrainUNet, TextEncoderTrainsWithTheUNet) {
  test::TempDir run;
  const fs::path out = run.dir / "unet_te";
  auto r =
      cxr_run("train-unet --out " + out.string() + unet_settings() + " --set model=" + kSdTiny +
              " --set steps=6 --set sample_every=6 --set train_text_encoder=true");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(test::read_text((out / "model/text_encoder/model.safetensors").string()),
            test::read_text(kSdTiny + "/text_encoder/model.safetensors"));
  // Without the flag the text encoder is saved unchanged.
  const fs::path frozen = run.dir / "unet_frozen";
  r = cxr_run("train-unet --out " + frozen.string() + unet_settings() + " --set model=" + kSdTiny +
              " --set steps=6 --set sample_every=6");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto a = load_safetensors((frozen / "model/text_encoder/model.safetensors").string());
  const auto b = load_safetensors(kSdTiny + "/text_encoder/model.safetensors");
  for (const auto& [name, t] : b.tensors) {
    if (a.tensors.count(name)) {
      EXPECT_TRUE(test::bitwise_equal(a.tensors.at(name), t)) << name;
    }
  }
}

TEST(TrainUNet, FromScratchWithATrainedVaeAndLearnedMerges) {
  test::TempDir run;
  const fs::path vae = run.dir / "vae";
  auto r =
      cxr_run("train-vae --out " + vae.string() + vae_settings() + kTinyVae + " --set steps=10");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string tiny =
      " --set model_config.unet.block_out_channels=[16,32]"
      " --set 'model_config.unet.down_block_types=[\"CrossAttnDownBlock2D\",\"DownBlock2D\"]'"
      " --set 'model_config.unet.up_block_types=[\"UpBlock2D\",\"CrossAttnUpBlock2D\"]'"
      " --set model_config.unet.layers_per_block=1 --set model_config.unet.norm_num_groups=4"
      " --set model_config.unet.attention_head_dim=2 --set model_config.text_encoder.hidden_size=8"
      " --set model_config.text_encoder.intermediate_size=16"
      " --set model_config.text_encoder.num_hidden_layers=1"
      " --set model_config.text_encoder.num_attention_heads=2 --set tokenizer_merges=40";
  const fs::path out = run.dir / "unet";
  r = cxr_run("train-unet --out " + out.string() + unet_settings() + tiny +
              " --set steps=30 --set vae=" + (vae / "model/vae").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> l = losses(out);
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT(mean(l, 20, 10), 0.8 * mean(l, 0, 10));
  // The learned merges are saved with the model.
  EXPECT_GT(test::read_text((out / "model/tokenizer/merges.txt").string()).size(), 40u);
  EXPECT_TRUE(samples(out / "model", run.dir / "samples"));
  // From scratch without a VAE is refused, naming the key.
  r = cxr_run("train-unet --out " + (run.dir / "novae").string() + unet_settings() + tiny);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("key 'vae'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run.dir / "novae"));
}

}  // namespace
}  // namespace cxr
