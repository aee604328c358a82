// nn/ layers against PyTorch (tests/golden/gen_nn_layers.py): every layer's forward, input
// gradient and parameter gradients, with weights loaded under PyTorch's state-dict names;
// BatchNorm's running statistics in train and eval; Dropout's train/eval behaviour; and the
// errors on bad configurations and inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/elementwise.h"
#include "autograd/views.h"
#include "nn/nn.h"
#include "torch_case.h"

using namespace cxr;
using namespace cxr::nn;
using test::case_tensor;
using test::expect_matches_torch;

TEST(Linear, MatchesTorch) {
  Linear fc(5, 3);
  expect_matches_torch(fc, "linear");
  Linear no_bias(4, 2, false);
  EXPECT_FALSE(no_bias.bias.defined());
  expect_matches_torch(no_bias, "linear_nobias");
}

TEST(Linear, RejectsWrongFeatures) {
  Linear fc(5, 3);
  EXPECT_THROW(fc.forward(raw::zeros({2, 4})), Error);
  EXPECT_THROW(Linear(-1, 3), Error);
}

TEST(Conv2d, MatchesTorch) {
  Conv2d conv(4, 6, 3, {.stride = 2, .padding = 1, .groups = 2});
  EXPECT_EQ(conv.weight.sizes(), (Shape{6, 2, 3, 3}));
  expect_matches_torch(conv, "conv");
  Conv2d dilated(3, 4, {3, 2}, {.stride = {1, 2}, .padding = {2, 1}, .dilation = 2, .bias = false});
  expect_matches_torch(dilated, "conv_dilated");
}

TEST(Conv2d, RejectsBadConfigurationAndInput) {
  EXPECT_THROW(Conv2d(3, 4, 3, {.groups = 2}), Error);  // 3 channels not divisible by 2 groups
  EXPECT_THROW(Conv2d(3, 4, 0), Error);
  Conv2d conv(3, 4, 3);
  EXPECT_THROW(conv.forward(raw::zeros({1, 2, 5, 5})), Error);  // wrong channel count
  EXPECT_THROW(conv.forward(raw::zeros({3, 5, 5})), Error);     // not NCHW
}

TEST(GroupNorm, MatchesTorch) {
  GroupNorm gn(2, 6);
  expect_matches_torch(gn, "group_norm");
  EXPECT_THROW(GroupNorm(4, 6), Error);
  EXPECT_THROW(gn.forward(raw::zeros({2, 4, 3})), Error);
}

TEST(GroupNorm, ForwardSiluIsSiluOfForward) {
  GroupNorm gn(2, 6);
  ASSERT_TRUE(gn.load_state_dict(test::case_state_dict("group_norm")).ok());
  Tensor x = case_tensor("group_norm", "x");
  EXPECT_ALL_CLOSE(gn.forward_silu(x), silu(case_tensor("group_norm", "out")), 1e-5, 1e-6);
}

TEST(LayerNorm, MatchesTorch) {
  LayerNorm ln({4, 5});
  expect_matches_torch(ln, "layer_norm");
  LayerNorm no_bias({6}, 1e-6, true, false);
  EXPECT_FALSE(no_bias.bias.defined());
  expect_matches_torch(no_bias, "layer_norm_nobias");
  EXPECT_THROW(ln.forward(raw::zeros({2, 5, 4})), Error);
}

