// The downstream training loop and its run folder (trainer.h).
#include "experiments/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "data/csv.h"
#include "data/splits.h"
#include "experiments/progress.h"
#include "experiments/run_log.h"
#include "nn/checkpoint.h"
#include "nn/grad_utils.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

std::unique_ptr<nn::Optimizer> make_optimizer(const TrainConfig& c,
                                              const std::vector<Tensor>& params) {
  if (c.optimizer == "sgd")
    return std::make_unique<nn::SGD>(
        params, nn::SGDOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
  nn::AdamOptions o{.lr = c.lr, .weight_decay = c.weight_decay};
  if (c.optimizer == "adam") return std::make_unique<nn::Adam>(params, o);
  return std::make_unique<nn::AdamW>(params, o);
}

nn::Schedule make_schedule(const TrainConfig& c, int64_t total_steps) {
  if (c.schedule == "cosine") return nn::Schedule::cosine(c.warmup_steps, total_steps);
  if (c.schedule == "linear") return nn::Schedule::linear(c.warmup_steps, total_steps);
  return nn::Schedule::constant(c.warmup_steps);
}

// The epoch table of metrics.csv: fixed columns then the validation scalars.
struct MetricsTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  void write(const fs::path& path) const {
    std::string text;
    for (size_t i = 0; i < columns.size(); ++i) text += (i ? "," : "") + columns[i];
    text += "\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) text += (i ? "," : "") + r[i];
      text += "\n";
    }
    write_file_atomic(path.string(), text, "metrics.csv");
  }
  // The rows of an earlier invocation up to `last_epoch` (a resumed run drops later rows).
  void read(const fs::path& path, int64_t last_epoch) {
    if (!fs::exists(path)) return;
    const data::CsvTable t = data::read_csv(path.string());
    columns = t.header;
    for (const auto& r : t.rows)
      if (std::stoll(r.at(0)) <= last_epoch) rows.push_back(r);
  }
};

// Where the run stands, stored in each checkpoint.
struct RunState {
  int64_t epoch = 0;  // epochs completed
  int64_t best_epoch = 0;
  double best_value = -INFINITY;  // of the selection metric (higher is better)

  std::string json() const {
    return nlohmann::json{{"epoch", epoch}, {"best_epoch", best_epoch}, {"best_value", best_value}}
        .dump();
  }
  static RunState parse(const std::string& text, const std::string& source) {
    RunState s;
    try {
      const auto j = nlohmann::json::parse(text);
      s.epoch = j.at("epoch").get<int64_t>();
      s.best_epoch = j.at("best_epoch").get<int64_t>();
      s.best_value = j.at("best_value").is_null() ? -INFINITY : j.at("best_value").get<double>();
    } catch (const nlohmann::json::exception& e) {
      CXR_FAIL(source, ": not a checkpoint of a training run (", e.what(), ")");
    }
    return s;
  }
};

// Loads the matching tensors of a state dict (e.g. ImageNet weights); returns what it did.
std::string load_init_weights(nn::Module& module, const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  nn::LoadReport report = module.load_state_dict(f.tensors, /*strict=*/false);
  const size_t expected = module.state_dict().size();
  const size_t skipped = report.missing_keys.size() + report.shape_mismatches.size();
  CXR_CHECK(skipped < expected, "init_weights '", path,
            "' matches no tensor of the model: ", report.str());
  return "init_weights: loaded " + std::to_string(expected - skipped) + " of " +
         std::to_string(expected) + " tensors from " + path +
         (report.ok() ? "" : " (not loaded: " + report.str() + ")");
}

double select_value(const TrainConfig& c, const EvalResult& r) {
  if (c.select_metric == "loss") return -r.loss;
  auto it = r.scalars.find(c.select_metric);
  CXR_CHECK(it != r.scalars.end(), "select_metric '", c.select_metric,
            "' is not among the evaluation's metrics");
  return it->second;
}

}  // namespace

