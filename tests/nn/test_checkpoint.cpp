// Training checkpoints: a run of N steps (AdamW + cosine warm-up + loss scaler with a skipped
// step + gradient clipping + EMA + random batches) equals, bit for bit, a run interrupted after
// k steps, saved, loaded into fresh objects and continued; bad checkpoint files give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/linalg.h"
#include "autograd/loss.h"
#include "nn/checkpoint.h"
#include "nn/grad_utils.h"
#include "nn/loss_scaler.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "support/compare.h"
#include "support/files.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

constexpr int kTotalSteps = 10;
const char* kConfig = R"({"lr": 0.01, "steps": 10, "model": "mlp"})";

using test::temp_path;

// A two-layer MLP and everything its training loop needs, built fresh from the same seed.
struct TrainingRun {
  std::map<std::string, Tensor> model;
  std::vector<Tensor> params;
  Generator data_gen{1234};
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<LRScheduler> sched;
  LossScaler scaler{LossScalerOptions{.init_scale = 1024.0, .growth_interval = 3}};
  std::unique_ptr<EMA> ema;
  int64_t step = 0;

  TrainingRun() {
    Generator init(99);
    model["fc1.weight"] = raw::randn({8, 4}, init, kFloat32, 0.0, 0.5);
    model["fc1.bias"] = raw::zeros({8});
    model["fc2.weight"] = raw::randn({1, 8}, init, kFloat32, 0.0, 0.5);
    model["fc2.bias"] = raw::zeros({1});
    model["norm.running_mean"] = raw::zeros({8});  // a buffer (no grad): the EMA copies it
    for (auto& [name, t] : model)
      if (name.find("running") == std::string::npos) {
        t.set_requires_grad(true);
        params.push_back(t);
      }
    opt = std::make_unique<AdamW>(
        std::vector<ParamGroupOptions>{
            {{model["fc1.weight"], model["fc2.weight"]}, std::nullopt, std::nullopt},
            {{model["fc1.bias"], model["fc2.bias"]}, std::nullopt, 0.0}},
        AdamOptions{.lr = 0.01, .weight_decay = 0.05, .amsgrad = true});
    sched = std::make_unique<LRScheduler>(*opt, Schedule::cosine(3, kTotalSteps, 0.1));
    std::vector<Tensor> averaged = params;
    averaged.push_back(model["norm.running_mean"]);
    ema = std::make_unique<EMA>(averaged, EMAOptions{.decay = 0.9, .warmup = EMAWarmup::Ratio});
  }

  TrainingState state() {
    TrainingState s;
    s.model = model;
    s.optimizer = opt.get();
    s.scheduler = sched.get();
    s.scaler = &scaler;
    s.ema = ema.get();
    s.generator = &data_gen;
    s.step = step;
    s.config = kConfig;
    return s;
  }

  void train_until(int64_t end) {
    for (; step < end; ++step) {
      Tensor x = raw::randn({16, 4}, data_gen);
      Tensor y = raw::randn({16, 1}, data_gen);
      Tensor h = tanh(linear(x, model["fc1.weight"], model["fc1.bias"]));
      Tensor loss = mse_loss(linear(h, model["fc2.weight"], model["fc2.bias"]), y);
      backward(scaler.scale(loss));
      if (step == 4) {  // an overflow: the step is skipped and the scale backs off
        Tensor g = model["fc2.bias"].grad();
        raw::fill_(g, INFINITY);
      }
      scaler.unscale_(*opt);
      clip_grad_norm_(params, 0.5);
      scaler.step(*opt);
      scaler.update();
      sched->step();
      raw::binary_(BinaryOp::Add, model["norm.running_mean"], 0.125);  // a changing buffer
      ema->update();
      opt->zero_grad();
    }
  }
};

std::string load_error(const std::string& path, TrainingState state) {
  try {
    load_checkpoint(path, state);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error loading " << path;
  return {};
}

}  // namespace

TEST(Checkpoint, ResumingReproducesTheUninterruptedRunBitForBit) {
  TrainingRun straight;
  straight.train_until(kTotalSteps);

  const std::string path = temp_path("resume.safetensors");
  {
    TrainingRun first;
    first.train_until(4);
    save_checkpoint(path, first.state());
    first.train_until(6);  // keeps going: the file must not change with it
  }
  TrainingRun resumed;  // fresh objects, as a new process would build them
  TrainingState s = resumed.state();
  s.step = -1;
  s.config.clear();
  load_checkpoint(path, s);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(s.config, kConfig);
  resumed.step = s.step;
  resumed.train_until(kTotalSteps);

  for (const auto& [name, t] : straight.model)
    EXPECT_TRUE(test::bitwise_equal(resumed.model.at(name), t)) << name;
  const auto so = straight.opt->state_dict(), ro = resumed.opt->state_dict();
  ASSERT_EQ(so.size(), ro.size());
  for (const auto& [key, t] : so)
    EXPECT_TRUE(test::bitwise_equal(ro.at(key), t)) << "optimizer " + key;
  for (size_t i = 0; i < straight.ema->shadow().size(); ++i)
    EXPECT_TRUE(test::bitwise_equal(resumed.ema->shadow()[i], straight.ema->shadow()[i])) << "ema";
  EXPECT_EQ(resumed.scaler.get_scale(), straight.scaler.get_scale());
  EXPECT_EQ(resumed.scaler.growth_tracker(), straight.scaler.growth_tracker());
  EXPECT_EQ(resumed.sched->last_lrs(), straight.sched->last_lrs());
  EXPECT_EQ(resumed.data_gen.offset(), straight.data_gen.offset());
  // The run really exercised the scaler: one skipped step halved the scale, later steps grew it.
  EXPECT_NE(straight.scaler.get_scale(), 1024.0);
  std::filesystem::remove(path);
}

