// `avatar face-model`: the layout listing and the contact sheet of the modes.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "face/face_fixtures.h"
#include "media/image.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
using testing::run_cli;

TEST(CliFaceModel, ListsTheLayoutAndRendersOneCellPerMode) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto list = run_cli("face-model --list");
    ASSERT_EQ(list.exit_status, 0) << list.output;
    EXPECT_NE(list.output.find("avatar-face-v1: 45 columns"), std::string::npos) << list.output;
    EXPECT_NE(list.output.find("jaw_open"), std::string::npos);
    EXPECT_NE(list.output.find("brow_height"), std::string::npos);

    const auto dir = testing::fresh_dir("cli_face_model", "sheet");
    const auto png = dir / "modes.png";
    const auto r = run_cli("-q face-model --sheet " + png.string() + " --cell 64");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto sheet = media::read_image(png);
    // 35 cells (the mean, 12 identity and 22 expression modes) in 5 columns of two 64 px views,
    // 7 rows of 64 px plus an 18 px label line.
    EXPECT_EQ(sheet.size(1), 5 * 2 * 64);
    EXPECT_EQ(sheet.size(0), 7 * (64 + 18));
    // The jaw_open cell (row 2, column 3) is tinted red where the jaw moved.
    const auto cell = sheet.narrow(0, 2 * 82 + 18, 64).narrow(1, 3 * 128, 64).to(torch::kInt32);
    const auto red = (cell.select(2, 0) - cell.select(2, 1)) > 60;
    EXPECT_GT(red.sum().item<int64_t>(), 20);
    EXPECT_NE(run_cli("face-model --cell 10").exit_status, 0);
}

}  // namespace
}  // namespace avatar
