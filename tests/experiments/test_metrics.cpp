// Evaluation metrics (experiments/metrics.h): hand-computed cases (arithmetic in the comments),
// edge cases (no positives, empty masks, one-class AUROC), golden values from scikit-learn and from
// numpy restatements of MGCA's get_dice and MONAI's DiceMetric (tests/golden/gen_metrics.py), the
// JSON labels and the errors on bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "experiments/metrics.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

namespace cxr::experiments {
namespace {

constexpr const char* kFixture = "metrics.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}
std::vector<double> doubles(const std::string& key) {
  return fx(key).to_vector<double>();
}
std::vector<int> ints(const Tensor& t) {
  const std::vector<int64_t> v = t.to_vector<int64_t>();
  return {v.begin(), v.end()};
}
// Rows of a [N, L] fixture tensor.
template <typename T>
std::vector<std::vector<T>> rows(const Tensor& t) {
  std::vector<std::vector<T>> out;
  for (int64_t i = 0; i < t.size(0); ++i) {
    const Tensor row = raw::select(t, 0, i);
    if constexpr (std::is_same_v<T, int>)
      out.push_back(ints(row));
    else
      out.push_back(row.to_vector<double>());
  }
  return out;
}

// ---- binary ---------------------------------------------------------------------------------

TEST(BinaryMetrics, HandComputed) {
  // score >= 0.5 predicts {1, 1, 1, 0, 0}; labels {1, 0, 1, 1, 0}: TP 2 (0.9, 0.5), FP 1 (0.8),
  // FN 1 (0.3), TN 1 (0.1). precision = recall = 2/3, F1 = 4 / (4 + 1 + 1) = 2/3,
  // accuracy = 3/5. AUROC: positives {0.9, 0.5, 0.3} vs negatives {0.8, 0.1}: 0.9 beats both,
  // 0.5 and 0.3 beat 0.1 -> 4 of 6 pairs.
  const BinaryMetrics m = binary_metrics({0.9, 0.8, 0.5, 0.3, 0.1}, {1, 0, 1, 1, 0});
  EXPECT_EQ(m.threshold, 0.5);
  EXPECT_EQ(m.tp, 2);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.tn, 1);
  EXPECT_EQ(m.fn, 1);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  EXPECT_DOUBLE_EQ(m.auroc, 4.0 / 6.0);
  // Threshold 0.85 predicts only 0.9: TP 1, FN 2 -> precision 1, recall 1/3, F1 2/(2+0+2) = 1/2.
  const BinaryMetrics high = binary_metrics({0.9, 0.8, 0.5, 0.3, 0.1}, {1, 0, 1, 1, 0}, 0.85);
  EXPECT_DOUBLE_EQ(high.precision, 1.0);
  EXPECT_DOUBLE_EQ(high.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(high.f1, 0.5);
}

TEST(BinaryMetrics, AurocTies) {
  // All tied: every pair counts 1/2.
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.5}, {1, 0, 1, 0}), 0.5);
  // Positives {0.7, 0.5}, negative {0.5}: 1 + 1/2 of 2 pairs = 0.75.
  EXPECT_DOUBLE_EQ(roc_auc({0.7, 0.5, 0.5}, {1, 1, 0}), 0.75);
  // Perfectly reversed ranking.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}), 0.0);
}

TEST(BinaryMetrics, NoPositivesAndNoPredictions) {
  // Labels all 0: TP 0, FP 1 (0.7), TN 1; precision 0/1, recall 0/0 -> 0, F1 0/1 = 0, AUROC
  // undefined.
  const BinaryMetrics none = binary_metrics({0.2, 0.7}, {0, 0});
  EXPECT_EQ(none.fp, 1);
  EXPECT_EQ(none.tn, 1);
  EXPECT_EQ(none.precision, 0.0);
  EXPECT_EQ(none.recall, 0.0);
  EXPECT_EQ(none.f1, 0.0);
  EXPECT_DOUBLE_EQ(none.accuracy, 0.5);
  EXPECT_TRUE(std::isnan(none.auroc));
  EXPECT_TRUE(std::isnan(roc_auc({0.2, 0.7}, {1, 1})));
  // Nothing predicted positive: precision 0/0 -> 0 (zero_division=0), recall 0/1, F1 0/1.
  const BinaryMetrics silent = binary_metrics({0.2, 0.3}, {1, 0});
  EXPECT_EQ(silent.fn, 1);
  EXPECT_EQ(silent.precision, 0.0);
  EXPECT_EQ(silent.f1, 0.0);
  EXPECT_DOUBLE_EQ(silent.auroc, 0.0);
  EXPECT_ERROR_CONTAINS(best_f1_threshold({0.2, 0.7}, {0, 0}), "no positive");
}

