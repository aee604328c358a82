// Parsing and validation of a study config (study_config.h).
#include "experiments/study_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "data/phantom.h"
#include "experiments/generator_trainer.h"
#include "models/json_config.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

// `f` applied to every string of `j`, recursively.
nlohmann::json map_strings(nlohmann::json j, const std::function<std::string(std::string)>& f) {
  if (j.is_string()) return f(j.get<std::string>());
  if (j.is_array() || j.is_object())
    for (auto& item : j) item = map_strings(item, f);
  return j;
}

// Throws naming the keys of `json` that `docs` does not list.
void check_known_keys(const nlohmann::json& json, const std::vector<KeyDoc>& docs,
                      const std::string& source) {
  CXR_CHECK(json.is_object(), source, ": must be an object, got ", json.dump());
  std::set<std::string> known;
  for (const KeyDoc& d : docs) known.insert(d.key);
  for (const auto& [key, value] : json.items())
    CXR_CHECK(known.count(key), source, ": unknown key '", key, "' (see the command's --help)");
}

bool safe_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

data::PhantomDatasetOptions parse_phantoms(models::JsonConfig c) {
  data::PhantomDatasetOptions o;
  o.layout = data::parse_phantom_layout(c.require_string("layout"));
  o.phantom.prevalence = data::default_prevalence(o.layout);
  o.count = c.get_int("count", o.count);
  o.seed = uint64_t(c.get_int("seed", 0));
  o.phantom.size = c.get_int("size", o.phantom.size);
  o.phantom.noise = c.get_double("noise", o.phantom.noise);
  o.valid_fraction = c.get_double("valid_fraction", o.valid_fraction);
  models::JsonConfig prevalence = c.get_object("prevalence");
  for (int k = 0; k < data::kNumFindings; ++k) {
    const char* name = data::finding_name(data::Finding(k));
    o.phantom.prevalence[size_t(k)] = prevalence.get_double(name, o.phantom.prevalence[size_t(k)]);
  }
  prevalence.check_all_used();
  c.check_all_used();
  CXR_CHECK(o.count >= 1, c.source(), ": count must be >= 1, got ", o.count);
  data::check_phantom_options(o.phantom);
  return o;
}

data::MaskAugmentOptions parse_transform(models::JsonConfig c) {
  data::MaskAugmentOptions o;
  o.flip_p = c.get_double("flip_p", o.flip_p);
  o.morph_p = c.get_double("morph_p", o.morph_p);
  o.max_kernel = c.get_int("max_kernel", o.max_kernel);
  o.max_iterations = c.get_int("max_iterations", o.max_iterations);
  o.translate_p = c.get_double("translate_p", o.translate_p);
  o.max_translate = c.get_double("max_translate", o.max_translate);
  o.keep_nonempty = c.get_bool("keep_nonempty", o.keep_nonempty);
  c.check_all_used();
  for (double p : {o.flip_p, o.morph_p, o.translate_p})
    CXR_CHECK(p >= 0 && p <= 1, c.source(), ": probabilities must lie in [0, 1], got ", p);
  CXR_CHECK(o.max_kernel >= 3 && o.max_kernel % 2 == 1, c.source(),
            ": max_kernel must be odd and >= 3, got ", o.max_kernel);
  CXR_CHECK(o.max_iterations >= 1, c.source(), ": max_iterations must be >= 1");
  CXR_CHECK(o.max_translate >= 0 && o.max_translate < 0.5, c.source(),
            ": max_translate must lie in [0, 0.5), got ", o.max_translate);
  return o;
}

