// Evaluation metrics shared by every experiment (issue #6, spec/downstream.md §3.5, §6.3):
// binary precision/recall/F1/accuracy at a threshold and AUROC (scikit-learn's definitions),
// the F1-maximising threshold of a validation split, multilabel per-label/macro/micro metrics, and
// segmentation Dice/IoU under both empty-mask conventions, accumulated batch by batch. Every JSON
// output names its convention in the key.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace cxr::experiments {

// Confusion counts and scores of one binary label. A sample is predicted positive when
// score >= threshold (scores are probabilities, e.g. sigmoid(logit), so threshold 0.5 is
// logit >= 0). precision, recall and F1 = 2TP / (2TP + FP + FN) are 0 where their denominator is 0
// (scikit-learn's zero_division=0). auroc is NaN when the labels hold only one class.
struct BinaryMetrics {
  double threshold = 0.5;
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double precision = 0, recall = 0, f1 = 0, accuracy = 0;
  double auroc = std::numeric_limits<double>::quiet_NaN();
};

// scores: finite, one per sample; labels: 0 or 1, same length, at least one sample.
BinaryMetrics binary_metrics(const std::vector<double>& scores, const std::vector<int>& labels,
                             double threshold = 0.5);

// Area under the ROC curve as scikit-learn's roc_auc_score: the probability that a random positive
// scores above a random negative, tied pairs counting 1/2 (the trapezoidal rule over the curve's
// distinct thresholds). NaN when the labels hold only one class (scikit-learn raises instead).
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

// The threshold, among the distinct scores, whose binary_metrics F1 (score >= threshold) is
// largest; F1s are compared exactly (as fractions of the counts). Ties go to the LOWEST such
// threshold, which is what argmax over scikit-learn's precision_recall_curve (thresholds in
// increasing order) picks. Throws when the labels have no positive (F1 is 0 everywhere: there is
// nothing to choose; keep the default 0.5 then).
double best_f1_threshold(const std::vector<double>& scores, const std::vector<int>& labels);

// Per-label binary metrics of a multilabel task and their averages, as scikit-learn's
// average='macro' (mean of the per-label F1, zeros included) and average='micro' (F1 of the pooled
// counts, 0 when there is no positive at all). macro_auroc is the mean AUROC over the labels that
// have both classes (NaN when none has; scikit-learn raises instead).
struct MultilabelMetrics {
  std::vector<std::string> names;
  std::vector<BinaryMetrics> per_label;
  double macro_f1 = 0, macro_auroc = std::numeric_limits<double>::quiet_NaN(), micro_f1 = 0;
  int64_t auroc_labels = 0;  // how many labels macro_auroc averages
};

// scores and labels: [N][L] (N >= 1 samples, L labels); thresholds and names: one per label.
MultilabelMetrics multilabel_metrics(const std::vector<std::vector<double>>& scores,
                                     const std::vector<std::vector<int>>& labels,
                                     const std::vector<double>& thresholds,
                                     const std::vector<std::string>& names);

// Dice and IoU of binary segmentation, fed batch by batch. Per image: P = (prob > threshold)
// (MGCA's get_dice uses '>'), G = (target > 0.5); TP = |P ∩ G|, FP = |P \ G|, FN = |G \ P|.
// Per-image Dice = 2TP / (|P| + |G|), IoU = TP / |P ∪ G|; on an image where both P and G are
// empty both are 1 (MGCA's SSLSegmenter.get_dice, the SIIM-ACR competition metric), and an empty G
// with a non-empty P gives 0.
class DiceAccumulator {
 public:
  explicit DiceAccumulator(double threshold = 0.5);

  // probs: probabilities in [0, 1], floating, [N, 1, H, W] or [N, H, W]; target: the same shape,
  // any dtype, positive where > 0.5; on any device (copied to the host). Throws on a shape
  // mismatch or values outside [0, 1].
  void add(const Tensor& probs, const Tensor& target);

  struct Result {
    double threshold = 0.5;
    int64_t images = 0, images_with_truth = 0;
    // Mean per-image Dice over all images, empty prediction on empty truth scoring 1 (MGCA/SIIM).
    double dice_empty_as_one = std::numeric_limits<double>::quiet_NaN();
    // Mean per-image Dice over the images whose truth is not empty (MONAI's DiceMetric with
    // ignore_empty=True); NaN when there is none.
    double dice_skip_empty = std::numeric_limits<double>::quiet_NaN();
    // 2ΣTP / (2ΣTP + ΣFP + ΣFN) over all pixels of all images; 1 when no pixel is positive in
    // either prediction or truth.
    double global_dice = std::numeric_limits<double>::quiet_NaN();
    double iou_empty_as_one = std::numeric_limits<double>::quiet_NaN();  // as dice_empty_as_one
    double global_iou = std::numeric_limits<double>::quiet_NaN();  // ΣTP / (ΣTP + ΣFP + ΣFN)
  };
  // The means are NaN before any image was added.
  Result result() const;
  // Per-image Dice (empty-as-one convention), in the order the images were added.
  const std::vector<double>& per_image_dice() const { return dice_; }

 private:
  double threshold_;
  std::vector<double> dice_, iou_;
  std::vector<bool> has_truth_;
  int64_t tp_ = 0, fp_ = 0, fn_ = 0;
};

// JSON with each value under a key that names its convention; NaN becomes null.
nlohmann::json to_json(const BinaryMetrics& m);
nlohmann::json to_json(const MultilabelMetrics& m);
nlohmann::json to_json(const DiceAccumulator::Result& r);

}  // namespace cxr::experiments
