// The study runner (study.h): phantoms, generator, synthetic pools, the grid of downstream runs,
// the report. Every stage is skipped when its output is complete and continued when it was
// interrupted.
#include "experiments/study.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "data/image_io.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "experiments/generator_trainer.h"
#include "experiments/study_report.h"
#include "experiments/study_results.h"
#include "experiments/subprocess.h"
#include "experiments/synthetic_sets.h"
#include "experiments/task_data.h"
#include "experiments/tasks.h"
#include "experiments/trainer.h"
#include "models/sd_folder.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/ops.h"
#include "tensor/sha256.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

void say(const std::string& line) {
  std::fprintf(stderr, "study: %s\n", line.c_str());
}

// One SHA-256 for a model folder: over the sorted relative paths and each file's SHA-256.
std::string folder_sha256(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), dir));
  std::sort(files.begin(), files.end());
  std::string listing;
  for (const auto& f : files)
    listing += f.generic_string() + " " + sha256_file_hex((dir / f).string()) + "\n";
  return sha256_hex(listing);
}

nlohmann::json read_json_file(const fs::path& path) {
  return models::JsonConfig::from_file(path.string()).json();
}

// A JSON file's content, or null when it is missing or does not parse (a marker to redo work).
nlohmann::json read_json_or_null(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

// The study's generator: where it is and its hash.
struct GeneratorRef {
  std::string folder, sha256;
};

// Trains (or reuses, or continues) one generator stage in <run>/generator/<name>.
std::string run_generator_stage(GeneratorKind kind, const std::string& name, nlohmann::json json,
                                const fs::path& run_dir, const std::string& device) {
  const fs::path dir = run_dir / "generator" / name, done = dir / "done.json";
  if (!json.contains("device")) json["device"] = device;
  const GeneratorConfig config = parse_generator_config(kind, json, "generator.train_" + name);
  // Compared and stored with the run folder as ${run}: a moved run folder still reuses it.
  const nlohmann::json resolved =
      relocatable(generator_config_json(kind, config), run_dir.string());
  const std::string model = (dir / "model").string();
  if (const nlohmann::json stored = read_json_or_null(done); stored.is_object()) {
    CXR_CHECK(stored.value("config", nlohmann::json()) == resolved, "generator stage '", name,
              "' in ", dir.string(),
              " was trained with another configuration; remove that folder to retrain it");
    say("generator " + name + ": reusing " + model);
    return model;
  }
  const bool resume = fs::exists(dir / "checkpoints" / "last.safetensors");
  if (!resume && fs::exists(dir)) fs::remove_all(dir);  // killed before its first checkpoint
  say("generator " + name + (resume ? ": continuing " : ": training ") + "in " + dir.string());
  std::unique_ptr<GeneratorTask> task = make_generator_task(kind, config);
  run_generator_training(kind, config, *task, {.out = dir.string(), .resume = resume});
  write_file_atomic(done.string(), nlohmann::json{{"config", resolved}, {"model", model}}.dump(2),
                    "done.json");
  return model;
}

GeneratorRef prepare_generator(const StudyConfig& s, const fs::path& run_dir) {
  GeneratorRef g;
  if (!s.generator_model.empty()) {
    CXR_CHECK(fs::is_directory(s.generator_model), "generator.model '", s.generator_model,
              "' names no folder");
    g.folder = s.generator_model;
  } else {
    const std::string vae =
        run_generator_stage(GeneratorKind::Vae, "vae", s.train_vae, run_dir, s.device);
    nlohmann::json unet = s.train_unet;
    unet["vae"] = vae + "/vae";  // the VAE stage writes its component folder under model/
    const std::string base =
        run_generator_stage(GeneratorKind::UNet, "unet", unet, run_dir, s.device);
    nlohmann::json controlnet = s.train_controlnet;
    controlnet["model"] = base;
    g.folder =
        run_generator_stage(GeneratorKind::ControlNet, "controlnet", controlnet, run_dir, s.device);
  }
  g.sha256 = folder_sha256(g.folder);
  return g;
}

// The cell's training configuration: the task's keys plus what the grid sets.
TrainConfig cell_train_config(const StudyConfig& s, const StudyTask& t, const CellKey& k,
                              const std::string& synthetic_dir) {
  nlohmann::json j = t.train;
  j["train_fraction"] = k.fraction;
  j["seed"] = k.seed;
  if (!j.contains("device")) j["device"] = s.device;
  if (k.multiplier > 0) {
    j["synthetic_dir"] = synthetic_dir;
    j["synthetic_per_real"] = double(k.multiplier);
  }
  return parse_train_config(t.kind, j, "study task '" + t.name + "'");
}

// Loads the generator once, when a pool first needs images.
class GeneratorCache {
 public:
  GeneratorCache(const GeneratorRef& ref, const std::string& device)
      : ref_(ref), device_(Device::parse(device)) {}
  const models::LatentDiffusion& get() {
    if (!model_) model_ = load_sampling_pipeline(ref_.folder, "", device_);
    return *model_;
  }

 private:
  GeneratorRef ref_;
  Device device_;
  std::optional<models::LatentDiffusion> model_;
};

// Where the pool of (task, fraction, seed) lives.
fs::path pool_dir(const fs::path& run_dir, const std::string& task, double fraction,
                  uint64_t seed) {
  return run_dir / "synthetic" / task /
         ("f" + fraction_label(fraction) + "_s" + std::to_string(seed));
}

// The pool of (task, fraction, seed), complete up to `count` images; returns the folder of the
// nested set of `multiplier`. A finished pool leaves complete.json (its size and settings), so
// later cells neither re-plan nor re-check it.
std::string prepare_pool(const StudyConfig& s, const StudyTask& t, const CellKey& k,
                         const fs::path& run_dir, const GeneratorRef& gen, GeneratorCache& cache) {
  const TrainConfig real = cell_train_config(s, t, {t.name, k.fraction, 0, k.seed}, "");
  const TaskData data = prepare_task_data(t.kind, real);
  const int64_t per_set = data.real_train, count = s.multipliers.back() * per_set;
  const fs::path pool = pool_dir(run_dir, t.name, k.fraction, k.seed);
  const bool seg = t.kind == TaskKind::Segmentation;
  models::SampleOptions so = s.sampling;
  so.mode = models::parse_condition_mode(seg ? t.segmentation.mode : "t2i");
  // height/width 0 = the generator's native size (resolved when images are made).
  nlohmann::json settings = sampling_settings(so);
  settings["generator"] = relocatable(gen.folder, run_dir.string());
  settings["generator_sha256"] = gen.sha256;
  const nlohmann::json complete = {{"images", count}, {"settings", settings}};
  const fs::path marker = pool / "complete.json";
  if (read_json_or_null(marker) != complete) {
    fs::create_directories(pool);
    const SampleJobs jobs =
        seg ? plan_segmentation_jobs(*data.train, sample_captions(*data.train), count, k.seed,
                                     t.segmentation, pool.string())
            : plan_classification_jobs(data.label_names, data.positives, count, k.seed,
                                       t.classification, pool.string());
    SampleOutput out(pool.string(), settings, jobs.label_names);
    const bool pending = std::any_of(jobs.jobs.begin(), jobs.jobs.end(),
                                     [&](const SampleJob& j) { return !out.done(j); });
    if (pending) {
      const models::LatentDiffusion& model = cache.get();
      if (so.height == 0) so.height = native_image_size(model)[0];
      if (so.width == 0) so.width = native_image_size(model)[1];
      say("synthetic " + t.name + " f" + fraction_label(k.fraction) + "% seed " +
          std::to_string(k.seed) + ": " + std::to_string(count) + " images (" +
          std::to_string(s.multipliers.back()) + " x " + std::to_string(per_set) + " real)");
      run_sample_jobs(model, jobs, out, so, s.sample_batch);
    }
    out.write_manifest(jobs.jobs);
    write_file_atomic(marker.string(), complete.dump(2) + "\n", "complete.json");
  }
  return write_subset_manifest(pool.string(), k.multiplier * per_set,
                               "x" + std::to_string(k.multiplier));
}

// Real (top row) and synthetic (below; segmentation: with the condition mask in red) images of a
// task as one PNG, from the largest fraction's pool of the first seed.
void write_sample_sheet(const StudyConfig& s, const StudyTask& t, const fs::path& run_dir) {
  const double f = s.fractions.back();
  const fs::path pool = pool_dir(run_dir, t.name, f, s.seeds.front());
  if (!fs::exists(pool / "synthetic.csv")) return;
  const TaskData data =
      prepare_task_data(t.kind, cell_train_config(s, t, {t.name, f, 0, s.seeds.front()}, ""));
  const data::Dataset syn = data::read_synthetic(pool.string(), data.label_names);
  constexpr int64_t kTile = 96;
  const bool seg = t.kind == TaskKind::Segmentation;
  auto tile = [&](const data::Sample& sample, bool outline) {
    Tensor img = data::resize(data::read_image(sample.image_path, data::ColorMode::RGB), kTile,
                              kTile, data::Interp::Bilinear);
    if (!outline || !sample.mask_positive()) return img;
    const Tensor m =
        data::resize(raw::to(sample.mask_tensor(), kFloat32), kTile, kTile, data::Interp::Nearest);
    // Red where the mask is: R = max(R, 0.5 m + (1 - 0.5 m) R), G and B dimmed.
    const Tensor keep = raw::sub(raw::ones({1, kTile, kTile}), raw::mul(m, 0.5));
    Tensor r = raw::add(raw::mul(raw::narrow(img, 0, 0, 1), keep), raw::mul(m, 0.5));
    Tensor gb = raw::mul(raw::narrow(img, 0, 1, 2), keep);
    return raw::cat({r, gb}, 0);
  };
  std::vector<Tensor> rows(seg ? 3 : 2);
  std::vector<std::vector<Tensor>> tiles(rows.size());
  const int64_t n = std::min<int64_t>(
      s.sample_images, std::min<int64_t>(int64_t(data.train->size()), int64_t(syn.size())));
  for (int64_t i = 0; i < n; ++i) {
    tiles[0].push_back(tile(data.train->samples[size_t(i)], seg));
    tiles[1].push_back(tile(syn.samples[size_t(i)], false));
    if (seg) tiles[2].push_back(tile(syn.samples[size_t(i)], true));
  }
  if (n == 0) return;
  for (size_t r = 0; r < rows.size(); ++r) rows[r] = raw::stack(tiles[r], 0);
  fs::create_directories(run_dir / "report");
  write_grid((run_dir / "report" / (t.name + "_samples.png")).string(), rows);
}

// Runs one cell and returns its result.
CellResult run_cell(const StudyConfig& s, const StudyTask& t, const CellKey& k,
                    const fs::path& run_dir, const std::string& synthetic_dir,
                    const GeneratorRef& gen, const std::string& study_sha) {
  const TrainConfig config = cell_train_config(s, t, k, synthetic_dir);
  const fs::path dir = run_dir / "cells" / k.id();
  const bool resume = fs::exists(dir / "checkpoints" / "last.safetensors");
  if (!resume && fs::exists(dir)) fs::remove_all(dir);  // killed before its first epoch ended
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<TrainTask> task = make_train_task(t.kind, config);
  const nlohmann::json metrics =
      run_training(t.kind, config, *task, {.out = dir.string(), .resume = resume});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  CellResult r;
  r.cell = k;
  r.test = metrics.at("test");
  const std::string key = metric_json_key(t);
  CXR_CHECK(r.test.contains(key) && r.test[key].is_number(), "cell ", k.id(), ": the test metric ",
            key, " is undefined (", r.test.value(key, nlohmann::json()).dump(),
            "); the test set needs both classes / some masks");
  r.metric = r.test[key].get<double>();
  const nlohmann::json resolved = relocatable(train_config_json(t.kind, config), run_dir.string());
  r.provenance = {{"kind", t.kind == TaskKind::Classification ? "classification" : "segmentation"},
                  {"dataset", config.dataset},
                  {"model", config.model},
                  {"metric", t.metric},
                  {"metric_key", key},
                  {"train_real", metrics.at("data").at("train_real")},
                  {"train_synthetic", metrics.at("data").at("train_synthetic")},
                  {"test_images", metrics.at("data").at("test")},
                  {"generator", k.multiplier > 0 ? relocatable(gen.folder, run_dir.string()) : ""},
                  {"generator_sha256", k.multiplier > 0 ? gen.sha256 : ""},
                  {"study_config_sha256", study_sha},
                  {"cell_config_sha256", sha256_hex(resolved.dump())},
                  {"seconds", seconds}};
  return r;
}

// What identifies the experiment: the config without its execution settings ("parallel": how
// many workers run the cells changes no result), hashed into every result's provenance.
nlohmann::json experiment_of(nlohmann::json raw) {
  if (raw.is_object()) raw.erase("parallel");
  return raw;
}
std::string experiment_sha256(const nlohmann::json& raw) {
  return sha256_hex(experiment_of(raw).dump());
}

// study.json: the config as given, with where it came from. A run folder holds one experiment;
// its execution settings may change between invocations (the workers read them from here).
std::string store_config(const nlohmann::json& raw, const std::string& source,
                         const std::string& config_dir, const fs::path& run_dir) {
  const fs::path path = run_dir / "study.json";
  const nlohmann::json stored = {{"config", raw}, {"source", source}, {"config_dir", config_dir}};
  if (fs::exists(path)) {
    const nlohmann::json old = read_json_file(path);
    CXR_CHECK(experiment_of(old.value("config", nlohmann::json())) == experiment_of(raw),
              "run folder '", run_dir.string(), "' holds a study with another configuration (",
              path.string(), "); use another --out, or the same config to continue it");
  }
  if (!fs::exists(path) || read_json_file(path) != stored)
    write_file_atomic(path.string(), stored.dump(2) + "\n", "study.json");
  return experiment_sha256(raw);
}

}  // namespace

