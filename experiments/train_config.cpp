// Downstream training configuration (train_config.h).
#include "experiments/train_config.h"

#include <filesystem>
#include <functional>
#include <sstream>

#include "experiments/config_keys.h"
#include "models/json_config.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace {

void visit_keys(TaskKind task, TrainConfig& c, KeyVisitor& v) {
  const bool cls = task == TaskKind::Classification;
  v("dataset", c.dataset, "string",
    cls ? "dataset reader: rsna (Pneumonia) or chexpert (5 labels, official split)"
        : "dataset reader: siim or candid-ptx (pneumothorax masks)");
  v("data_root", c.data_root, "path", "the dataset's folder in its published layout (required)");
  v("split_file", c.split_file, "path",
    "split file to use (cxr split format); empty: a split is made from split_seed and saved in "
    "the run folder as split.csv");
  v("split_seed", c.split_seed, "int", "seed of the patient-level random split");
  v("test_fraction", c.test_fraction, "number", "share of patients in the test set, in [0, 1)");
  v("val_fraction", c.val_fraction, "number",
    "share of patients in the validation set (best checkpoint, threshold), in [0, 1)");
  v("train_fraction", c.train_fraction, "number",
    "share of the training split used, in (0, 1]; nested: 0.01 ⊂ 0.1 ⊂ 1");
  if (cls)
    v("labels", c.labels, "[string]",
      "labels to learn (default: the dataset's: rsna Pneumonia; chexpert the 5 study labels)");
  else {
    v("positive_only", c.positive_only, "bool",
      "keep only images with a pneumothorax mask (the paper's SIIM protocol)");
    v("mask_size", c.mask_size, "int",
      "side of the square grid the RLE masks are written on (1024 for SIIM-ACR and CANDID-PTX); "
      "0 = the side of the dataset's first image");
  }
  v("synthetic_dir", c.synthetic_dir, "path",
    "folder with synthetic.csv (generated images, their labels/masks); empty: real data only");
  v("synthetic_per_real", c.synthetic_per_real, "number",
    "synthetic training images added per real training image (e.g. 2, 5, 10, 25)");
  v("image_size", c.image_size, "int", "square input size in pixels");
  v("augment", c.augment, "bool", "random affine and brightness/contrast on training images");
  v("workers", c.workers, "int", "data loading threads (results do not depend on it)");
  v("model", c.model, "string",
    cls ? "resnet18 | resnet34 | resnet50" : "unetplusplus (smp UnetPlusPlus, ResNet encoder)");
  v("model_config", c.model_config, "object",
    cls ? "the model's keys (cxr run-model --help), e.g. {\"base_width\": 16}; in_channels and "
          "num_classes are set from the data"
        : "the model's keys (cxr run-model --help), e.g. {\"encoder_name\": \"resnet18\"}; "
          "in_channels and classes are set from the data");
  v("init_weights", c.init_weights, "path",
    "safetensors state dict to start from (matching keys are loaded, e.g. ImageNet weights)");
  v("epochs", c.epochs, "int", "passes over the training set");
  v("batch_size", c.batch_size, "int", "images per step");
  v("optimizer", c.optimizer, "string", "adamw | adam | sgd");
  v("lr", c.lr, "number", "peak learning rate");
  v("weight_decay", c.weight_decay, "number", "weight decay (decoupled for adamw)");
  v("momentum", c.momentum, "number", "sgd momentum");
  v("schedule", c.schedule, "string", "learning-rate schedule: constant | cosine | linear");
  v("warmup_steps", c.warmup_steps, "int", "linear warm-up steps");
  v("grad_clip", c.grad_clip, "number", "max gradient L2 norm; 0 = off");
  if (cls) {
    v("pos_weight", c.pos_weight, "number",
      "BCE pos_weight for every label; 0 = none; -1 = negatives/positives of the training set");
    v("tune_threshold", c.tune_threshold, "bool",
      "choose each label's F1 threshold on the validation set instead of 0.5");
  } else {
    v("dice_weight", c.dice_weight, "number", "weight of the (batch) Dice loss");
    v("bce_weight", c.bce_weight, "number", "weight of the pixel BCE-with-logits loss");
  }
  v("select_metric", c.select_metric, "string",
    cls ? "validation metric that picks the best checkpoint: f1 | auroc | loss"
        : "validation metric that picks the best checkpoint: dice | global_dice | loss");
  v("seed", c.seed, "int", "seed of initialisation, order, augmentation, synthetic draw");
  v("device", c.device, "string", "cpu or cuda:N");
}

