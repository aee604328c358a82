// Diffusion schedulers (see schedulers.h). Formulas and quirks follow diffusers 0.42
// src/diffusers/schedulers/scheduling_{ddpm,ddim,pndm,euler_ancestral_discrete}.py.
#include "models/schedulers.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/ops.h"

namespace cxr::models {

namespace {

bool one_of(const std::string& value, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

void check_choice(const char* op, const char* key, const std::string& value,
                  const std::vector<std::string>& allowed) {
  CXR_CHECK(one_of(value, allowed), op, ": ", key, " \"", value, "\" is not supported (expected ",
            join(allowed), ")");
}

// a * x + b * y.
Tensor axpby(double a, const Tensor& x, double b, const Tensor& y) {
  return raw::add(raw::mul(x, a), raw::mul(y, b));
}

// torch.linspace(start, end, n, dtype=float32) on the CPU (ATen RangeFactoriesKernel.cpp): float
// arithmetic, the first half counted from start, the second from end.
std::vector<float> linspace_f32(double start_d, double end_d, int64_t n) {
  const float start = float(start_d), end = float(end_d);
  const float step = n > 1 ? (end - start) / float(n - 1) : 0.0f;
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[size_t(i)] = i < n / 2 ? start + step * float(i) : end - step * float(n - 1 - i);
  return out;
}

// betas_for_alpha_bar(T) with the cosine alpha_bar of "squaredcos_cap_v2" (Nichol & Dhariwal
// 2021), in double, max_beta 0.999, then float32.
std::vector<float> squaredcos_cap_v2(int64_t n) {
  auto alpha_bar = [](double t) {
    double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
    return c * c;
  };
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double t1 = double(i) / double(n), t2 = double(i + 1) / double(n);
    out[size_t(i)] = float(std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return out;
}

// The x0 and epsilon a model output stands for at ᾱ_t (diffusers' prediction_type branches).
Tensor predicted_x0(const std::string& type, const Tensor& out, const Tensor& x, double a_t) {
  const double sa = std::sqrt(a_t), sb = std::sqrt(1 - a_t);
  if (type == "epsilon") return raw::mul(raw::sub(x, raw::mul(out, sb)), 1.0 / sa);
  if (type == "v_prediction") return axpby(sa, x, -sb, out);
  return out;  // "sample"
}
Tensor predicted_eps(const std::string& type, const Tensor& out, const Tensor& x, double a_t) {
  const double sa = std::sqrt(a_t), sb = std::sqrt(1 - a_t);
  if (type == "epsilon") return out;
  if (type == "v_prediction") return axpby(sa, out, sb, x);
  return raw::mul(raw::sub(x, raw::mul(out, sa)), 1.0 / sb);  // "sample"
}

// Reads a bool that must keep its (neutral) default here.
void require_default_bool(JsonConfig& json, const std::string& key, bool neutral) {
  bool value = json.get_bool(key, neutral);
  CXR_CHECK(value == neutral, json.source(), ": ", key, " = ", value ? "true" : "false",
            " is not supported (only ", neutral ? "true" : "false", ")");
}

}  // namespace

// ---- names and configuration ---------------------------------------------------------------

SchedulerKind scheduler_kind_from_name(const std::string& name) {
  if (name == "ddpm" || name == "DDPMScheduler") return SchedulerKind::DDPM;
  if (name == "ddim" || name == "DDIMScheduler") return SchedulerKind::DDIM;
  if (name == "pndm" || name == "PNDMScheduler") return SchedulerKind::PNDM;
  if (name == "euler_ancestral" || name == "EulerAncestralDiscreteScheduler")
    return SchedulerKind::EulerAncestral;
  CXR_FAIL("scheduler: unknown scheduler \"", name,
           "\" (expected ddpm, ddim, pndm, euler_ancestral or the diffusers class names "
           "DDPMScheduler, DDIMScheduler, PNDMScheduler, EulerAncestralDiscreteScheduler)");
}

const char* scheduler_name(SchedulerKind kind) {
  switch (kind) {
    case SchedulerKind::DDPM:
      return "ddpm";
    case SchedulerKind::DDIM:
      return "ddim";
    case SchedulerKind::PNDM:
      return "pndm";
    case SchedulerKind::EulerAncestral:
      return "euler_ancestral";
  }
  return "?";
}

SchedulerConfig SchedulerConfig::diffusers_defaults(SchedulerKind kind) {
  // The __init__ defaults of the four diffusers classes.
  SchedulerConfig c;
  c.beta_start = 0.0001;
  c.beta_end = 0.02;
  c.beta_schedule = "linear";
  c.steps_offset = 0;
  c.clip_sample = kind == SchedulerKind::DDPM || kind == SchedulerKind::DDIM;
  c.set_alpha_to_one = kind == SchedulerKind::DDIM;
  c.skip_prk_steps = kind != SchedulerKind::PNDM;  // PNDMScheduler's default (false) is PRK
  c.timestep_spacing = kind == SchedulerKind::EulerAncestral ? "linspace" : "leading";
  return c;
}

SchedulerConfig SchedulerConfig::from_json(JsonConfig& json, SchedulerKind kind) {
  SchedulerConfig c = diffusers_defaults(kind);
  json.ignore({"_class_name", "_diffusers_version"});
  c.num_train_timesteps = json.get_int("num_train_timesteps", c.num_train_timesteps);
  c.beta_start = json.get_double("beta_start", c.beta_start);
  c.beta_end = json.get_double("beta_end", c.beta_end);
  c.beta_schedule = json.get_string("beta_schedule", c.beta_schedule);
  c.trained_betas = json.get_double_list("trained_betas", c.trained_betas);
  c.prediction_type = json.get_string("prediction_type", c.prediction_type);
  c.timestep_spacing = json.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = json.get_int("steps_offset", c.steps_offset);
  c.clip_sample = json.get_bool("clip_sample", c.clip_sample);
  c.clip_sample_range = json.get_double("clip_sample_range", c.clip_sample_range);
  c.set_alpha_to_one = json.get_bool("set_alpha_to_one", c.set_alpha_to_one);
  c.skip_prk_steps = json.get_bool("skip_prk_steps", c.skip_prk_steps);
  c.variance_type = json.get_string("variance_type", c.variance_type);
  // Options of diffusers that are not implemented: accepted at their neutral value only.
  require_default_bool(json, "thresholding", false);
  require_default_bool(json, "rescale_betas_zero_snr", false);
  require_default_bool(json, "use_karras_sigmas", false);
  // Settings of dynamic thresholding, which is off.
  json.ignore({"dynamic_thresholding_ratio", "sample_max_value"});
  json.check_all_used();
  return c;
}

nlohmann::json SchedulerConfig::to_json(SchedulerKind kind) const {
  const char* const class_names[] = {"DDPMScheduler", "DDIMScheduler", "PNDMScheduler",
                                     "EulerAncestralDiscreteScheduler"};
  nlohmann::json j = {{"_class_name", class_names[static_cast<int>(kind)]},
                      {"num_train_timesteps", num_train_timesteps},
                      {"beta_start", beta_start},
                      {"beta_end", beta_end},
                      {"beta_schedule", beta_schedule},
                      {"trained_betas", nullptr},
                      {"prediction_type", prediction_type},
                      {"timestep_spacing", timestep_spacing},
                      {"steps_offset", steps_offset},
                      {"clip_sample", clip_sample},
                      {"clip_sample_range", clip_sample_range},
                      {"set_alpha_to_one", set_alpha_to_one},
                      {"skip_prk_steps", skip_prk_steps},
                      {"variance_type", variance_type}};
  if (!trained_betas.empty()) j["trained_betas"] = trained_betas;
  return j;
}

// ---- noise schedule ------------------------------------------------------------------------

NoiseSchedule::NoiseSchedule(const SchedulerConfig& config) {
  const int64_t n = config.num_train_timesteps;
  CXR_CHECK(n >= 1, "noise schedule: num_train_timesteps must be >= 1, got ", n);
  if (!config.trained_betas.empty()) {
    CXR_CHECK(int64_t(config.trained_betas.size()) == n, "noise schedule: trained_betas has ",
              config.trained_betas.size(), " values, expected num_train_timesteps = ", n);
    betas_.assign(config.trained_betas.begin(), config.trained_betas.end());
  } else if (config.beta_schedule == "linear") {
    betas_ = linspace_f32(config.beta_start, config.beta_end, n);
  } else if (config.beta_schedule == "scaled_linear") {
    // linspace of the square roots, squared (SD's schedule, spec/diffusion.md §5.2).
    betas_ = linspace_f32(std::sqrt(config.beta_start), std::sqrt(config.beta_end), n);
    for (float& b : betas_) b = b * b;
  } else if (config.beta_schedule == "squaredcos_cap_v2") {
    betas_ = squaredcos_cap_v2(n);
  } else {
    CXR_FAIL("noise schedule: unknown beta_schedule \"", config.beta_schedule,
             "\" (expected linear, scaled_linear or squaredcos_cap_v2)");
  }
  // torch.cumprod on the CPU accumulates float32 in double and rounds each prefix.
  alphas_cumprod_.resize(betas_.size());
  double acc = 1.0;
  for (size_t i = 0; i < betas_.size(); ++i) {
    acc *= double(1.0f - betas_[i]);
    alphas_cumprod_[i] = float(acc);
  }
}

Tensor NoiseSchedule::betas() const {
  return raw::from_vector(betas_, {num_train_timesteps()});
}

Tensor NoiseSchedule::alphas_cumprod() const {
  return raw::from_vector(alphas_cumprod_, {num_train_timesteps()});
}

double NoiseSchedule::alpha_cumprod(int64_t t, const char* op) const {
  CXR_CHECK(t >= 0 && t < num_train_timesteps(), op, ": timestep ", t, " is outside [0, ",
            num_train_timesteps(), ")");
  return alphas_cumprod_[size_t(t)];
}

Tensor NoiseSchedule::combine(const char* op, const Tensor& x0, const Tensor& noise,
                              const Tensor& timesteps, bool velocity) const {
  CXR_CHECK(x0.shape() == noise.shape(), op, ": sample ", describe(x0), " and noise ",
            describe(noise), " must have the same shape");
  CXR_CHECK(x0.dim() >= 1 && is_floating(x0.dtype()), op,
            ": expected a floating sample [B, ...], got ", describe(x0));
  CXR_CHECK(
      timesteps.dim() == 1 && timesteps.numel() == x0.size(0) && is_integral(timesteps.dtype()), op,
      ": expected integer timesteps [", x0.size(0), "] (one per sample), got ",
      describe(timesteps));
  // One coefficient pair per sample, computed as diffusers does in float32 (alphas_cumprod cast to
  // the sample's dtype, then ** 0.5), shaped [B, 1, ..., 1] to broadcast.
  std::vector<float> a, b;
  for (int64_t t : timesteps.to_vector<int64_t>()) {
    float ac = float(alpha_cumprod(t, op));
    a.push_back(std::sqrt(ac));
    b.push_back(std::sqrt(1.0f - ac));
  }
  Shape coef_shape(size_t(x0.dim()), 1);
  coef_shape[0] = x0.size(0);
  Tensor ca = raw::to(raw::from_vector(a, coef_shape, x0.dtype()), x0.device());
  Tensor cb = raw::to(raw::from_vector(b, coef_shape, x0.dtype()), x0.device());
  if (velocity) return raw::sub(raw::mul(ca, noise), raw::mul(cb, x0));
  return raw::add(raw::mul(ca, x0), raw::mul(cb, noise));
}

Tensor NoiseSchedule::add_noise(const Tensor& x0, const Tensor& noise,
                                const Tensor& timesteps) const {
  return combine("add_noise", x0, noise, timesteps, false);
}

Tensor NoiseSchedule::get_velocity(const Tensor& x0, const Tensor& noise,
                                   const Tensor& timesteps) const {
  return combine("get_velocity", x0, noise, timesteps, true);
}

// ---- timestep spacing ----------------------------------------------------------------------

std::vector<double> spaced_timesteps(const SchedulerConfig& config, int64_t n,
                                     bool round_linspace) {
  const int64_t T = config.num_train_timesteps;
  CXR_CHECK(n >= 1 && n <= T, "set_timesteps: num_inference_steps must be in [1, ",
            "num_train_timesteps = ", T, "], got ", n);
  std::vector<double> out(static_cast<size_t>(n));
  const std::string& spacing = config.timestep_spacing;
  if (spacing == "leading") {
    const int64_t ratio = T / n;
    for (int64_t i = 0; i < n; ++i)
      out[size_t(i)] = double((n - 1 - i) * ratio + config.steps_offset);
  } else if (spacing == "trailing") {
    // np.round(np.arange(T, 0, -T/n)) - 1: numpy fills start + i * delta with delta = (start +
    // step) - start, rounding half to even. (numpy's arange gives n + 1 values for some n, e.g. 61,
    // the last one rounding to 0 - 1 = -1; we keep the n meaningful ones.)
    const double step = -double(T) / double(n);
    const double delta = (double(T) + step) - double(T);
    for (int64_t i = 0; i < n; ++i)
      out[size_t(i)] = std::nearbyint(double(T) + double(i) * delta) - 1;
  } else if (spacing == "linspace") {
    // np.linspace(0, T - 1, n) (i * step, the last value exact), descending; rounded half to even
    // or kept as float32 (Euler).
    const double step = n > 1 ? double(T - 1) / double(n - 1) : 0.0;
    for (int64_t i = 0; i < n; ++i) {
      double v = i == n - 1 && n > 1 ? double(T - 1) : double(i) * step;
      out[size_t(n - 1 - i)] = round_linspace ? std::nearbyint(v) : double(float(v));
    }
  } else {
    CXR_FAIL("set_timesteps: unknown timestep_spacing \"", spacing,
             "\" (expected leading, trailing or linspace)");
  }
  return out;
}

// ---- the common interface ------------------------------------------------------------------

Scheduler::Scheduler(SchedulerKind kind, const SchedulerConfig& config)
    : kind_(kind), config_(config), schedule_(config) {
  const char* op = scheduler_name(kind);
  check_choice(op, "timestep_spacing", config.timestep_spacing,
               {"leading", "trailing", "linspace"});
  const bool any_prediction = kind == SchedulerKind::DDPM || kind == SchedulerKind::DDIM;
  check_choice(op, "prediction_type", config.prediction_type,
               any_prediction ? std::vector<std::string>{"epsilon", "v_prediction", "sample"}
                              : std::vector<std::string>{"epsilon", "v_prediction"});
  CXR_CHECK(config.steps_offset >= 0, op, ": steps_offset must be >= 0, got ", config.steps_offset);
  CXR_CHECK(config.clip_sample_range > 0, op, ": clip_sample_range must be > 0, got ",
            config.clip_sample_range);
}

void Scheduler::set_timesteps(int64_t n) {
  timesteps_ = spaced_timesteps(config_, n);
  num_inference_steps_ = n;
}

Tensor Scheduler::scale_model_input(const Tensor& sample, double) {
  return sample;
}

Tensor Scheduler::step(const Tensor& model_output, double t, const Tensor& sample, Generator* gen) {
  NoiseSource source;
  source.gen = gen ? gen : &default_generator();
  return step_impl(model_output, t, sample, source);
}

Tensor Scheduler::step(const Tensor& model_output, double t, const Tensor& sample,
                       const Tensor& noise) {
  NoiseSource source;
  source.given = &noise;
  return step_impl(model_output, t, sample, source);
}

Tensor Scheduler::NoiseSource::draw(const Tensor& like) const {
  if (given) {
    CXR_CHECK(given->shape() == like.shape(), "scheduler step: the given noise ", describe(*given),
              " must have the sample's shape ", shape_str(like.shape()));
    return raw::to(*given, like.device());
  }
  return raw::randn(like.shape(), *gen, like.dtype(), 0.0, 1.0, like.device());
}

void Scheduler::check_step(const Tensor& model_output, const Tensor& sample) const {
  CXR_CHECK(num_inference_steps_ > 0, name(), ": step called before set_timesteps");
  CXR_CHECK(model_output.shape() == sample.shape(), name(), ": model output ",
            describe(model_output), " and sample ", describe(sample), " must have the same shape");
}

int64_t Scheduler::integer_timestep(double t) const {
  CXR_CHECK(t == std::floor(t), name(), ": timestep ", t, " is not an integer");
  schedule_.alpha_cumprod(int64_t(t), name());  // range check
  return int64_t(t);
}

double Scheduler::alpha_prev(int64_t prev_t, double final_alpha) const {
  return prev_t >= 0 ? schedule_.alpha_cumprod(prev_t, name()) : final_alpha;
}

// ---- DDPM ----------------------------------------------------------------------------------

DDPMScheduler::DDPMScheduler(const SchedulerConfig& config)
    : Scheduler(SchedulerKind::DDPM, config) {
  check_choice("ddpm", "variance_type", config.variance_type, {"fixed_small", "fixed_large"});
}

Tensor DDPMScheduler::step_impl(const Tensor& model_output, double t_in, const Tensor& sample,
                                const NoiseSource& noise) {
  check_step(model_output, sample);
  const int64_t t = integer_timestep(t_in);
  // previous_timestep(): the entry after t in the schedule, -1 after the last.
  auto it = std::find(timesteps_.begin(), timesteps_.end(), t_in);
  CXR_CHECK(it != timesteps_.end(), "ddpm: timestep ", t, " is not one of the ", timesteps_.size(),
            " set timesteps");
  const int64_t prev_t = it + 1 == timesteps_.end() ? -1 : int64_t(*(it + 1));

  const double a_t = schedule_.alpha_cumprod(t, "ddpm");
  const double a_prev = alpha_prev(prev_t, 1.0);
  const double b_t = 1 - a_t, b_prev = 1 - a_prev;
  const double cur_alpha = a_t / a_prev, cur_beta = 1 - cur_alpha;

  Tensor x0 = predicted_x0(config_.prediction_type, model_output, sample, a_t);
  if (config_.clip_sample)
    x0 = raw::clamp(x0, -config_.clip_sample_range, config_.clip_sample_range);
  // Posterior mean (Ho et al. eq. 7).
  Tensor prev =
      axpby(std::sqrt(a_prev) * cur_beta / b_t, x0, std::sqrt(cur_alpha) * b_prev / b_t, sample);
  if (t > 0) {
    const double variance = config_.variance_type == "fixed_small"
                                ? std::max(b_prev / b_t * cur_beta, 1e-20)
                                : cur_beta;
    prev = raw::add(prev, raw::mul(noise.draw(sample), std::sqrt(variance)));
  }
  return prev;
}

// ---- DDIM ----------------------------------------------------------------------------------

DDIMScheduler::DDIMScheduler(const SchedulerConfig& config)
    : Scheduler(SchedulerKind::DDIM, config) {
  CXR_CHECK(config.eta >= 0, "ddim: eta must be >= 0, got ", config.eta);
}

Tensor DDIMScheduler::step_impl(const Tensor& model_output, double t_in, const Tensor& sample,
                                const NoiseSource& noise) {
  check_step(model_output, sample);
  const int64_t t = integer_timestep(t_in);
  const int64_t prev_t = t - config_.num_train_timesteps / num_inference_steps_;
  const double final_alpha = config_.set_alpha_to_one ? 1.0 : schedule_.alpha_cumprod(0, "ddim");
  const double a_t = schedule_.alpha_cumprod(t, "ddim");
  const double a_prev = alpha_prev(prev_t, final_alpha);

  Tensor x0 = predicted_x0(config_.prediction_type, model_output, sample, a_t);
  Tensor eps = predicted_eps(config_.prediction_type, model_output, sample, a_t);
  if (config_.clip_sample)
    x0 = raw::clamp(x0, -config_.clip_sample_range, config_.clip_sample_range);
  // Song et al. eq. 12 with sigma_t = eta * sqrt((1 - ᾱ_prev)/(1 - ᾱ_t) (1 - ᾱ_t/ᾱ_prev)).
  const double variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev);
  const double std_dev = config_.eta * std::sqrt(variance);
  Tensor prev = axpby(std::sqrt(a_prev), x0, std::sqrt(1 - a_prev - std_dev * std_dev), eps);
  if (config_.eta > 0) prev = raw::add(prev, raw::mul(noise.draw(sample), std_dev));
  return prev;
}

// ---- PNDM (PLMS) ---------------------------------------------------------------------------

PNDMScheduler::PNDMScheduler(const SchedulerConfig& config)
    : Scheduler(SchedulerKind::PNDM, config) {
  CXR_CHECK(config.skip_prk_steps,
            "pndm: skip_prk_steps = false (Runge-Kutta warm-up steps) is not supported; only the "
            "PLMS form with skip_prk_steps = true (Stable Diffusion's config)");
}

void PNDMScheduler::set_timesteps(int64_t n) {
  Scheduler::set_timesteps(n);
  // plms_timesteps = concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1] of the ascending list: the
  // descending list with its second entry repeated.
  if (n >= 2) timesteps_.insert(timesteps_.begin() + 1, timesteps_[1]);
  ets_.clear();
  cur_sample_ = Tensor();
  counter_ = 0;
}

Tensor PNDMScheduler::step_impl(const Tensor& model_output, double t_in, const Tensor& sample,
                                const NoiseSource&) {
  check_step(model_output, sample);
  int64_t t = integer_timestep(t_in);
  CXR_CHECK(counter_ < int64_t(timesteps_.size()), "pndm: all ", timesteps_.size(),
            " timesteps were already stepped; call set_timesteps to sample again");
  CXR_CHECK(t_in == timesteps_[size_t(counter_)], "pndm: step ", counter_, " got timestep ", t,
            ", expected timesteps()[", counter_, "] = ", timesteps_[size_t(counter_)],
            " (PNDM keeps a history: step through timesteps() in order)");
  const int64_t ratio = config_.num_train_timesteps / num_inference_steps_;
  int64_t prev_t = t - ratio;
  if (counter_ != 1) {
    if (ets_.size() == 4) ets_.erase(ets_.begin());
    ets_.push_back(raw::clone(model_output));
  } else {
    // The repeated timestep redoes the first interval with the averaged slope.
    prev_t = t;
    t = t + ratio;
  }
  // Linear multistep (Adams-Bashforth) combination of the stored model outputs.
  const size_t n = ets_.size();
  Tensor x = sample;
  Tensor e;
  if (n == 1 && counter_ == 0) {
    e = model_output;
    cur_sample_ = sample;
  } else if (n == 1 && counter_ == 1) {
    e = raw::mul(raw::add(model_output, ets_.back()), 0.5);
    x = cur_sample_;
    cur_sample_ = Tensor();
  } else if (n == 2) {
    e = raw::mul(axpby(3, ets_[1], -1, ets_[0]), 0.5);
  } else if (n == 3) {
    e = raw::mul(raw::add(axpby(23, ets_[2], -16, ets_[1]), raw::mul(ets_[0], 5)), 1.0 / 12);
  } else {
    e = raw::mul(raw::add(axpby(55, ets_[3], -59, ets_[2]), axpby(37, ets_[1], -9, ets_[0])),
                 1.0 / 24);
  }
  ++counter_;

  // _get_prev_sample (PNDM paper eq. 9).
  const double final_alpha = config_.set_alpha_to_one ? 1.0 : schedule_.alpha_cumprod(0, "pndm");
  const double a = schedule_.alpha_cumprod(t, "pndm");
  const double a_p = alpha_prev(prev_t, final_alpha);
  const double b = 1 - a, b_p = 1 - a_p;
  if (config_.prediction_type == "v_prediction") e = axpby(std::sqrt(a), e, std::sqrt(b), x);
  const double denom = a * std::sqrt(b_p) + std::sqrt(a * b * a_p);
  return axpby(std::sqrt(a_p / a), x, -(a_p - a) / denom, e);
}

// ---- Euler ancestral -----------------------------------------------------------------------

EulerAncestralScheduler::EulerAncestralScheduler(const SchedulerConfig& config)
    : Scheduler(SchedulerKind::EulerAncestral, config) {}

void EulerAncestralScheduler::set_timesteps(int64_t n) {
  timesteps_ = spaced_timesteps(config_, n, /*round_linspace=*/false);
  num_inference_steps_ = n;
  // sigma(t) = sqrt((1 - ᾱ_t)/ᾱ_t) in float32, linearly interpolated at the (possibly fractional)
  // timesteps in double (np.interp), then float32 with a final 0.
  const std::vector<float>& ac = schedule_.alphas_cumprod_values();
  std::vector<float> base(ac.size());
  for (size_t i = 0; i < ac.size(); ++i) base[i] = std::sqrt((1.0f - ac[i]) / ac[i]);
  sigmas_.clear();
  for (double t : timesteps_) {
    const size_t lo = std::min(size_t(std::floor(t)), base.size() - 1);
    const size_t hi = std::min(lo + 1, base.size() - 1);
    const double frac = t - double(lo);
    sigmas_.push_back(float(hi == lo
                                ? double(base[lo])
                                : (double(base[hi]) - double(base[lo])) * frac + double(base[lo])));
  }
  sigmas_.push_back(0.0f);
  step_index_ = -1;
}

double EulerAncestralScheduler::init_noise_sigma() const {
  CXR_CHECK(!sigmas_.empty(), "euler_ancestral: init_noise_sigma needs set_timesteps first");
  const float max_sigma = *std::max_element(sigmas_.begin(), sigmas_.end());
  if (config_.timestep_spacing == "leading") return std::sqrt(max_sigma * max_sigma + 1.0f);
  return max_sigma;
}

int64_t EulerAncestralScheduler::step_index(double t) {
  CXR_CHECK(num_inference_steps_ > 0, "euler_ancestral: used before set_timesteps");
  if (step_index_ < 0) {
    std::vector<int64_t> matches;
    for (size_t i = 0; i < timesteps_.size(); ++i)
      if (timesteps_[i] == t) matches.push_back(int64_t(i));
    CXR_CHECK(!matches.empty(), "euler_ancestral: timestep ", t, " is not one of the ",
              timesteps_.size(), " set timesteps");
    step_index_ = matches.size() > 1 ? matches[1] : matches[0];
  }
  CXR_CHECK(step_index_ < int64_t(timesteps_.size()), "euler_ancestral: all ", timesteps_.size(),
            " timesteps were already stepped; call set_timesteps to sample again");
  return step_index_;
}

Tensor EulerAncestralScheduler::scale_model_input(const Tensor& sample, double t) {
  const float sigma = sigmas_[size_t(step_index(t))];
  return raw::mul(sample, 1.0 / double(std::sqrt(sigma * sigma + 1.0f)));
}

Tensor EulerAncestralScheduler::step_impl(const Tensor& model_output, double t,
                                          const Tensor& sample_in, const NoiseSource& noise) {
  check_step(model_output, sample_in);
  const size_t i = size_t(step_index(t));
  // Scalars in float32 as diffusers' 0-d sigma tensors.
  const float sigma = sigmas_[i], sigma_to = sigmas_[i + 1];
  const Tensor sample = raw::to(sample_in, kFloat32);
  Tensor x0;
  if (config_.prediction_type == "epsilon") {
    x0 = raw::sub(sample, raw::mul(model_output, double(sigma)));
  } else {  // v_prediction
    const float s2 = sigma * sigma + 1.0f;
    x0 = axpby(double(-sigma / std::sqrt(s2)), model_output, 1.0 / double(s2), sample);
  }
  // Ancestral split of the step to sigma_to: deterministic part down to sigma_down, fresh noise
  // of std sigma_up (k-diffusion get_ancestral_step with eta 1).
  const float sigma_up =
      std::sqrt(sigma_to * sigma_to * (sigma * sigma - sigma_to * sigma_to) / (sigma * sigma));
  const float sigma_down = std::sqrt(sigma_to * sigma_to - sigma_up * sigma_up);
  Tensor derivative = raw::mul(raw::sub(sample, x0), 1.0 / double(sigma));
  Tensor prev = raw::add(sample, raw::mul(derivative, double(sigma_down - sigma)));
  if (sigma_up > 0) prev = raw::add(prev, raw::mul(noise.draw(sample), double(sigma_up)));
  ++step_index_;
  return raw::to(prev, model_output.dtype());
}

// ---- factories and guidance ----------------------------------------------------------------

std::unique_ptr<Scheduler> make_scheduler(SchedulerKind kind, const SchedulerConfig& config) {
  switch (kind) {
    case SchedulerKind::DDPM:
      return std::make_unique<DDPMScheduler>(config);
    case SchedulerKind::DDIM:
      return std::make_unique<DDIMScheduler>(config);
    case SchedulerKind::PNDM:
      return std::make_unique<PNDMScheduler>(config);
    case SchedulerKind::EulerAncestral:
      return std::make_unique<EulerAncestralScheduler>(config);
  }
  CXR_FAIL("make_scheduler: invalid kind");
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name) {
  return make_scheduler(scheduler_kind_from_name(name), SchedulerConfig{});
}

std::unique_ptr<Scheduler> make_scheduler(JsonConfig& json, const std::string& name) {
  const SchedulerKind kind =
      scheduler_kind_from_name(name.empty() ? json.require_string("_class_name") : name);
  return make_scheduler(kind, SchedulerConfig::from_json(json, kind));
}

std::unique_ptr<Scheduler> load_scheduler(const std::string& path, const std::string& name) {
  JsonConfig json = JsonConfig::from_file(path);
  return make_scheduler(json, name);
}

Tensor classifier_free_guidance(const Tensor& uncond, const Tensor& cond, double scale) {
  CXR_CHECK(uncond.shape() == cond.shape(), "classifier_free_guidance: unconditional ",
            describe(uncond), " and conditional ", describe(cond),
            " predictions must have the same shape");
  return raw::add(uncond, raw::mul(raw::sub(cond, uncond), scale));
}

Tensor rescale_noise_cfg(const Tensor& guided, const Tensor& cond, double phi) {
  CXR_CHECK(guided.shape() == cond.shape() && guided.dim() >= 2, "rescale_noise_cfg: guided ",
            describe(guided), " and conditional ", describe(cond),
            " predictions must have the same shape [B, ...]");
  if (phi == 0) return guided;
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < guided.dim(); ++d) dims.push_back(d);
  Tensor ratio = raw::div(raw::std(cond, dims, 1, true), raw::std(guided, dims, 1, true));
  return raw::add(raw::mul(raw::mul(guided, ratio), phi), raw::mul(guided, 1 - phi));
}

}  // namespace cxr::models
