// `cxr run-model`: runs any model of the registry (models/registry.h) on safetensors weights and
// named inputs and writes its named outputs — the tool for parity checks against the reference
// implementations and for users converting weights. With --grad-outputs it also back-propagates
// loss = sum_k <output_k, grad_k> and writes "grad.<input>" for every floating input and
// "grad.<parameter name>" for every parameter. In train mode the buffers after the forward pass
// (BatchNorm running statistics) are written as "buffer.<name>".
#include <memory>
#include <sstream>
#include <string>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "experiments/commands.h"
#include "models/registry.h"
#include "tensor/error.h"
#include "tensor/safetensors.h"

namespace cxr::experiments {

namespace {

struct RunModelOptions {
  std::string model, config, weights, inputs, out, mode = "eval", grad_outputs;
};

// Weights in, strictly: every expected key present with its shape, nothing extra.
void load_weights(nn::Module& module, const std::string& path, const std::string& model) {
  SafetensorsFile file = load_safetensors(path);
  nn::LoadReport report = module.load_state_dict(file.tensors, /*strict=*/false);
  CXR_CHECK(report.ok(), "run-model: weights '", path, "' do not match ", model, ": ",
            report.str());
}

void run_model(const RunModelOptions& o) {
  CXR_CHECK(o.mode == "eval" || o.mode == "train", "run-model: --mode must be eval or train, got '",
            o.mode, "'");
  const models::ModelEntry& entry = models::find_model(o.model);
  models::JsonConfig config =
      o.config.empty() ? models::JsonConfig(nlohmann::json::object(), o.model + " config")
                       : models::JsonConfig::from_file(o.config);
  std::unique_ptr<models::RunnableModel> model = models::build_model(o.model, std::move(config));
  nn::Module& module = model->module();
  load_weights(module, o.weights, o.model);
  module.train(o.mode == "train");

  models::TensorMap inputs = load_safetensors(o.inputs).tensors;
  models::check_inputs(entry, inputs);
  const bool backward = !o.grad_outputs.empty();
  models::TensorMap grads;
  if (backward) {
    grads = load_safetensors(o.grad_outputs).tensors;
    for (auto& [name, t] : inputs)
      if (is_floating(t.dtype())) t = clone(t).set_requires_grad(true);
  } else {
    module.requires_grad(false);
  }

  models::TensorMap outputs;
  {
    std::unique_ptr<autograd::NoGradGuard> no_grad;
    if (!backward) no_grad = std::make_unique<autograd::NoGradGuard>();
    outputs = model->forward(inputs);
  }
  models::TensorMap result;
  for (const auto& [name, t] : outputs) result[name] = detach(t);

  if (backward) {
    // loss = sum over the outputs given a gradient of <output, gradient>.
    Tensor loss;
    for (const auto& [name, g] : grads) {
      auto it = outputs.find(name);
      CXR_CHECK(
          it != outputs.end(), "run-model: --grad-outputs names '", name,
          "', which is not an output of ", o.model, " (outputs: ",
          [&] {
            std::string s;
            for (const auto& [n, t] : outputs) s += (s.empty() ? "" : ", ") + n;
            return s;
          }(),
          ")");
      CXR_CHECK(g.sizes() == it->second.sizes(), "run-model: gradient '", name, "' has shape ",
                shape_str(g.sizes()), ", the output has ", shape_str(it->second.sizes()));
      Tensor term = sum(mul(it->second, to(g, it->second.dtype())));
      loss = loss.defined() ? add(loss, term) : term;
    }
    CXR_CHECK(loss.defined(), "run-model: --grad-outputs file '", o.grad_outputs,
              "' holds no tensor");
    cxr::backward(loss);
    for (const auto& [name, t] : inputs)
      if (t.requires_grad() && t.grad().defined()) result["grad." + name] = t.grad();
    for (const auto& [name, p] : module.named_parameters())
      if (p.grad().defined()) result["grad." + name] = p.grad();
  }
  if (o.mode == "train")
    for (const auto& [name, b] : module.named_buffers()) result["buffer." + name] = b;
  save_safetensors(o.out, result, {{"model", o.model}, {"mode", o.mode}});
}

std::string models_help() {
  std::string s = "\nModels (config keys, input and output tensor names):\n";
  for (const auto& e : models::model_registry()) s += models::model_help(e);
  return s;
}

}  // namespace

Command register_run_model(CLI::App& app) {
  auto o = std::make_shared<RunModelOptions>();
  CLI::App* sub = app.add_subcommand(
      "run-model",
      "Run a model on safetensors weights and named inputs; write its outputs (and gradients)");
  sub->add_option("--model", o->model, "model name (see below)")->required();
  sub->add_option("--config", o->config,
                  "JSON file of the model's configuration keys (default: the reference defaults)");
  sub->add_option("--weights", o->weights, "safetensors state dict (reference names)")->required();
  sub->add_option("--inputs", o->inputs, "safetensors file of named inputs")->required();
  sub->add_option("--out", o->out, "safetensors file to write the outputs to")->required();
  sub->add_option("--mode", o->mode, "eval (default) or train (BatchNorm batch statistics)");
  sub->add_option("--grad-outputs", o->grad_outputs,
                  "safetensors file of gradients for (some of) the outputs: also write "
                  "grad.<input> and grad.<parameter>");
  sub->footer(models_help());
  return {sub, [o] { run_model(*o); }};
}

}  // namespace cxr::experiments
