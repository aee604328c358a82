// Diffusion schedulers (models/schedulers.h) against diffusers 0.42 on the golden values of
// tests/golden/gen_schedulers.py (tests/fixtures/schedulers.safetensors): noise schedules,
// timesteps of every scheduler and spacing, Euler sigmas, add_noise/get_velocity, whole sampling
// loops with the noise given; then seeded randomness, guidance and the errors.
#include "models/schedulers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/errors.h"
#include "support/files.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

namespace cxr::models {
namespace {

const char* const kFixture = "schedulers.safetensors";

Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

std::vector<double> fx_values(const std::string& key) {
  return fx(key).to_vector<double>();
}

// SD v1.x scheduler/scheduler_config.json (spec/diffusion.md §5.1), as gen_schedulers.py's
// SD_CONFIG.
const char* const kSdConfig = R"({
  "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "num_train_timesteps": 1000,
  "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
  "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null,
  "clip_sample": false})";

JsonConfig json_config(const std::string& text) {
  return JsonConfig(nlohmann::json::parse(text), "test config");
}

TEST(NoiseSchedule, BetasAndAlphasCumprodMatchDiffusers) {
  struct Case {
    const char* schedule;
    double start, end;
  };
  for (const Case& c : {Case{"scaled_linear", 0.00085, 0.012}, Case{"linear", 0.0001, 0.02},
                        Case{"squaredcos_cap_v2", 0, 0}}) {
    SCOPED_TRACE(c.schedule);
    SchedulerConfig config;
    config.beta_schedule = c.schedule;
    config.beta_start = c.start;
    config.beta_end = c.end;
    NoiseSchedule s(config);
    const std::string key = std::string("schedule.") + c.schedule;
    // float32 as torch's scalar linspace formula; torch's vectorised loop (AVX512 here) rounds a
    // few values differently: up to 3 ulps (measured 3.1e-7 relative).
    EXPECT_ALL_CLOSE(s.betas(), fx(key + ".betas"), 4e-7, 0);
    EXPECT_ALL_CLOSE(s.alphas_cumprod(), fx(key + ".alphas_cumprod"), 4e-7, 0);
  }
}

TEST(NoiseSchedule, TrainedBetasReplaceTheSchedule) {
  SchedulerConfig config;
  config.trained_betas = fx("schedule.linear.betas").to_vector<double>();
  // The same betas give exactly torch's cumprod (float32 accumulated in double).
  EXPECT_ALL_CLOSE(NoiseSchedule(config).alphas_cumprod(), fx("schedule.linear.alphas_cumprod"), 0,
                   0);
}

TEST(NoiseSchedule, AddNoiseAndVelocityMatchDiffusers) {
  NoiseSchedule s{SchedulerConfig{}};
  Tensor x0 = fx("noising.x0"), noise = fx("noising.noise"), t = fx("noising.timesteps");
  EXPECT_ALL_CLOSE(s.add_noise(x0, noise, t), fx("noising.add_noise"), 1e-6, 1e-7);
  EXPECT_ALL_CLOSE(s.get_velocity(x0, noise, t), fx("noising.velocity"), 1e-6, 1e-7);
}

TEST(Timesteps, EverySchedulerSpacingAndCountMatchesDiffusers) {
  const std::vector<int64_t> counts = fx("timesteps.counts").to_vector<int64_t>();
  for (const char* name : {"ddpm", "ddim", "pndm", "euler_ancestral"}) {
    for (const char* spacing : {"leading", "trailing", "linspace"}) {
      for (int64_t n : counts) {
        const std::string suffix = std::string(spacing) + "." + std::to_string(n);
        SCOPED_TRACE(std::string(name) + " " + suffix);
        SchedulerConfig config;
        config.timestep_spacing = spacing;
        auto s = make_scheduler(scheduler_kind_from_name(name), config);
        s->set_timesteps(n);
        EXPECT_EQ(s->timesteps(), fx_values("timesteps." + std::string(name) + "." + suffix));
        if (s->kind() != SchedulerKind::EulerAncestral) continue;
        const auto& sigmas = static_cast<EulerAncestralScheduler&>(*s).sigmas();
        Tensor ours = raw::from_vector(sigmas, {int64_t(sigmas.size())});
        // From alphas_cumprod, which differ by ulps (see above).
        EXPECT_ALL_CLOSE(ours, fx("sigmas." + suffix), 1e-6, 0);
        EXPECT_NEAR(s->init_noise_sigma(), fx_values("init_noise_sigma." + suffix)[0],
                    1e-6 * s->init_noise_sigma());
      }
    }
  }
}

