// Evaluation metrics (see metrics.h): scikit-learn's binary and multilabel definitions, the
// F1-optimal threshold, and Dice/IoU under MGCA's and MONAI's empty-mask conventions.
#include "experiments/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/creation.h"  // to(device)
#include "tensor/dtype.h"     // is_floating

namespace cxr::experiments {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// num / den, or 0 where den is 0 (scikit-learn's zero_division=0).
double ratio_or_zero(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : double(num) / double(den);
}

// Same length, at least one sample, finite scores, 0/1 labels.
void check_binary_inputs(const std::vector<double>& scores, const std::vector<int>& labels,
                         const char* op) {
  CXR_CHECK(scores.size() == labels.size(), op, ": ", scores.size(), " scores but ", labels.size(),
            " labels; expected one label per score");
  CXR_CHECK(!scores.empty(), op, ": no samples");
  for (size_t i = 0; i < scores.size(); ++i) {
    CXR_CHECK(std::isfinite(scores[i]), op, ": score ", i, " is ", scores[i],
              "; expected finite scores");
    CXR_CHECK(labels[i] == 0 || labels[i] == 1, op, ": label ", i, " is ", labels[i],
              "; expected 0 or 1");
  }
}

int64_t count_positives(const std::vector<int>& labels) {
  return std::count(labels.begin(), labels.end(), 1);
}

// Calls visit(score, positives, negatives) for each group of equal scores, from the highest score
// down: lowering a threshold through the distinct scores adds one such group at a time.
template <typename Visit>
void for_each_score_group(const std::vector<double>& scores, const std::vector<int>& labels,
                          Visit visit) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  for (size_t begin = 0; begin < order.size();) {
    const double score = scores[order[begin]];
    int64_t positives = 0, negatives = 0;
    size_t end = begin;
    for (; end < order.size() && scores[order[end]] == score; ++end)
      (labels[order[end]] == 1 ? positives : negatives) += 1;
    visit(score, positives, negatives);
    begin = end;
  }
}

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? kNaN : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  check_binary_inputs(scores, labels, "roc_auc");
  const int64_t n = int64_t(labels.size()), positives = count_positives(labels);
  const int64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  // Mann-Whitney U: every positive counts the negatives scored below it, plus 1/2 per tied
  // negative (equal to the trapezoidal area under scikit-learn's ROC curve).
  double pairs = 0.0;
  int64_t negatives_below = negatives;
  for_each_score_group(scores, labels, [&](double, int64_t group_pos, int64_t group_neg) {
    negatives_below -= group_neg;
    pairs += double(group_pos) * (double(negatives_below) + 0.5 * double(group_neg));
  });
  return pairs / (double(positives) * double(negatives));
}

BinaryMetrics binary_metrics(const std::vector<double>& scores, const std::vector<int>& labels,
                             double threshold) {
  check_binary_inputs(scores, labels, "binary_metrics");
  CXR_CHECK(std::isfinite(threshold), "binary_metrics: threshold is ", threshold,
            "; expected a finite number");
  BinaryMetrics m;
  m.threshold = threshold;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool predicted = scores[i] >= threshold;
    if (labels[i] == 1)
      (predicted ? m.tp : m.fn) += 1;
    else
      (predicted ? m.fp : m.tn) += 1;
  }
  m.precision = ratio_or_zero(m.tp, m.tp + m.fp);
  m.recall = ratio_or_zero(m.tp, m.tp + m.fn);
  m.f1 = ratio_or_zero(2 * m.tp, 2 * m.tp + m.fp + m.fn);
  m.accuracy = ratio_or_zero(m.tp + m.tn, int64_t(scores.size()));
  m.auroc = roc_auc(scores, labels);
  return m;
}

