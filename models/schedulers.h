// Diffusion noise schedulers as diffusers 0.42 (src/diffusers/schedulers/scheduling_ddpm.py,
// scheduling_ddim.py, scheduling_pndm.py, scheduling_euler_ancestral_discrete.py; facts in
// spec/diffusion.md §5): the shared training noise schedule (betas, alphas_cumprod, add_noise,
// get_velocity), the inference timestep spacings, and four samplers behind one interface, created
// by name or from a diffusers scheduler_config.json. Also classifier-free guidance.
//
// Timesteps are doubles: DDPM, DDIM and PNDM use integers, Euler ancestral with the "linspace"
// spacing uses fractional timesteps (float32 values, as diffusers passes them to the UNet).
// Schedulers work on raw tensors (no autograd) of any float dtype on the sample's device; the
// scalar coefficients are computed in double from the float32 schedule.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::models {

enum class SchedulerKind { DDPM, DDIM, PNDM, EulerAncestral };
// "ddpm", "ddim", "pndm", "euler_ancestral", or the diffusers class names ("DDPMScheduler", ...).
SchedulerKind scheduler_kind_from_name(const std::string& name);
const char* scheduler_name(SchedulerKind kind);  // "ddpm", ...

// The settings of a diffusers scheduler_config.json (same key names). The member defaults are SD
// v1.x's scheduler config (spec/diffusion.md §5.1, with its newer keys prediction_type "epsilon"
// and timestep_spacing "leading"); diffusers_defaults() gives a class's own constructor defaults,
// which fill the keys a JSON file leaves out.
struct SchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // "linear", "scaled_linear", "squaredcos_cap_v2"
  std::vector<double> trained_betas;            // non-empty: used instead of beta_schedule
  std::string prediction_type = "epsilon";      // "epsilon", "v_prediction", "sample"
  std::string timestep_spacing = "leading";     // "leading", "trailing", "linspace"
  int64_t steps_offset = 1;                     // added to "leading" timesteps
  bool clip_sample = false;                     // DDPM/DDIM: clamp x0 to +-clip_sample_range
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = false;  // DDIM/PNDM: alphas_cumprod "before" t = 0 is 1 (else ᾱ_0)
  bool skip_prk_steps = true;     // PNDM: only true (PLMS, as SD) is implemented
  std::string variance_type = "fixed_small";  // DDPM: "fixed_small" or "fixed_large"
  // DDIM's eta (not a config key in diffusers but an argument of step(); the pipeline's `eta`):
  // 0 is deterministic DDIM, 1 has DDPM's variance.
  double eta = 0.0;

  // The constructor defaults of the diffusers class (e.g. DDPMScheduler: linear 1e-4..0.02,
  // clip_sample true, steps_offset 0; EulerAncestralDiscreteScheduler: timestep_spacing
  // "linspace").
  static SchedulerConfig diffusers_defaults(SchedulerKind kind);
  // Reads a scheduler_config.json object over diffusers_defaults(kind), strictly: known keys of
  // other diffusers schedulers are accepted only with values that change nothing here (e.g.
  // thresholding false), unknown keys throw (JsonConfig::check_all_used).
  static SchedulerConfig from_json(JsonConfig& json, SchedulerKind kind);
  // The scheduler_config.json of diffusers' `kind` class with these settings (what from_json reads
  // back); eta is not a config key and is left out.
  nlohmann::json to_json(SchedulerKind kind) const;
};

// The forward process shared by all schedulers (identical code in diffusers' DDPM/DDIM/PNDM):
// betas in float32 as torch computes them, alphas_cumprod = cumprod(1 - betas) in float32.
class NoiseSchedule {
 public:
  explicit NoiseSchedule(const SchedulerConfig& config);

  int64_t num_train_timesteps() const { return int64_t(betas_.size()); }
  // float32 [num_train_timesteps].
  Tensor betas() const;
  Tensor alphas_cumprod() const;
  // ᾱ_t (checks 0 <= t < num_train_timesteps; `op` names the caller in the error).
  double alpha_cumprod(int64_t t, const char* op) const;
  const std::vector<float>& alphas_cumprod_values() const { return alphas_cumprod_; }