StudyTask parse_task(models::JsonConfig c, std::set<std::string>& names) {
  StudyTask t;
  t.name = c.require_string("name");
  CXR_CHECK(safe_name(t.name), c.source(), ": task name '", t.name,
            "' must be letters, digits, '_' or '-' (it names folders)");
  CXR_CHECK(names.insert(t.name).second, c.source(), ": two tasks are named '", t.name, "'");
  const std::string kind = c.require_string("kind");
  CXR_CHECK(kind == "classification" || kind == "segmentation", c.source(), ": kind '", kind,
            "' must be classification or segmentation");
  t.kind = kind == "classification" ? TaskKind::Classification : TaskKind::Segmentation;
  const bool cls = t.kind == TaskKind::Classification;
  t.train = c.get_object("train").json();
  t.metric = c.get_string("metric", cls ? "f1" : "dice");
  const std::vector<std::string> metrics =
      cls ? std::vector<std::string>{"f1", "micro_f1", "auroc"}
          : std::vector<std::string>{"dice", "dice_skip_empty", "global_dice"};
  CXR_CHECK(std::count(metrics.begin(), metrics.end(), t.metric), c.source(), ": metric '",
            t.metric, "' is not one of ", nlohmann::json(metrics).dump());
  models::JsonConfig syn = c.get_object("synthetic");
  if (cls) {
    models::JsonConfig prompts = syn.get_object("prompts");
    for (const auto& [label, prompt] : prompts.json().items()) {
      t.classification.prompts[label] = prompts.get_string(label, "");
      CXR_CHECK(!t.classification.prompts[label].empty(), prompts.source(), ": the prompt of '",
                label, "' is empty");
    }
    t.classification.balance = syn.get_bool("balance", t.classification.balance);
  } else {
    t.segmentation.mode = syn.get_string("mode", t.segmentation.mode);
    CXR_CHECK(t.segmentation.mode == "m2i" || t.segmentation.mode == "tm2i", syn.source(),
              ": mode '", t.segmentation.mode, "' must be m2i or tm2i");
    t.segmentation.mask_size = syn.get_int("mask_size", 0);
    CXR_CHECK(t.segmentation.mask_size >= 0, syn.source(), ": mask_size must be >= 0");
    t.segmentation.transform = parse_transform(syn.get_object("transform"));
  }
  syn.check_all_used();
  c.check_all_used();
  // Unknown keys fail now; values that need the data (paths made by the study itself, e.g. the
  // phantoms) are validated by the runner before the first cell trains.
  check_known_keys(t.train, train_config_keys(t.kind), c.source() + ".train");
  for (const char* key : {"train_fraction", "synthetic_dir", "synthetic_per_real", "seed"})
    CXR_CHECK(!t.train.contains(key), c.source(), ".train: key '", key,
              "' is set by the study grid for every cell; remove it");
  return t;
}

}  // namespace

nlohmann::json expand_paths(const nlohmann::json& j, const std::string& run_dir,
                            const std::string& config_dir) {
  return map_strings(j, [&](std::string s) {
    for (const auto& [token, value] :
         {std::pair<std::string, std::string>{"${run}", run_dir}, {"${config}", config_dir}})
      for (size_t at = s.find(token); at != std::string::npos;
           at = s.find(token, at + value.size()))
        s.replace(at, token.size(), value);
    return s;
  });
}

nlohmann::json relocatable(const nlohmann::json& j, const std::string& run_dir) {
  return map_strings(j, [&](std::string s) {
    return s.rfind(run_dir, 0) == 0 ? "${run}" + s.substr(run_dir.size()) : s;
  });
}

nlohmann::json read_study_json(const std::string& path) {
  return models::JsonConfig::from_file(path).json();
}

