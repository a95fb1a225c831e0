#pragma once
// File helpers that keep the project's promise: outputs are never left half-written, and every
// I/O error names the file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace avatar {

// An output file written under a temporary sibling name and renamed into place by commit().
// If the object dies without commit() (an exception unwound the writer), the temporary file is
// removed, so nothing half-written is ever left under the final name. The temporary name keeps
// the final extension, so format guessing by extension (FFmpeg, OpenCV) still works.
class AtomicOutput {
public:
    explicit AtomicOutput(std::filesystem::path final_path);
    ~AtomicOutput();
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    const std::filesystem::path& temp_path() const { return temp_path_; }
    const std::filesystem::path& final_path() const { return final_path_; }
    // Renames the temporary file to the final name (replacing any existing file).
    void commit();

private:
    std::filesystem::path final_path_;
    std::filesystem::path temp_path_;
    bool committed_ = false;
};

// Reads a whole file; throws Error naming the path if it cannot.
std::vector<uint8_t> read_file(const std::filesystem::path& path);
std::string read_text_file(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically (temporary file + rename).
void write_file_atomic(const std::filesystem::path& path, const void* data, size_t size);

// Throws Error naming `path` unless it exists and is a regular file.
void require_regular_file(const std::filesystem::path& path);

}  // namespace avatar
