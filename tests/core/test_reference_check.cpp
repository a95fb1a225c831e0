// The check-reference machinery on small fixtures made by the test itself.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A fixture "selftest" with one case of ours (a linear layer) and one case nobody implements.
class ReferenceCheckTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        auto& registry = ReferenceRegistry::instance();
        registry.add(
            {"selftest", "test linear layer",
             [](const json& spec) { return spec.value("name", "") == "linear"; },
             [](const ReferenceFixture& fixture, const json& spec) {
                 const auto& weights = fixture.weights();
                 const auto x = fixture.tensor(spec["inputs"]["x"]);
                 const auto y = torch::linear(x, weights.get("fc.weight"), weights.get("fc.bias"));
                 return std::vector<OutputCheck>{compare(
                     "y", y, fixture.tensor(spec["outputs"]["y"]), tolerance_for(spec, "y"))};
             }});
        registry.add({"selftest", "a runner that throws",
                      [](const json& spec) { return spec.value("name", "") == "throws"; },
                      [](const ReferenceFixture&, const json&) -> std::vector<OutputCheck> {
                          throw Error("fc.weight", "deliberate failure");
                      }});
    }

    // Writes a fixture whose expected output is perturbed by `error` at one element.
    fs::path make_fixture(const std::string& name, float error, bool with_linear = true,
                          bool wrong_shape = false) {
        const fs::path dir = fs::path(AVATAR_TEST_BINARY_DIR) / "reference_check" / name;
        fs::remove_all(dir);
        fs::create_directories(dir);
        torch::manual_seed(3);
        const auto w = torch::randn({4, 3});
        const auto b = torch::randn({4});
        const auto x = torch::randn({5, 3});
        // Reference computed independently of torch::linear: explicit sums in double.
        auto y = torch::zeros({5, 4});
        auto xa = x.accessor<float, 2>();
        auto wa = w.accessor<float, 2>();
        auto ya = y.accessor<float, 2>();
        for (int i = 0; i < 5; ++i) {
            for (int o = 0; o < 4; ++o) {
                double s = b[o].item<double>();
                for (int k = 0; k < 3; ++k)
                    s += static_cast<double>(xa[i][k]) * wa[o][k];
                ya[i][o] = static_cast<float>(s);
            }
        }
        ya[2][1] += error;
        if (wrong_shape)
            y = y.reshape({4, 5});
        save_safetensors(dir / "weights.safetensors", TensorMap{{"fc.weight", w}, {"fc.bias", b}});
        save_safetensors(dir / "cases.safetensors", TensorMap{{"linear/x", x}, {"linear/y", y}});
        json cases = json::array();
        if (with_linear) {
            cases.push_back({{"name", "linear"},
                             {"callable", "torch.nn.Linear.forward"},
                             {"inputs", {{"x", "linear/x"}}},
                             {"outputs", {{"y", "linear/y"}}},
                             {"tolerance", {{"atol", 1e-5}, {"rtol", 1e-5}}}});
        }
        cases.push_back({{"name", "someone_elses"}, {"callable", "not implemented here"}});
        std::ofstream(dir / "config.json") << json{{"fixture", "selftest"}, {"cases", cases}};
        return dir;
    }
};

TEST_F(ReferenceCheckTest, PassingFixture) {
    const auto report = run_reference_checks(make_fixture("pass", 0.0f));
    EXPECT_EQ(report.fixture, "selftest");
    ASSERT_EQ(report.cases.size(), 2u);
    EXPECT_EQ(report.known(), 1);
    EXPECT_EQ(report.failed(), 0);
    EXPECT_TRUE(report.ok());
    const auto& check = report.cases[0].checks.at(0);
    EXPECT_TRUE(check.passed);
    EXPECT_LT(check.max_abs_error, 1e-5);
    EXPECT_FALSE(report.cases[1].known);
}

TEST_F(ReferenceCheckTest, FailingFixtureReportsTheError) {
    const auto report = run_reference_checks(make_fixture("fail", 1e-3f));
    EXPECT_EQ(report.known(), 1);
    EXPECT_EQ(report.failed(), 1);
    EXPECT_FALSE(report.ok());
    const auto& check = report.cases[0].checks.at(0);
    EXPECT_FALSE(check.passed);
    EXPECT_EQ(check.elements_failing, 1);
    EXPECT_NEAR(check.max_abs_error, 1e-3, 1e-5);
    EXPECT_GT(check.worst_ratio, 1.0);
}