TEST(Timesteps, SdPndmFiftyStepsRepeatTheSecondTimestep) {
  // spec/diffusion.md §5.6: 981, 961, 961, 941, ..., 21, 1 (51 model calls).
  auto s = make_scheduler("pndm");
  s->set_timesteps(50);
  const std::vector<double>& t = s->timesteps();
  ASSERT_EQ(t.size(), 51u);
  EXPECT_EQ(t[0], 981);
  EXPECT_EQ(t[1], 961);
  EXPECT_EQ(t[2], 961);
  EXPECT_EQ(t[3], 941);
  EXPECT_EQ(t[50], 1);
}

// Within 1e-6 of the expected tensor's largest magnitude: diffusers computes the step's scalars in
// float32 and we in double, so after ten chained steps the samples (up to ~50 for Euler) differ by
// a few float32 ulps of their scale (measured: at most 4e-7 of it).
::testing::AssertionResult close_to_scale(const Tensor& actual, const Tensor& expected) {
  double scale = 0;
  for (double v : expected.to_vector<double>()) scale = std::max(scale, std::abs(v));
  return test::all_close(actual, expected, 0, 1e-6 * scale);
}

// One sampling loop of diffusers, fed the same model outputs and noise.
class SamplingLoop : public ::testing::TestWithParam<const char*> {};

TEST_P(SamplingLoop, MatchesDiffusers) {
  const std::string p = std::string("case.") + GetParam() + ".";
  std::string text;
  for (int64_t byte : fx(p + "config").to_vector<int64_t>()) text += char(byte);
  JsonConfig json = json_config(text);
  const SchedulerKind kind = scheduler_kind_from_name(json.require_string("_class_name"));
  SchedulerConfig config = SchedulerConfig::from_json(json, kind);
  config.eta = fx_values(p + "eta")[0];
  auto s = make_scheduler(kind, config);
  s->set_timesteps(fx(p + "steps").to_vector<int64_t>()[0]);
  ASSERT_EQ(s->timesteps(), fx_values(p + "timesteps"));

  Tensor sample = fx(p + "sample");
  Tensor outputs = fx(p + "model_output"), noise = fx(p + "noise");
  Tensor scaled = fx(p + "scaled_input"), expected = fx(p + "prev_sample");
  for (size_t k = 0; k < s->timesteps().size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    const double t = s->timesteps()[k];
    const auto i = int64_t(k);
    EXPECT_TRUE(close_to_scale(s->scale_model_input(sample, t), raw::select(scaled, 0, i)));
    sample = s->step(raw::select(outputs, 0, i), t, sample, raw::select(noise, 0, i));
    ASSERT_TRUE(close_to_scale(sample, raw::select(expected, 0, i)));
  }
}

INSTANTIATE_TEST_SUITE_P(Diffusers, SamplingLoop,
                         ::testing::Values("ddpm_sd", "ddpm_v_clip_large", "ddpm_sample_linspace",
                                           "ddim_sd", "ddim_eta", "ddim_v_trailing",
                                           "ddim_sample_clip", "pndm_sd", "pndm_v_linspace",
                                           "euler_sd", "euler_linspace", "euler_v_trailing"));

TEST(SchedulerFactory, SdConfigFileGivesPndmOrTheNamedClass) {
  test::TempDir dir;
  const std::string path = dir.write("scheduler_config.json", kSdConfig);
  auto pndm = load_scheduler(path);
  EXPECT_EQ(pndm->kind(), SchedulerKind::PNDM);
  pndm->set_timesteps(50);
  EXPECT_EQ(pndm->timesteps(), fx_values("timesteps.pndm.leading.50"));
  // As EulerAncestralDiscreteScheduler.from_config: the absent timestep_spacing is its "linspace".
  auto euler = load_scheduler(path, "euler_ancestral");
  EXPECT_EQ(euler->config().timestep_spacing, "linspace");
  euler->set_timesteps(50);
  EXPECT_EQ(euler->timesteps(), fx_values("timesteps.euler_ancestral.linspace.50"));
  // By name: SD's config with its newer "leading" spacing.
  auto ddim = make_scheduler("DDIMScheduler");
  ddim->set_timesteps(20);
  EXPECT_EQ(ddim->timesteps(), fx_values("timesteps.ddim.leading.20"));
}

