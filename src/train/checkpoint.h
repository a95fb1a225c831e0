#pragma once
// Training checkpoints: everything a run needs to continue exactly where it stopped, in one
// folder that is replaced as a whole (written to "<folder>.partial", then swapped in), so an
// interrupted save never leaves a half-written checkpoint and the previous one survives.
//
// Layout (version "avatar-train-checkpoint-v1"):
//   state.json          step, stage, options and anything else the trainer records
//   <module>.safetensors every parameter and buffer of each module, by registered name
//   <optimizer>.pt      optimizer state (LibTorch's own archive: moments, step counts)
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace avatar::train {

inline constexpr const char* kCheckpointFormat = "avatar-train-checkpoint-v1";

struct CheckpointParts {
    std::vector<std::pair<std::string, torch::nn::Module*>> modules;
    std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers;
};

// Writes the parts and `state` (a JSON object; "format" is added) to `folder`.
void save_checkpoint(const std::filesystem::path& folder, const CheckpointParts& parts,
                     nlohmann::json state);

// Reads every part back (strictly: names and shapes must match) and returns the state. Throws
// avatar::Error naming the folder and the offending file.
nlohmann::json load_checkpoint(const std::filesystem::path& folder, const CheckpointParts& parts);

bool checkpoint_exists(const std::filesystem::path& folder);

}  // namespace avatar::train