StudyConfig load_run_config(const std::string& run_dir) {
  const fs::path path = fs::path(run_dir) / "study.json";
  CXR_CHECK(fs::exists(path), "'", run_dir, "' is not a study run folder (no study.json)");
  const nlohmann::json stored = read_json_file(path);
  CXR_CHECK(stored.contains("config") && stored.contains("config_dir"), path.string(),
            ": 'config' or 'config_dir' is missing");
  return parse_study_config(stored["config"], path.string() + " (config)", run_dir,
                            stored["config_dir"].get<std::string>());
}

namespace {

// What every invocation (the study itself or one of its workers) knows about the grid.
struct Grid {
  StudyConfig config;
  fs::path run_dir;
  std::string study_sha;
  std::vector<CellKey> cells;
  std::vector<bool> done;

  const StudyTask& task(const CellKey& k) const {
    return *std::find_if(config.tasks.begin(), config.tasks.end(),
                         [&](const StudyTask& t) { return t.name == k.task; });
  }
  std::string result_path(const CellKey& k) const {
    return (run_dir / "results" / (k.id() + ".json")).string();
  }
};

// The cells in grid order and which of them have an intact result. Corrupt result files are
// moved aside (when `repair`) and their cells count as not done.
Grid make_grid(StudyConfig config, const fs::path& run_dir, std::string study_sha, bool repair) {
  Grid g{std::move(config), run_dir, std::move(study_sha), {}, {}};
  for (const StudyTask& t : g.config.tasks)
    for (double f : g.config.fractions)
      for (uint64_t seed : g.config.seeds)
        for (int64_t m : g.config.multipliers) g.cells.push_back({t.name, f, m, seed});
  fs::create_directories(run_dir / "results");
  g.done.resize(g.cells.size());
  for (size_t i = 0; i < g.cells.size(); ++i) {
    std::string problem;
    const std::string path = g.result_path(g.cells[i]);
    g.done[i] = read_cell_result(path, g.cells[i], &problem).has_value();
    if (!problem.empty() && repair) {
      say("result " + path + " is corrupt (" + problem + "): moved to " + path +
          ".corrupt; the cell runs again");
      fs::rename(path, path + ".corrupt");
    }
  }
  return g;
}

// The generator as the study's parent recorded it for its workers (generator.json).
void store_generator(const fs::path& run_dir, const GeneratorRef& gen) {
  write_file_atomic((run_dir / "generator.json").string(),
                    nlohmann::json{{"folder", gen.folder}, {"sha256", gen.sha256}}.dump(2) + "\n",
                    "generator.json");
}
GeneratorRef load_generator(const fs::path& run_dir) {
  const nlohmann::json j = read_json_file(run_dir / "generator.json");
  return {j.at("folder").get<std::string>(), j.at("sha256").get<std::string>()};
}

// Runs the cells i with i % workers == worker that are not done (at most `stop_after` of them
// when > 0); returns false when it stopped early.
bool run_cells(const Grid& g, const GeneratorRef& gen, GeneratorCache& cache, int64_t worker,
               int64_t workers, int64_t stop_after) {
  const StudyConfig& s = g.config;
  int64_t ran = 0;
  for (size_t i = 0; i < g.cells.size(); ++i) {
    if (g.done[i] || int64_t(i) % workers != worker) continue;
    if (stop_after > 0 && ran == stop_after) {
      say("stopped after " + std::to_string(ran) + " cells as asked; run again to continue");
      return false;
    }
    const CellKey& k = g.cells[i];
    const StudyTask& t = g.task(k);
    StudyConfig cell_config = s;
    if (!s.devices.empty()) cell_config.device = s.devices[size_t(worker)];
    say((workers > 1 ? "[worker " + std::to_string(worker) + "] " : std::string()) + "cell " +
        std::to_string(i + 1) + "/" + std::to_string(g.cells.size()) + " " + k.id() + ": " +
        t.name + ", " + fraction_label(k.fraction) + "% real, " +
        (k.multiplier ? std::to_string(k.multiplier) + "x synthetic" : "real only") + ", seed " +
        std::to_string(k.seed));
    try {
      const std::string synthetic =
          k.multiplier > 0 ? prepare_pool(cell_config, t, k, g.run_dir, gen, cache) : "";
      const CellResult r = run_cell(cell_config, t, k, g.run_dir, synthetic, gen, g.study_sha);
      write_cell_result(g.result_path(k), r);
      say("cell " + k.id() + ": test " + metric_display_name(t) + " " + std::to_string(r.metric));
    } catch (const Error& e) {
      CXR_FAIL("cell ", k.id(), " (", (g.run_dir / "cells" / k.id()).string(), "): ", e.what());
    }
    ++ran;
  }
  return true;
}

// Makes every synthetic pool that a pending cell needs (before the workers start).
void prepare_pools(const Grid& g, const GeneratorRef& gen, GeneratorCache& cache) {
  for (size_t i = 0; i < g.cells.size(); ++i) {
    const CellKey& k = g.cells[i];
    if (!g.done[i] && k.multiplier > 0)
      (void)prepare_pool(g.config, g.task(k), k, g.run_dir, gen, cache);
  }
}

// Starts the workers and waits for them; returns true when every one finished its cells.
bool run_workers(const Grid& g, int64_t stop_after) {
  const StudyConfig& s = g.config;
  const int64_t hardware = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
  const int64_t threads =
      s.worker_threads > 0 ? s.worker_threads : std::max<int64_t>(1, hardware / s.workers);
  say(std::to_string(s.workers) + " workers, " + std::to_string(threads) + " threads each");
  std::vector<ChildProcess> children;
  for (int64_t w = 0; w < s.workers; ++w)
    children.push_back({{"study-worker", g.run_dir.string(), "--worker", std::to_string(w),
                         "--stop-after-cells", std::to_string(stop_after)},
                        {{"OMP_NUM_THREADS", std::to_string(threads)}}});
  const std::vector<int> status = run_children(children);
  bool all_done = true;
  for (size_t w = 0; w < status.size(); ++w) {
    CXR_CHECK(status[w] == 0 || status[w] == kWorkerStopped, "study worker ", w,
              " failed (exit status ", status[w], "); its messages are above");
    all_done &= status[w] == 0;
  }
  return all_done;
}

void finish(const Grid& g) {
  if (g.config.needs_generator())
    for (const StudyTask& t : g.config.tasks) write_sample_sheet(g.config, t, g.run_dir);
  std::printf("%s", write_study_report(g.run_dir.string()).c_str());
}

}  // namespace

