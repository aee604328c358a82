// SGD, Adam and AdamW. Each update follows the operation order of torch.optim's single-tensor
// implementations (torch/optim/sgd.py _single_tensor_sgd, adam.py _single_tensor_adam), with
// scalars rounded to the parameter's compute type as ATen does, so results agree with torch to a
// few ulps. The per-element math is tensor/optim_math.h: the whole update of one parameter is one
// fused pass (raw::sgd_update_ / raw::adam_update_) on the parameter's device, cpu or cuda.
#include "nn/optim.h"

#include <charconv>  // std::from_chars for state keys
#include <set>
#include <string_view>

#include "autograd/grad_mode.h"  // NoGradGuard
#include "tensor/creation.h"
#include "tensor/optim_ops.h"

namespace cxr::nn {

namespace {

Tensor scalar_f64(double v) {
  return raw::scalar_tensor(v, kFloat64);
}
Tensor scalar_i64(int64_t v) {
  return raw::scalar_tensor(double(v), kInt64);
}

// Parses a non-negative decimal index occupying all of `s`.
std::optional<size_t> parse_index(std::string_view s) {
  size_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Optimizer::Optimizer(const char* op, std::vector<ParamGroupOptions> groups, double lr,
                     double weight_decay, double momentum) {
  CXR_CHECK(lr >= 0.0, op, ": learning rate must be >= 0, got ", lr);
  CXR_CHECK(weight_decay >= 0.0, op, ": weight_decay must be >= 0, got ", weight_decay);
  std::set<const TensorImpl*> seen;
  size_t count = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup group;
    group.lr = groups[g].lr.value_or(lr);
    group.weight_decay = groups[g].weight_decay.value_or(weight_decay);
    group.momentum = momentum;
    CXR_CHECK(group.lr >= 0.0, op, ": group ", g, " has learning rate ", group.lr,
              "; expected >= 0");
    CXR_CHECK(group.weight_decay >= 0.0, op, ": group ", g, " has weight_decay ",
              group.weight_decay, "; expected >= 0");
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      const Tensor& p = groups[g].params[i];
      CXR_CHECK(p.defined(), op, ": parameter ", i, " of group ", g, " is undefined");
      CXR_CHECK(is_floating(p.dtype()), op, ": parameter ", i, " of group ", g, " is ", describe(p),
                "; only floating tensors can be optimized");
      CXR_CHECK(p.is_leaf(), op, ": parameter ", i, " of group ", g,
                " is not a leaf tensor (it was computed by a differentiable op)");
      CXR_CHECK(seen.insert(p.unsafe_impl()).second, op, ": parameter ", i, " of group ", g,
                " appears more than once");
      group.params.push_back(p);
    }
    count += group.params.size();
    groups_.push_back(std::move(group));
  }
  CXR_CHECK(count > 0, op, ": got an empty parameter list");
  state_.resize(count);
}

void Optimizer::step() {
  autograd::NoGradGuard no_grad;
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) {
      auto& state = state_[index++];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      CXR_CHECK(grad.sizes() == p.sizes() && grad.dtype() == p.dtype(), type_name(),
                ".step: parameter ", index - 1, " is ", describe(p), " but its gradient is ",
                describe(grad));
      CXR_CHECK(grad.device() == p.device(), type_name(), ".step: parameter ", index - 1, " is on ",
                p.device().str(), " but its gradient on ", grad.device().str());
      update(group, p, grad, state);
      p.storage()->bump_version();
    }
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (set_to_none)
        p.set_grad(Tensor());
      else
        raw::fill_(g, 0.0);
    }
  }
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "group." + std::to_string(g) + ".";
    out[prefix + "lr"] = scalar_f64(groups_[g].lr);
    out[prefix + "weight_decay"] = scalar_f64(groups_[g].weight_decay);
    out[prefix + "momentum"] = scalar_f64(groups_[g].momentum);
    out[prefix + "size"] = scalar_i64(int64_t(groups_[g].params.size()));
  }
  for (size_t i = 0; i < state_.size(); ++i)
    for (const auto& [name, t] : state_[i])
      out["state." + std::to_string(i) + "." + name] = raw::clone(t);
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const char* op = type_name();
  std::vector<const Tensor*> params;
  for (const ParamGroup& group : groups_)
    for (const Tensor& p : group.params) params.push_back(&p);

  // Build everything first and commit at the end, so a bad state changes nothing.
  std::vector<ParamGroup> groups = groups_;
  std::vector<std::set<std::string>> group_fields(groups.size());
  std::vector<std::map<std::string, Tensor>> new_state(params.size());
  for (const auto& [key, t] : state) {
    CXR_CHECK(t.defined(), op, ".load_state_dict: entry '", key, "' is undefined");
    const size_t dot1 = key.find('.');
    const size_t dot2 = dot1 == std::string::npos ? dot1 : key.find('.', dot1 + 1);
    CXR_CHECK(dot2 != std::string::npos, op, ".load_state_dict: unexpected key '", key, "'");
    const std::string kind = key.substr(0, dot1);
    const auto index = parse_index(std::string_view(key).substr(dot1 + 1, dot2 - dot1 - 1));
    const std::string name = key.substr(dot2 + 1);
    if (kind == "group") {
      CXR_CHECK(index && *index < groups.size(), op, ".load_state_dict: key '", key,
                "' names group ", key.substr(dot1 + 1, dot2 - dot1 - 1), " but the optimizer has ",
                groups.size(), " groups");
      CXR_CHECK(t.numel() == 1, op, ".load_state_dict: '", key, "' must be a scalar, got ",
                describe(t));
      ParamGroup& group = groups[*index];
      const double v = t.item();
      if (name == "lr")
        group.lr = v;
      else if (name == "weight_decay")
        group.weight_decay = v;
      else if (name == "momentum")
        group.momentum = v;
      else if (name == "size")
        CXR_CHECK(v == double(group.params.size()), op, ".load_state_dict: group ", *index,
                  " was saved with ", v, " parameters but has ", group.params.size());
      else
        CXR_FAIL(op, ".load_state_dict: unexpected key '", key, "'");
      group_fields[*index].insert(name);
    } else if (kind == "state") {
      CXR_CHECK(index && *index < params.size(), op, ".load_state_dict: key '", key,
                "' names parameter ", key.substr(dot1 + 1, dot2 - dot1 - 1),
                " but the optimizer has ", params.size(), " parameters");
      CXR_CHECK(is_state_name(name), op, ".load_state_dict: unexpected key '", key, "' (no ", op,
                " state called '", name, "')");
      const Tensor& p = *params[*index];
      if (name == "step") {
        CXR_CHECK(t.numel() == 1 && t.dtype() == kInt64, op, ".load_state_dict: '", key,
                  "' must be an int64 scalar, got ", describe(t));
        new_state[*index][name] = scalar_i64(int64_t(t.item()));
      } else {
        CXR_CHECK(t.sizes() == p.sizes() && t.dtype() == p.dtype(), op, ".load_state_dict: '", key,
                  "' is ", describe(t), " but parameter ", *index, " is ", describe(p));
        // A copy on the parameter's device (a checkpoint is loaded on the cpu).
        Tensor copy = raw::empty_like(p);
        raw::copy_(copy, t);
        new_state[*index][name] = copy;
      }
    } else {
      CXR_FAIL(op, ".load_state_dict: unexpected key '", key, "'");
    }
  }
  for (size_t i = 0; i < new_state.size(); ++i) {
    if (new_state[i].empty()) continue;
    for (const std::string& name : required_state_names())
      CXR_CHECK(new_state[i].count(name), op, ".load_state_dict: missing key 'state.", i, ".", name,
                "' (parameter ", i, " has other state entries)");
  }
  for (size_t g = 0; g < groups.size(); ++g)
    for (const char* field : {"lr", "weight_decay", "momentum", "size"})
      CXR_CHECK(group_fields[g].count(field), op, ".load_state_dict: missing key 'group.", g, ".",
                field, "'");
  groups_ = std::move(groups);
  state_ = std::move(new_state);
}