void validate(TaskKind task, const TrainConfig& c, const std::string& src) {
  auto fail_unless = [&](bool ok, const char* key, const std::string& what) {
    CXR_CHECK(ok, src, ": key '", key, "' ", what);
  };
  const bool cls = task == TaskKind::Classification;
  const std::vector<std::string> datasets = cls ? std::vector<std::string>{"rsna", "chexpert"}
                                                : std::vector<std::string>{"siim", "candid-ptx"};
  bool known = false;
  for (const auto& d : datasets) known = known || d == c.dataset;
  fail_unless(known, "dataset",
              "must be " + datasets[0] + " or " + datasets[1] + ", got '" + c.dataset + "'");
  fail_unless(!c.data_root.empty(), "data_root", "is required (the dataset's folder)");
  fail_unless(std::filesystem::is_directory(c.data_root), "data_root",
              "names no folder: '" + c.data_root + "'");
  fail_unless(c.split_file.empty() || std::filesystem::exists(c.split_file), "split_file",
              "names no file: '" + c.split_file + "'");
  fail_unless(c.test_fraction >= 0 && c.test_fraction < 1, "test_fraction", "must be in [0, 1)");
  fail_unless(c.val_fraction >= 0 && c.val_fraction < 1, "val_fraction", "must be in [0, 1)");
  fail_unless(c.test_fraction + c.val_fraction < 1, "val_fraction",
              "plus test_fraction must be below 1");
  fail_unless(c.train_fraction > 0 && c.train_fraction <= 1, "train_fraction",
              "must be in (0, 1], got " + std::to_string(c.train_fraction));
  fail_unless(c.synthetic_per_real >= 0, "synthetic_per_real", "must be >= 0");
  fail_unless(c.synthetic_per_real == 0 || !c.synthetic_dir.empty(), "synthetic_dir",
              "is required when synthetic_per_real > 0");
  fail_unless(c.synthetic_dir.empty() || std::filesystem::is_directory(c.synthetic_dir),
              "synthetic_dir", "names no folder: '" + c.synthetic_dir + "'");
  fail_unless(c.image_size >= 32 && c.image_size % 32 == 0, "image_size",
              "must be a multiple of 32, >= 32");
  fail_unless(c.workers >= 0, "workers", "must be >= 0");
  fail_unless(c.mask_size >= 0, "mask_size", "must be >= 0");
  fail_unless(c.epochs >= 1, "epochs", "must be >= 1");
  fail_unless(c.batch_size >= 1, "batch_size", "must be >= 1");
  fail_unless(c.optimizer == "adamw" || c.optimizer == "adam" || c.optimizer == "sgd", "optimizer",
              "must be adamw, adam or sgd, got '" + c.optimizer + "'");
  fail_unless(c.lr > 0, "lr", "must be > 0");
  fail_unless(c.weight_decay >= 0, "weight_decay", "must be >= 0");
  fail_unless(c.schedule == "constant" || c.schedule == "cosine" || c.schedule == "linear",
              "schedule", "must be constant, cosine or linear, got '" + c.schedule + "'");
  fail_unless(c.warmup_steps >= 0, "warmup_steps", "must be >= 0");
  fail_unless(c.grad_clip >= 0, "grad_clip", "must be >= 0");
  fail_unless(c.init_weights.empty() || std::filesystem::exists(c.init_weights), "init_weights",
              "names no file: '" + c.init_weights + "'");
  if (cls) {
    fail_unless(c.pos_weight == -1 || c.pos_weight >= 0, "pos_weight", "must be -1, 0 or > 0");
    fail_unless(c.select_metric == "f1" || c.select_metric == "auroc" || c.select_metric == "loss",
                "select_metric", "must be f1, auroc or loss, got '" + c.select_metric + "'");
  } else {
    fail_unless(c.dice_weight >= 0 && c.bce_weight >= 0 && c.dice_weight + c.bce_weight > 0,
                "dice_weight", "and bce_weight must be >= 0, not both 0");
    fail_unless(
        c.select_metric == "dice" || c.select_metric == "global_dice" || c.select_metric == "loss",
        "select_metric", "must be dice, global_dice or loss, got '" + c.select_metric + "'");
  }
  fail_unless(c.device == "cpu" || c.device.rfind("cuda", 0) == 0, "device",
              "must be cpu or cuda:N, got '" + c.device + "'");
}

}  // namespace

TrainConfig default_train_config(TaskKind task) {
  TrainConfig c;
  if (task == TaskKind::Classification) {
    c.dataset = "rsna";
    c.model = "resnet50";
    c.image_size = 224;
    c.select_metric = "auroc";  // threshold-free: steadier than F1 at 0.5 on small val sets
  } else {
    c.dataset = "siim";
    c.model = "unetplusplus";
    c.image_size = 256;
    c.select_metric = "dice";
  }
  c.model_config = nlohmann::json::object();
  return c;
}

TrainConfig parse_train_config(TaskKind task, const nlohmann::json& json,
                               const std::string& source) {
  TrainConfig c = default_train_config(task);
  read_keys(c, json, source, [&](TrainConfig& cfg, KeyVisitor& v) { visit_keys(task, cfg, v); });
  validate(task, c, source);
  return c;
}

std::vector<KeyDoc> train_config_keys(TaskKind task) {
  return document_keys(default_train_config(task),
                       [&](TrainConfig& cfg, KeyVisitor& v) { visit_keys(task, cfg, v); });
}

std::string train_config_help(TaskKind task) {
  return keys_help(train_config_keys(task));
}

nlohmann::json train_config_json(TaskKind task, const TrainConfig& config) {
  return write_keys(config, [&](TrainConfig& cfg, KeyVisitor& v) { visit_keys(task, cfg, v); });
}

nlohmann::json apply_overrides(nlohmann::json json, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    const size_t eq = o.find('=');
    CXR_CHECK(eq != std::string::npos && eq > 0, "--set '", o, "': expected key=value");
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;  // a bare string
    nlohmann::json* node = &json;
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
      node = &(*node)[key.substr(start, dot - start)];
      CXR_CHECK(node->is_null() || node->is_object(), "--set '", o, "': '", key.substr(0, dot),
                "' is not an object");
    }
    (*node)[key.substr(start)] = value;
  }
  return json;
}

}  // namespace cxr::experiments
