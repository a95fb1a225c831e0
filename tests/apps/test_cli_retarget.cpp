// `avatar retarget`: motion files of the face model in, the driving motion on the source out;
// relative by default, regions and strength honoured, bad inputs as one-line errors and no file.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "media/motion_file.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::run_cli;

media::Motion face_motion(int64_t frames, double expression, double yaw_step) {
    const auto& m = face::face_model();
    media::Motion motion;
    motion.frame_count = frames;
    motion.image_width = motion.image_height = 256;
    motion.layout = face::kFaceLayoutName;
    auto pose = torch::tensor({0.0f, 0.0f, 0.0f, 128.0f, 128.0f, 0.0f, 8.0f}).repeat({frames, 1});
    pose.select(1, 1).copy_(torch::arange(frames, torch::kFloat32) * yaw_step);
    auto exp = torch::full({frames, m.expression_count()}, static_cast<float>(expression));
    exp.select(1, 0).add_(torch::arange(frames, torch::kFloat32) * 0.1f);  // jaw_open opens
    motion.channels["pose"] = pose;
    motion.channels["identity"] = torch::zeros({frames, m.identity_count()});
    motion.channels["expression"] = exp;
    motion.channels["gaze"] = torch::zeros({frames, 4});
    return motion;
}

TEST(CliRetarget, RelativeMotionOnAPortrait) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto dir = testing::fresh_dir("cli_retarget", "relative");
    media::write_motion(dir / "source.json", face_motion(1, 0.3, 0.0));
    media::write_motion(dir / "driving.json", face_motion(4, 0.1, 0.05));
    const auto r = run_cli("-q retarget -s " + (dir / "source.json").string() + " -d " +
                           (dir / "driving.json").string() + " -o " +
                           (dir / "out.safetensors").string() + " --regions mouth");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto out = media::read_motion(dir / "out.safetensors");
    EXPECT_EQ(out.frame_count, 4);
    EXPECT_EQ(out.layout, "avatar-face-v1");
    const auto exp = out.channels.at("expression");
    // jaw_open (a mouth mode): the source's 0.3 plus the driving change 0.1 per frame.
    EXPECT_NEAR(exp[3][0].item<float>(), 0.6f, 1e-6f);
    // Only the mouth moved: the head stays the source's (yaw 0), blink stays 0.3.
    EXPECT_NEAR(out.channels.at("pose").select(1, 1).abs().max().item<float>(), 0.0f, 1e-6f);
    const auto& names = face::face_model().expression_names;
    const auto blink = std::find(names.begin(), names.end(), "blink_left") - names.begin();
    EXPECT_NEAR(exp[3][blink].item<float>(), 0.3f, 1e-6f);
}

TEST(CliRetarget, BadInputsAreOneLineErrors) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto dir = testing::fresh_dir("cli_retarget", "bad");
    media::write_motion(dir / "driving.json", face_motion(4, 0.1, 0.05));
    media::write_motion(dir / "three.json", face_motion(3, 0.1, 0.0));
    auto raw = face_motion(1, 0.1, 0.0);
    raw.layout = "raw";
    media::write_motion(dir / "raw.json", raw);
    const auto out = (dir / "out.json").string();
    const auto driving = (dir / "driving.json").string();
    auto expect_error = [&](const std::string& args, const std::string& needle) {
        const auto r = run_cli("retarget " + args + " -o " + out);
        EXPECT_NE(r.exit_status, 0) << r.output;
        EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
        EXPECT_FALSE(fs::exists(out));
    };
    expect_error("-s " + (dir / "raw.json").string() + " -d " + driving, "--fit");
    expect_error("-s " + (dir / "three.json").string() + " -d " + driving, "4");
    expect_error("-s " + (dir / "three.json").string() + " -d " + driving + " --regions nose",
                 "nose");
    expect_error("-s " + (dir / "missing.json").string() + " -d " + driving, "missing.json");
}

}  // namespace
}  // namespace avatar
