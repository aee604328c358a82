// The CLIP text encoder (models/clip_text.h) against transformers' CLIPTextModel in a tiny
// configuration with random weights (tests/golden/gen_clip_text.py ->
// tests/fixtures/clip_text.safetensors): config.json as transformers writes it, last_hidden_state,
// both pooling rules, the attention mask, hidden states, the gelu variant and parameter gradients;
// then the SD1.x configuration's parameter count and key set (../shared/spec/keys/clip_text.tsv).
#include "models/clip_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/reduce.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/creation.h"
#include "tensor/views.h"

namespace cxr::models {
namespace {

const char* const kFixture = "clip_text.safetensors";

Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// The fixture's config.json, as a JsonConfig.
JsonConfig fixture_config() {
  const std::vector<int64_t> bytes = raw::to(fx("config"), kInt64).to_vector<int64_t>();
  return JsonConfig(nlohmann::json::parse(std::string(bytes.begin(), bytes.end())),
                    "clip_text fixture config.json");
}

// A model of `config` holding the fixture's weights.
std::shared_ptr<ClipTextModel> fixture_model(ClipTextConfig config) {
  auto m = std::make_shared<ClipTextModel>(config);
  nn::StateDict dict;
  for (const auto& [key, t] : test::cached_fixture(kFixture))
    if (key.rfind("param.", 0) == 0) dict[key.substr(6)] = t;
  m->load_state_dict(dict);  // strict: the fixture holds exactly the module's keys
  m->eval();
  return m;
}

ClipTextConfig tiny_config() {
  return ClipTextConfig::from_json(fixture_config());
}

TEST(ClipText, ConfigFromTransformersJson) {
  const ClipTextConfig c = tiny_config();
  EXPECT_EQ(c.vocab_size, 64);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.intermediate_size, 48);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.max_position_embeddings, 12);
  EXPECT_EQ(c.hidden_act, "quick_gelu");
  EXPECT_EQ(c.eos_token_id, 2);
  // to_json round trip.
  const ClipTextConfig back = ClipTextConfig::from_json(JsonConfig(c.to_json(), "round trip"));
  EXPECT_EQ(back.to_json(), c.to_json());
}

