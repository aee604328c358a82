// Registration of the `cxr` subcommands: each adds itself to the app with its flags and returns
// the function that runs it once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace cxr::experiments {

struct Command {
  CLI::App* app;              // the subcommand (its flags are bound to the captured options)
  std::function<void()> run;  // runs it; throws cxr::Error on bad input
};

// Adds every subcommand to `app`.
std::vector<Command> register_commands(CLI::App& app);

// One per subcommand.
Command register_demo(CLI::App& app);
Command register_tensors(CLI::App& app);           // tensors ls|stats|diff (tensors_cmd.cpp)
Command register_env(CLI::App& app);               // env (env_cmd.cpp)
Command register_phantoms(CLI::App& app);          // phantoms (phantoms_cmd.cpp)
Command register_run_model(CLI::App& app);         // run-model (run_model_cmd.cpp)
Command register_train_classifier(CLI::App& app);  // train-classifier (train_classifier_cmd.cpp)
Command register_train_segmenter(CLI::App& app);   // train-segmenter (train_segmenter_cmd.cpp)
Command register_tokenize(CLI::App& app);          // tokenize (tokenize_cmd.cpp)
Command register_sample(CLI::App& app);            // sample (sample_cmd.cpp)
Command register_train_controlnet(CLI::App& app);  // train-controlnet (train_controlnet_cmd.cpp)
Command register_train_vae(CLI::App& app);         // train-vae (train_vae_cmd.cpp)
Command register_train_unet(CLI::App& app);        // train-unet (train_unet_cmd.cpp)
Command register_study(CLI::App& app);             // study (study_cmd.cpp)
Command register_study_worker(CLI::App& app);      // study-worker (study_cmd.cpp)
Command register_report(CLI::App& app);            // report (study_cmd.cpp)

}  // namespace cxr::experiments