nlohmann::json run_training(TaskKind kind, TrainConfig config, TrainTask& task,
                            const TrainOptions& opt) {
  CXR_CHECK(!opt.out.empty(), "--out (the run folder) is required");
  const fs::path dir(opt.out);
  const fs::path ckpt_dir = dir / "checkpoints", last_path = ckpt_dir / "last.safetensors",
                 best_path = ckpt_dir / "best.safetensors";
  const nlohmann::json resolved = train_config_json(kind, config);
  if (opt.resume) {
    CXR_CHECK(fs::exists(last_path), "--resume: '", opt.out,
              "' has no checkpoints/last.safetensors to resume from");
    // A resumed run reuses the split it made.
    if (config.split_file.empty() && fs::exists(dir / "split.csv"))
      config.split_file = (dir / "split.csv").string();
  } else {
    CXR_CHECK(!fs::exists(dir / "config.json"), "run folder '", opt.out,
              "' already holds a run; continue it with --resume or choose another --out");
  }

  // Everything that can fail on bad input happens before the run folder is touched: the data,
  // the model and its initial weights.
  const TaskData data = prepare_task_data(kind, config);
  task.prepare(data);
  nlohmann::json model_config = config.model_config;
  task.complete_model_config(model_config);
  manual_seed(config.seed);  // the layers' initialisation draws from the default generator
  std::unique_ptr<models::RunnableModel> model =
      models::build_model(config.model, models::JsonConfig(model_config, "model_config"));
  nn::Module& module = model->module();
  std::string init_report;
  if (!config.init_weights.empty()) init_report = load_init_weights(module, config.init_weights);
  module.to(Device::parse(config.device));

  if (!opt.resume) {
    fs::create_directories(ckpt_dir);
    if (data.split_generated) data::write_split((dir / "split.csv").string(), data.split);
    write_file_atomic((dir / "config.json").string(), resolved.dump(2) + "\n", "config.json");
  }
  RunLog log(dir / "log.txt");
  log(std::string(opt.resume ? "resuming " : "starting ") + config.model + " on " + data.summary());
  if (!init_report.empty()) log(init_report);

  data::Loader train_loader(data.train_source,
                            {.batch_size = config.batch_size,
                             .shuffle = true,
                             // A last batch of one image would break BatchNorm's batch statistics.
                             .drop_last = int64_t(data.train->size()) > config.batch_size,
                             .seed = config.seed,
                             .workers = int(config.workers),
                             // Batches for a GPU come in page-locked memory (async copies).
                             .pin_memory = Device::parse(config.device).is_cuda()});
  auto eval_loader = [&](std::shared_ptr<data::ExampleSource> src) {
    return std::make_unique<data::Loader>(
        src, data::LoaderOptions{.batch_size = config.batch_size,
                                 .shuffle = false,
                                 .seed = config.seed,
                                 .workers = int(config.workers),
                                 .pin_memory = Device::parse(config.device).is_cuda()});
  };
  auto val_loader = eval_loader(data.val_source);
  auto test_loader = eval_loader(data.test_source);
  const bool has_val = data.val->size() > 0;
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  CXR_CHECK(steps_per_epoch > 0, "the training set yields no batch");

  std::vector<Tensor> params = module.parameters();
  std::unique_ptr<nn::Optimizer> optimizer = make_optimizer(config, params);
  nn::LRScheduler scheduler(*optimizer, make_schedule(config, config.epochs * steps_per_epoch));

  RunState state;
  MetricsTable table;
  auto training_state = [&](bool full, const RunState& s) {
    nn::TrainingState ts;
    ts.model = module.state_dict();
    if (full) {
      ts.optimizer = optimizer.get();
      ts.scheduler = &scheduler;
      ts.generator = &default_generator();
    }
    ts.step = s.epoch * steps_per_epoch;
    ts.config = s.json();
    return ts;
  };
  if (opt.resume) {
    nn::TrainingState ts = training_state(true, state);
    nn::load_checkpoint(last_path.string(), ts);
    state = RunState::parse(ts.config, last_path.string());
    table.read(dir / "metrics.csv", state.epoch);
    log("resumed after epoch " + std::to_string(state.epoch) + " of " +
        std::to_string(config.epochs));
  }

  Progress progress(config.epochs, steps_per_epoch, state.epoch + 1);
  int64_t epochs_this_run = 0;
  while (state.epoch < config.epochs) {
    if (opt.stop_after > 0 && epochs_this_run == opt.stop_after) {
      log("stopping after " + std::to_string(epochs_this_run) +
          " epoch(s) as asked (--stop-after); continue with --resume");
      return nlohmann::json{{"stopped_after_epoch", state.epoch}};
    }
    const int64_t epoch = state.epoch + 1;
    const auto t0 = std::chrono::steady_clock::now();
    module.train();
    train_loader.start_epoch(epoch - 1);
    double loss_sum = 0;
    int64_t steps = 0;
    while (auto batch = train_loader.next()) {
      Tensor loss = task.loss(*model, *batch);
      const double value = loss.item();
      CXR_CHECK(std::isfinite(value), "the training loss became ", value, " at epoch ", epoch,
                " step ", steps + 1, " (lower lr?)");
      optimizer->zero_grad();
      cxr::backward(loss);
      if (config.grad_clip > 0) nn::clip_grad_norm_(params, config.grad_clip);
      optimizer->step();
      scheduler.step();
      loss_sum += value;
      ++steps;
      progress.update(epoch, steps, loss_sum / double(steps), batch->size());
    }
    const double train_loss = loss_sum / double(std::max<int64_t>(steps, 1));

    std::vector<std::string> columns = {"epoch", "step", "lr", "train_loss"};
    std::vector<std::string> row = {std::to_string(epoch), std::to_string(epoch * steps_per_epoch),
                                    format_number(scheduler.last_lrs().at(0)),
                                    format_number(train_loss)};
    std::string summary =
        "epoch " + std::to_string(epoch) + ": train loss " + format_number(train_loss);
    bool improved = !has_val;
    if (has_val) {
      const EvalResult val = task.evaluate(*model, *val_loader, false);
      columns.push_back("val_loss");
      row.push_back(format_number(val.loss));
      summary += ", val loss " + format_number(val.loss);
      for (const auto& [k, v] : val.scalars) {
        columns.push_back("val_" + k);
        row.push_back(format_number(v));
        summary += ", val " + k + " " + format_number(v);
      }
      const double value = select_value(config, val);
      improved = value > state.best_value || state.best_epoch == 0;
      if (improved) state.best_value = value;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    columns.push_back("seconds");
    row.push_back(format_number(seconds));
    state.epoch = epoch;
    if (improved) {
      state.best_epoch = epoch;
      nn::save_checkpoint(best_path.string(), training_state(false, state));
      summary += " (best)";
    }
    // The last checkpoint after the best one, so a resumed run never misses its best weights.
    nn::save_checkpoint(last_path.string(), training_state(true, state));
    table.columns = columns;
    table.rows.push_back(row);
    table.write(dir / "metrics.csv");
    progress.end_epoch();
    log(summary);
    ++epochs_this_run;
  }

  // Final evaluation with the best weights (selected on validation; the last without validation).
  {
    nn::TrainingState ts;
    ts.model = module.state_dict();
    nn::load_checkpoint(best_path.string(), ts);
  }
  nlohmann::json result;
  result["task"] = kind == TaskKind::Classification ? "classification" : "segmentation";
  result["dataset"] = config.dataset;
  result["model"] = config.model;
  result["best_epoch"] = state.best_epoch;
  result["epochs"] = config.epochs;
  result["selected_by"] =
      has_val ? "val_" + config.select_metric : "last epoch (no validation set)";
  result["data"] = {{"train_real", data.real_train},
                    {"train_synthetic", data.synthetic_train},
                    {"val", data.val->size()},
                    {"test", data.test->size()},
                    {"train_fraction", config.train_fraction},
                    {"synthetic_per_real", config.synthetic_per_real}};
  if (has_val) {
    task.calibrate(*model, *val_loader);
    const EvalResult val = task.evaluate(*model, *val_loader, false);
    result["val"] = val.metrics;
    result["val"]["loss"] = val.loss;
  }
  const EvalResult test = task.evaluate(*model, *test_loader, true);
  result["test"] = test.metrics;
  result["test"]["loss"] = test.loss;
  std::string predictions = task.prediction_header() + "\n";
  for (const auto& r : test.prediction_rows) predictions += r + "\n";
  write_file_atomic((dir / "predictions.csv").string(), predictions, "predictions.csv");
  write_file_atomic((dir / "metrics.json").string(), result.dump(2) + "\n", "metrics.json");
  log("test: " + test.metrics.dump());
  return result;
}

}  // namespace cxr::experiments
