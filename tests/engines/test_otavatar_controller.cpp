// OTAvatar motion controller and driving helpers: parity on the shared fixture, and properties
// that hold without it.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "engines/otavatar/controller.h"
#include "engines/otavatar/driving.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::engines::otavatar {
namespace {
namespace fs = std::filesystem;

TEST(OTAvatarController, OfficialFixtureMatches) {
    const auto report = testing::run_shared_fixture("otavatar_controller");
    if (!report)
        GTEST_SKIP() << "no shared fixture " << testing::shared_fixture_dir("otavatar_controller");
    EXPECT_EQ(report->fixture, "otavatar_controller");
    testing::expect_all_cases_pass(*report, 7);
}

// Saves a small controller the way the official checkpoint stores it: the shared refine Linear
// under all five indices.
fs::path save_controller(MotionController& controller, const std::string& name, bool corrupt_copy) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : controller->named_parameters()) {
        tensors.emplace_back(p.key(), p.value());
        if (p.key().rfind("mapping_Refine.0.", 0) == 0) {
            for (const char* index : {"2", "4", "6", "8"}) {
                auto copy = p.value().clone();
                if (corrupt_copy && std::string(index) == "6")
                    copy.view(-1)[0] += 1;
                tensors.emplace_back("mapping_Refine." + std::string(index) + p.key().substr(16),
                                     copy);
            }
        }
    }
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "otavatar" / (name + ".safetensors");
    save_safetensors(path, tensors);
    return path;
}

TEST(OTAvatarController, LoadsTheOfficialLayoutAndChecksSharedCopies) {
    ControllerConfig config;
    config.descriptor_channels = 32;
    config.num_directions = 6;
    config.w_dim = 24;
    config.num_ws = 4;
    torch::manual_seed(8);
    MotionController controller(config);
    auto loaded =
        load_motion_controller(SafetensorsFile::open(save_controller(controller, "small", false)));
    torch::NoGradGuard no_grad;
    const auto driving = torch::randn({2, 70, 27});
    const auto out = loaded->forward(driving);
    EXPECT_EQ(out.directions.sizes(), (std::vector<int64_t>{2, 4, 24}));
    EXPECT_TRUE(torch::equal(out.directions, controller->forward(driving).directions));
    // Q is orthonormal.
    const auto q = loaded->basis();
    EXPECT_TRUE(torch::allclose(q.t().matmul(q), torch::eye(6), 1e-5, 1e-5));
    EXPECT_THROW(
        load_motion_controller(SafetensorsFile::open(save_controller(controller, "bad", true))),
        Error);
    EXPECT_THROW(loaded->forward(torch::randn({1, 70, 20})), Error);
}

TEST(OTAvatarDriving, WindowsReplicateEdges) {
    auto coefficients = torch::zeros({5, 257});
    for (int64_t i = 0; i < 5; ++i)
        coefficients[i].fill_(static_cast<float>(i));
    const auto [index, windows] = motion_windows(coefficients, {0, 4}, 2);
    EXPECT_TRUE(torch::equal(index[0], torch::tensor({0, 0, 0, 1, 2}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(index[1], torch::tensor({2, 3, 4, 4, 4}, torch::kInt64)));
    EXPECT_EQ(windows.sizes(), (std::vector<int64_t>{2, 70, 5}));
    EXPECT_EQ(windows[1][69][0].item<float>(), 2.0f);
    EXPECT_THROW(motion_windows(coefficients, {5}), Error);
}

TEST(OTAvatarDriving, FrontalTrackerPoseGivesEG3DsFrontalCamera) {
    // Zero angles, translation (0, 0, -4), focal 1100: camera about (0, 0.01, 2.66) looking down
    // -z.
    const auto conditions = torch::tensor({0.f, 0.f, 0.f, 0.f, 0.f, -4.f, 1100.f}).repeat({3, 1});
    const auto c = conditions_to_cameras(conditions);
    EXPECT_NEAR(c[0][3].item<float>(), 0.0f, 1e-6);
    EXPECT_NEAR(c[0][11].item<float>(), 0.27f * 14 * 2.7f / 4 + 0.161f * 2.7f / 4, 1e-4);
    EXPECT_FLOAT_EQ(c[0][5].item<float>(), -1.0f);  // R = diag(1, -1, -1)
    EXPECT_NEAR(c[0][16].item<float>(), 2985.29 / 700 * 1100 / 1050, 1e-5);
    EXPECT_THROW(conditions_to_cameras(conditions.narrow(0, 0, 1)), Error);
}

}  // namespace
}  // namespace avatar::engines::otavatar
