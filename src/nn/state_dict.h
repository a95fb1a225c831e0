#pragma once
// Loading weights into torch::nn::Module trees whose parameters and buffers are registered under
// the official names, so that an official checkpoint (converted to safetensors) loads by plain
// name lookup.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace avatar::nn {

struct LoadReport {
    std::vector<std::string> missing;     // module entries with no tensor in the file
    std::vector<std::string> unexpected;  // file tensors under `prefix` the module does not have
};

// Copies every parameter and buffer of `module` from `file` (key = prefix + name), converting
// dtype (e.g. F16 checkpoints into F32 modules). A shape mismatch is an Error naming the tensor.
// With `strict`, missing or unexpected tensors are an Error too.
// Every parameter and buffer of `module` under its registered name (prefix + name), in
// registration order: what load_state reads back.
std::vector<std::pair<std::string, torch::Tensor>> state_tensors(const torch::nn::Module& module,
                                                                 const std::string& prefix = "");

// Writes state_tensors(module) to a safetensors file (atomically).
void save_state(const torch::nn::Module& module, const std::filesystem::path& path,
                const std::map<std::string, std::string>& metadata = {});

LoadReport load_state(torch::nn::Module& module, const SafetensorsFile& file,
                      const std::string& prefix = "", bool strict = true);

}  // namespace avatar::nn