TEST(BinaryMetrics, BestF1Threshold) {
  // Lowering the threshold: 0.9 -> TP 1 FP 0, F1 = 2/(1+0+2) = 2/3; 0.8 -> 2/(1+1+2) = 1/2;
  // 0.7 -> TP 2 FP 1, 4/(2+1+2) = 4/5; 0.6 -> 4/(2+2+2) = 2/3. Best: 0.7.
  EXPECT_EQ(best_f1_threshold({0.9, 0.8, 0.7, 0.6}, {1, 0, 1, 0}), 0.7);
  // Tie: 0.9 gives 2/(1+0+2) = 2/3 and 0.6 gives 4/(2+2+2) = 2/3 (0.8: 1/2, 0.7: 2/5); the
  // lowest of the tied thresholds wins.
  EXPECT_EQ(best_f1_threshold({0.9, 0.8, 0.7, 0.6}, {1, 0, 0, 1}), 0.6);
  // Equal scores form one candidate: {0.4, 0.4} -> TP 1 FP 1 (F1 2/3) beats nothing else.
  EXPECT_EQ(best_f1_threshold({0.4, 0.4}, {1, 0}), 0.4);
}

TEST(BinaryMetrics, GoldenScikitLearn) {
  for (const std::string c :
       {"balanced", "threshold_0.3", "few_positives", "no_predicted_positive"}) {
    SCOPED_TRACE(c);
    const std::string p = "binary." + c;
    const std::vector<double> scores = doubles(p + ".scores");
    const std::vector<int> labels = ints(fx(p + ".labels"));
    const BinaryMetrics m = binary_metrics(scores, labels, fx(p + ".threshold").item());
    const std::vector<int64_t> counts = fx(p + ".counts").to_vector<int64_t>();
    EXPECT_EQ(m.tp, counts[0]);
    EXPECT_EQ(m.fp, counts[1]);
    EXPECT_EQ(m.tn, counts[2]);
    EXPECT_EQ(m.fn, counts[3]);
    const std::vector<double> v = doubles(p + ".values");
    EXPECT_NEAR(m.precision, v[0], 1e-12);
    EXPECT_NEAR(m.recall, v[1], 1e-12);
    EXPECT_NEAR(m.f1, v[2], 1e-12);
    EXPECT_NEAR(m.accuracy, v[3], 1e-12);
    EXPECT_NEAR(m.auroc, v[4], 1e-12);
    EXPECT_NEAR(roc_auc(scores, labels), v[4], 1e-12);
    EXPECT_EQ(best_f1_threshold(scores, labels), fx(p + ".best_threshold").item());
  }
}

TEST(BinaryMetrics, Errors) {
  EXPECT_ERROR_CONTAINS(binary_metrics({0.1, 0.2}, {1}), "2 scores but 1 labels");
  EXPECT_ERROR_CONTAINS(binary_metrics({}, {}), "no samples");
  EXPECT_ERROR_CONTAINS(binary_metrics({0.1, 0.2}, {1, 2}), "label 1 is 2");
  EXPECT_ERROR_CONTAINS(roc_auc({0.1, NAN}, {1, 0}), "roc_auc: score 1 is nan");
  EXPECT_ERROR_CONTAINS(binary_metrics({0.1}, {1}, NAN), "threshold");
  EXPECT_ERROR_CONTAINS(best_f1_threshold({0.1}, {1, 0}), "best_f1_threshold");
}

// ---- multilabel -----------------------------------------------------------------------------