TEST_F(ReferenceCheckTest, ShapeMismatchFails) {
    const auto report = run_reference_checks(make_fixture("shape", 0.0f, true, true));
    EXPECT_EQ(report.failed(), 1);
    EXPECT_NE(report.cases[0].checks.at(0).note.find("shape"), std::string::npos);
}

TEST_F(ReferenceCheckTest, NoKnownCaseIsNotOk) {
    const auto report = run_reference_checks(make_fixture("unknown_only", 0.0f, false));
    EXPECT_EQ(report.known(), 0);
    EXPECT_FALSE(report.ok());
}

TEST_F(ReferenceCheckTest, CaseFilter) {
    ReferenceRunOptions options;
    options.case_filter = "^someone";
    const auto report = run_reference_checks(make_fixture("filter", 0.0f), options);
    ASSERT_EQ(report.cases.size(), 1u);
    EXPECT_FALSE(report.ok());
    options.case_filter = "([";
    EXPECT_THROW(run_reference_checks(make_fixture("filter", 0.0f), options), Error);
}

TEST_F(ReferenceCheckTest, ThrowingRunnerFailsItsCase) {
    const auto dir = make_fixture("throws", 0.0f);
    std::ofstream(dir / "config.json")
        << json{{"fixture", "selftest"}, {"cases", {{{"name", "throws"}}}}};
    const auto report = run_reference_checks(dir);
    EXPECT_EQ(report.failed(), 1);
    EXPECT_NE(report.cases[0].error.find("deliberate failure"), std::string::npos);
}

TEST_F(ReferenceCheckTest, MissingOrBrokenConfigIsAnError) {
    const auto dir = make_fixture("broken", 0.0f);
    std::ofstream(dir / "config.json") << "{ not json";
    EXPECT_THROW(run_reference_checks(dir), Error);
    fs::remove(dir / "config.json");
    EXPECT_THROW(run_reference_checks(dir), Error);
    EXPECT_THROW(run_reference_checks(dir / "nonexistent"), Error);
}

TEST(Tolerance, FlatAndPerOutputForms) {
    const json flat = {{"name", "c"}, {"tolerance", {{"atol", 1e-4}, {"rtol", 2e-4}}}};
    EXPECT_DOUBLE_EQ(tolerance_for(flat, "anything").atol, 1e-4);
    EXPECT_DOUBLE_EQ(tolerance_for(flat, "anything").rtol, 2e-4);
    const json per_output = {
        {"name", "c"},
        {"tolerance",
         {{"sr_image", {{"atol", 2e-3}}}, {"alpha", {{"atol", 5e-5}, {"rtol", 1e-5}}}}}};
    EXPECT_DOUBLE_EQ(tolerance_for(per_output, "case0/alpha").atol, 5e-5);
    EXPECT_DOUBLE_EQ(tolerance_for(per_output, "sr_image (= sr[:, :, 1:2])").atol, 2e-3);
    EXPECT_DOUBLE_EQ(tolerance_for(per_output, "sr_image").rtol, 0.0);
    EXPECT_THROW(tolerance_for(per_output, "depth"), Error);
    EXPECT_THROW(tolerance_for(json{{"name", "c"}}, "y"), Error);
}

TEST(Compare, ElementwiseRuleAndNaNs) {
    const auto ref = torch::tensor({1.0f, -100.0f, 0.0f});
    // 100 * 1e-3 allows 0.1 on the second element, only atol on the others.
    const Tolerance tol{1e-6, 1e-3};
    EXPECT_TRUE(compare("a", torch::tensor({1.0f, -100.05f, 0.0f}), ref, tol).passed);
    EXPECT_FALSE(compare("b", torch::tensor({1.01f, -100.0f, 0.0f}), ref, tol).passed);
    const float nan = std::nanf("");
    const auto with_nan = torch::tensor({1.0f, nan, 0.0f});
    EXPECT_FALSE(compare("c", with_nan, ref, tol).passed);
    EXPECT_TRUE(compare("d", with_nan, with_nan, tol).passed);
    EXPECT_TRUE(compare("e", torch::zeros({0, 3}), torch::zeros({0, 3}), tol).passed);
}

}  // namespace
}  // namespace avatar
