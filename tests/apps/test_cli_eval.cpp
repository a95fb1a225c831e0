// `avatar eval` end to end: identical inputs score perfectly, a known degradation gives the PSNR
// worked out by hand, folders and single images work, and bad input is one error line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_runner.h"
#include "media/image.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_cli;

fs::path scratch(const std::string& name) {
    return avatar::testing::fresh_dir("cli_eval", name);
}

torch::Tensor pattern(int64_t h, int64_t w, int seed) {
    torch::manual_seed(seed);
    return torch::randint(0, 256, {h, w, 3}, torch::kUInt8);
}

json parse_json(const std::string& output) {
    const auto start = output.find('{');
    return json::parse(output.substr(start));
}

TEST(CliEval, IdenticalFoldersScorePerfectly) {
    const auto dir = scratch("identical");
    fs::create_directories(dir / "pred");
    fs::create_directories(dir / "gt");
    for (int i = 0; i < 3; ++i) {
        const auto img = pattern(40, 48, i);
        media::write_image(dir / "pred" / ("f" + std::to_string(i) + ".png"), img);
        media::write_image(dir / "gt" / ("f" + std::to_string(i) + ".png"), img);
    }
    const auto r =
        run_cli("--json eval --pred " + (dir / "pred").string() + " --gt " + (dir / "gt").string() +
                " --csv " + (dir / "m.csv").string() + " --plots " + (dir / "plots").string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto j = parse_json(r.output);
    EXPECT_EQ(j["frames_compared"], 3);
    EXPECT_EQ(j["metrics"][0]["name"], "psnr");
    EXPECT_EQ(j["metrics"][0]["mean"], "inf");
    EXPECT_DOUBLE_EQ(j["metrics"][1]["mean"].get<double>(), 1.0);
    EXPECT_TRUE(fs::is_regular_file(dir / "plots" / "psnr.png"));
    EXPECT_TRUE(fs::is_regular_file(dir / "plots" / "ssim.png"));
    std::ifstream csv(dir / "m.csv");
    std::string header, row;
    std::getline(csv, header);
    std::getline(csv, row);
    EXPECT_EQ(header, "frame,name,psnr,ssim");
    EXPECT_EQ(row, "0,\"f0.png\",inf,1");
}

TEST(CliEval, KnownOffsetGivesHandComputedPsnr) {
    const auto dir = scratch("offset");
    // A uniform error of 10 levels: MSE = (10/255)^2, PSNR = 20 log10(255 / 10) = 28.1308 dB.
    const auto gt = torch::full({32, 32, 3}, 100, torch::kUInt8);
    media::write_image(dir / "gt.png", gt);
    media::write_image(dir / "pred.png", gt + 10);
    const auto r = run_cli("--json eval --pred " + (dir / "pred.png").string() + " --gt " +
                           (dir / "gt.png").string() + " --metrics psnr");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto j = parse_json(r.output);
    EXPECT_NEAR(j["metrics"][0]["mean"].get<double>(), 20 * std::log10(25.5), 1e-9);
}

TEST(CliEval, BadInputsAreOneLineErrors) {
    const auto dir = scratch("bad");
    media::write_image(dir / "a.png", pattern(32, 32, 1));
    media::write_image(dir / "b.png", pattern(32, 40, 2));
    const auto a = (dir / "a.png").string(), b = (dir / "b.png").string();
    auto expect_error = [](const testing::CliResult& r, const std::string& needle) {
        EXPECT_NE(r.exit_status, 0) << r.output;
        EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    };
    expect_error(run_cli("eval --pred " + a + " --gt " + b), "--resize");
    expect_error(run_cli("eval --pred " + a + " --gt " + a + " --metrics psnr,lpips"),
                 "unknown metric 'lpips'");
    expect_error(run_cli("eval --pred " + (dir / "missing.png").string() + " --gt " + a),
                 "missing.png");
    expect_error(run_cli("eval --gt " + a), "--pred");
    // --resize makes the size mismatch legal.
    EXPECT_EQ(run_cli("eval --resize --pred " + b + " --gt " + a).exit_status, 0);
}

}  // namespace
}  // namespace avatar
