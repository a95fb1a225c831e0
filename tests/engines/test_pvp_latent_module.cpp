// PVP latent module: parity on the shared fixture, and its defining properties on random weights.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/reference_check.h"
#include "core/safetensors.h"
#include "engines/pvp/latent_module.h"
#include "nn/state_dict.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::engines::pvp {
namespace {
namespace fs = std::filesystem;

TEST(PvpLatentModule, OfficialFixtureMatches) {
    const auto report = testing::run_shared_fixture("pvp");
    if (!report)
        GTEST_SKIP() << "no shared fixture " << testing::shared_fixture_dir("pvp");
    testing::expect_all_cases_pass(*report, 2);
}

TEST(PvpLatentModule, BlendWeightsAreNormalisedAndBoundedAndConfigRoundTrips) {
    LatentModuleConfig config;
    config.num_anchors = 5;
    config.num_ws = 10;
    config.latent_size = 16;
    config.hidden_size = 32;
    torch::manual_seed(5);
    LatentModule module(config);
    module->all_anchors.normal_();
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "pvp" / "latent.safetensors";
    nn::save_state(*module, path);
    auto loaded = load_latent_module(SafetensorsFile::open(path));
    EXPECT_EQ(loaded->config().to_json(), config.to_json());

    torch::NoGradGuard no_grad;
    const auto x = torch::randn({4, 53});
    const auto pitch = torch::randn({4, 1}), yaw = torch::randn({4, 1});
    const auto codes = loaded->generate(x, pitch, yaw);
    EXPECT_EQ(codes.ws.sizes(), (std::vector<int64_t>{4, 1, 10, 16}));
    EXPECT_TRUE(torch::allclose(codes.alpha.sum(-1), torch::ones({4}), 1e-5, 1e-5));
    // Only the first 8 ws carry expression; the rest are the pose-blended pivots.
    EXPECT_TRUE(torch::equal(codes.ws.squeeze(1).narrow(1, 8, 2), codes.w_plus.narrow(1, 8, 2)));
    EXPECT_TRUE(codes.delta.abs().lt(1).all().item<bool>());
    EXPECT_TRUE(torch::equal(codes.ws, module->generate(x, pitch, yaw).ws));
}

TEST(PvpLatentModule, PitchYawFromRotation) {
    // A rotation of 30 degrees about y: its third row is (-sin 30, 0, cos 30), so atan2(x, z)
    // gives -30 degrees of yaw and no pitch.
    const double t = 30.0 * M_PI / 180.0;
    const auto r = torch::tensor({std::cos(t), 0.0, std::sin(t), 0.0, 1.0, 0.0, -std::sin(t), 0.0,
                                  std::cos(t)})
                       .reshape({1, 3, 3});
    const auto [pitch, yaw] = pitch_yaw_degrees(r);
    EXPECT_NEAR(yaw.item<double>(), -30.0, 1e-9);
    EXPECT_NEAR(pitch.item<double>(), 0.0, 1e-9);
}

}  // namespace
}  // namespace avatar::engines::pvp
