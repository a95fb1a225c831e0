#pragma once
// Shared helpers of the face geometry tests: where the face_models fixture and the pinned npm
// packages are, so tests can skip cleanly when either is absent.
#include <filesystem>
#include <string>

#include "face/model_files.h"
#include "shared_fixture.h"

namespace avatar::testing {

inline std::filesystem::path face_fixture(const std::string& relative) {
    return shared_fixture_dir("face_models") / relative;
}

inline bool have_face_fixture(const std::string& relative) {
    return std::filesystem::is_regular_file(face_fixture(relative));
}

// The canonical face needs the unpacked @mediapipe/face_mesh package.
inline bool have_mediapipe_package() {
    const auto dir = face::npm_packages_dir() / "@mediapipe/face_mesh";
    return std::filesystem::is_regular_file(dir / "face_mesh_solution_packed_assets.data") &&
           std::filesystem::is_regular_file(dir / "face_mesh_solution_packed_assets_loader.js");
}

}  // namespace avatar::testing

#define SKIP_WITHOUT_MEDIAPIPE()                                                           \
    do {                                                                                   \
        if (!::avatar::testing::have_mediapipe_package())                                  \
            GTEST_SKIP() << "the @mediapipe/face_mesh npm package is not installed under " \
                         << ::avatar::face::npm_packages_dir();                            \
    } while (0)