double best_f1_threshold(const std::vector<double>& scores, const std::vector<int>& labels) {
  check_binary_inputs(scores, labels, "best_f1_threshold");
  const int64_t positives = count_positives(labels);
  CXR_CHECK(positives > 0,
            "best_f1_threshold: the labels have no positive sample, so F1 is 0 at "
            "every threshold; keep a fixed threshold (e.g. 0.5) instead");
  // F1 = 2TP / (2TP + FP + FN) = 2TP / (TP + FP + positives), compared as fractions:
  // a/b >= c/d <=> a*d >= c*b (b, d > 0). '>=' keeps the lowest threshold among ties.
  int64_t tp = 0, fp = 0, best_tp = 0, best_den = 1;
  double best = 0.0;
  for_each_score_group(scores, labels, [&](double score, int64_t group_pos, int64_t group_neg) {
    tp += group_pos;
    fp += group_neg;
    const int64_t den = tp + fp + positives;
    if (tp * best_den >= best_tp * den) {
      best_tp = tp;
      best_den = den;
      best = score;
    }
  });
  return best;
}

MultilabelMetrics multilabel_metrics(const std::vector<std::vector<double>>& scores,
                                     const std::vector<std::vector<int>>& labels,
                                     const std::vector<double>& thresholds,
                                     const std::vector<std::string>& names) {
  const char* op = "multilabel_metrics";
  CXR_CHECK(!scores.empty(), op, ": no samples");
  CXR_CHECK(scores.size() == labels.size(), op, ": ", scores.size(), " score rows but ",
            labels.size(), " label rows; expected [N][L] each");
  const size_t num_labels = thresholds.size();
  CXR_CHECK(num_labels > 0 && names.size() == num_labels, op, ": ", thresholds.size(),
            " thresholds and ", names.size(), " names; expected one of each per label (>= 1)");
  MultilabelMetrics m;
  m.names = names;
  std::vector<double> column_scores(scores.size());
  std::vector<int> column_labels(scores.size());
  int64_t tp = 0, fp = 0, fn = 0;
  double f1_sum = 0.0, auroc_sum = 0.0;
  for (size_t i = 0; i < scores.size(); ++i)
    CXR_CHECK(scores[i].size() == num_labels && labels[i].size() == num_labels, op, ": row ", i,
              " has ", scores[i].size(), " scores and ", labels[i].size(), " labels; expected ",
              num_labels, " (one per label name)");
  for (size_t l = 0; l < num_labels; ++l) {
    for (size_t i = 0; i < scores.size(); ++i) {
      column_scores[i] = scores[i][l];
      column_labels[i] = labels[i][l];
    }
    const BinaryMetrics b = binary_metrics(column_scores, column_labels, thresholds[l]);
    tp += b.tp;
    fp += b.fp;
    fn += b.fn;
    f1_sum += b.f1;
    if (!std::isnan(b.auroc)) {
      auroc_sum += b.auroc;
      ++m.auroc_labels;
    }
    m.per_label.push_back(b);
  }
  m.macro_f1 = f1_sum / double(num_labels);
  m.micro_f1 = ratio_or_zero(2 * tp, 2 * tp + fp + fn);
  m.macro_auroc = m.auroc_labels > 0 ? auroc_sum / double(m.auroc_labels) : kNaN;
  return m;
}

DiceAccumulator::DiceAccumulator(double threshold) : threshold_(threshold) {
  CXR_CHECK(std::isfinite(threshold), "DiceAccumulator: threshold is ", threshold,
            "; expected a finite number");
}