  // x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) noise, with t = timesteps[b] (int64 [B]) for sample b of
  // x0 [B, ...]; the result has x0's dtype and device.
  Tensor add_noise(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const;
  // The v-prediction target v = sqrt(ᾱ_t) noise - sqrt(1 - ᾱ_t) x0.
  Tensor get_velocity(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const;

 private:
  // a * x + b * y with per-sample a = f(ᾱ_t), b = g(ᾱ_t).
  Tensor combine(const char* op, const Tensor& x0, const Tensor& noise, const Tensor& timesteps,
                 bool velocity) const;

  std::vector<float> betas_;
  std::vector<float> alphas_cumprod_;
};

// The inference timesteps of `spacing` for n steps, in sampling order (descending), as diffusers'
// set_timesteps: "leading" (T//n)·i + steps_offset, "trailing" round(T - i·T/n) - 1, "linspace"
// linspace(0, T-1, n) rounded to integers, or as float32 values when round_linspace is false
// (Euler). Throws unless 1 <= n <= T.
std::vector<double> spaced_timesteps(const SchedulerConfig& config, int64_t n,
                                     bool round_linspace = true);

// The common interface. Typical loop:
//   s->set_timesteps(50); x = randn(...) * s->init_noise_sigma();
//   for (double t : s->timesteps()) x = s->step(unet(s->scale_model_input(x, t), t), t, x, &gen);
// step() may keep state (PNDM's history, Euler's step index): call it once per timestep, in order.
class Scheduler {
 public:
  Scheduler(SchedulerKind kind, const SchedulerConfig& config);
  virtual ~Scheduler() = default;

  SchedulerKind kind() const { return kind_; }
  const char* name() const { return scheduler_name(kind_); }
  const SchedulerConfig& config() const { return config_; }
  const NoiseSchedule& schedule() const { return schedule_; }

  // Prepares n inference steps (1 <= n <= num_train_timesteps) and resets any sampling state.
  virtual void set_timesteps(int64_t n);
  // The timesteps to visit, in order (empty before set_timesteps).
  const std::vector<double>& timesteps() const { return timesteps_; }
  int64_t num_inference_steps() const { return num_inference_steps_; }

  // The standard deviation of the initial latents (1 except for Euler).
  virtual double init_noise_sigma() const { return 1.0; }
  // The UNet input for `sample` at t (identity except for Euler).
  virtual Tensor scale_model_input(const Tensor& sample, double t);

  // One denoising step from t to the next timestep: the previous sample x_{t-1}. Noise (DDPM at
  // t > 0, DDIM with eta > 0, Euler ancestral) comes from `gen` (null: default_generator()).
  Tensor step(const Tensor& model_output, double t, const Tensor& sample, Generator* gen = nullptr);
  // The same with the noise given (sample's shape), e.g. to reproduce another implementation's
  // random draw; it is not used when the step adds no noise.
  Tensor step(const Tensor& model_output, double t, const Tensor& sample, const Tensor& noise);

 protected:
  // Where a step's noise comes from: a given tensor, or a draw from the generator.
  struct NoiseSource {
    const Tensor* given = nullptr;
    Generator* gen = nullptr;
    // Noise of `like`'s shape, dtype and device.
    Tensor draw(const Tensor& like) const;
  };
  virtual Tensor step_impl(const Tensor& model_output, double t, const Tensor& sample,
                           const NoiseSource& noise) = 0;
  // Throws unless set_timesteps was called and the shapes agree.
  void check_step(const Tensor& model_output, const Tensor& sample) const;
  // t as an integer timestep; throws unless it is one in [0, num_train_timesteps).
  int64_t integer_timestep(double t) const;
  // ᾱ of a previous timestep: ᾱ_prev_t, or `final_alpha` when prev_t < 0.
  double alpha_prev(int64_t prev_t, double final_alpha) const;

  SchedulerKind kind_;
  SchedulerConfig config_;
  NoiseSchedule schedule_;
  std::vector<double> timesteps_;
  int64_t num_inference_steps_ = 0;
};

// DDPM ancestral sampling (Ho et al. 2020; scheduling_ddpm.py), variance "fixed_small" or
// "fixed_large". The previous timestep is the next entry of timesteps().
class DDPMScheduler : public Scheduler {
 public:
  explicit DDPMScheduler(const SchedulerConfig& config);

 protected:
  Tensor step_impl(const Tensor& model_output, double t, const Tensor& sample,
                   const NoiseSource& noise) override;
};

// DDIM (Song et al. 2021; scheduling_ddim.py): prev_t = t - T//n, noise only when eta > 0.
class DDIMScheduler : public Scheduler {
 public:
  explicit DDIMScheduler(const SchedulerConfig& config);

 protected:
  Tensor step_impl(const Tensor& model_output, double t, const Tensor& sample,
                   const NoiseSource& noise) override;
};

// PNDM with skip_prk_steps (pure PLMS, SD's default; scheduling_pndm.py step_plms): n + 1 model
// calls, the second timestep repeats the first (spec/diffusion.md §5.6). Keeps the last four model
// outputs.
class PNDMScheduler : public Scheduler {
 public:
  explicit PNDMScheduler(const SchedulerConfig& config);
  void set_timesteps(int64_t n) override;

 protected:
  Tensor step_impl(const Tensor& model_output, double t, const Tensor& sample,
                   const NoiseSource& noise) override;

 private:
  std::vector<Tensor> ets_;  // the last (up to 4) model outputs, oldest first
  Tensor cur_sample_;        // the sample of the first call, reused by the second
  int64_t counter_ = 0;      // steps taken since set_timesteps
};

// Euler ancestral (k-diffusion's sample_euler_ancestral; scheduling_euler_ancestral_discrete.py):
// sigmas = sqrt((1 - ᾱ)/ᾱ) interpolated at the timesteps, then 0.
class EulerAncestralScheduler : public Scheduler {
 public:
  explicit EulerAncestralScheduler(const SchedulerConfig& config);
  void set_timesteps(int64_t n) override;
  double init_noise_sigma() const override;
  Tensor scale_model_input(const Tensor& sample, double t) override;
  // float32 sigmas, one per timestep and a final 0.
  const std::vector<float>& sigmas() const { return sigmas_; }

 protected:
  Tensor step_impl(const Tensor& model_output, double t, const Tensor& sample,
                   const NoiseSource& noise) override;

 private:
  // The index of t in timesteps() on first use (the second match when t occurs twice, as
  // diffusers), then the running step index.
  int64_t step_index(double t);

  std::vector<float> sigmas_;
  int64_t step_index_ = -1;  // -1: not started
};

// A scheduler of `kind` with `config`.
std::unique_ptr<Scheduler> make_scheduler(SchedulerKind kind,
                                          const SchedulerConfig& config = SchedulerConfig{});
// By name ("ddpm", "ddim", "pndm", "euler_ancestral" or a diffusers class name) with SD v1.x's
// config (the SchedulerConfig defaults).
std::unique_ptr<Scheduler> make_scheduler(const std::string& name);
// From a diffusers scheduler_config.json object: the class is `name` when given (as diffusers'
// XScheduler.from_config), else the file's "_class_name".
std::unique_ptr<Scheduler> make_scheduler(JsonConfig& json, const std::string& name = "");
std::unique_ptr<Scheduler> load_scheduler(const std::string& path, const std::string& name = "");

// Classifier-free guidance (pipeline_stable_diffusion.py): uncond + scale * (cond - uncond).
Tensor classifier_free_guidance(const Tensor& uncond, const Tensor& cond, double scale);
// The pipeline's optional guidance_rescale φ (rescale_noise_cfg, Lin et al. 2023 §3.4): with the
// per-sample standard deviations over all dims but the first (unbiased, as torch.std),
// φ · guided · std(cond)/std(guided) + (1 - φ) · guided. φ = 0 returns `guided`.
Tensor rescale_noise_cfg(const Tensor& guided, const Tensor& cond, double phi);

}  // namespace cxr::models