TEST(ClipText, ForwardMatchesTransformers) {
  auto m = fixture_model(tiny_config());
  const ClipTextOutput out = m->forward(fx("input_ids"), {}, /*output_hidden_states=*/true);
  EXPECT_ALL_CLOSE(out.last_hidden_state, fx("last_hidden_state"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(out.pooler_output, fx("pooler_output"), 1e-4, 1e-5);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t i = 0; i < out.hidden_states.size(); ++i)
    EXPECT_ALL_CLOSE(out.hidden_states[i], fx("hidden_state." + std::to_string(i)), 1e-4, 1e-5)
        << "hidden state " << i;
  // The single-input forward is last_hidden_state; int32 ids give the same.
  EXPECT_ALL_CLOSE(m->forward(fx("input_ids")), fx("last_hidden_state"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(m->forward(raw::to(fx("input_ids"), kInt32)), fx("last_hidden_state"), 1e-4,
                   1e-5);
}

TEST(ClipText, AttentionMaskAndPoolingRules) {
  auto m = fixture_model(tiny_config());
  EXPECT_ALL_CLOSE(m->forward(fx("input_ids"), fx("attention_mask")).last_hidden_state,
                   fx("masked_last_hidden_state"), 1e-4, 1e-5);
  ClipTextConfig eos40 = tiny_config();
  eos40.eos_token_id = 40;
  EXPECT_ALL_CLOSE(fixture_model(eos40)->forward(fx("input_ids"), {}).pooler_output,
                   fx("pooler_output_eos40"), 1e-4, 1e-5);
  ClipTextConfig gelu = tiny_config();
  gelu.hidden_act = "gelu";
  EXPECT_ALL_CLOSE(fixture_model(gelu)->forward(fx("input_ids")), fx("gelu_last_hidden_state"),
                   1e-4, 1e-5);
}

TEST(ClipText, GradientsMatchTransformers) {
  auto m = fixture_model(tiny_config());
  const ClipTextOutput out = m->forward(fx("input_ids"), {});
  const Tensor loss = add(sum(mul(out.last_hidden_state, fx("loss_weight_hidden"))),
                          sum(mul(out.pooler_output, fx("loss_weight_pooled"))));
  backward(loss);
  int compared = 0;
  for (const auto& [key, expected] : test::cached_fixture(kFixture)) {
    if (key.rfind("grad.", 0) != 0) continue;
    const Tensor g = m->tensor(key.substr(5)).grad();
    ASSERT_TRUE(g.defined()) << key;
    EXPECT_ALL_CLOSE(g, expected, 1e-4, 1e-5) << key;
    ++compared;
  }
  EXPECT_EQ(compared, 4);
}

TEST(ClipText, Sd1ConfigKeysAndParameterCount) {
  const ClipTextModel m;  // the defaults: openai/clip-vit-large-patch14's text config
  EXPECT_EQ(m.num_parameters(), 123060480);
  const std::map<std::string, Shape> expected = test::spec_key_shapes("clip_text");
  ASSERT_EQ(expected.size(), 196u);
  std::map<std::string, Shape> actual;
  for (const auto& [key, t] : m.state_dict()) actual[key] = t.shape();
  EXPECT_EQ(actual, expected);
}

// transformers 5 saves CLIPTextModel without "text_model."; old checkpoints carry position_ids.
TEST(ClipText, CheckpointKeys) {
  nn::StateDict v5, old;
  for (const auto& [key, t] : test::cached_fixture(kFixture)) {
    if (key.rfind("param.text_model.", 0) != 0) continue;
    v5[key.substr(17)] = t;
    old[key.substr(6)] = t;
  }
  old["text_model.embeddings.position_ids"] = raw::reshape(raw::arange(0, 12, 1, kInt64), {1, 12});
  for (const nn::StateDict* dict : {&v5, &old}) {
    auto m = std::make_shared<ClipTextModel>(tiny_config());
    m->load_state_dict(ClipTextModel::checkpoint_state_dict(*dict));  // strict
    EXPECT_ALL_CLOSE(m->forward(fx("input_ids")), fx("last_hidden_state"), 1e-4, 1e-5);
  }
  // Keys of other models pass through for load_state_dict to report.
  const nn::StateDict other =
      ClipTextModel::checkpoint_state_dict({{"vision_model.x", v5.begin()->second}});
  EXPECT_EQ(other.count("vision_model.x"), 1u);
}

double std_of(const Tensor& t) {
  const std::vector<double> v = raw::to(t, kFloat64).to_vector<double>();
  double sum = 0, sq = 0;
  for (double x : v) sum += x;
  const double mean = sum / double(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / double(v.size()));
}

// transformers' CLIP _init_weights standard deviations (hidden 64, 2 layers, factor 1).
TEST(ClipText, InitFollowsTransformers) {
  ClipTextConfig c;
  c.vocab_size = 500;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  Generator gen(7);
  ClipTextModel m(c);
  m.init_weights(gen);
  auto sd = [&](const std::string& name) { return std_of(m.tensor(name)); };
  const std::string l0 = "text_model.encoder.layers.0.";
  EXPECT_NEAR(sd("text_model.embeddings.token_embedding.weight"), 0.02, 0.001);
  EXPECT_NEAR(sd(l0 + "self_attn.q_proj.weight"), 0.125 * 0.5, 0.003);    // D^-0.5 (2L)^-0.5
  EXPECT_NEAR(sd(l0 + "self_attn.out_proj.weight"), 0.125, 0.005);        // D^-0.5
  EXPECT_NEAR(sd(l0 + "mlp.fc1.weight"), 1.0 / std::sqrt(128.0), 0.004);  // (2D)^-0.5
  EXPECT_NEAR(sd(l0 + "mlp.fc2.weight"), 0.125 * 0.5, 0.003);
  EXPECT_EQ(std_of(m.tensor(l0 + "self_attn.q_proj.bias")), 0.0);
  EXPECT_EQ(std_of(m.tensor(l0 + "layer_norm1.weight")), 0.0);
  EXPECT_EQ(m.tensor(l0 + "layer_norm1.weight").to_vector<float>()[0], 1.0f);
}

// The registry entry (added to model_registry() by the integrator) runs the same model.
TEST(ClipText, RegistryEntry) {
  const ModelEntry e = clip_text_registry_entry();
  EXPECT_EQ(e.name, "clip_text");
  JsonConfig config = fixture_config();
  std::unique_ptr<RunnableModel> m = e.build(config);
  config.check_all_used();  // every key of transformers' config.json is read or accepted
  nn::StateDict dict;
  for (const auto& [key, t] : test::cached_fixture(kFixture))
    if (key.rfind("param.", 0) == 0) dict[key.substr(6)] = t;
  m->module().load_state_dict(dict);
  m->module().eval();
  check_inputs(e, {{"input_ids", fx("input_ids")}, {"attention_mask", fx("attention_mask")}});
  const TensorMap out = m->forward({{"input_ids", fx("input_ids")}});
  EXPECT_ALL_CLOSE(out.at("last_hidden_state"), fx("last_hidden_state"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(out.at("pooler_output"), fx("pooler_output"), 1e-4, 1e-5);
  const TensorMap masked =
      m->forward({{"input_ids", fx("input_ids")}, {"attention_mask", fx("attention_mask")}});
  EXPECT_ALL_CLOSE(masked.at("last_hidden_state"), fx("masked_last_hidden_state"), 1e-4, 1e-5);
  EXPECT_NE(model_help(e).find("pooler_output"), std::string::npos);
}

TEST(ClipText, Errors) {
  ClipTextConfig c = tiny_config();
  auto m = fixture_model(c);
  EXPECT_ERROR_CONTAINS(m->forward(raw::zeros({2, 13}, kInt64)),
                        "sequence length 13 must be in [1, max_position_embeddings = 12]");
  EXPECT_ERROR_CONTAINS(m->forward(raw::full({1, 4}, 64, kInt64)),
                        "token id 64 is outside the vocabulary [0, 64)");
  EXPECT_ERROR_CONTAINS(m->forward(raw::zeros({4}, kInt64)), "expected input_ids int64");
  EXPECT_ERROR_CONTAINS(m->forward(raw::zeros({1, 4}, kFloat32)), "expected input_ids int64");
  EXPECT_ERROR_CONTAINS(m->forward(raw::zeros({1, 4}, kInt64), raw::ones({1, 3}, kInt64)),
                        "attention_mask [1, 3] must have the shape of input_ids [1, 4]");
  c.num_attention_heads = 5;
  EXPECT_ERROR_CONTAINS(ClipTextModel{c},
                        "hidden_size 32 must be divisible by num_attention_heads 5");
  nlohmann::json j = tiny_config().to_json();
  j["hidden_act"] = "relu";
  EXPECT_ERROR_CONTAINS(ClipTextConfig::from_json(JsonConfig(j, "cfg.json")),
                        "cfg.json: CLIPTextModel: hidden_act 'relu' is not supported");
  j = tiny_config().to_json();
  j["num_layers"] = 3;
  EXPECT_ERROR_CONTAINS(ClipTextConfig::from_json(JsonConfig(j, "cfg.json")), "num_layers");
}

}  // namespace
}  // namespace cxr::models
