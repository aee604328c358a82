// The CLIP text encoder as transformers' CLIPTextModel (transformers 5,
// models/clip/modeling_clip.py): the text tower of OpenAI CLIP ViT-L/14, Stable Diffusion 1.x's
// text_encoder/ (spec/diffusion.md §3). Token + position embeddings, pre-LN transformer layers with
// causal self-attention (q/k/v/out projections with bias, scale head_dim^-0.5) and an MLP (fc1,
// activation, fc2), then the final layer norm. last_hidden_state is SD's encoder_hidden_states;
// pooler_output is the final hidden state at the EOS position.
//
// The state dict is transformers' ("text_model.embeddings.token_embedding.weight",
// "text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.final_layer_norm.bias", ...):
// with the default (SD1.x) configuration 196 tensors, 123,060,480 parameters. Older checkpoints'
// buffer "text_model.embeddings.position_ids" is not part of it, and transformers 5 saves the keys
// without "text_model.": checkpoint_state_dict() maps both. Dropout settings (attention_dropout,
// dropout) are read but not applied: CLIPTextModel's uses are inference and fine-tuning with 0.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "models/registry.h"  // ModelEntry
#include "nn/nn.h"

namespace cxr::models {

// transformers' CLIPTextConfig keys; the defaults are openai/clip-vit-large-patch14's text config.
struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";  // quick_gelu, gelu (erf), gelu_new / gelu_pytorch_tanh
  double layer_norm_eps = 1e-5;
  // Pooling: 2 (the legacy value of SD1.x's config) takes the position of the largest token id
  // (EOS 49407 is the largest); any other value the first position holding eos_token_id
  // (position 0 when a row has none), as CLIPTextTransformer.forward.
  int64_t eos_token_id = 2;
  int64_t bos_token_id = 0;
  int64_t pad_token_id = 1;
  double initializer_factor = 1.0;  // scales the init standard deviations (init_weights)

  // Reads the keys of a transformers CLIPTextConfig config.json from `config`, marking those
  // without effect here (architectures, projection_dim, dropout, ...) as read; unknown keys are
  // left for the caller's check_all_used (as the model registry does).
  static ClipTextConfig read(JsonConfig& config);
  // read() followed by check_all_used(): unknown keys throw, naming them.
  static ClipTextConfig from_json(JsonConfig config);
  static ClipTextConfig from_file(const std::string& path);
  // The config.json transformers writes for this configuration (model_type "clip_text_model").
  nlohmann::json to_json() const;
};

class ClipAttention : public nn::Module {
 public:
  ClipAttention(int64_t hidden_size, int64_t num_heads);
  // x [B, L, D]; keep (optional) bool [B, 1, 1, L]: false masks a key. Causal.
  Tensor forward(const Tensor& x, const Tensor& keep);
  Tensor forward(const Tensor& x) override { return forward(x, {}); }

  const int64_t hidden_size, num_heads, head_dim;
  std::shared_ptr<nn::Linear> k_proj, v_proj, q_proj, out_proj;
};

class ClipMlp : public nn::Module {
 public:
  ClipMlp(int64_t hidden_size, int64_t intermediate_size, std::string hidden_act);
  Tensor forward(const Tensor& x) override;

  const std::string hidden_act;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// Pre-LN block: x + self_attn(layer_norm1(x)), then x + mlp(layer_norm2(x)).
class ClipEncoderLayer : public nn::Module {
 public:
  explicit ClipEncoderLayer(const ClipTextConfig& config);
  Tensor forward(const Tensor& x, const Tensor& keep);
  Tensor forward(const Tensor& x) override { return forward(x, {}); }

  std::shared_ptr<ClipAttention> self_attn;
  std::shared_ptr<nn::LayerNorm> layer_norm1;
  std::shared_ptr<ClipMlp> mlp;
  std::shared_ptr<nn::LayerNorm> layer_norm2;
};

struct ClipTextOutput {
  Tensor last_hidden_state;           // [B, L, hidden_size], after final_layer_norm
  Tensor pooler_output;               // [B, hidden_size]
  std::vector<Tensor> hidden_states;  // when asked: the embeddings, then each layer's output
};

// CLIPTextModel: one child "text_model" (CLIPTextTransformer) holding "embeddings"
// (token_embedding, position_embedding), "encoder.layers.<i>" and "final_layer_norm".
class ClipTextModel : public nn::Module {
 public:
  explicit ClipTextModel(const ClipTextConfig& config = {});
  // transformers' _init_weights for CLIP: embeddings N(0, 0.02 f), q/k/v N(0, D^-0.5 (2
  // layers)^-0.5 f), out_proj N(0, D^-0.5 f), fc1 N(0, (2 D)^-0.5 f), fc2 like q/k/v, biases 0,
  // layer norms 1/0 (f = initializer_factor), drawn from `gen`.
  void init_weights(Generator& gen = default_generator());

  // input_ids: int64 (or int32) [B, L] with L <= max_position_embeddings. attention_mask
  // (optional) [B, L]: 1 for tokens, 0 for padding keys, combined with the causal mask (SD passes
  // none). output_hidden_states also returns every layer's input/output (SD's clip_skip takes
  // hidden_states[-(k + 1)] and applies final_layer_norm).
  ClipTextOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                         bool output_hidden_states = false);
  // last_hidden_state of forward(input_ids, {}).
  Tensor forward(const Tensor& input_ids) override;

  // A text-encoder checkpoint's state dict in this module's names: keys saved by transformers 5
  // (no "text_model." level: "embeddings.token_embedding.weight") get the prefix back, and the
  // position_ids buffer of checkpoints saved before transformers 4.31 is dropped. Other keys are
  // kept as they are, for load_state_dict to report.
  static nn::StateDict checkpoint_state_dict(const nn::StateDict& dict);

  const ClipTextConfig config;
  nn::Module& text_model() { return *text_model_; }
  std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> final_layer_norm;

 private:
  std::shared_ptr<nn::Module> text_model_;
};

// The model registry's entry "clip_text" (models/registry.h): the config is the reference's
// config.json; input_ids (int64 [N, L]) and optional attention_mask -> last_hidden_state,
// pooler_output.
ModelEntry clip_text_registry_entry();

}  // namespace cxr::models