TEST(MultilabelMetrics, HandComputed) {
  // Label a: predicted {1, 0, 1} vs {1, 0, 0}: TP 1 FP 1 -> F1 2/(2+1) = 2/3.
  // Label b: predicted {0, 1, 1} vs {1, 1, 0}: TP 1 FP 1 FN 1 -> F1 2/4 = 1/2.
  // macro = (2/3 + 1/2) / 2 = 7/12; micro: TP 2 FP 2 FN 1 -> 4/(4+2+1) = 4/7.
  // AUROC a: positive 0.9 beats 0.1 and 0.8 -> 1; b: positives {0.2, 0.7} vs 0.6 -> 1/2.
  const MultilabelMetrics m = multilabel_metrics({{0.9, 0.2}, {0.1, 0.7}, {0.8, 0.6}},
                                                 {{1, 1}, {0, 1}, {0, 0}}, {0.5, 0.5}, {"a", "b"});
  ASSERT_EQ(m.per_label.size(), 2u);
  EXPECT_DOUBLE_EQ(m.per_label[0].f1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.per_label[1].f1, 0.5);
  EXPECT_DOUBLE_EQ(m.macro_f1, 7.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.micro_f1, 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.macro_auroc, 0.75);
  EXPECT_EQ(m.auroc_labels, 2);
  // Per-label thresholds: 0.85 for a predicts only 0.9 -> F1 1.
  const MultilabelMetrics t = multilabel_metrics({{0.9, 0.2}, {0.1, 0.7}, {0.8, 0.6}},
                                                 {{1, 1}, {0, 1}, {0, 0}}, {0.85, 0.5}, {"a", "b"});
  EXPECT_DOUBLE_EQ(t.per_label[0].f1, 1.0);
  EXPECT_EQ(t.per_label[0].threshold, 0.85);
}

TEST(MultilabelMetrics, GoldenScikitLearn) {
  const std::vector<std::string> names = {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                                          "Pleural Effusion"};
  const MultilabelMetrics m =
      multilabel_metrics(rows<double>(fx("multilabel.scores")), rows<int>(fx("multilabel.labels")),
                         doubles("multilabel.thresholds"), names);
  EXPECT_EQ(m.names, names);
  const std::vector<double> precision = doubles("multilabel.precision"),
                            recall = doubles("multilabel.recall"), f1 = doubles("multilabel.f1"),
                            auroc = doubles("multilabel.auroc");
  ASSERT_EQ(m.per_label.size(), names.size());
  for (size_t l = 0; l < names.size(); ++l) {
    SCOPED_TRACE(names[l]);
    EXPECT_NEAR(m.per_label[l].precision, precision[l], 1e-12);
    EXPECT_NEAR(m.per_label[l].recall, recall[l], 1e-12);
    EXPECT_NEAR(m.per_label[l].f1, f1[l], 1e-12);
    if (std::isnan(auroc[l]))
      EXPECT_TRUE(std::isnan(m.per_label[l].auroc));
    else
      EXPECT_NEAR(m.per_label[l].auroc, auroc[l], 1e-12);
  }
  EXPECT_NEAR(m.macro_f1, fx("multilabel.macro_f1").item(), 1e-12);
  EXPECT_NEAR(m.micro_f1, fx("multilabel.micro_f1").item(), 1e-12);
  EXPECT_NEAR(m.macro_auroc, fx("multilabel.macro_auroc").item(), 1e-12);
  EXPECT_EQ(m.auroc_labels, 4);  // the last label has no positive
}

TEST(MultilabelMetrics, NoLabelWithBothClasses) {
  const MultilabelMetrics m = multilabel_metrics({{0.9}, {0.2}}, {{0}, {0}}, {0.5}, {"a"});
  EXPECT_TRUE(std::isnan(m.macro_auroc));
  EXPECT_EQ(m.auroc_labels, 0);
  EXPECT_EQ(m.macro_f1, 0.0);
  EXPECT_EQ(m.micro_f1, 0.0);
}

