// ctest-label: slow
// The real SD v1 UNet2DConditionModel (models/unet2d_condition.h), built from SD v1's
// unet/config.json (stored in tests/fixtures/unet2d_condition.safetensors by
// tests/golden/gen_unet2d_condition.py): exactly 859,520,964 parameters and the state-dict names
// and shapes of ../shared/spec/keys/unet.tsv (diffusers' model). Allocates 3.4 GB of float32
// weights, hence the "slow" label (left out of the sanitizer run).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "models/unet2d_condition.h"
#include "support/fixtures.h"

using namespace cxr;
using namespace cxr::models;

TEST(UNet2DConditionModelReal, StableDiffusionV1KeysShapesAndParameterCount) {
  JsonConfig json(test::fixture_json("unet2d_condition.safetensors", "sd.config"), "sd config");
  const UNet2DConditionModel m(UNet2DConditionConfig::from_json(json));
  EXPECT_EQ(m.num_parameters(), 859520964);
  EXPECT_EQ(m.num_down_residuals(), 12u);
  EXPECT_EQ(m.num_upsamplers(), 3);

  const std::map<std::string, Shape> expected = test::spec_key_shapes("unet");
  ASSERT_EQ(expected.size(), 686u);
  std::map<std::string, Shape> actual;
  for (const auto& [key, t] : m.state_dict()) actual[key] = t.shape();
  EXPECT_EQ(actual, expected);
  // SD v1: 8 heads everywhere (attention_head_dim is the head count), 40 dims in the first block.
  auto block = m.down_blocks->at<UNetDownBlock>(0)
                   ->attentions->at<Transformer2DModel>(0)
                   ->transformer_blocks->at<BasicTransformerBlock>(0);
  EXPECT_EQ(block->attn1->heads, 8);
  EXPECT_EQ(block->attn1->dim_head, 40);
}
