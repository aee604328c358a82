// The model registry: every entry builds from its defaults and from its documented keys, runs its
// forward pass on the documented input names, and names what is wrong on bad names and keys.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "models/registry.h"
#include "support/errors.h"
#include "tensor/ops.h"

namespace cxr::models {
namespace {

TEST(Registry, UnknownModelListsTheKnownOnes) {
  EXPECT_ERROR_CONTAINS(find_model("resnet101"), "unknown model 'resnet101' (known models: ");
  for (const auto& e : model_registry()) {
    EXPECT_ERROR_CONTAINS(find_model("x" + e.name), e.name);
    EXPECT_EQ(&find_model(e.name), &e);
    EXPECT_FALSE(e.inputs.empty() && e.optional_inputs.empty()) << e.name;
    EXPECT_FALSE(e.outputs.empty()) << e.name;
    EXPECT_NE(model_help(e).find(e.summary), std::string::npos);
  }
}

TEST(Registry, UnknownConfigKeysAreRejected) {
  EXPECT_ERROR_CONTAINS(build_model("resnet18", JsonConfig({{"num_clases", 2}}, "resnet18 config")),
                        "resnet18 config: unknown key num_clases");
  EXPECT_ERROR_CONTAINS(build_model("resnet18", JsonConfig({{"num_classes", "2"}}, "cfg")),
                        "key 'num_classes' must be an integer");
  EXPECT_ERROR_CONTAINS(build_model("unetplusplus", JsonConfig({{"encoder_name", "vgg16"}}, "cfg")),
                        "vgg16");
}

TEST(Registry, InputNamesAreChecked) {
  const ModelEntry& e = find_model("resnet18");
  EXPECT_NO_THROW(check_inputs(e, {{"input", Tensor()}}));
  EXPECT_ERROR_CONTAINS(check_inputs(e, {}), "resnet18: missing input 'input'; expected input");
  EXPECT_ERROR_CONTAINS(check_inputs(e, {{"input", Tensor()}, {"x", Tensor()}}),
                        "unexpected input 'x'");
}

TEST(Registry, SmallConfigsRunTheirForward) {
  autograd::NoGradGuard no_grad;
  auto resnet = build_model(
      "resnet34", JsonConfig({{"num_classes", 2}, {"in_channels", 1}, {"base_width", 4}}, "cfg"));
  resnet->module().eval();
  TensorMap out = resnet->forward({{"input", raw::zeros({1, 1, 32, 32})}});
  ASSERT_TRUE(out.count("output"));
  EXPECT_EQ(out.at("output").sizes(), (Shape{1, 2}));

  auto unet = build_model("unetplusplus", JsonConfig({{"encoder_name", "resnet18"},
                                                      {"encoder_depth", 3},
                                                      {"decoder_channels", {8, 8, 4}},
                                                      {"in_channels", 1},
                                                      {"classes", 2},
                                                      {"encoder_base_width", 4},
                                                      {"deep_supervision", true}},
                                                     "cfg"));
  unet->module().eval();
  out = unet->forward({{"input", raw::zeros({1, 1, 32, 32})}});
  ASSERT_TRUE(out.count("output"));
  EXPECT_EQ(out.at("output").sizes(), (Shape{1, 2, 32, 32}));
  EXPECT_TRUE(out.count("output.0"));  // deep supervision adds the upper nodes' logits
}

}  // namespace
}  // namespace cxr::models
