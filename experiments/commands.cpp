// The list of subcommands.
#include "experiments/commands.h"

namespace cxr::experiments {

std::vector<Command> register_commands(CLI::App& app) {
  return {register_demo(app),
          register_tensors(app),
          register_env(app),
          register_phantoms(app),
          register_run_model(app),
          register_train_classifier(app),
          register_train_segmenter(app),
          register_tokenize(app),
          register_sample(app),
          register_train_controlnet(app),
          register_train_vae(app),
          register_train_unet(app),
          register_study(app),
          register_study_worker(app),
          register_report(app)};
}

}  // namespace cxr::experiments
