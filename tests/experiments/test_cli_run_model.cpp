// `cxr run-model`, run as the real binary: its outputs and gradients equal the same model run in
// this process (the models' own parity with PyTorch is tested in tests/models), the names follow
// the documented scheme, and bad names, missing or mis-shaped tensors exit 2 naming what was
// expected.
#include <gtest/gtest.h>

#include <filesystem>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "models/registry.h"
#include "support/compare.h"
#include "support/files.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

namespace cxr {
namespace {

test::CommandResult cxr_run(const std::string& args) {
  return test::run_command(CXR_BINARY, args);
}

struct Files {
  test::TempDir dir;
  std::string path(const std::string& name) const { return (dir.dir / name).string(); }
};

// A small resnet18 saved as weights with one input batch; the same module stays in memory.
class RunModel : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = {{"num_classes", 3}, {"in_channels", 1}, {"base_width", 8}};
    f_.dir.write("config.json", config_.dump());
    manual_seed(5);
    model_ = models::build_model("resnet18", models::JsonConfig(config_, "test"));
    save_safetensors(f_.path("w.safetensors"), model_->module().state_dict());
    Generator gen(7);
    x_ = raw::randn({2, 1, 32, 32}, gen);
    save_safetensors(f_.path("in.safetensors"), {{"input", x_}});
  }
  std::string base_args() const {
    return "run-model --model resnet18 --config " + f_.path("config.json") + " --weights " +
           f_.path("w.safetensors") + " --inputs " + f_.path("in.safetensors") + " --out " +
           f_.path("out.safetensors");
  }
  Files f_;
  nlohmann::json config_;
  std::unique_ptr<models::RunnableModel> model_;
  Tensor x_;
};

TEST_F(RunModel, EvalOutputEqualsTheInProcessModel) {
  auto r = cxr_run(base_args());
  ASSERT_EQ(r.status, 0) << r.err;
  auto out = load_safetensors(f_.path("out.safetensors")).tensors;
  model_->module().eval();
  Tensor expected = model_->forward({{"input", x_}}).at("output");
  ASSERT_TRUE(out.count("output"));
  EXPECT_TRUE(test::bitwise_equal(out.at("output"), expected));
  EXPECT_EQ(out.size(), 1u);  // eval without gradients: the output only
}

TEST_F(RunModel, TrainModeGradientsAndBuffers) {
  Generator gen(9);
  Tensor gy = raw::randn({2, 3}, gen);
  save_safetensors(f_.path("g.safetensors"), {{"output", gy}});
  auto r = cxr_run(base_args() + " --mode train --grad-outputs " + f_.path("g.safetensors"));
  ASSERT_EQ(r.status, 0) << r.err;
  auto out = load_safetensors(f_.path("out.safetensors")).tensors;

  nn::Module& m = model_->module();
  m.train();
  Tensor x = clone(x_).set_requires_grad(true);
  Tensor y = model_->forward({{"input", x}}).at("output");
  backward(sum(mul(y, gy)));
  EXPECT_TRUE(test::bitwise_equal(out.at("output"), detach(y)));
  EXPECT_TRUE(test::bitwise_equal(out.at("grad.input"), x.grad()));
  for (const auto& [name, p] : m.named_parameters())
    EXPECT_TRUE(test::bitwise_equal(out.at("grad." + name), p.grad())) << name;
  // BatchNorm statistics after the batch.
  EXPECT_TRUE(test::bitwise_equal(out.at("buffer.bn1.running_mean"), m.tensor("bn1.running_mean")));
}

TEST_F(RunModel, BadInputsExitTwoNamingWhatWasExpected) {
  auto expect_fail = [&](const std::string& args, const std::string& text) {
    auto r = cxr_run(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << args << "\n" << r.err;
  };
  const std::string in = f_.path("in.safetensors"), w = f_.path("w.safetensors");
  expect_fail("run-model --model resnet51 --weights " + w + " --inputs " + in + " --out " +
                  f_.path("o.safetensors"),
              "unknown model 'resnet51' (known models: resnet18, resnet34, resnet50, unetplusplus");
  // Weights of another configuration: every mismatch is listed.
  expect_fail("run-model --model resnet18 --weights " + w + " --inputs " + in + " --out " +
                  f_.path("o.safetensors"),
              "shape");
  save_safetensors(f_.path("wrong_name.safetensors"), {{"image", x_}});
  std::string args = base_args();
  expect_fail(args.replace(args.find(in), in.size(), f_.path("wrong_name.safetensors")),
              "missing input 'input'; unexpected input 'image'; expected input");
  save_safetensors(f_.path("rgb.safetensors"), {{"input", raw::zeros({1, 3, 32, 32})}});
  args = base_args();
  expect_fail(args.replace(args.find(in), in.size(), f_.path("rgb.safetensors")),
              "expected input [N, 1, H, W]");
  f_.dir.write("bad_config.json", "{\"num_clases\": 3}");
  expect_fail("run-model --model resnet18 --config " + f_.path("bad_config.json") + " --weights " +
                  w + " --inputs " + in + " --out " + f_.path("o.safetensors"),
              "unknown key num_clases");
  expect_fail("run-model --model resnet18 --config " + f_.path("config.json") + " --weights " +
                  f_.path("none.safetensors") + " --inputs " + in + " --out " +
                  f_.path("o.safetensors"),
              "none.safetensors");
  save_safetensors(f_.path("g.safetensors"), {{"logits", raw::zeros({2, 3})}});
  expect_fail(base_args() + " --grad-outputs " + f_.path("g.safetensors"),
              "names 'logits', which is not an output of resnet18 (outputs: output)");
  EXPECT_FALSE(std::filesystem::exists(f_.path("o.safetensors")));
}

TEST(RunModelHelp, ListsEveryModelWithItsTensorNames) {
  auto r = cxr_run("run-model --help");
  EXPECT_EQ(r.status, 0);
  for (const auto& e : models::model_registry()) {
    EXPECT_NE(r.out.find(e.name + ": "), std::string::npos) << e.name;
    for (const auto& t : e.inputs) EXPECT_NE(r.out.find(t.name), std::string::npos);
  }
  EXPECT_NE(r.out.find("grad.<input>"), std::string::npos);
}

}  // namespace
}  // namespace cxr