// ---- SGD ----

SGD::SGD(std::vector<ParamGroupOptions> groups, const SGDOptions& options)
    : Optimizer("SGD", std::move(groups), options.lr, options.weight_decay, options.momentum),
      options_(options) {
  CXR_CHECK(options.momentum >= 0.0, "SGD: momentum must be >= 0, got ", options.momentum);
  CXR_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
            "SGD: Nesterov momentum needs momentum > 0 and dampening == 0 (got momentum ",
            options.momentum, ", dampening ", options.dampening, ")");
}

SGD::SGD(const std::vector<Tensor>& params, const SGDOptions& options)
    : SGD(std::vector<ParamGroupOptions>{{params, std::nullopt, std::nullopt}}, options) {}

bool SGD::is_state_name(const std::string& name) const {
  return name == "momentum_buffer";
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                 std::map<std::string, Tensor>& state) {
  const raw::SgdParams p{group.lr, group.weight_decay, group.momentum, options_.dampening,
                         options_.nesterov};
  if (group.momentum == 0.0) return raw::sgd_update_(param, grad, Tensor(), p, false);
  auto it = state.find("momentum_buffer");
  const bool first = it == state.end();
  if (first) it = state.emplace("momentum_buffer", raw::empty_like(param)).first;
  raw::sgd_update_(param, grad, it->second, p, first);
}

