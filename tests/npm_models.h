#pragma once
// Whether the pinned npm face models (scripts/setup.sh) are unpacked, for tests that skip without.
#include <filesystem>

#include "face/model_files.h"

namespace avatar::testing {

inline bool faceapi_models_installed() {
    return std::filesystem::is_regular_file(face::npm_packages_dir() /
                                            "@vladmandic/face-api/model" /
                                            "face_expression_model-weights_manifest.json");
}

}  // namespace avatar::testing
