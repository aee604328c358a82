// The downstream training config: defaults, overrides, and bad configs failing before training
// with a message that names the key.
#include <gtest/gtest.h>

#include "experiments/train_config.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::experiments {
namespace {

nlohmann::json base(const test::TempDir& dir) {
  return {{"dataset", "rsna"}, {"data_root", dir.dir.string()}};
}

TEST(TrainConfig, DefaultsAndDocumentedKeysAgree) {
  for (TaskKind kind : {TaskKind::Classification, TaskKind::Segmentation}) {
    const TrainConfig d = default_train_config(kind);
    const nlohmann::json resolved = train_config_json(kind, d);
    // Every documented key appears in the resolved config and vice versa.
    const auto docs = train_config_keys(kind);
    EXPECT_EQ(docs.size(), resolved.size());
    for (const auto& k : docs) EXPECT_TRUE(resolved.contains(k.key)) << k.key;
    // The help text names every key.
    const std::string help = train_config_help(kind);
    for (const auto& k : docs) EXPECT_NE(help.find(k.key), std::string::npos) << k.key;
  }
  EXPECT_EQ(default_train_config(TaskKind::Classification).model, "resnet50");
  EXPECT_EQ(default_train_config(TaskKind::Segmentation).model, "unetplusplus");
}

TEST(TrainConfig, ResolvedConfigParsesBackToItself) {
  test::TempDir dir;
  nlohmann::json j = base(dir);
  j["epochs"] = 3;
  j["model_config"] = {{"base_width", 8}};
  j["labels"] = {"Pneumonia"};
  const TrainConfig c = parse_train_config(TaskKind::Classification, j, "cfg");
  EXPECT_EQ(c.epochs, 3);
  EXPECT_EQ(c.model_config.at("base_width"), 8);
  const nlohmann::json resolved = train_config_json(TaskKind::Classification, c);
  const TrainConfig again = parse_train_config(TaskKind::Classification, resolved, "resolved");
  EXPECT_EQ(train_config_json(TaskKind::Classification, again), resolved);
}

TEST(TrainConfig, Overrides) {
  nlohmann::json j = apply_overrides(
      {{"epochs", 1}}, {"epochs=4", "lr=0.01", "dataset=siim", "model_config.encoder_name=resnet18",
                        "labels=[\"A\",\"B\"]", "augment=false"});
  EXPECT_EQ(j["epochs"], 4);
  EXPECT_EQ(j["lr"], 0.01);
  EXPECT_EQ(j["dataset"], "siim");  // not JSON: taken as a string
  EXPECT_EQ(j["model_config"]["encoder_name"], "resnet18");
  EXPECT_EQ(j["labels"], nlohmann::json({"A", "B"}));
  EXPECT_EQ(j["augment"], false);
  EXPECT_ERROR_CONTAINS(apply_overrides({}, {"epochs"}), "expected key=value");
  EXPECT_ERROR_CONTAINS(apply_overrides({{"lr", 1}}, {"lr.x=2"}), "'lr' is not an object");
}

TEST(TrainConfig, BadConfigsNameTheKey) {
  test::TempDir dir;
  auto fails = [&](nlohmann::json change, TaskKind kind, const std::string& text) {
    nlohmann::json j = base(dir);
    if (kind == TaskKind::Segmentation) j["dataset"] = "siim";
    for (auto& [k, v] : change.items()) j[k] = v;
    EXPECT_ERROR_CONTAINS(parse_train_config(kind, j, "run.json"), text) << change.dump();
  };
  const auto C = TaskKind::Classification, S = TaskKind::Segmentation;
  fails({{"epohcs", 3}}, C, "run.json: unknown key epohcs");
  fails({{"epochs", "three"}}, C, "key 'epochs' must be an integer");
  fails({{"epochs", 0}}, C, "key 'epochs' must be >= 1");
  fails({{"train_fraction", 1.5}}, C, "key 'train_fraction' must be in (0, 1]");
  fails({{"train_fraction", 0}}, C, "key 'train_fraction'");
  fails({{"dataset", "mnist"}}, C, "key 'dataset' must be rsna or chexpert");
  fails({{"dataset", "rsna"}}, S, "key 'dataset' must be siim or candid-ptx");
  fails({{"data_root", (dir.dir / "missing").string()}}, C, "key 'data_root' names no folder");
  fails({{"data_root", ""}}, C, "key 'data_root' is required");
  fails({{"synthetic_per_real", 2}}, C, "key 'synthetic_dir' is required");
  fails({{"image_size", 100}}, C, "key 'image_size' must be a multiple of 32");
  fails({{"optimizer", "lbfgs"}}, C, "key 'optimizer' must be adamw, adam or sgd");
  fails({{"select_metric", "dice"}}, C, "key 'select_metric' must be f1, auroc or loss");
  fails({{"pos_weight", -2}}, C, "key 'pos_weight'");
  fails({{"dice_weight", 0}, {"bce_weight", 0}}, S, "key 'dice_weight'");
  fails({{"positive_only", true}}, C, "unknown key positive_only");  // segmentation only
  fails({{"model_config", 3}}, C, "key 'model_config' must be an object");
}

}  // namespace
}  // namespace cxr::experiments