// DDPM at t > 0 draws from the generator: the same as passing randn from that generator.
TEST(SchedulerRandomness, StepsDrawSeededNoiseFromTheGenerator) {
  for (const char* name : {"ddpm", "ddim", "euler_ancestral"}) {
    SCOPED_TRACE(name);
    SchedulerConfig config;
    config.eta = 1.0;
    auto make = [&] {
      auto s = make_scheduler(scheduler_kind_from_name(name), config);
      s->set_timesteps(10);
      return s;
    };
    Generator data(3);
    Tensor x = raw::randn({2, 4, 3, 3}, data), eps = raw::randn({2, 4, 3, 3}, data);
    const double t = make()->timesteps()[0];
    Generator g1(42), g2(42), g3(43), g4(42);
    Tensor a = make()->step(eps, t, x, &g1);
    Tensor b = make()->step(eps, t, x, &g2);
    Tensor c = make()->step(eps, t, x, &g3);
    Tensor given = make()->step(eps, t, x, raw::randn({2, 4, 3, 3}, g4));
    EXPECT_TRUE(test::bitwise_equal(a, b));
    EXPECT_TRUE(test::bitwise_equal(a, given));
    EXPECT_FALSE(test::all_close(a, c, 1e-3, 1e-3));
  }
}

TEST(SchedulerRandomness, DeterministicStepsIgnoreTheGenerator) {
  // DDIM with eta 0 and PNDM add no noise.
  for (const char* name : {"ddim", "pndm"}) {
    SCOPED_TRACE(name);
    Generator data(5);
    Tensor x = raw::randn({1, 4, 2, 2}, data), eps = raw::randn({1, 4, 2, 2}, data);
    auto s1 = make_scheduler(name), s2 = make_scheduler(name);
    s1->set_timesteps(10);
    s2->set_timesteps(10);
    Generator g1(1), g2(2);
    EXPECT_TRUE(test::bitwise_equal(s1->step(eps, 901, x, &g1), s2->step(eps, 901, x, &g2)));
  }
}

TEST(ClassifierFreeGuidance, MovesFromUncondTowardCondByTheScale) {
  Tensor uncond = raw::from_vector(std::vector<float>{1, 2, -1}, {3});
  Tensor cond = raw::from_vector(std::vector<float>{3, 6, -1}, {3});
  // 1 + 7.5 * 2, 2 + 7.5 * 4, -1 + 7.5 * 0.
  EXPECT_ALL_CLOSE(classifier_free_guidance(uncond, cond, 7.5),
                   raw::from_vector(std::vector<float>{16, 32, -1}, {3}));
  EXPECT_ALL_CLOSE(classifier_free_guidance(uncond, cond, 1.0), cond);
  EXPECT_ERROR_CONTAINS(classifier_free_guidance(uncond, raw::zeros({4}), 2.0), "same shape");
}

TEST(ClassifierFreeGuidance, GuidanceAndRescaleMatchTheSdPipeline) {
  Tensor cond = fx("guidance.cond");
  Tensor guided = classifier_free_guidance(fx("guidance.uncond"), cond, 7.5);
  EXPECT_ALL_CLOSE(guided, fx("guidance.guided"), 1e-6, 1e-6);
  EXPECT_ALL_CLOSE(rescale_noise_cfg(guided, cond, 0.7), fx("guidance.rescaled"), 1e-5, 1e-6);
  EXPECT_TRUE(test::bitwise_equal(rescale_noise_cfg(guided, cond, 0.0), guided));
  EXPECT_ERROR_CONTAINS(rescale_noise_cfg(guided, raw::zeros({2, 4}), 0.7), "same shape");
}

