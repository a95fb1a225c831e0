// `avatar render-eg3d` on the shared EG3D fixture weights: a latent from a file or a seed, two
// camera angles, and clean errors for a latent of the wrong shape.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "core/safetensors.h"
#include "media/image.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::run_cli;

class CliRenderEG3D : public ::testing::Test {
protected:
    void SetUp() override {
        fixture_ = fs::path(AVATAR_SHARED_DIR) / "reference" / "eg3d";
        if (!fs::exists(fixture_ / "weights.safetensors")) {
            GTEST_SKIP() << "no shared EG3D fixture at " << fixture_;
        }
        // One folder per test: ctest runs tests in parallel processes.
        out_ = fs::path(AVATAR_TEST_BINARY_DIR) / "render_eg3d" /
               ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::remove_all(out_);
        fs::create_directories(out_);
    }
    std::string weights() const { return (fixture_ / "weights.safetensors").string(); }
    fs::path fixture_, out_;
};

TEST_F(CliRenderEG3D, RendersALatentFileFromTwoAngles) {
    const auto cases = SafetensorsFile::open(fixture_ / "cases.safetensors");
    const auto ws_path = out_ / "ws.safetensors";
    save_safetensors(ws_path, TensorMap{{"ws", cases.get("e2e/ws").narrow(0, 0, 1).clone()}});
    const auto front = out_ / "front.png", side = out_ / "side.png";
    auto r = run_cli("-q render-eg3d --weights " + weights() + " --ws " + ws_path.string() +
                     " -o " + front.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    r = run_cli("-q render-eg3d --weights " + weights() + " --ws " + ws_path.string() +
                " --yaw 25 -o " + side.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto a = media::read_image(front), b = media::read_image(side);
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{512, 512, 3}));
    EXPECT_FALSE(torch::equal(a, b));  // another camera, another image
}

TEST_F(CliRenderEG3D, SeedIsReproducible) {
    const auto a = out_ / "a.png", b = out_ / "b.png";
    ASSERT_EQ(
        run_cli("-q render-eg3d --weights " + weights() + " --seed 7 -o " + a.string()).exit_status,
        0);
    ASSERT_EQ(
        run_cli("-q render-eg3d --weights " + weights() + " --seed 7 -o " + b.string()).exit_status,
        0);
    EXPECT_TRUE(torch::equal(media::read_image(a), media::read_image(b)));
}

TEST_F(CliRenderEG3D, WrongLatentShapeIsAOneLineErrorAndWritesNothing) {
    const auto ws_path = out_ / "wrong.safetensors";
    save_safetensors(ws_path, TensorMap{{"ws", torch::zeros({1, 3, 512})}});
    const auto target = out_ / "never.png";
    const auto r = run_cli("render-eg3d --weights " + weights() + " --ws " + ws_path.string() +
                           " -o " + target.string());
    EXPECT_EQ(r.exit_status, 1);
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find("wrong.safetensors"), std::string::npos);
    EXPECT_FALSE(fs::exists(target));
}

}  // namespace
}  // namespace avatar
