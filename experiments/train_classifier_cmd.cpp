// `cxr train-classifier`: trains and evaluates an image classifier (ResNet) on a dataset's labels —
// RSNA pneumonia (binary) or CheXpert's 5 labels (multilabel) — optionally with synthetic images
// added to the training set. BCE-with-logits (pos_weight option; unknown labels are masked out of
// the loss); F1 at 0.5 (or at thresholds chosen on validation), precision, recall and AUROC.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/elementwise.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "autograd/views.h"
#include "data/csv.h"
#include "experiments/commands.h"
#include "experiments/metrics.h"
#include "experiments/tasks.h"
#include "experiments/train_command.h"
#include "experiments/trainer.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace {

class ClassifierTask : public TrainTask {
 public:
  explicit ClassifierTask(const TrainConfig& config) : config_(config) {}

  void prepare(const TaskData& data) override {
    labels_ = data.label_names;
    thresholds_.assign(labels_.size(), 0.5);
    std::vector<float> pw(labels_.size(), 1.0f);
    for (size_t l = 0; l < labels_.size(); ++l) {
      if (config_.pos_weight > 0) pw[l] = float(config_.pos_weight);
      // -1: negatives / positives of the training set (1 when a label has no positive).
      if (config_.pos_weight < 0 && data.positives[l] > 0)
        pw[l] = float(double(data.negatives[l]) / double(data.positives[l]));
    }
    if (config_.pos_weight != 0) pos_weight_ = raw::from_vector(pw, {int64_t(pw.size())});
  }

  void complete_model_config(nlohmann::json& mc) const override {
    mc["num_classes"] = int64_t(labels_.size());
    if (!mc.contains("in_channels")) mc["in_channels"] = 1;
    in_channels_ = mc["in_channels"].get<int64_t>();
  }

  Tensor loss(models::RunnableModel& model, const data::Batch& batch) override {
    return batch_loss(logits(model, batch), batch.labels);
  }

  EvalResult evaluate(models::RunnableModel& model, data::Loader& loader,
                      bool predictions) override {
    autograd::NoGradGuard no_grad;
    model.module().eval();
    const size_t L = labels_.size();
    std::vector<std::vector<double>> scores;  // [N][L]
    std::vector<std::vector<int>> truth;
    EvalResult r;
    double loss_sum = 0;
    int64_t n = 0;
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
      Tensor out = logits(model, *batch);
      loss_sum += batch_loss(out, batch->labels).item() * double(batch->size());
      n += batch->size();
      const std::vector<float> p = sigmoid(out).to_vector<float>();
      const std::vector<float> y = batch->labels.to_vector<float>();
      for (int64_t i = 0; i < batch->size(); ++i) {
        std::vector<double> s(L);
        std::vector<int> t(L);
        std::string row = data::csv_escape(batch->ids[size_t(i)]);
        for (size_t l = 0; l < L; ++l) {
          const float label = y[size_t(i) * L + l];
          CXR_CHECK(!std::isnan(label), "evaluation: image '", batch->ids[size_t(i)],
                    "' has an unknown '", labels_[l], "' label");
          s[l] = p[size_t(i) * L + l];
          t[l] = label > 0.5f;
          row += "," + std::to_string(t[l]) + "," + std::to_string(s[l]) + "," +
                 std::to_string(int(s[l] >= thresholds_[l]));
        }
        scores.push_back(std::move(s));
        truth.push_back(std::move(t));
        if (predictions) r.prediction_rows.push_back(std::move(row));
      }
    }
    r.loss = n > 0 ? loss_sum / double(n) : 0.0;
    const MultilabelMetrics m = multilabel_metrics(scores, truth, thresholds_, labels_);
    r.metrics = to_json(m);
    r.scalars = {{"f1", m.macro_f1}, {"auroc", m.macro_auroc}, {"micro_f1", m.micro_f1}};
    return r;
  }

  // With tune_threshold: each label's F1-maximising threshold on validation.
  void calibrate(models::RunnableModel& model, data::Loader& val) override {
    if (!config_.tune_threshold) return;
    autograd::NoGradGuard no_grad;
    model.module().eval();
    const size_t L = labels_.size();
    std::vector<std::vector<double>> s(L);
    std::vector<std::vector<int>> t(L);
    val.start_epoch(0);
    while (auto batch = val.next()) {
      const std::vector<float> p = sigmoid(logits(model, *batch)).to_vector<float>();
      const std::vector<float> y = batch->labels.to_vector<float>();
      for (size_t i = 0; i < p.size(); ++i) {
        if (std::isnan(y[i])) continue;
        s[i % L].push_back(p[i]);
        t[i % L].push_back(y[i] > 0.5f);
      }
    }
    for (size_t l = 0; l < L; ++l) {
      // A label without a validation positive keeps 0.5: there is no F1 to maximise.
      bool any_positive = false;
      for (int v : t[l]) any_positive = any_positive || v == 1;
      if (any_positive) thresholds_[l] = best_f1_threshold(s[l], t[l]);
    }
  }

  std::string prediction_header() const override {
    std::string h = "id";
    for (const auto& l : labels_) h += "," + l + "," + l + "_probability," + l + "_predicted";
    return h;
  }

 private:
  // The batch goes to the model's device (config "device"); targets follow the logits.
  Tensor logits(models::RunnableModel& model, const data::Batch& batch) const {
    Tensor x = raw::to(batch.images, Device::parse(config_.device));
    // 3-channel models (ImageNet weights) see the gray image replicated.
    if (in_channels_ == 3 && x.size(1) == 1) x = expand(x, {x.size(0), 3, x.size(2), x.size(3)});
    return model.forward({{"input", x}}).at("output");
  }

  // Mean BCE-with-logits over the known labels (NaN labels are masked out).
  Tensor batch_loss(const Tensor& logits, const Tensor& labels) const {
    std::vector<float> y = labels.to_vector<float>(), w(y.size(), 1.0f);
    double known = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (std::isnan(y[i])) y[i] = w[i] = 0.0f;
      known += w[i];
    }
    const Device device = logits.device();
    const Tensor target = raw::to(raw::from_vector(y, labels.sizes()), device);
    const Tensor weight = raw::to(raw::from_vector(w, labels.sizes()), device);
    const Tensor pos_weight = pos_weight_.defined() ? raw::to(pos_weight_, device) : pos_weight_;
    return div(binary_cross_entropy_with_logits(logits, target, weight, pos_weight, Reduction::Sum),
               std::max(known, 1.0));
  }

  TrainConfig config_;
  std::vector<std::string> labels_;
  std::vector<double> thresholds_;
  Tensor pos_weight_;
  mutable int64_t in_channels_ = 1;
};

}  // namespace

std::unique_ptr<TrainTask> make_classifier_task(const TrainConfig& config) {
  return std::make_unique<ClassifierTask>(config);
}

Command register_train_classifier(CLI::App& app) {
  return register_train_command(app, TaskKind::Classification, "train-classifier",
                                "Train and evaluate a classifier (ResNet; RSNA pneumonia, CheXpert "
                                "labels), optionally with synthetic images",
                                make_classifier_task);
}

}  // namespace cxr::experiments