TEST(Checkpoint, InfoAndWeightsOnlyLoading) {
  TrainingRun run;
  run.train_until(2);
  const std::string path = temp_path("info.safetensors");
  save_checkpoint(path, run.state());
  const CheckpointInfo info = read_checkpoint_info(path);
  EXPECT_EQ(info.step, 2);
  EXPECT_EQ(info.config, kConfig);
  EXPECT_EQ(info.optimizer, "AdamW");
  EXPECT_EQ(info.components,
            (std::vector<std::string>{"model", "optimizer", "scheduler", "scaler", "ema", "rng"}));
  // Only the weights (e.g. for evaluation): other components are ignored.
  TrainingRun eval;
  TrainingState weights;
  weights.model = eval.model;
  load_checkpoint(path, weights);
  for (const auto& [name, t] : run.model)
    EXPECT_TRUE(test::bitwise_equal(eval.model.at(name), t)) << name;
  std::filesystem::remove(path);
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  TrainingRun run;
  run.train_until(1);
  const std::string path = temp_path("bad.safetensors");
  save_checkpoint(path, run.state());
  const auto file = load_safetensors(path);

  // Truncated (e.g. a copy that was cut short).
  const std::string truncated = temp_path("truncated.safetensors");
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  }
  TrainingRun fresh;
  std::string msg = load_error(truncated, fresh.state());
  EXPECT_NE(msg.find(truncated), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside"), std::string::npos) << msg;

  // A missing optimizer tensor.
  const std::string missing = temp_path("missing.safetensors");
  auto tensors = file.tensors;
  tensors.erase("optimizer/state.0.exp_avg_sq");
  save_safetensors(missing, tensors, file.metadata);
  msg = load_error(missing, fresh.state());
  EXPECT_NE(msg.find("missing key 'state.0.exp_avg_sq'"), std::string::npos) << msg;

  // A missing model tensor, and one the model does not have.
  tensors = file.tensors;
  tensors.erase("model/fc2.bias");
  save_safetensors(missing, tensors, file.metadata);
  msg = load_error(missing, fresh.state());
  EXPECT_NE(msg.find("has no model tensor 'fc2.bias'"), std::string::npos) << msg;
  tensors = file.tensors;
  tensors["model/fc3.weight"] = raw::zeros({2});
  save_safetensors(missing, tensors, file.metadata);
  msg = load_error(missing, fresh.state());
  EXPECT_NE(msg.find("'fc3.weight'"), std::string::npos) << msg;

  // A model of another shape.
  TrainingState other = fresh.state();
  other.model["fc1.weight"] = raw::zeros({8, 5});
  msg = load_error(path, other);
  EXPECT_NE(msg.find("'fc1.weight' is float32[8, 4] in the file but float32[8, 5]"),
            std::string::npos)
      << msg;

  // Another optimizer type; a component the file lacks.
  SGD sgd(fresh.params);
  TrainingState with_sgd = fresh.state();
  with_sgd.optimizer = &sgd;
  msg = load_error(path, with_sgd);
  EXPECT_NE(msg.find("AdamW optimizer, not of SGD"), std::string::npos) << msg;
  TrainingState model_only;
  model_only.model = run.model;
  save_checkpoint(missing, model_only);
  msg = load_error(missing, fresh.state());
  EXPECT_NE(msg.find("holds no optimizer state"), std::string::npos) << msg;

  // A plain safetensors file (weights, not a checkpoint).
  save_safetensors(missing, {{"w", raw::zeros({2})}});
  msg = load_error(missing, fresh.state());
  EXPECT_NE(msg.find("is not a training checkpoint"), std::string::npos) << msg;

  // A failed load left the fresh model untouched (validated before writing).
  TrainingRun pristine;
  for (const auto& [name, t] : pristine.model)
    EXPECT_TRUE(test::bitwise_equal(fresh.model.at(name), t)) << name;

  for (const auto& p : {path, truncated, missing}) std::filesystem::remove(p);
}
