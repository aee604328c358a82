// The tasks behind the training commands, for callers that run them in-process (the study runner,
// experiments/study.h): each command's registration uses the same factory.
#pragma once

#include <memory>

#include "experiments/generator_trainer.h"
#include "experiments/trainer.h"

namespace cxr::experiments {

// Downstream (train_classifier_cmd.cpp, train_segmenter_cmd.cpp).
std::unique_ptr<TrainTask> make_classifier_task(const TrainConfig& config);
std::unique_ptr<TrainTask> make_segmenter_task(const TrainConfig& config);
std::unique_ptr<TrainTask> make_train_task(TaskKind kind, const TrainConfig& config);

// Generator (train_vae_cmd.cpp, train_unet_cmd.cpp, train_controlnet_cmd.cpp); they may throw on
// bad input before anything is written.
std::unique_ptr<GeneratorTask> make_vae_task(const GeneratorConfig& config);
std::unique_ptr<GeneratorTask> make_unet_task(const GeneratorConfig& config);
std::unique_ptr<GeneratorTask> make_controlnet_task(const GeneratorConfig& config);
std::unique_ptr<GeneratorTask> make_generator_task(GeneratorKind kind,
                                                   const GeneratorConfig& config);

}  // namespace cxr::experiments