bool run_study(const nlohmann::json& raw, const std::string& source, const std::string& config_dir,
               const StudyOptions& o) {
  CXR_CHECK(!o.run_dir.empty(), "study: the run folder is required");
  const fs::path run_dir = fs::absolute(o.run_dir);
  // Everything about the config is checked before the run folder is touched.
  StudyConfig s = parse_study_config(raw, source, run_dir.string(), config_dir);
  fs::create_directories(run_dir);
  std::string study_sha = store_config(raw, source, config_dir, run_dir);

  for (const auto& [name, options] : s.phantoms) {
    const fs::path dir = run_dir / "phantoms" / name;
    if (fs::exists(dir)) continue;  // written into a temporary folder and renamed: complete
    say("phantoms " + name + ": " + std::to_string(options.count) + " " +
        data::phantom_layout_name(options.layout) + " images of " +
        std::to_string(options.phantom.size) + " px");
    data::write_phantom_dataset(dir.string(), options);
  }
  // Every task's training config is valid (data present) before anything trains.
  for (const StudyTask& t : s.tasks)
    (void)cell_train_config(s, t, {t.name, s.fractions.front(), 0, s.seeds.front()}, "");

  const Grid g = make_grid(std::move(s), run_dir, std::move(study_sha), true);
  const int64_t done = std::count(g.done.begin(), g.done.end(), true);
  say(std::to_string(g.cells.size()) + " cells (" + std::to_string(g.config.tasks.size()) +
      " tasks x " + std::to_string(g.config.fractions.size()) + " fractions x " +
      std::to_string(g.config.seeds.size()) + " seeds x " +
      std::to_string(g.config.multipliers.size()) + " multipliers), " + std::to_string(done) +
      " already done");

  bool needs_pools = false;
  for (size_t i = 0; i < g.cells.size(); ++i)
    needs_pools |= !g.done[i] && g.cells[i].multiplier > 0;
  GeneratorRef gen;
  if (needs_pools) {
    gen = prepare_generator(g.config, run_dir);
    store_generator(run_dir, gen);
  }
  GeneratorCache cache(gen, g.config.device);

  bool complete;
  if (g.config.workers == 1) {
    complete = run_cells(g, gen, cache, 0, 1, o.stop_after_cells);
  } else {
    // The pools first (each uses every core), then the cells side by side.
    if (needs_pools) prepare_pools(g, gen, cache);
    complete = run_workers(g, o.stop_after_cells);
  }
  if (!complete) return false;
  finish(g);
  return true;
}

int run_study_worker(const std::string& run_dir_str, int64_t worker, int64_t stop_after) {
  const fs::path run_dir = fs::absolute(run_dir_str);
  const StudyConfig s = load_run_config(run_dir.string());
  CXR_CHECK(worker >= 0 && worker < s.workers, "study worker ", worker, " of ", s.workers,
            ": no such worker");
  const std::string study_sha =
      experiment_sha256(read_json_file(run_dir / "study.json").at("config"));
  // The parent repaired corrupt results; a worker only skips the intact ones.
  const Grid g = make_grid(s, run_dir, study_sha, false);
  bool needs_pools = false;
  for (size_t i = 0; i < g.cells.size(); ++i)
    needs_pools |= !g.done[i] && g.cells[i].multiplier > 0;
  const GeneratorRef gen = needs_pools ? load_generator(run_dir) : GeneratorRef{};
  GeneratorCache cache(gen, s.devices.empty() ? s.device : s.devices[size_t(worker)]);
  return run_cells(g, gen, cache, worker, s.workers, stop_after) ? 0 : kWorkerStopped;
}

}  // namespace cxr::experiments