// ---- Adam / AdamW ----

Adam::Adam(const char* op, std::vector<ParamGroupOptions> groups, const AdamOptions& options,
           bool decoupled_weight_decay)
    : Optimizer(op, std::move(groups), options.lr, options.weight_decay, options.beta1),
      options_(options),
      decoupled_(decoupled_weight_decay) {
  CXR_CHECK(
      options.beta1 >= 0.0 && options.beta1 < 1.0 && options.beta2 >= 0.0 && options.beta2 < 1.0,
      op, ": betas must lie in [0, 1), got (", options.beta1, ", ", options.beta2, ")");
  CXR_CHECK(options.eps >= 0.0, op, ": eps must be >= 0, got ", options.eps);
}

Adam::Adam(std::vector<ParamGroupOptions> groups, const AdamOptions& options)
    : Adam("Adam", std::move(groups), options, false) {}

Adam::Adam(const std::vector<Tensor>& params, const AdamOptions& options)
    : Adam(std::vector<ParamGroupOptions>{{params, std::nullopt, std::nullopt}}, options) {}

AdamW::AdamW(std::vector<ParamGroupOptions> groups, const AdamOptions& options)
    : Adam("AdamW", std::move(groups), options, true) {}

AdamW::AdamW(const std::vector<Tensor>& params, const AdamOptions& options)
    : AdamW(std::vector<ParamGroupOptions>{{params, std::nullopt, std::nullopt}}, options) {}

bool Adam::is_state_name(const std::string& name) const {
  return name == "step" || name == "exp_avg" || name == "exp_avg_sq" ||
         (options_.amsgrad && name == "max_exp_avg_sq");
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                  std::map<std::string, Tensor>& state) {
  if (!state.count("step")) {
    state["step"] = scalar_i64(0);
    state["exp_avg"] = raw::zeros_like(param);
    state["exp_avg_sq"] = raw::zeros_like(param);
    if (options_.amsgrad) state["max_exp_avg_sq"] = raw::zeros_like(param);
  }
  // A state restored from an optimizer without AMSGrad starts its running maximum at zero.
  if (options_.amsgrad && !state.count("max_exp_avg_sq"))
    state["max_exp_avg_sq"] = raw::zeros_like(param);
  // The step count stays a cpu int64 scalar whatever the parameter's device.
  int64_t& t = state["step"].data<int64_t>()[0];
  t += 1;
  const raw::AdamParams p{group.lr,           group.momentum, options_.beta2,  options_.eps,
                          group.weight_decay, decoupled_,     options_.amsgrad};
  raw::adam_update_(param, grad, state["exp_avg"], state["exp_avg_sq"],
                    options_.amsgrad ? state["max_exp_avg_sq"] : Tensor(), p, t);
}

}  // namespace cxr::nn