StudyConfig parse_study_config(const nlohmann::json& raw, const std::string& source,
                               const std::string& run_dir, const std::string& config_dir) {
  models::JsonConfig c(expand_paths(raw, run_dir, config_dir), source);
  StudyConfig s;
  s.name = c.require_string("name");
  CXR_CHECK(safe_name(s.name), source, ": name '", s.name,
            "' must be letters, digits, '_' or '-' (it names the run folder)");
  s.device = c.get_string("device", s.device);

  models::JsonConfig phantoms = c.get_object("phantoms");
  for (const auto& [name, value] : phantoms.json().items()) {
    CXR_CHECK(safe_name(name), phantoms.source(), ": dataset name '", name,
              "' must be letters, digits, '_' or '-'");
    s.phantoms[name] = parse_phantoms(phantoms.get_object(name));
  }

  models::JsonConfig gen = c.get_object("generator");
  s.generator_model = gen.get_string("model", "");
  const std::pair<const char*, nlohmann::json*> stages[] = {
      {"train_vae", &s.train_vae},
      {"train_unet", &s.train_unet},
      {"train_controlnet", &s.train_controlnet}};
  const GeneratorKind kinds[] = {GeneratorKind::Vae, GeneratorKind::UNet,
                                 GeneratorKind::ControlNet};
  for (size_t i = 0; i < 3; ++i) {
    *stages[i].second = gen.get_object(stages[i].first).json();
    check_known_keys(*stages[i].second, generator_config_keys(kinds[i]),
                     gen.source() + "." + stages[i].first);
  }
  models::JsonConfig sampling = gen.get_object("sampling");
  models::SampleOptions& so = s.sampling;
  so.scheduler = sampling.get_string("scheduler", "ddim");
  so.steps = sampling.get_int("steps", 50);
  so.guidance_scale = sampling.get_double("guidance_scale", so.guidance_scale);
  so.conditioning_scale = sampling.get_double("conditioning_scale", so.conditioning_scale);
  so.eta = sampling.get_double("eta", so.eta);
  so.height = sampling.get_int("height", 0);
  so.width = sampling.get_int("width", so.height);
  s.sample_batch = sampling.get_int("batch", s.sample_batch);
  sampling.check_all_used();
  gen.check_all_used();
  CXR_CHECK(so.steps >= 1 && s.sample_batch >= 1, sampling.source(),
            ": steps and batch must be >= 1");
  CXR_CHECK(so.height >= 0 && so.width >= 0, sampling.source(), ": height/width must be >= 0");
  const std::set<std::string> schedulers = {"ddpm", "ddim", "pndm", "euler_ancestral"};
  CXR_CHECK(schedulers.count(so.scheduler), sampling.source(), ": scheduler '", so.scheduler,
            "' is not one of ddpm, ddim, pndm, euler_ancestral");

  const nlohmann::json& tasks = c.has("tasks") ? c.json().at("tasks") : nlohmann::json();
  CXR_CHECK(tasks.is_array() && !tasks.empty(), source, ": 'tasks' must be a non-empty list");
  c.ignore({"tasks"});
  std::set<std::string> names;
  for (size_t i = 0; i < tasks.size(); ++i)
    s.tasks.push_back(parse_task(
        models::JsonConfig(tasks[i], source + ".tasks[" + std::to_string(i) + "]"), names));

  models::JsonConfig grid = c.get_object("grid");
  s.fractions = grid.get_double_list("fractions", {1.0});
  s.multipliers = grid.get_int_list("multipliers", {0, 2, 5, 10, 25});
  for (int64_t seed : grid.get_int_list("seeds", {1, 2})) {
    CXR_CHECK(seed >= 0, grid.source(), ": seeds must be >= 0, got ", seed);
    s.seeds.push_back(uint64_t(seed));
  }
  grid.check_all_used();
  CXR_CHECK(!s.fractions.empty(), grid.source(), ": fractions is empty");
  for (double f : s.fractions)
    CXR_CHECK(f > 0 && f <= 1, grid.source(), ": fractions must lie in (0, 1], got ", f);
  for (int64_t m : s.multipliers)
    CXR_CHECK(m >= 0, grid.source(), ": multipliers must be >= 0, got ", m);
  std::sort(s.fractions.begin(), s.fractions.end());
  std::sort(s.multipliers.begin(), s.multipliers.end());
  CXR_CHECK(
      std::adjacent_find(s.fractions.begin(), s.fractions.end()) == s.fractions.end() &&
          std::adjacent_find(s.multipliers.begin(), s.multipliers.end()) == s.multipliers.end(),
      grid.source(), ": fractions and multipliers must not repeat");
  if (s.multipliers.empty() || s.multipliers.front() != 0)
    s.multipliers.insert(s.multipliers.begin(), 0);  // the real-only baseline of every comparison
  std::set<uint64_t> unique(s.seeds.begin(), s.seeds.end());
  CXR_CHECK(unique.size() == s.seeds.size(), grid.source(), ": seeds must not repeat");

  models::JsonConfig stats = c.get_object("statistics");
  s.test = parse_t_test(stats.get_string("test", "welch"));
  s.alpha = stats.get_double("alpha", s.alpha);
  s.confidence = stats.get_double("confidence", s.confidence);
  stats.check_all_used();
  CXR_CHECK(s.alpha > 0 && s.alpha < 1, stats.source(), ": alpha must lie in (0, 1)");
  CXR_CHECK(s.confidence > 0 && s.confidence < 1, stats.source(),
            ": confidence must lie in (0, 1)");
  CXR_CHECK(s.seeds.size() >= 2 || s.multipliers.size() == 1, grid.source(),
            ": the statistics need at least 2 seeds (trials), got ", s.seeds.size());

  models::JsonConfig parallel = c.get_object("parallel");
  s.devices = parallel.get_string_list("devices", {});
  s.workers = parallel.get_int("workers", s.devices.empty() ? 1 : int64_t(s.devices.size()));
  s.worker_threads = parallel.get_int("threads", 0);
  parallel.check_all_used();
  CXR_CHECK(s.workers >= 1, parallel.source(), ": workers must be >= 1, got ", s.workers);
  CXR_CHECK(s.worker_threads >= 0, parallel.source(), ": threads must be >= 0");
  for (const std::string& d : s.devices) (void)Device::parse(d);  // throws naming a bad one
  CXR_CHECK(s.devices.empty() || int64_t(s.devices.size()) == s.workers, parallel.source(),
            ": devices lists ", s.devices.size(), " devices for ", s.workers,
            " workers (one per worker)");

  models::JsonConfig report = c.get_object("report");
  s.sample_images = report.get_int("sample_images", s.sample_images);
  report.check_all_used();
  CXR_CHECK(s.sample_images >= 1, report.source(), ": sample_images must be >= 1");
  c.check_all_used();

  // The study wires the stages together: the UNet trains on the VAE stage's model and the
  // ControlNet starts from the UNet stage's.
  for (const auto& [stage, key] :
       {std::pair<const char*, const char*>{"train_unet", "vae"}, {"train_controlnet", "model"}}) {
    const nlohmann::json& stage_json =
        stage == std::string("train_unet") ? s.train_unet : s.train_controlnet;
    CXR_CHECK(!s.generator_model.empty() || !stage_json.contains(key), source, ": generator.",
              stage, ".", key, " is set by the study (the previous stage's model); remove it");
  }
  if (s.needs_generator() && s.generator_model.empty())
    for (const auto& [key, value] :
         {std::pair<const char*, nlohmann::json*>{"train_vae", &s.train_vae},
          {"train_unet", &s.train_unet},
          {"train_controlnet", &s.train_controlnet}})
      CXR_CHECK(!value->empty(), source, ": generator.model is empty, so generator.", key,
                " must configure the stage to train");
  return s;
}

std::string fraction_label(double fraction) {
  std::ostringstream s;
  s << fraction * 100.0;
  return s.str();
}

std::string metric_json_key(const StudyTask& task) {
  static const std::map<std::string, std::string> keys = {
      {"f1", "f1_macro_mean_over_labels"},
      {"micro_f1", "f1_micro_pooled_counts"},
      {"auroc", "auroc_macro_over_labels_with_both_classes"},
      {"dice", "dice_mean_empty_as_one"},
      {"dice_skip_empty", "dice_mean_skip_empty"},
      {"global_dice", "dice_global_pooled_pixels"}};
  return keys.at(task.metric);
}

std::string metric_display_name(const StudyTask& task) {
  static const std::map<std::string, std::string> names = {{"f1", "F1"},
                                                           {"micro_f1", "micro F1"},
                                                           {"auroc", "AUROC"},
                                                           {"dice", "Dice"},
                                                           {"dice_skip_empty", "Dice (positives)"},
                                                           {"global_dice", "global Dice"}};
  return names.at(task.metric);
}

}  // namespace cxr::experiments
