#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"

namespace avatar {
namespace {

TEST(Error, MessageNamesTheSubject) {
    const Error e("weights.safetensors", "truncated header");
    EXPECT_STREQ(e.what(), "weights.safetensors: truncated header");
    EXPECT_EQ(e.subject(), "weights.safetensors");
    EXPECT_EQ(e.message(), "truncated header");
}

TEST(AtomicOutput, NothingIsLeftBehindWithoutCommit) {
    const auto dir = std::filesystem::path(AVATAR_TEST_BINARY_DIR) / "atomic_output";
    std::filesystem::remove_all(dir);
    const auto target = dir / "result.bin";
    {
        AtomicOutput out(target);
        std::ofstream(out.temp_path()) << "half-written";
        // destroyed without commit(), as when an exception unwinds a writer
    }
    EXPECT_FALSE(std::filesystem::exists(target));
    EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(AtomicOutput, CommitMovesTheFileIntoPlace) {
    const auto dir = std::filesystem::path(AVATAR_TEST_BINARY_DIR) / "atomic_output_commit";
    std::filesystem::remove_all(dir);
    const auto target = dir / "result.txt";
    write_file_atomic(target, "done", 4);
    EXPECT_EQ(read_text_file(target), "done");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
}

TEST(Files, MissingFileIsNamed) {
    try {
        read_file("/nonexistent/file.bin");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "/nonexistent/file.bin");
    }
}

}  // namespace
}  // namespace avatar
