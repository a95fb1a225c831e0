// DPE generator: parity on the shared fixture, and the per-source / per-frame split that the
// engine relies on, on random small weights.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "nn/state_dict.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::engines::dpe {
namespace {
namespace fs = std::filesystem;

TEST(DPEGenerator, OfficialFixtureMatches) {
    const auto report = testing::run_shared_fixture("dpe");
    if (!report)
        GTEST_SKIP() << "no shared fixture " << testing::shared_fixture_dir("dpe");
    testing::expect_all_cases_pass(*report, 12);
}

DPEConfig small_config() {
    DPEConfig config;
    config.size = 16;
    config.channels = {{4, 12}, {8, 10}, {16, 8}};
    return config;
}

TEST(DPEGenerator, ConfigRoundTripAndEncodeOnce) {
    torch::manual_seed(9);
    Generator generator(small_config());
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "dpe" / "small.safetensors";
    nn::save_state(*generator, path);
    const auto file = SafetensorsFile::open(path);
    EXPECT_EQ(DPEConfig::detect_from_weights(file).to_json(), small_config().to_json());
    auto loaded = load_dpe_generator(file);

    torch::NoGradGuard no_grad;
    const auto source = torch::rand({1, 3, 16, 16}) * 2 - 1;
    const auto driving = torch::rand({1, 3, 16, 16}) * 2 - 1;
    const auto code = loaded->encode(source);  // once per source
    const auto d = loaded->motion(driving);    // per frame
    for (const auto stage : {Stage::kExpression, Stage::kPose, Stage::kBoth}) {
        const auto direct = loaded->forward(source, driving, stage);
        EXPECT_TRUE(torch::equal(direct, loaded->render(code, d, stage)));
        EXPECT_TRUE(torch::equal(direct, generator->forward(source, driving, stage)));
        EXPECT_EQ(direct.sizes(), source.sizes());
    }
    EXPECT_THROW(parse_stage("expression"), Error);
}

}  // namespace
}  // namespace avatar::engines::dpe
