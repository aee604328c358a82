// nn::Module and the containers: registration and PyTorch naming, traversal, state_dict and
// load_state_dict (round trip through safetensors, strict and non-strict reports, dtype
// conversion), train/eval, to(dtype)/to(device), freezing, parameter counts, zero_grad and the
// printout.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "autograd/conv.h"
#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/views.h"
#include "nn/nn.h"
#include "support/compare.h"
#include "support/errors.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

// conv -> bn -> relu -> pool -> flatten -> head (Sequential: fc, dropout), with a non-persistent
// buffer and a parameter owned by the module itself.
class Small : public Module {
 public:
  Small() : Module("Small") {
    conv = register_module("conv", std::make_shared<Conv2d>(2, 3, 3, Conv2dOptions{.padding = 1}));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(3));
    head = register_module("head", std::make_shared<Sequential>());
    head->push_back(std::make_shared<Linear>(3, 4));
    head->push_back("drop", std::make_shared<Dropout>(0.5));
    register_parameter("scale", raw::full({1}, 2.0));
    register_buffer("cache", raw::zeros({5}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(bn->forward(conv->forward(x)));
    h = flatten(adaptive_avg_pool2d(h, {1, 1}), 1);
    return head->forward(h) * tensor("scale");
  }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Sequential> head;
};

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> out;
  for (const auto& kv : v) out.push_back(kv.first);
  return out;
}

std::vector<std::string> keys(const StateDict& d) {
  std::vector<std::string> out;
  for (const auto& kv : d) out.push_back(kv.first);
  return out;
}

