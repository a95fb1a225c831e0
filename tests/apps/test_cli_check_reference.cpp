// `avatar check-reference` end to end: a fixture made by the test for a case the program
// implements (stylegan2_ada bias_act), passing and failing; and the shared fixtures when present.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "core/safetensors.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_cli;

// The official bias_act on [N, C, H, W] written out element by element, independently of nn/.
torch::Tensor bias_lrelu(const torch::Tensor& x, const torch::Tensor& b, double gain,
                         double clamp) {
    auto out = x.clone();
    auto o = out.accessor<float, 4>();
    auto ba = b.accessor<float, 1>();
    for (int64_t n = 0; n < x.size(0); ++n)
        for (int64_t c = 0; c < x.size(1); ++c)
            for (int64_t h = 0; h < x.size(2); ++h)
                for (int64_t w = 0; w < x.size(3); ++w) {
                    float v = o[n][c][h][w] + ba[c];
                    v = v < 0 ? v * 0.2f : v;
                    v = static_cast<float>(v * gain);
                    if (clamp >= 0)
                        v = std::max(-static_cast<float>(clamp),
                                     std::min(static_cast<float>(clamp), v));
                    o[n][c][h][w] = v;
                }
    return out;
}

fs::path make_bias_act_fixture(const std::string& name, float error) {
    const fs::path dir = fs::path(AVATAR_TEST_BINARY_DIR) / "cli_check_reference" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    torch::manual_seed(11);
    const auto x = torch::randn({2, 5, 4, 3});
    const auto b = torch::randn({5});
    auto lrelu = bias_lrelu(x, b, std::sqrt(2.0), -1);
    const auto clamped = bias_lrelu(x, b, 1.5, 0.5);
    const auto linear = x + b.reshape({1, 5, 1, 1});
    lrelu.view(-1)[7] += error;
    save_safetensors(dir / "weights.safetensors", TensorMap{{"unused", torch::zeros({1})}});
    save_safetensors(dir / "cases.safetensors",
                     TensorMap{{"bias_act/x", x},
                               {"bias_act/b", b},
                               {"bias_act/lrelu", lrelu},
                               {"bias_act/lrelu_gain1.5_clamp0.5", clamped},
                               {"bias_act/linear", linear}});
    const json config = {
        {"fixture", "stylegan2_ada"},
        {"cases",
         {{{"name", "bias_act"},
           {"inputs", {{"x", "bias_act/x"}, {"b", "bias_act/b"}}},
           {"outputs",
            {{"lrelu", "bias_act/lrelu"},
             {"lrelu_gain1.5_clamp0.5", "bias_act/lrelu_gain1.5_clamp0.5"},
             {"linear", "bias_act/linear"}}},
           {"tolerance", {{"atol", 1e-6}, {"rtol", 1e-6}}}},
          {{"name", "a_case_nobody_implements"}, {"callable", "not implemented anywhere"}}}}};
    std::ofstream(dir / "config.json") << config.dump(1);
    return dir;
}

TEST(CliCheckReference, PassingFixtureExitsZero) {
    const auto result = run_cli("check-reference " + make_bias_act_fixture("pass", 0).string());
    EXPECT_EQ(result.exit_status, 0) << result.output;
    EXPECT_NE(result.output.find("lrelu_gain1.5_clamp0.5"), std::string::npos);
    EXPECT_NE(result.output.find("result: pass"), std::string::npos) << result.output;
}

TEST(CliCheckReference, FailingFixtureExitsNonZero) {
    const auto result = run_cli("check-reference " + make_bias_act_fixture("fail", 1e-3f).string());
    EXPECT_EQ(result.exit_status, 1) << result.output;
    EXPECT_NE(result.output.find("FAIL"), std::string::npos) << result.output;
}

TEST(CliCheckReference, JsonReport) {
    const auto result =
        run_cli("--json -q check-reference " + make_bias_act_fixture("json", 0).string());
    ASSERT_EQ(result.exit_status, 0) << result.output;
    const auto report = json::parse(result.output);
    EXPECT_EQ(report["cases_known"], 1);
    EXPECT_EQ(report["cases_total"], 2);
    EXPECT_EQ(report["ok"], true);
}

TEST(CliCheckReference, NoKnownCaseExitsNonZero) {
    const auto dir = make_bias_act_fixture("unknown", 0);
    const auto result = run_cli("check-reference " + dir.string() + " --case a_case_nobody");
    EXPECT_EQ(result.exit_status, 1) << result.output;
    EXPECT_NE(result.output.find("no case of this fixture is implemented"), std::string::npos);
}

TEST(CliCheckReference, MissingDirectoryIsAOneLineError) {
    const auto result = run_cli("check-reference /nonexistent/fixture");
    EXPECT_NE(result.exit_status, 0);
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
}

TEST(CliCheckReference, SharedStyleGan2OpsMatchTheOfficialCode) {
    const fs::path dir = fs::path(AVATAR_SHARED_DIR) / "reference" / "stylegan2_ada";
    if (!fs::exists(dir / "config.json"))
        GTEST_SKIP() << "no shared fixtures at " << dir;
    const auto result =
        run_cli("check-reference " + dir.string() + " --case '^(upfirdn2d|bias_act)$'");
    EXPECT_EQ(result.exit_status, 0) << result.output;
}

}  // namespace
}  // namespace avatar
