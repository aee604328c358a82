// Optimizers with the update rules of torch.optim (SGD, Adam, AdamW), on plain leaf tensors:
// parameters are grouped (torch's param_groups) with per-group learning rate and weight decay,
// every update runs under NoGradGuard as one fused in-place pass over each parameter, and the
// state (moment buffers, step counts, group hyper-parameters) saves to and restores from a
// name -> tensor map, so it goes into a safetensors checkpoint as it is.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

// Parameters sharing hyper-parameters. Schedulers change `lr` (and one-cycle `momentum`) between
// steps, exactly as torch schedulers edit param_groups.
struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 0.0;
  double weight_decay = 0.0;
  double momentum = 0.0;  // SGD: momentum; Adam/AdamW: beta1 (what a one-cycle schedule cycles)
};

// A group as given to an optimizer's constructor: unset fields take the optimizer's defaults.
struct ParamGroupOptions {
  std::vector<Tensor> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters whose grad is undefined are
  // skipped and keep their state (as torch). Throws if a gradient's shape or dtype differs from
  // its parameter's.
  void step();
  // Clears the gradients: undefined (torch's set_to_none=True, the default) or filled with zeros.
  void zero_grad(bool set_to_none = true);

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // "SGD", "Adam", "AdamW".
  virtual const char* type_name() const = 0;

  // "state.<i>.<name>" for each parameter i (numbered across groups in order) that has state,
  // e.g. "state.0.exp_avg", "state.0.step" (int64); "group.<g>.lr", ".weight_decay", ".momentum"
  // (float64 scalars) and ".size" (int64, the group's parameter count). Tensors are copies.
  std::map<std::string, Tensor> state_dict() const;
  // Restores a state_dict() of an optimizer of the same type over the same parameter shapes and
  // dtypes; throws naming the first missing, unexpected or mismatched key (and changes nothing).
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // Validates the groups (floating leaf tensors on any device, no parameter twice) and fills
  // unset options. Each parameter's state lives on its device.
  Optimizer(const char* op, std::vector<ParamGroupOptions> groups, double lr, double weight_decay,
            double momentum);
  // Updates one parameter in place with its gradient; `state` is the parameter's own state.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                      std::map<std::string, Tensor>& state) = 0;
  // Whether `name` is a per-parameter state entry of this optimizer; "step" entries are int64
  // scalars, all others have the parameter's shape and dtype.
  virtual bool is_state_name(const std::string& name) const = 0;
  // The entries a parameter's state must have once it has any.
  virtual std::vector<std::string> required_state_names() const = 0;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, Tensor>> state_;  // per parameter, in group order
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0 (as torch)
};

// torch.optim.SGD: g += wd·p; b = g on the first step, else b = μ·b + (1 − dampening)·g;
// g = g + μ·b (Nesterov) or b; p −= lr·g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroupOptions> groups, const SGDOptions& options = {});
  SGD(const std::vector<Tensor>& params, const SGDOptions& options = {});
  const char* type_name() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

 protected:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              std::map<std::string, Tensor>& state) override;
  bool is_state_name(const std::string& name) const override;
  std::vector<std::string> required_state_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// torch.optim.Adam (Kingma & Ba 2015, Algorithm 1 with torch's eps placement):
// t += 1; g += wd·p; m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²; (AMSGrad: v̂ = max(v̂, v));
// p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroupOptions> groups, const AdamOptions& options = {});
  Adam(const std::vector<Tensor>& params, const AdamOptions& options = {});
  const char* type_name() const override { return "Adam"; }
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(const char* op, std::vector<ParamGroupOptions> groups, const AdamOptions& options,
       bool decoupled_weight_decay);
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              std::map<std::string, Tensor>& state) override;
  bool is_state_name(const std::string& name) const override;
  // max_exp_avg_sq may be absent (a state saved without AMSGrad): it then starts at zero.
  std::vector<std::string> required_state_names() const override {
    return {"step", "exp_avg", "exp_avg_sq"};
  }

 private:
  AdamOptions options_;
  bool decoupled_;
};

// torch.optim.AdamW (Loshchilov & Hutter 2019): Adam whose weight decay is decoupled from the
// gradient, p *= 1 − lr·wd before the Adam update. Default weight decay 1e-2, as torch.
class AdamW : public Adam {
 public:
  static AdamOptions default_options() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
  }
  AdamW(std::vector<ParamGroupOptions> groups, const AdamOptions& options = default_options());
  AdamW(const std::vector<Tensor>& params, const AdamOptions& options = default_options());
  const char* type_name() const override { return "AdamW"; }
};

}  // namespace cxr::nn