Tensor seeded(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return raw::randn(shape, gen);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && a.dtype() == b.dtype() &&
         a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

TEST(Module, RegistersUnderPyTorchNames) {
  Small m;
  EXPECT_EQ(names(m.named_parameters()),
            (std::vector<std::string>{"scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                                      "head.0.weight", "head.0.bias"}));
  EXPECT_EQ(names(m.named_buffers()),
            (std::vector<std::string>{"cache", "bn.running_mean", "bn.running_var",
                                      "bn.num_batches_tracked"}));
  EXPECT_EQ(names(m.named_parameters(/*recurse=*/false)), (std::vector<std::string>{"scale"}));
  EXPECT_EQ(m.children().size(), 3u);
  std::vector<std::string> module_names;
  for (const auto& [name, mod] : m.named_modules()) module_names.push_back(name);
  EXPECT_EQ(module_names, (std::vector<std::string>{"conv", "bn", "head", "head.0", "head.drop"}));
  EXPECT_EQ(m.submodule("head.0")->type_name(), "Linear");
  EXPECT_TRUE(m.tensor("head.0.weight").is_same(m.head->at<Linear>(0)->weight));
  EXPECT_THROW(m.submodule("head.1"), Error);
  EXPECT_THROW(m.tensor("conv.missing"), Error);
  for (const Tensor& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
  for (const Tensor& b : m.buffers()) EXPECT_FALSE(b.requires_grad());
}

TEST(Module, RejectsBadOrDuplicateNames) {
  Module m("M");
  m.register_parameter("w", raw::zeros({2}));
  EXPECT_THROW(m.register_parameter("w", raw::zeros({2})), Error);
  EXPECT_THROW(m.register_buffer("w", raw::zeros({2})), Error);
  EXPECT_THROW(m.register_module("w", std::make_shared<Identity>()), Error);
  EXPECT_THROW(m.register_parameter("a.b", raw::zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("", raw::zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("idx", raw::zeros({2}, kInt64)), Error);  // not floating
  Tensor leaf = raw::ones({2});
  leaf.set_requires_grad(true);
  EXPECT_THROW(m.register_parameter("made", leaf * 2.0), Error);  // not a leaf
  EXPECT_THROW(m.register_module("null", ModulePtr()), Error);
  EXPECT_THROW(m.forward(raw::zeros({2})), Error);  // no forward(x)
}

TEST(Module, TiedParametersCountOnceButSaveUnderEachName) {
  Module m("Tied");
  auto a = m.register_module("a", std::make_shared<Linear>(3, 3, false));
  auto b = m.register_module("b", std::make_shared<Module>("Holder"));
  b->register_parameter("weight", &a->weight);
  EXPECT_EQ(m.parameters().size(), 1u);
  EXPECT_EQ(m.num_parameters(), 9);
  EXPECT_EQ(keys(m.state_dict()), (std::vector<std::string>{"a.weight", "b.weight"}));
}

TEST(Module, StateDictHoldsParametersAndPersistentBuffersAsAliases) {
  Small m;
  StateDict sd = m.state_dict();
  EXPECT_EQ(keys(sd),
            (std::vector<std::string>{"bn.bias", "bn.num_batches_tracked", "bn.running_mean",
                                      "bn.running_var", "bn.weight", "conv.bias", "conv.weight",
                                      "head.0.bias", "head.0.weight", "scale"}));
  EXPECT_EQ(sd.at("bn.num_batches_tracked").dtype(), kInt64);
  EXPECT_EQ(sd.at("bn.num_batches_tracked").dim(), 0);
  EXPECT_FALSE(sd.at("conv.weight").requires_grad());  // detached
  raw::fill_(sd.at("scale"), 7.0);                     // but sharing the module's data
  EXPECT_EQ(m.tensor("scale").item(), 7.0);
}

TEST(Module, SafetensorsRoundTripGivesBitwiseEqualOutputs) {
  Small a;
  a.train();
  a.forward(seeded({4, 2, 5, 5}, 1));  // moves the running statistics and the batch counter
  a.eval();
  const std::string path = testing::TempDir() + "/nn_module_roundtrip.safetensors";
  save_safetensors(path, a.state_dict());

  manual_seed(999);  // a differently initialised module
  Small b;
  b.eval();
  Tensor x = seeded({3, 2, 5, 5}, 2);
  EXPECT_FALSE(bitwise_equal(a.forward(x), b.forward(x)));
  LoadReport report = b.load_state_dict(load_safetensors(path).tensors);
  EXPECT_TRUE(report.ok()) << report.str();
  EXPECT_TRUE(bitwise_equal(a.forward(x), b.forward(x)));
  EXPECT_EQ(b.bn->num_batches_tracked.item(), 1);
  std::filesystem::remove(path);
}

TEST(Module, StrictLoadListsEveryProblemAndLoadsNothing) {
  Small m;
  StateDict sd;
  for (const auto& [k, v] : m.state_dict()) sd[k] = raw::clone(v);
  sd.erase("bn.running_var");
  sd.erase("head.0.bias");
  sd["head.1.weight"] = raw::zeros({2});
  sd["conv.weight"] = raw::zeros({3, 2, 5, 5});
  sd["scale"] = raw::full({1}, 5.0);
  {
    const std::string msg = test::error_message([&] { m.load_state_dict(sd); });
    for (const char* key : {"Small", "missing keys", "bn.running_var", "head.0.bias",
                            "unexpected keys", "head.1.weight", "shape mismatches",
                            "conv.weight: checkpoint [3, 2, 5, 5], module [3, 2, 3, 3]"})
      EXPECT_NE(msg.find(key), std::string::npos) << "'" << key << "' not in: " << msg;
  }
  EXPECT_EQ(m.tensor("scale").item(), 2.0);  // nothing loaded

  LoadReport report = m.load_state_dict(sd, /*strict=*/false);
  std::vector<std::string> missing = report.missing_keys;
  std::sort(missing.begin(), missing.end());
  EXPECT_EQ(missing, (std::vector<std::string>{"bn.running_var", "head.0.bias"}));
  EXPECT_EQ(report.unexpected_keys, (std::vector<std::string>{"head.1.weight"}));
  ASSERT_EQ(report.shape_mismatches.size(), 1u);
  EXPECT_EQ(report.shape_mismatches[0].rfind("conv.weight", 0), 0u);
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.str().find("head.1.weight"), std::string::npos);
  EXPECT_EQ(m.tensor("scale").item(), 5.0);  // what matched was loaded
}

TEST(Module, LoadConvertsToTheModulesDtypeInPlace) {
  Linear fc(2, 2);
  Tensor handle = fc.weight;  // e.g. held by an optimizer
  StateDict sd{{"weight", raw::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2})},
               {"bias", raw::from_vector(std::vector<double>{0.5, -0.5}, {2})}};
  EXPECT_TRUE(fc.load_state_dict(sd).ok());
  EXPECT_EQ(fc.weight.dtype(), kFloat32);
  EXPECT_TRUE(handle.is_same(fc.weight));
  EXPECT_EQ(handle.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(fc.weight.requires_grad());
}

TEST(Module, TrainEvalReachesEveryModule) {
  Small m;
  EXPECT_TRUE(m.is_training());
  m.eval();
  for (const auto& [name, sub] : m.named_modules()) EXPECT_FALSE(sub->is_training()) << name;
  m.train();
  for (const auto& [name, sub] : m.named_modules()) EXPECT_TRUE(sub->is_training()) << name;
  // Dropout inside the head follows the mode: eval output is deterministic.
  m.eval();
  Tensor x = seeded({2, 2, 4, 4}, 3);
  EXPECT_TRUE(bitwise_equal(m.forward(x), m.forward(x)));
}

TEST(Module, ToDtypeConvertsFloatingTensorsKeepingHandles) {
  Small m;
  Tensor w = m.conv->weight;
  const std::vector<double> before = w.to_vector<double>();
  Tensor x = seeded({2, 2, 4, 4}, 4);
  m.eval();
  Tensor out32 = m.forward(x);
  m.conv->weight.set_grad(raw::ones({3, 2, 3, 3}));
  m.to(kFloat64);
  EXPECT_EQ(w.dtype(), kFloat64);  // the old handle sees the new data
  EXPECT_EQ(w.to_vector<double>(), before);
  EXPECT_EQ(w.grad().dtype(), kFloat64);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_EQ(m.bn->running_var.dtype(), kFloat64);
  EXPECT_EQ(m.bn->num_batches_tracked.dtype(), kInt64);
  Tensor out64 = m.forward(raw::to(x, kFloat64));
  EXPECT_EQ(out64.dtype(), kFloat64);
  EXPECT_ALL_CLOSE(raw::to(out64, kFloat32), out32, 1e-5, 1e-6);
  m.to(kFloat32);
  EXPECT_EQ(w.dtype(), kFloat32);

  m.to(Device::cpu());  // already there
  EXPECT_EQ(w.device(), Device::cpu());
  if (cuda_device_count() == 0) {
    EXPECT_THROW(m.to(Device::cuda()), Error);
  }
}

TEST(Module, FreezingStopsGradients) {
  Sequential net{std::make_shared<Linear>(4, 3), std::make_shared<Tanh>(),
                 std::make_shared<Linear>(3, 2)};
  net[0]->requires_grad(false);
  EXPECT_EQ(net.num_parameters(), 15 + 8);
  EXPECT_EQ(net.num_parameters(/*trainable_only=*/true), 8);
  Tensor x = seeded({5, 4}, 5);
  autograd::backward({net.forward(x)}, {raw::ones({5, 2})});
  for (const auto& [name, p] : net.named_parameters())
    EXPECT_EQ(p.grad().defined(), name.rfind("2.", 0) == 0) << name;
  EXPECT_NE(net.str().find("(frozen)"), std::string::npos);
  EXPECT_NE(net.str().find("23 params (8 trainable)"), std::string::npos) << net.str();

  net.zero_grad(/*set_to_none=*/false);
  EXPECT_EQ(raw::amax(raw::abs(net.tensor("2.weight").grad())).item(), 0.0);
  net.zero_grad();
  EXPECT_FALSE(net.tensor("2.weight").grad().defined());
  net.requires_grad(true);
  EXPECT_EQ(net.num_parameters(true), 23);
}

TEST(Module, PrintoutShowsNamesTypesShapesAndCounts) {
  Small m;
  const std::string s = m.str();
  for (const char* piece :
       {"Small(  # 80 params\n",
        "(conv): Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))  # weight [3, 2, "
        "3, 3], bias [3]; 57 params",
        "(bn): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
        "running_mean [3], running_var [3], num_batches_tracked [] int64; 6 params",
        "(head): Sequential(  # 16 params",
        "    (0): Linear(in_features=3, out_features=4, bias=True)  # weight [4, 3], bias [4]; 16 "
        "params",
        "    (drop): Dropout(p=0.5)  # 0 params", "  scale [1], cache [5]\n"})
    EXPECT_NE(s.find(piece), std::string::npos) << "'" << piece << "' not in:\n" << s;
  // 57 (conv) + 6 (bn) + 16 (linear) + 1 (scale) = 80.
  EXPECT_EQ(m.num_parameters(), 80);
  std::ostringstream os;
  os << m;
  EXPECT_EQ(os.str(), s);
}

TEST(Containers, SequentialChainsForwards) {
  auto fc1 = std::make_shared<Linear>(4, 3);
  auto fc2 = std::make_shared<Linear>(3, 2);
  Sequential seq{fc1, std::make_shared<ReLU>(), fc2};
  Tensor x = seeded({5, 4}, 6);
  EXPECT_TRUE(bitwise_equal(seq.forward(x), fc2->forward(relu(fc1->forward(x)))));
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(keys(seq.state_dict()),
            (std::vector<std::string>{"0.bias", "0.weight", "2.bias", "2.weight"}));
  EXPECT_TRUE(seq.at<Linear>(2) == fc2);
  EXPECT_THROW(seq.at<Linear>(1), Error);  // a ReLU
  EXPECT_THROW(seq[3], Error);

  Sequential named{{"conv", std::make_shared<Identity>()}, {"act", std::make_shared<SiLU>()}};
  EXPECT_EQ(named.named_children()[1].first, "act");
  EXPECT_ALL_CLOSE(named(x), silu(x), 0, 0);
}

TEST(Containers, ModuleListAndModuleDict) {
  ModuleList list{std::make_shared<Linear>(2, 2), std::make_shared<Linear>(2, 2, false)};
  list.push_back(std::make_shared<GroupNorm>(1, 2));
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(keys(list.state_dict()),
            (std::vector<std::string>{"0.bias", "0.weight", "1.weight", "2.bias", "2.weight"}));
  EXPECT_EQ(list.at<GroupNorm>(2)->num_groups, 1);
  EXPECT_THROW(list[3], Error);
  EXPECT_THROW(list.forward(raw::zeros({2})), Error);

  ModuleDict dict{{"zeta", std::make_shared<Linear>(1, 1)}, {"alpha", std::make_shared<ReLU>()}};
  dict.insert("mid", std::make_shared<Tanh>());
  EXPECT_EQ(dict.keys(), (std::vector<std::string>{"zeta", "alpha", "mid"}));  // insertion order
  EXPECT_TRUE(dict.contains("mid"));
  EXPECT_FALSE(dict.contains("beta"));
  EXPECT_EQ(dict["alpha"]->type_name(), "ReLU");
  EXPECT_THROW(dict["beta"], Error);
  EXPECT_THROW(dict.insert("mid", std::make_shared<Tanh>()), Error);
  EXPECT_EQ(keys(dict.state_dict()), (std::vector<std::string>{"zeta.bias", "zeta.weight"}));
}

TEST(Module, ApplyVisitsEveryModuleChildrenFirst) {
  Small m;
  std::vector<std::string> order;
  m.apply([&](Module& mod) { order.push_back(mod.type_name()); });
  EXPECT_EQ(order, (std::vector<std::string>{"Conv2d", "BatchNorm2d", "Linear", "Dropout",
                                             "Sequential", "Small"}));
}

TEST(Module, ZeroModuleZeroesEveryParameter) {
  auto conv = init::zero_module(std::make_shared<Conv2d>(3, 3, 1));
  for (const Tensor& p : conv->parameters()) {
    EXPECT_EQ(raw::amax(raw::abs(p)).item(), 0.0);
    EXPECT_TRUE(p.requires_grad());
  }
  // A zero conv outputs zeros but still receives a weight gradient (ControlNet's zero convs).
  Tensor x = seeded({1, 3, 2, 2}, 7);
  Tensor y = conv->forward(x);
  EXPECT_EQ(raw::amax(raw::abs(y)).item(), 0.0);
  autograd::backward({y}, {raw::ones({1, 3, 2, 2})});
  EXPECT_GT(raw::amax(raw::abs(conv->weight.grad())).item(), 0.0);
}
