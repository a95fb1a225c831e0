#pragma once
// A fresh, empty folder for one test's files under the test build tree.
#include <filesystem>
#include <string>

namespace avatar::testing {

// AVATAR_TEST_BINARY_DIR/<group>/<name>, emptied and created.
inline std::filesystem::path fresh_dir(const std::string& group, const std::string& name) {
    const auto dir = std::filesystem::path(AVATAR_TEST_BINARY_DIR) / group / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace avatar::testing
