// PVP latent module: parity on the shared fixture, and its defining properties on random weights.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/reference_check.h"
#include "core/safetensors.h"
#include "engines/pvp/latent_module.h"
#include "pipeline/builtin_modules.h"

namespace avatar::engines::pvp {
namespace {
namespace fs = std::filesystem;

TEST(PvpLatentModule, OfficialFixtureMatches) {
    const fs::path dir = fs::path(AVATAR_SHARED_DIR) / "reference" / "pvp";
    if (!fs::exists(dir / "config.json"))
        GTEST_SKIP() << "no shared fixtures at " << dir;
    register_builtin_modules();
    ReferenceRunOptions options;
    options.show_progress = false;
    const auto report = run_reference_checks(dir, options);
    EXPECT_EQ(report.known(), 2);
    EXPECT_TRUE(report.ok());
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
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : module->named_parameters())
        tensors.emplace_back(p.key(), p.value());
    for (const auto& b : module->named_buffers())
        tensors.emplace_back(b.key(), b.value());
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "pvp" / "latent.safetensors";
    save_safetensors(path, tensors);
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