TEST(SchedulerErrors, NameTheProblem) {
  EXPECT_ERROR_CONTAINS(make_scheduler("dpm_solver"), "unknown scheduler \"dpm_solver\"");
  SchedulerConfig bad_beta;
  bad_beta.beta_schedule = "cosine";
  EXPECT_ERROR_CONTAINS(make_scheduler(SchedulerKind::DDIM, bad_beta),
                        "unknown beta_schedule \"cosine\"");
  SchedulerConfig bad_prediction;
  bad_prediction.prediction_type = "sample";
  EXPECT_ERROR_CONTAINS(make_scheduler(SchedulerKind::EulerAncestral, bad_prediction),
                        "prediction_type \"sample\" is not supported");
  SchedulerConfig bad_spacing;
  bad_spacing.timestep_spacing = "karras";
  EXPECT_ERROR_CONTAINS(make_scheduler(SchedulerKind::DDPM, bad_spacing),
                        "timestep_spacing \"karras\"");
  SchedulerConfig prk;
  prk.skip_prk_steps = false;
  EXPECT_ERROR_CONTAINS(make_scheduler(SchedulerKind::PNDM, prk), "skip_prk_steps");

  auto s = make_scheduler("ddim");
  Tensor x = raw::zeros({1, 4, 2, 2});
  EXPECT_ERROR_CONTAINS(s->step(x, 1, x), "ddim: step called before set_timesteps");
  EXPECT_ERROR_CONTAINS(s->set_timesteps(1001), "num_train_timesteps = 1000], got 1001");
  EXPECT_ERROR_CONTAINS(s->set_timesteps(0), "got 0");
  s->set_timesteps(10);
  EXPECT_ERROR_CONTAINS(s->step(x, 1000, x), "timestep 1000 is outside [0, 1000)");
  EXPECT_ERROR_CONTAINS(s->step(x, 900.5, x), "not an integer");
  EXPECT_ERROR_CONTAINS(s->step(raw::zeros({1, 4, 2, 3}), 901, x), "same shape");

  auto ddpm = make_scheduler("ddpm");
  ddpm->set_timesteps(10);
  EXPECT_ERROR_CONTAINS(ddpm->step(x, 900, x), "timestep 900 is not one of the 10");
  EXPECT_ERROR_CONTAINS(ddpm->step(x, 901, x, raw::zeros({2})), "given noise");

  auto pndm = make_scheduler("pndm");
  pndm->set_timesteps(10);
  EXPECT_ERROR_CONTAINS(pndm->step(x, 801, x), "expected timesteps()[0] = 901");

  NoiseSchedule schedule{SchedulerConfig{}};
  Tensor x0 = raw::zeros({2, 3});
  Tensor late = raw::from_vector(std::vector<int64_t>{0, 1000}, {2});
  EXPECT_ERROR_CONTAINS(schedule.add_noise(x0, x0, late), "add_noise: timestep 1000 is outside");
  EXPECT_ERROR_CONTAINS(schedule.get_velocity(x0, x0, raw::zeros({3}, kInt64)), "one per sample");
  EXPECT_ERROR_CONTAINS(schedule.add_noise(x0, raw::zeros({2, 4}), raw::zeros({2}, kInt64)),
                        "same shape");
}

TEST(SchedulerErrors, StrictConfigFiles) {
  JsonConfig misspelt =
      json_config(R"({"_class_name": "DDIMScheduler", "beta_shedule": "linear"})");
  EXPECT_ERROR_CONTAINS(make_scheduler(misspelt), "beta_shedule");
  JsonConfig thresholding =
      json_config(R"({"_class_name": "DDPMScheduler", "thresholding": true})");
  EXPECT_ERROR_CONTAINS(make_scheduler(thresholding), "thresholding = true is not supported");
  JsonConfig unknown_class = json_config(R"({"_class_name": "LMSDiscreteScheduler"})");
  EXPECT_ERROR_CONTAINS(make_scheduler(unknown_class),
                        "unknown scheduler \"LMSDiscreteScheduler\"");
  JsonConfig wrong_type = json_config(R"({"_class_name": "PNDMScheduler", "steps_offset": "1"})");
  EXPECT_ERROR_CONTAINS(make_scheduler(wrong_type), "steps_offset");
}

}  // namespace
}  // namespace cxr::models
