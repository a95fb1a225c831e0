// DPE generator: parity on the shared fixture, and the per-source / per-frame split that the
// engine relies on, on random small weights.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "pipeline/builtin_modules.h"

namespace avatar::engines::dpe {
namespace {
namespace fs = std::filesystem;

TEST(DPEGenerator, OfficialFixtureMatches) {
    const fs::path dir = fs::path(AVATAR_SHARED_DIR) / "reference" / "dpe";
    if (!fs::exists(dir / "config.json"))
        GTEST_SKIP() << "no shared fixtures at " << dir;
    register_builtin_modules();
    ReferenceRunOptions options;
    options.show_progress = false;
    const auto report = run_reference_checks(dir, options);
    EXPECT_EQ(report.known(), 12);
    for (const auto& c : report.cases) {
        for (const auto& o : c.checks)
            EXPECT_TRUE(o.passed) << c.name << " / " << o.name << " " << o.note;
    }
    EXPECT_TRUE(report.ok());
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
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : generator->named_parameters())
        tensors.emplace_back(p.key(), p.value());
    for (const auto& b : generator->named_buffers())
        tensors.emplace_back(b.key(), b.value());
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "dpe" / "small.safetensors";
    save_safetensors(path, tensors);
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