TEST(BatchNorm2d, TrainUpdatesRunningStatsAndEvalUsesThem) {
  BatchNorm2d bn(3);
  expect_matches_torch(bn, "batch_norm");  // train mode (the default)
  EXPECT_ALL_CLOSE(bn.running_mean, case_tensor("batch_norm", "after.running_mean"), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(bn.running_var, case_tensor("batch_norm", "after.running_var"), 1e-5, 1e-6);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(bn.num_batches_tracked.item(), 4);  // 3 in the fixture, + 1 batch

  bn.eval();
  expect_matches_torch(bn, "batch_norm", "eval.");
  EXPECT_EQ(bn.num_batches_tracked.item(), 3);  // eval counts nothing
  // Eval leaves the running statistics alone.
  EXPECT_ALL_CLOSE(bn.running_mean, case_tensor("batch_norm", "param.running_mean"), 0, 0);
}

TEST(BatchNorm2d, CumulativeAverageWhenMomentumIsNone) {
  BatchNorm2d bn(3, {.momentum = std::nullopt});
  expect_matches_torch(bn, "batch_norm_cma");
  EXPECT_ALL_CLOSE(bn.running_mean, case_tensor("batch_norm_cma", "after.running_mean"), 1e-5,
                   1e-6);
  EXPECT_ALL_CLOSE(bn.running_var, case_tensor("batch_norm_cma", "after.running_var"), 1e-5, 1e-6);
}

TEST(BatchNorm2d, WithoutRunningStatsAlwaysUsesTheBatch) {
  BatchNorm2d bn(2, {.affine = false, .track_running_stats = false});
  EXPECT_TRUE(bn.state_dict().empty());
  Generator gen(5);
  Tensor x = raw::randn({4, 2, 3, 3}, gen, kFloat32, 2.0, 3.0);
  Tensor train_out = bn.forward(x);
  bn.eval();
  EXPECT_ALL_CLOSE(bn.forward(x), train_out, 0, 0);
  // Normalised per channel: mean 0 and (biased) variance 1.
  EXPECT_NEAR(raw::mean(train_out).item(), 0.0, 1e-5);
  EXPECT_NEAR(raw::var(train_out, {0, 2, 3}, 0).to_vector<double>()[0], 1.0, 1e-3);
  EXPECT_THROW(bn.forward(raw::zeros({4, 2, 3})), Error);
}

TEST(Embedding, MatchesTorch) {
  Embedding emb(10, 4);
  expect_matches_torch(emb, "embedding", {"idx"},
                       [&](const std::vector<Tensor>& in) { return emb.forward(in[0]); });
}

TEST(Embedding, PaddingRowGetsNoGradient) {
  Embedding emb(6, 3, 1);
  expect_matches_torch(emb, "embedding_pad", {"idx"},
                       [&](const std::vector<Tensor>& in) { return emb.forward(in[0]); });
  // A fresh layer starts with a zero padding row.
  Embedding fresh(6, 3, -5);  // -5 counts from the end: row 1
  EXPECT_EQ(fresh.padding_idx, 1);
  EXPECT_EQ(raw::abs(raw::select(fresh.weight, 0, 1)).to_vector<float>(),
            std::vector<float>(3, 0.0f));
  EXPECT_THROW(Embedding(6, 3, 6), Error);
  EXPECT_THROW(emb.forward(raw::zeros({2}, kFloat32)), Error);  // float indices
}

TEST(Activations, MatchTorch) {
  ReLU relu_;
  SiLU silu_;
  GELU gelu_;
  GELU gelu_tanh("tanh");
  QuickGELU quick;
  Sigmoid sigmoid_;
  Tanh tanh_;
  Identity identity;
  const std::vector<std::pair<std::string, Module*>> cases = {
      {"relu", &relu_},       {"silu", &silu_},       {"gelu", &gelu_}, {"gelu_tanh", &gelu_tanh},
      {"quick_gelu", &quick}, {"sigmoid", &sigmoid_}, {"tanh", &tanh_}};
  for (const auto& [name, m] : cases) expect_matches_torch(*m, name, "", {1e-5, 1e-6});
  Tensor x = case_tensor("relu", "x");
  EXPECT_TRUE(identity.forward(x).is_same(x));
  EXPECT_THROW(GELU("fast"), Error);
}

TEST(Upsample, MatchesTorch) {
  Upsample nearest(2.0);
  expect_matches_torch(nearest, "up_nearest");
  Upsample to_size(Size2(5, 7), UpsampleMode::Bilinear);
  expect_matches_torch(to_size, "up_bilinear_size");
  Upsample aligned(2.0, UpsampleMode::Bilinear, true);
  expect_matches_torch(aligned, "up_bilinear_align");
  EXPECT_THROW(Upsample(2.0, UpsampleMode::Nearest, true), Error);
  EXPECT_THROW(Upsample(0.0), Error);
  EXPECT_THROW(nearest.forward(raw::zeros({2, 3, 4})), Error);
}

TEST(Pooling, MatchesTorch) {
  MaxPool2d max_pool(3, {.stride = 2, .padding = 1});
  expect_matches_torch(max_pool, "max_pool");
  MaxPool2d max_ceil(2, {.ceil_mode = true});
  expect_matches_torch(max_ceil, "max_pool_ceil");
  AvgPool2d avg(3, {.stride = 2, .padding = 1, .count_include_pad = false});
  expect_matches_torch(avg, "avg_pool");
  AdaptiveAvgPool2d adaptive({2, 3});
  expect_matches_torch(adaptive, "adaptive_avg_pool");
  EXPECT_THROW(MaxPool2d(2, {.padding = 2}), Error);  // padding over half the kernel
  EXPECT_THROW(AdaptiveAvgPool2d(0), Error);
  EXPECT_THROW(max_pool.forward(raw::zeros({3, 7, 7})), Error);
}

TEST(Dropout, TrainDropsAndScalesEvalIsIdentity) {
  Generator gen(11);
  Dropout drop(0.25, gen);
  Tensor x = raw::ones({64, 64});
  x.set_requires_grad(true);
  Tensor y = drop.forward(x);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros = 0;
  for (float e : v) {
    EXPECT_TRUE(e == 0.0f || std::abs(e - 1.0f / 0.75f) < 1e-6f) << e;
    zeros += e == 0.0f;
  }
  // 4096 Bernoulli(0.25) draws: mean 1024, std 27.7; allow 5 std.
  EXPECT_NEAR(double(zeros), 1024.0, 140.0);
  // The gradient is the mask itself (d(x * mask)/dx).
  autograd::backward({y}, {raw::ones({64, 64})});
  EXPECT_ALL_CLOSE(x.grad(), y, 0, 0);
  // The same generator state gives the same mask; the next draw a different one.
  Generator replay(11);
  Dropout again(0.25, replay);
  EXPECT_ALL_CLOSE(again.forward(raw::ones({64, 64})), y, 0, 0);
  EXPECT_NE(drop.forward(raw::ones({64, 64})).to_vector<float>(), v);

  drop.eval();
  Tensor z = drop.forward(x);
  EXPECT_TRUE(z.is_same(x));
  EXPECT_THROW(Dropout(1.5), Error);
}

// The network of gen_nn_layers.py: nested names through ModuleList and Sequential, BatchNorm in
// train and eval mode.
class Net : public Module {
 public:
  Net() : Module("Net") {
    stem = register_module(
        "stem", std::make_shared<Conv2d>(2, 4, 3, Conv2dOptions{.padding = 1, .bias = false}));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(4));
    layers = register_module("layers", std::make_shared<ModuleList>());
    layers->push_back(std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
        std::make_shared<Conv2d>(4, 4, 3, Conv2dOptions{.padding = 1}),
        std::make_shared<GroupNorm>(2, 4), std::make_shared<SiLU>()}));
    layers->push_back(std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
        std::make_shared<Conv2d>(4, 6, 3, Conv2dOptions{.stride = 2, .padding = 1}),
        std::make_shared<BatchNorm2d>(6), std::make_shared<ReLU>()}));
    pool = register_module("pool", std::make_shared<AdaptiveAvgPool2d>(1));
    fc = register_module("fc", std::make_shared<Linear>(6, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(bn->forward(stem->forward(x)));
    for (const auto& layer : layers->children()) h = layer->forward(h);
    return fc->forward(flatten(pool->forward(h), 1));
  }
  std::shared_ptr<Conv2d> stem;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<AdaptiveAvgPool2d> pool;
  std::shared_ptr<Linear> fc;
};

TEST(Net, NestedModulesMatchTorchInTrainAndEval) {
  Net net;
  expect_matches_torch(net, "net");
  EXPECT_ALL_CLOSE(net.tensor("layers.1.1.running_var"),
                   case_tensor("net", "after.layers.1.1.running_var"), 1e-5, 1e-6);
  net.eval();
  expect_matches_torch(net, "net", "eval.");
}
