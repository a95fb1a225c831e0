// `avatar train` end to end on a tiny DPE: a run writes its model, log and checkpoint; bad
// arguments are one-line errors; a folder with a run in it is not overwritten.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "cli_runner.h"
#include "npm_models.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::run_cli;

TEST(CliTrain, TinyDpeRunWritesAModelAndRefusesToOverwrite) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto dir = avatar::testing::fresh_dir("cli_train", "tiny") / "run";
    const std::string tiny =
        " -m dpe --size 16 --width 8 --max-channels 32 --batch 1 --steps 2 "
        "--refine-steps 0 --validation-pairs 2 -o " +
        dir.string();
    const auto r = run_cli("-q --threads 1 train" + tiny);
    ASSERT_EQ(r.exit_status, 0) << r.output;
    EXPECT_TRUE(fs::is_regular_file(dir / "model.safetensors"));
    EXPECT_TRUE(fs::is_regular_file(dir / "checkpoint" / "state.json"));
    EXPECT_TRUE(fs::is_regular_file(dir / "losses.csv"));
    EXPECT_TRUE(fs::is_regular_file(dir / "validation.csv"));
    const auto info = run_cli("info " + (dir / "model.safetensors").string());
    EXPECT_NE(info.output.find("dpe-own"), std::string::npos) << info.output;

    expect_one_line_error(run_cli("train" + tiny), "--resume");
    expect_one_line_error(run_cli("train -m lia -o " + dir.string()), "lia");
    expect_one_line_error(run_cli("train -m dpe --size 48 -o " + (dir / "x").string()), "--size");
    expect_one_line_error(
        run_cli("train -m dpe --max-channels 16 --width 8 -o " + (dir / "y").string()),
        "--max-channels");
    expect_one_line_error(run_cli("train -m dpe --validation-pairs 3 -o " + (dir / "z").string()),
                          "--validation-pairs");
    expect_one_line_error(run_cli("train -m dpe --motion-dim 0 -o " + (dir / "m").string()),
                          "--motion-dim");
}

TEST(CliTrain, InitWithMoreMotionDirectionsWidensTheModel) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto root = avatar::testing::fresh_dir("cli_train", "widen");
    const std::string tiny =
        " -m dpe --size 16 --width 8 --max-channels 32 --batch 1 --steps 1 --refine-steps 0 "
        "--validation-pairs 2";
    const auto narrow = root / "narrow" / "model.safetensors";
    ASSERT_EQ(
        run_cli("-q --threads 1 train" + tiny + " -o " + (root / "narrow").string()).exit_status,
        0);
    const auto wide = run_cli("-q --threads 1 train" + tiny + " --motion-dim 24 --init " +
                              narrow.string() + " -o " + (root / "wide").string());
    ASSERT_EQ(wide.exit_status, 0) << wide.output;
    const auto info = run_cli("info " + (root / "wide" / "model.safetensors").string());
    EXPECT_NE(info.output.find("\"motion_dim\":24"), std::string::npos) << info.output;

    // Fewer directions than the file has cannot be made from it; the refused run leaves nothing.
    expect_one_line_error(run_cli("train" + tiny + " --motion-dim 12 --init " + narrow.string() +
                                  " -o " + (root / "fewer").string()),
                          narrow.string());
    EXPECT_FALSE(fs::exists(root / "fewer"));
}

}  // namespace
}  // namespace avatar
