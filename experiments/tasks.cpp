// Dispatch from a task kind to its factory (tasks.h).
#include "experiments/tasks.h"

namespace cxr::experiments {

std::unique_ptr<TrainTask> make_train_task(TaskKind kind, const TrainConfig& config) {
  return kind == TaskKind::Classification ? make_classifier_task(config)
                                          : make_segmenter_task(config);
}

std::unique_ptr<GeneratorTask> make_generator_task(GeneratorKind kind,
                                                   const GeneratorConfig& config) {
  switch (kind) {
    case GeneratorKind::Vae:
      return make_vae_task(config);
    case GeneratorKind::UNet:
      return make_unet_task(config);
    case GeneratorKind::ControlNet:
      break;
  }
  return make_controlnet_task(config);
}

}  // namespace cxr::experiments
