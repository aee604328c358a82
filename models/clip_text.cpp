// The CLIP text encoder (see clip_text.h; transformers models/clip/modeling_clip.py:
// CLIPTextEmbeddings, CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPTextTransformer).
#include "models/clip_text.h"

#include <cmath>

#include "autograd/elementwise.h"
#include "autograd/indexing.h"
#include "autograd/nn_ops.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::models {

namespace {

bool known_activation(const std::string& act) {
  return act == "quick_gelu" || act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh";
}

void check_config(const ClipTextConfig& c) {
  CXR_CHECK(
      c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 &&
          c.num_hidden_layers >= 0 && c.num_attention_heads > 0 && c.max_position_embeddings > 0,
      "CLIPTextModel: vocab_size, hidden_size, intermediate_size, num_attention_heads and ",
      "max_position_embeddings must be > 0 and num_hidden_layers >= 0, got vocab_size=",
      c.vocab_size, ", hidden_size=", c.hidden_size, ", intermediate_size=", c.intermediate_size,
      ", num_hidden_layers=", c.num_hidden_layers, ", num_attention_heads=", c.num_attention_heads,
      ", max_position_embeddings=", c.max_position_embeddings);
  CXR_CHECK(c.hidden_size % c.num_attention_heads == 0, "CLIPTextModel: hidden_size ",
            c.hidden_size, " must be divisible by num_attention_heads ", c.num_attention_heads);
  CXR_CHECK(known_activation(c.hidden_act), "CLIPTextModel: hidden_act '", c.hidden_act,
            "' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
}

void init_linear(nn::Linear& l, double std, Generator& gen) {
  nn::init::normal(l.weight, 0.0, std, gen);
  if (l.bias.defined()) nn::init::zeros(l.bias);
}

}  // namespace

// ---- config ----

ClipTextConfig ClipTextConfig::read(JsonConfig& j) {
  ClipTextConfig c;
  c.vocab_size = j.get_int("vocab_size", c.vocab_size);
  c.hidden_size = j.get_int("hidden_size", c.hidden_size);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = j.get_int("max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = j.get_string("hidden_act", c.hidden_act);
  c.layer_norm_eps = j.get_double("layer_norm_eps", c.layer_norm_eps);
  c.eos_token_id = j.get_int("eos_token_id", c.eos_token_id);
  c.bos_token_id = j.get_int("bos_token_id", c.bos_token_id);
  c.pad_token_id = j.get_int("pad_token_id", c.pad_token_id);
  c.initializer_factor = j.get_double("initializer_factor", c.initializer_factor);
  // Keys of transformers' config.json without effect on CLIPTextModel here.
  j.ignore({"_*", "architectures", "model_type", "torch_dtype", "dtype", "transformers_version",
            "projection_dim", "attention_dropout", "dropout", "initializer_range"});
  try {
    check_config(c);
  } catch (const Error& e) {
    CXR_FAIL(j.source(), ": ", e.what());
  }
  return c;
}

ClipTextConfig ClipTextConfig::from_json(JsonConfig j) {
  const ClipTextConfig c = read(j);
  j.check_all_used();
  return c;
}

ClipTextConfig ClipTextConfig::from_file(const std::string& path) {
  return from_json(JsonConfig::from_file(path));
}

nlohmann::json ClipTextConfig::to_json() const {
  return {{"architectures", {"CLIPTextModel"}},
          {"model_type", "clip_text_model"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"hidden_act", hidden_act},
          {"layer_norm_eps", layer_norm_eps},
          {"eos_token_id", eos_token_id},
          {"bos_token_id", bos_token_id},
          {"pad_token_id", pad_token_id},
          {"initializer_factor", initializer_factor},
          {"attention_dropout", 0.0},
          {"dropout", 0.0}};
}

// ---- layers ----

ClipAttention::ClipAttention(int64_t hidden, int64_t heads)
    : nn::Module("CLIPAttention"), hidden_size(hidden), num_heads(heads), head_dim(hidden / heads) {
  // transformers' registration order: k, v, q, out.
  k_proj = register_module("k_proj", std::make_shared<nn::Linear>(hidden, hidden));
  v_proj = register_module("v_proj", std::make_shared<nn::Linear>(hidden, hidden));
  q_proj = register_module("q_proj", std::make_shared<nn::Linear>(hidden, hidden));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(hidden, hidden));
}

Tensor ClipAttention::forward(const Tensor& x, const Tensor& keep) {
  CXR_CHECK(x.dim() == 3 && x.size(2) == hidden_size, "CLIPAttention: expected x [B, L, ",
            hidden_size, "], got ", shape_str(x.shape()));
  const int64_t b = x.size(0), l = x.size(1);
  // [B, L, D] -> [B, heads, L, head_dim] (q.view(B, L, heads, head_dim).transpose(1, 2)).
  auto heads = [&](const Tensor& t) {
    return transpose(view(t, {b, l, num_heads, head_dim}), 1, 2);
  };
  const Tensor q = heads(q_proj->forward(x));
  const Tensor k = heads(k_proj->forward(x));
  const Tensor v = heads(v_proj->forward(x));
  const Tensor o = scaled_dot_product_attention(q, k, v, keep, /*causal=*/true,
                                                1.0 / std::sqrt(double(head_dim)));
  return out_proj->forward(reshape(transpose(o, 1, 2), {b, l, hidden_size}));
}

ClipMlp::ClipMlp(int64_t hidden, int64_t intermediate, std::string act)
    : nn::Module("CLIPMLP"), hidden_act(std::move(act)) {
  CXR_CHECK(known_activation(hidden_act), "CLIPMLP: hidden_act '", hidden_act,
            "' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(hidden, intermediate));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(intermediate, hidden));
}

Tensor ClipMlp::forward(const Tensor& x) {
  const Tensor h = fc1->forward(x);
  // transformers ACT2FN: quick_gelu = x sigmoid(1.702 x); gelu = erf form; gelu_new and
  // gelu_pytorch_tanh = tanh approximation.
  const Tensor a = hidden_act == "quick_gelu" ? quick_gelu(h) : gelu(h, hidden_act != "gelu");
  return fc2->forward(a);
}

ClipEncoderLayer::ClipEncoderLayer(const ClipTextConfig& c) : nn::Module("CLIPEncoderLayer") {
  self_attn = register_module(
      "self_attn", std::make_shared<ClipAttention>(c.hidden_size, c.num_attention_heads));
  layer_norm1 = register_module(
      "layer_norm1", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  mlp = register_module(
      "mlp", std::make_shared<ClipMlp>(c.hidden_size, c.intermediate_size, c.hidden_act));
  layer_norm2 = register_module(
      "layer_norm2", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
}

Tensor ClipEncoderLayer::forward(const Tensor& x, const Tensor& keep) {
  const Tensor h = add(x, self_attn->forward(layer_norm1->forward(x), keep));
  return add(h, mlp->forward(layer_norm2->forward(h)));
}

// ---- the model ----

namespace {
ClipTextConfig checked(const ClipTextConfig& c) {
  check_config(c);
  return c;
}
}  // namespace

ClipTextModel::ClipTextModel(const ClipTextConfig& c)
    : nn::Module("CLIPTextModel"), config(checked(c)) {
  text_model_ = register_module("text_model", std::make_shared<nn::Module>("CLIPTextTransformer"));
  auto embeddings = text_model_->register_module(
      "embeddings", std::make_shared<nn::Module>("CLIPTextEmbeddings"));
  token_embedding = embeddings->register_module(
      "token_embedding", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size));
  position_embedding = embeddings->register_module(
      "position_embedding",
      std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
  auto encoder =
      text_model_->register_module("encoder", std::make_shared<nn::Module>("CLIPEncoder"));
  layers = encoder->register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers->push_back(std::make_shared<ClipEncoderLayer>(c));
  final_layer_norm = text_model_->register_module(
      "final_layer_norm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  init_weights();
}

void ClipTextModel::init_weights(Generator& gen) {
  const double f = config.initializer_factor;
  const double d = double(config.hidden_size);
  const double depth = std::pow(2.0 * double(config.num_hidden_layers), -0.5);
  nn::init::normal(token_embedding->weight, 0.0, 0.02 * f, gen);
  nn::init::normal(position_embedding->weight, 0.0, 0.02 * f, gen);
  auto reset_norm = [](nn::LayerNorm& n) {
    nn::init::ones(n.weight);
    nn::init::zeros(n.bias);
  };
  for (size_t i = 0; i < layers->size(); ++i) {
    auto layer = layers->at<ClipEncoderLayer>(i);
    const double in_std = std::pow(d, -0.5) * depth * f;
    for (auto* proj : {layer->self_attn->q_proj.get(), layer->self_attn->k_proj.get(),
                       layer->self_attn->v_proj.get()})
      init_linear(*proj, in_std, gen);
    init_linear(*layer->self_attn->out_proj, std::pow(d, -0.5) * f, gen);
    init_linear(*layer->mlp->fc1, std::pow(2.0 * d, -0.5) * f, gen);
    init_linear(*layer->mlp->fc2, in_std, gen);
    reset_norm(*layer->layer_norm1);
    reset_norm(*layer->layer_norm2);
  }
  reset_norm(*final_layer_norm);
}

ClipTextOutput ClipTextModel::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                      bool output_hidden_states) {
  CXR_CHECK(input_ids.defined() && input_ids.dim() == 2 &&
                (input_ids.dtype() == kInt64 || input_ids.dtype() == kInt32),
            "CLIPTextModel: expected input_ids int64 [batch, length], got ",
            input_ids.defined()
                ? shape_str(input_ids.shape()) + " " + std::string(dtype_name(input_ids.dtype()))
                : std::string("undefined"));
  const int64_t b = input_ids.size(0), l = input_ids.size(1);
  CXR_CHECK(l >= 1 && l <= config.max_position_embeddings, "CLIPTextModel: sequence length ", l,
            " must be in [1, max_position_embeddings = ", config.max_position_embeddings, "]");
  const std::vector<int64_t> ids = raw::to(input_ids, kInt64).to_vector<int64_t>();
  for (int64_t id : ids)
    CXR_CHECK(id >= 0 && id < config.vocab_size, "CLIPTextModel: token id ", id,
              " is outside the vocabulary [0, ", config.vocab_size, ")");

  Tensor keep;  // bool [B, 1, 1, L]: the keys attention_mask allows
  if (attention_mask.defined()) {
    CXR_CHECK(attention_mask.shape() == input_ids.shape(), "CLIPTextModel: attention_mask ",
              shape_str(attention_mask.shape()), " must have the shape of input_ids ",
              shape_str(input_ids.shape()));
    std::vector<int64_t> allowed;
    for (double m : raw::to(attention_mask, kFloat64).to_vector<double>())
      allowed.push_back(m != 0.0);
    keep = raw::to(raw::to(raw::from_vector(allowed, {b, 1, 1, l}, kInt64), kBool),
                   token_embedding->weight.device());
  }

  // CLIPTextEmbeddings: token_embedding(ids) + position_embedding(0..L-1).
  const Tensor ids_dev = raw::to(raw::to(input_ids, kInt64), token_embedding->weight.device());
  const Tensor positions =
      raw::to(raw::arange(0, l, 1, kInt64), position_embedding->weight.device());
  Tensor x = add(token_embedding->forward(ids_dev), position_embedding->forward(positions));

  ClipTextOutput out;
  if (output_hidden_states) out.hidden_states.push_back(x);
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->at<ClipEncoderLayer>(i)->forward(x, keep);
    if (output_hidden_states) out.hidden_states.push_back(x);
  }
  out.last_hidden_state = final_layer_norm->forward(x);

  // Pooling rows (CLIPTextTransformer.forward): argmax of the ids for the legacy eos_token_id 2,
  // else the first position holding eos_token_id; the first such position on ties.
  std::vector<int64_t> rows(size_t(b), 0);
  for (int64_t r = 0; r < b; ++r) {
    const int64_t* row = ids.data() + r * l;
    int64_t pos = 0;
    for (int64_t j = 0; j < l; ++j) {
      if (config.eos_token_id == 2 ? row[j] > row[pos] : row[j] == config.eos_token_id) {
        pos = j;
        if (config.eos_token_id != 2) break;
      }
    }
    rows[size_t(r)] = r * l + pos;
  }
  const Tensor index = raw::to(raw::from_vector(rows, {b}, kInt64), x.device());
  out.pooler_output =
      index_select(reshape(out.last_hidden_state, {b * l, config.hidden_size}), 0, index);
  return out;
}

Tensor ClipTextModel::forward(const Tensor& input_ids) {
  return forward(input_ids, {}).last_hidden_state;
}

nn::StateDict ClipTextModel::checkpoint_state_dict(const nn::StateDict& dict) {
  const std::string prefix = "text_model.";
  auto starts = [](const std::string& key, const char* p) { return key.rfind(p, 0) == 0; };
  nn::StateDict out;
  for (const auto& [key, t] : dict) {
    // The text tower's own keys as transformers 5 saves them get the prefix back.
    const bool bare =
        starts(key, "embeddings.") || starts(key, "encoder.") || starts(key, "final_layer_norm.");
    const std::string name = bare ? prefix + key : key;
    // transformers' CLIPTextEmbeddings.position_ids: persistent before 4.31, arange(77) anyway.
    if (name == prefix + "embeddings.position_ids") continue;
    out[name] = t;
  }
  return out;
}

namespace {

// CLIPTextModel over named tensors for the registry.
class RunnableClipText : public RunnableModel {
 public:
  explicit RunnableClipText(const ClipTextConfig& config)
      : model_(std::make_shared<ClipTextModel>(config)) {}
  nn::Module& module() override { return *model_; }
  TensorMap forward(const TensorMap& inputs) override {
    const auto mask = inputs.find("attention_mask");
    const ClipTextOutput out =
        model_->forward(inputs.at("input_ids"), mask == inputs.end() ? Tensor() : mask->second);
    return {{"last_hidden_state", out.last_hidden_state}, {"pooler_output", out.pooler_output}};
  }

 private:
  std::shared_ptr<ClipTextModel> model_;
};

}  // namespace

ModelEntry clip_text_registry_entry() {
  ModelEntry e;
  e.name = "clip_text";
  e.summary = "transformers CLIPTextModel (SD1.x text encoder): token ids -> hidden states";
  e.config_keys = {
      "vocab_size: int = 49408",
      "hidden_size: int = 768",
      "intermediate_size: int = 3072",
      "num_hidden_layers: int = 12",
      "num_attention_heads: int = 12",
      "max_position_embeddings: int = 77",
      "hidden_act: string = \"quick_gelu\"  quick_gelu | gelu | gelu_new | gelu_pytorch_tanh",
      "layer_norm_eps: float = 1e-5",
      "eos_token_id: int = 2  2: pool at the largest id; else at the first eos_token_id",
      "bos_token_id: int = 0, pad_token_id: int = 1  (recorded only)",
      "initializer_factor: float = 1.0  init scale",
      "(accepted, no effect: architectures, model_type, projection_dim, dropout, "
      "attention_dropout, initializer_range, torch_dtype, transformers_version, _*)"};
  e.inputs = {{"input_ids", "int64 [N, L], L <= max_position_embeddings (77)"}};
  e.optional_inputs = {{"attention_mask", "[N, L]: 1 = token, 0 = padding (SD passes none)"}};
  e.outputs = {{"last_hidden_state", "float32 [N, L, hidden_size] (SD's encoder_hidden_states)"},
               {"pooler_output", "float32 [N, hidden_size]: the EOS position's state"}};
  e.build = [](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    return std::make_unique<RunnableClipText>(ClipTextConfig::read(c));
  };
  return e;
}

}  // namespace cxr::models