TEST(MultilabelMetrics, Errors) {
  EXPECT_ERROR_CONTAINS(multilabel_metrics({}, {}, {0.5}, {"a"}), "no samples");
  EXPECT_ERROR_CONTAINS(multilabel_metrics({{0.1, 0.2}}, {{1, 0}}, {0.5}, {"a"}),
                        "row 0 has 2 scores");
  EXPECT_ERROR_CONTAINS(multilabel_metrics({{0.1}}, {{1}}, {0.5}, {"a", "b"}), "2 names");
  EXPECT_ERROR_CONTAINS(multilabel_metrics({{0.1}}, {{1}, {0}}, {0.5}, {"a"}), "2 label rows");
}

// ---- Dice -----------------------------------------------------------------------------------

TEST(DiceAccumulator, HandComputed) {
  // Image 0: probs {0.9, 0.6, 0.2, 0.5} -> P {1, 1, 0, 0} (0.5 is not > 0.5), G {1, 0, 1, 0}:
  // TP 1 FP 1 FN 1 -> Dice 2/4 = 1/2, IoU 1/3.
  // Image 1: empty P, empty G -> Dice 1, IoU 1. Image 2: P {1, 0, 0, 0}, empty G -> 0, 0.
  const Tensor probs = raw::from_vector(
      std::vector<float>{0.9f, 0.6f, 0.2f, 0.5f, 0.1f, 0.1f, 0.1f, 0.1f, 0.7f, 0.f, 0.f, 0.f},
      {3, 1, 2, 2});
  const Tensor target =
      raw::from_vector(std::vector<float>{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 1, 2, 2});
  DiceAccumulator acc;
  acc.add(probs, target);
  EXPECT_EQ(acc.per_image_dice(), (std::vector<double>{0.5, 1.0, 0.0}));
  const DiceAccumulator::Result r = acc.result();
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.images_with_truth, 1);
  EXPECT_DOUBLE_EQ(r.dice_empty_as_one, 0.5);       // (1/2 + 1 + 0) / 3
  EXPECT_DOUBLE_EQ(r.dice_skip_empty, 0.5);         // image 0 only
  EXPECT_DOUBLE_EQ(r.global_dice, 0.4);             // TP 1, FP 1 + 1, FN 1: 2 / (2 + 2 + 1)
  EXPECT_DOUBLE_EQ(r.iou_empty_as_one, 4.0 / 9.0);  // (1/3 + 1 + 0) / 3
  EXPECT_DOUBLE_EQ(r.global_iou, 0.25);             // 1 / (1 + 2 + 1)
  // Threshold 0.15 predicts all of image 0 (P {1, 1, 1, 1}: TP 2 FP 2 -> Dice 2*2/(4+2) = 2/3)
  // and the image of 0.1s stays empty.
  DiceAccumulator low(0.15);
  low.add(probs, target);
  EXPECT_DOUBLE_EQ(low.per_image_dice()[0], 2.0 / 3.0);
  EXPECT_EQ(low.per_image_dice()[1], 1.0);
}

TEST(DiceAccumulator, AllEmptyAndNothingAdded) {
  DiceAccumulator acc;
  EXPECT_TRUE(std::isnan(acc.result().dice_empty_as_one));
  EXPECT_TRUE(std::isnan(acc.result().global_dice));
  EXPECT_EQ(acc.result().images, 0);
  acc.add(raw::full({2, 3, 3}, 0.25), raw::zeros({2, 3, 3}, kUInt8));
  const DiceAccumulator::Result r = acc.result();
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.images_with_truth, 0);
  EXPECT_EQ(r.dice_empty_as_one, 1.0);
  EXPECT_TRUE(std::isnan(r.dice_skip_empty));
  EXPECT_EQ(r.global_dice, 1.0);
  EXPECT_EQ(r.iou_empty_as_one, 1.0);
  EXPECT_EQ(r.global_iou, 1.0);
}