void DiceAccumulator::add(const Tensor& probs, const Tensor& target) {
  const char* op = "DiceAccumulator::add";
  CXR_CHECK(probs.defined() && target.defined(), op, ": probs or target is undefined");
  CXR_CHECK(is_floating(probs.dtype()), op, ": probs must be floating probabilities, got ",
            describe(probs));
  CXR_CHECK(probs.dim() == 3 || (probs.dim() == 4 && probs.size(1) == 1), op,
            ": probs must be [N, 1, H, W] or [N, H, W], got ", describe(probs));
  CXR_CHECK(target.sizes() == probs.sizes(), op, ": target ", describe(target),
            " must have the shape of probs ", describe(probs));
  const int64_t images = probs.size(0);
  if (images == 0) return;
  // Copied to the host (a no-op for CPU tensors), so that GPU outputs can be fed directly.
  const std::vector<double> p = raw::to(probs, Device::cpu()).to_vector<double>();
  const std::vector<double> g = raw::to(target, Device::cpu()).to_vector<double>();
  const size_t pixels = p.size() / size_t(images);
  for (int64_t n = 0; n < images; ++n) {
    int64_t tp = 0, fp = 0, fn = 0;
    for (size_t i = size_t(n) * pixels; i < size_t(n + 1) * pixels; ++i) {
      CXR_CHECK(p[i] >= 0.0 && p[i] <= 1.0, op, ": probs must lie in [0, 1] (apply sigmoid to ",
                "logits), found ", p[i], " in image ", n);
      const bool predicted = p[i] > threshold_, truth = g[i] > 0.5;
      tp += predicted && truth;
      fp += predicted && !truth;
      fn += !predicted && truth;
    }
    // Both empty: 1 (MGCA get_dice); otherwise the usual ratios (0 when only G is empty).
    const int64_t dice_den = 2 * tp + fp + fn, union_size = tp + fp + fn;
    dice_.push_back(dice_den == 0 ? 1.0 : 2.0 * double(tp) / double(dice_den));
    iou_.push_back(union_size == 0 ? 1.0 : double(tp) / double(union_size));
    has_truth_.push_back(tp + fn > 0);
    tp_ += tp;
    fp_ += fp;
    fn_ += fn;
  }
}

DiceAccumulator::Result DiceAccumulator::result() const {
  Result r;
  r.threshold = threshold_;
  r.images = int64_t(dice_.size());
  std::vector<double> with_truth;
  for (size_t i = 0; i < dice_.size(); ++i)
    if (has_truth_[i]) with_truth.push_back(dice_[i]);
  r.images_with_truth = int64_t(with_truth.size());
  r.dice_empty_as_one = mean_of(dice_);
  r.dice_skip_empty = mean_of(with_truth);
  r.iou_empty_as_one = mean_of(iou_);
  if (r.images > 0) {
    const int64_t dice_den = 2 * tp_ + fp_ + fn_, union_size = tp_ + fp_ + fn_;
    r.global_dice = dice_den == 0 ? 1.0 : 2.0 * double(tp_) / double(dice_den);
    r.global_iou = union_size == 0 ? 1.0 : double(tp_) / double(union_size);
  }
  return r;
}

nlohmann::json to_json(const BinaryMetrics& m) {
  return {{"threshold", m.threshold},
          {"predicted_positive", "score >= threshold"},
          {"tp", m.tp},
          {"fp", m.fp},
          {"tn", m.tn},
          {"fn", m.fn},
          {"precision_zero_division_0", m.precision},
          {"recall_zero_division_0", m.recall},
          {"f1_zero_division_0", m.f1},
          {"accuracy", m.accuracy},
          {"auroc_ties_half_null_if_one_class", number_or_null(m.auroc)}};
}

nlohmann::json to_json(const MultilabelMetrics& m) {
  nlohmann::json labels = nlohmann::json::array();
  for (size_t l = 0; l < m.per_label.size(); ++l) {
    nlohmann::json entry = to_json(m.per_label[l]);
    entry["name"] = m.names[l];
    labels.push_back(entry);
  }
  return {{"f1_macro_mean_over_labels", m.macro_f1},
          {"f1_micro_pooled_counts", m.micro_f1},
          {"auroc_macro_over_labels_with_both_classes", number_or_null(m.macro_auroc)},
          {"auroc_macro_label_count", m.auroc_labels},
          {"per_label", labels}};
}

nlohmann::json to_json(const DiceAccumulator::Result& r) {
  return {{"threshold", r.threshold},
          {"predicted_positive", "prob > threshold"},
          {"images", r.images},
          {"images_with_truth", r.images_with_truth},
          {"dice_mean_empty_as_one", number_or_null(r.dice_empty_as_one)},
          {"dice_mean_skip_empty", number_or_null(r.dice_skip_empty)},
          {"dice_global_pooled_pixels", number_or_null(r.global_dice)},
          {"iou_mean_empty_as_one", number_or_null(r.iou_empty_as_one)},
          {"iou_global_pooled_pixels", number_or_null(r.global_iou)}};
}

}  // namespace cxr::experiments
