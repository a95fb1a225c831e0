// `avatar transcode` end to end on the bundled sample, checked independently with ffprobe, and
// on damaged input: exit status, one error line naming the file, no output file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_cli;

const fs::path kTalking = fs::path(AVATAR_SOURCE_DIR) / "assets/samples/talking.mp4";

fs::path scratch(const std::string& name) {
    return avatar::testing::fresh_dir("cli_transcode", name);
}

// ffprobe's view of the file's streams (an independent check of what we wrote).
json probe(const fs::path& path) {
    const std::string command =
        "ffprobe -v error -count_packets -show_entries "
        "stream=codec_type,codec_name,width,height,r_frame_rate,nb_read_packets,pix_fmt -of json "
        "'" +
        path.string() + "'";
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr)
        return {};
    std::string text;
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0)
        text.append(buffer, n);
    pclose(pipe);
    return json::parse(text, nullptr, false);
}

bool have_ffprobe() {
    return std::system("ffprobe -version > /dev/null 2>&1") == 0;
}

TEST(CliTranscode, SampleKeepsFramesRateAndAudio) {
    const auto dir = scratch("sample");
    const fs::path out = dir / "out.mp4";
    const auto result = run_cli("--json -q -t 2 transcode '" + kTalking.string() + "' -o '" +
                                out.string() + "' --preset ultrafast");
    ASSERT_EQ(result.exit_status, 0) << result.output;
    const json summary = json::parse(result.output, nullptr, false);
    ASSERT_FALSE(summary.is_discarded()) << result.output;
    EXPECT_EQ(summary["frames"], 89);
    EXPECT_EQ(summary["frame_rate"], "25");
    EXPECT_EQ(summary["width"], 256);
    EXPECT_EQ(summary["audio"]["kept"], true);
    EXPECT_EQ(summary["audio"]["codec"], "aac");
    EXPECT_EQ(summary["bytes"], fs::file_size(out));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), {}), 1);

    if (!have_ffprobe())
        GTEST_SKIP() << "ffprobe not installed (a declared test dependency)";
    const json streams = probe(out)["streams"];
    ASSERT_EQ(streams.size(), 2u) << streams.dump();
    for (const auto& s : streams) {
        if (s["codec_type"] == "video") {
            EXPECT_EQ(s["codec_name"], "h264");
            EXPECT_EQ(s["pix_fmt"], "yuv420p");
            EXPECT_EQ(s["r_frame_rate"], "25/1");
            EXPECT_EQ(s["nb_read_packets"], "89");
        } else {
            EXPECT_EQ(s["codec_name"], "aac");
            EXPECT_EQ(s["nb_read_packets"], probe(kTalking)["streams"][1]["nb_read_packets"]);
        }
    }
}

TEST(CliTranscode, MaxFramesAndNoAudio) {
    const auto dir = scratch("max_frames");
    const fs::path out = dir / "short.mp4";
    const auto result = run_cli("-q -t 2 transcode '" + kTalking.string() + "' -o '" +
                                out.string() + "' --max-frames 10 --no-audio --crf 30");
    ASSERT_EQ(result.exit_status, 0) << result.output;
    EXPECT_NE(result.output.find("10 frames"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("audio kept: no"), std::string::npos) << result.output;
    if (!have_ffprobe())
        GTEST_SKIP() << "ffprobe not installed";
    const json streams = probe(out)["streams"];
    ASSERT_EQ(streams.size(), 1u) << streams.dump();
    EXPECT_EQ(streams[0]["nb_read_packets"], "10");
}

TEST(CliTranscode, DamagedInputIsOneErrorLineAndNoOutput) {
    const auto dir = scratch("damaged");
    const fs::path bad = dir / "bad.mp4";
    std::ofstream(bad) << "this is not a video\n";
    const fs::path out = dir / "out.mp4";
    const auto result = run_cli("transcode '" + bad.string() + "' -o '" + out.string() + "'");
    EXPECT_EQ(result.exit_status, 1);
    const std::string expected_start = "avatar: error: " + bad.string() + ": ";
    EXPECT_EQ(result.output.rfind(expected_start, 0), 0u) << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), {}), 1);

    const auto missing =
        run_cli("transcode '" + (dir / "missing.mp4").string() + "' -o '" + out.string() + "'");
    EXPECT_EQ(missing.exit_status, 1);
    EXPECT_NE(missing.output.find("missing.mp4: no such file"), std::string::npos)
        << missing.output;
    EXPECT_FALSE(fs::exists(out));
}

TEST(CliTranscode, AudioFlagsExcludeEachOther) {
    const auto dir = scratch("flags");
    const auto result =
        run_cli("transcode '" + kTalking.string() + "' -o '" + (dir / "x.mp4").string() +
                "' --no-audio --audio-from '" + kTalking.string() + "'");
    EXPECT_NE(result.exit_status, 0);
    EXPECT_FALSE(fs::exists(dir / "x.mp4"));
}

}  // namespace
}  // namespace avatar
