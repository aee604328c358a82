// ctest-label: slow
// The real SD v1 ControlNetModel (models/controlnet.h), built from lllyasviel/sd-controlnet-*'s
// config.json (stored in tests/fixtures/controlnet.safetensors by tests/golden/gen_controlnet.py)
// and from the SD v1 UNet config: exactly 361,279,120 parameters and the state-dict names and
// shapes of ../shared/spec/keys/controlnet.tsv (diffusers' model). Allocates 1.4 GB of float32
// weights, hence the "slow" label.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "models/controlnet.h"
#include "support/fixtures.h"

using namespace cxr;
using namespace cxr::models;

TEST(ControlNetModelReal, StableDiffusionV1KeysShapesAndParameterCount) {
  JsonConfig json(test::fixture_json("controlnet.safetensors", "sd.config"), "sd config");
  const ControlNetConfig config = ControlNetConfig::from_json(json);
  // The same configuration as from_unet(SD v1 UNet) gives.
  EXPECT_EQ(config.to_json(), ControlNetConfig::stable_diffusion_v1().to_json());
  const ControlNetModel m(config);
  EXPECT_EQ(m.num_parameters(), 361279120);
  EXPECT_EQ(m.num_down_residuals(), 12u);

  const std::map<std::string, Shape> expected = test::spec_key_shapes("controlnet");
  ASSERT_EQ(expected.size(), 340u);
  std::map<std::string, Shape> actual;
  for (const auto& [key, t] : m.state_dict()) actual[key] = t.shape();
  EXPECT_EQ(actual, expected);
}
