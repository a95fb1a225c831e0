#include "face/human/models.h"

#include <array>
#include <mutex>

#include "face/model_files.h"

namespace avatar::face::human {
namespace {

constexpr size_t kNumModels = 7;

struct Registry {
    std::mutex mutex;
    std::array<nn::tfjs::GraphModel, kNumModels> models;
    torch::Device device = torch::kCPU;
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

const char* model_file_name(Model which) {
    switch (which) {
        case Model::kBlazeFace:
            return "blazeface.json";
        case Model::kFaceMesh:
            return "facemesh.json";
        case Model::kIris:
            return "iris.json";
        case Model::kEmotion:
            return "emotion.json";
        case Model::kFaceRes:
            return "faceres.json";
        case Model::kSelfie:
            return "selfie.json";
        case Model::kMeet:
            return "meet.json";
    }
    return "";
}

const nn::tfjs::GraphModel& model(Model which) {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto& slot = r.models[static_cast<size_t>(which)];
    if (!slot.loaded()) {
        auto loaded = nn::tfjs::GraphModel::load(human_model_file(model_file_name(which)));
        if (r.device != torch::Device(torch::kCPU))
            loaded.to(r.device);
        slot = std::move(loaded);
    }
    return slot;
}

void set_models_device(torch::Device device) {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.device = device;
    for (auto& m : r.models) {
        if (m.loaded())
            m.to(device);
    }
}

torch::Device models_device() {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    return r.device;
}

}  // namespace avatar::face::human