TEST(DiceAccumulator, GoldenMgcaAndMonaiAcrossBatches) {
  const Tensor probs = fx("dice.probs"), target = fx("dice.target");
  DiceAccumulator acc;
  // Two batches, the second as [N, H, W].
  acc.add(raw::narrow(probs, 0, 0, 4), raw::narrow(target, 0, 0, 4));
  acc.add(raw::reshape(raw::narrow(probs, 0, 4, 2), {2, 8, 8}),
          raw::reshape(raw::narrow(target, 0, 4, 2), {2, 8, 8}));
  const std::vector<double> expected = doubles("dice.per_image_mgca");
  ASSERT_EQ(acc.per_image_dice().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(acc.per_image_dice()[i], expected[i], 1e-12) << "image " << i;
  const DiceAccumulator::Result r = acc.result();
  EXPECT_EQ(r.images, 6);
  EXPECT_EQ(r.images_with_truth, 4);
  EXPECT_NEAR(r.dice_empty_as_one, fx("dice.mean_mgca").item(), 1e-12);
  EXPECT_NEAR(r.dice_skip_empty, fx("dice.mean_monai").item(), 1e-12);
  EXPECT_NEAR(r.global_dice, fx("dice.global").item(), 1e-12);
  EXPECT_NEAR(r.iou_empty_as_one, fx("iou.mean_empty_as_one").item(), 1e-12);
  EXPECT_NEAR(r.global_iou, fx("iou.global").item(), 1e-12);
}

TEST(DiceAccumulator, Errors) {
  DiceAccumulator acc;
  EXPECT_ERROR_CONTAINS(acc.add(raw::zeros({2, 1, 4, 4}), raw::zeros({2, 1, 4, 5})),
                        "must have the shape of probs");
  EXPECT_ERROR_CONTAINS(acc.add(raw::zeros({2, 1, 4, 4}), raw::zeros({2, 4, 4})),
                        "must have the shape of probs");
  EXPECT_ERROR_CONTAINS(acc.add(raw::zeros({2, 2, 4, 4}), raw::zeros({2, 2, 4, 4})),
                        "[N, 1, H, W] or [N, H, W]");
  EXPECT_ERROR_CONTAINS(acc.add(raw::zeros({2, 4, 4}, kInt64), raw::zeros({2, 4, 4})),
                        "must be floating");
  EXPECT_ERROR_CONTAINS(acc.add(raw::full({1, 2, 2}, 3.0), raw::zeros({1, 2, 2})), "apply sigmoid");
  EXPECT_EQ(acc.result().images, 0);  // nothing was counted
  EXPECT_ERROR_CONTAINS(DiceAccumulator(NAN), "threshold");
}

// ---- JSON -----------------------------------------------------------------------------------

TEST(MetricsJson, LabelsEachConvention) {
  const nlohmann::json b = to_json(binary_metrics({0.9, 0.8, 0.5, 0.3, 0.1}, {1, 0, 1, 1, 0}));
  EXPECT_EQ(b.at("tp"), 2);
  EXPECT_DOUBLE_EQ(b.at("f1_zero_division_0").get<double>(), 2.0 / 3.0);
  EXPECT_EQ(b.at("predicted_positive"), "score >= threshold");
  EXPECT_TRUE(
      to_json(binary_metrics({0.2}, {0})).at("auroc_ties_half_null_if_one_class").is_null());

  const nlohmann::json m = to_json(multilabel_metrics(
      {{0.9, 0.2}, {0.1, 0.7}, {0.8, 0.6}}, {{1, 1}, {0, 1}, {0, 0}}, {0.5, 0.5}, {"a", "b"}));
  EXPECT_DOUBLE_EQ(m.at("f1_macro_mean_over_labels").get<double>(), 7.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.at("f1_micro_pooled_counts").get<double>(), 4.0 / 7.0);
  EXPECT_EQ(m.at("per_label").at(1).at("name"), "b");

  DiceAccumulator acc;
  acc.add(raw::full({1, 2, 2}, 0.25), raw::zeros({1, 2, 2}));
  const nlohmann::json d = to_json(acc.result());
  EXPECT_EQ(d.at("dice_mean_empty_as_one"), 1.0);
  EXPECT_TRUE(d.at("dice_mean_skip_empty").is_null());
  EXPECT_EQ(d.at("images_with_truth"), 0);
  EXPECT_EQ(d.at("predicted_positive"), "prob > threshold");
  for (const char* key : {"dice_global_pooled_pixels", "iou_mean_empty_as_one",
                          "iou_global_pooled_pixels", "threshold", "images"})
    EXPECT_TRUE(d.contains(key)) << key;
}

}  // namespace
}  // namespace cxr::experiments
