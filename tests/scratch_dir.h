#pragma once
// A fresh, empty folder for one test's files under the test build tree, and writing raw bytes
// into it (corrupt and hand-made files).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace avatar::testing {

// AVATAR_TEST_BINARY_DIR/<group>/<name>, emptied and created.
inline std::filesystem::path fresh_dir(const std::string& group, const std::string& name) {
    const auto dir = std::filesystem::path(AVATAR_TEST_BINARY_DIR) / group / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

// Writes `bytes` to `path` as they are (no atomic rename: tests want exactly these bytes).
inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
}

}  // namespace avatar::testing
