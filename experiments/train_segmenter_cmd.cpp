// `cxr train-segmenter`: trains and evaluates a pneumothorax segmenter (UNet++) on SIIM-ACR or
// CANDID-PTX masks, optionally with synthetic images whose generating mask is their label. Loss:
// batch Dice + pixel BCE-with-logits (models/losses.h); metrics: per-image Dice under both
// empty-mask conventions, global Dice and IoU (experiments/metrics.h).
#include <memory>
#include <string>

#include "autograd/elementwise.h"
#include "autograd/grad_mode.h"
#include "autograd/views.h"
#include "data/csv.h"
#include "experiments/commands.h"
#include "experiments/metrics.h"
#include "experiments/tasks.h"
#include "experiments/train_command.h"
#include "experiments/trainer.h"
#include "models/losses.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/reduce.h"

namespace cxr::experiments {

namespace {

class SegmenterTask : public TrainTask {
 public:
  explicit SegmenterTask(const TrainConfig& config) : config_(config) {}

  void complete_model_config(nlohmann::json& mc) const override {
    mc["classes"] = 1;
    if (!mc.contains("in_channels")) mc["in_channels"] = 1;
    in_channels_ = mc["in_channels"].get<int64_t>();
  }

  Tensor loss(models::RunnableModel& model, const data::Batch& batch) override {
    return batch_loss(logits(model, batch), batch);
  }

  EvalResult evaluate(models::RunnableModel& model, data::Loader& loader,
                      bool predictions) override {
    autograd::NoGradGuard no_grad;
    model.module().eval();
    DiceAccumulator dice;
    EvalResult r;
    double loss_sum = 0;
    int64_t n = 0;
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
      const Tensor out = logits(model, *batch);
      loss_sum += batch_loss(out, *batch).item() * double(batch->size());
      n += batch->size();
      const Tensor probs = sigmoid(out);
      const size_t first = dice.per_image_dice().size();
      dice.add(probs, batch->masks);
      if (!predictions) continue;
      // Pixel counts per image: predicted (p > 0.5, as the Dice metric) and true.
      const std::vector<double> pred =
          raw::sum(raw::to(raw::compare(CompareOp::Gt, probs, 0.5), kFloat32), {1, 2, 3})
              .to_vector<double>();
      const std::vector<double> truth =
          raw::sum(raw::to(batch->masks, kFloat32), {1, 2, 3}).to_vector<double>();
      for (int64_t i = 0; i < batch->size(); ++i)
        r.prediction_rows.push_back(data::csv_escape(batch->ids[size_t(i)]) + "," +
                                    std::to_string(truth[size_t(i)] > 0) + "," +
                                    std::to_string(int64_t(truth[size_t(i)])) + "," +
                                    std::to_string(int64_t(pred[size_t(i)])) + "," +
                                    std::to_string(dice.per_image_dice()[first + size_t(i)]));
    }
    r.loss = n > 0 ? loss_sum / double(n) : 0.0;
    const DiceAccumulator::Result d = dice.result();
    r.metrics = to_json(d);
    r.scalars = {{"dice", d.dice_empty_as_one},
                 {"dice_skip_empty", d.dice_skip_empty},
                 {"global_dice", d.global_dice},
                 {"iou", d.iou_empty_as_one}};
    return r;
  }

  std::string prediction_header() const override {
    return "id,has_pneumothorax,true_pixels,predicted_pixels,dice_empty_as_one";
  }

 private:
  // The batch goes to the model's device (config "device"); the target masks follow the logits.
  Tensor logits(models::RunnableModel& model, const data::Batch& batch) const {
    Tensor x = raw::to(batch.images, Device::parse(config_.device));
    if (in_channels_ == 3 && x.size(1) == 1) x = expand(x, {x.size(0), 3, x.size(2), x.size(3)});
    return model.forward({{"input", x}}).at("output");
  }

  Tensor batch_loss(const Tensor& logits, const data::Batch& batch) const {
    return models::dice_bce_loss(logits, raw::to(raw::to(batch.masks, kFloat32), logits.device()),
                                 config_.dice_weight, config_.bce_weight);
  }

  TrainConfig config_;
  mutable int64_t in_channels_ = 1;
};

}  // namespace

std::unique_ptr<TrainTask> make_segmenter_task(const TrainConfig& config) {
  return std::make_unique<SegmenterTask>(config);
}

Command register_train_segmenter(CLI::App& app) {
  return register_train_command(app, TaskKind::Segmentation, "train-segmenter",
                                "Train and evaluate a pneumothorax segmenter (UNet++; SIIM-ACR, "
                                "CANDID-PTX), optionally with synthetic images",
                                make_segmenter_task);
}

}  // namespace cxr::experiments
