// StyleGAN2 (NVlabs layout): parity with the official code on the shared fixture, and properties
// that hold without it (config detection round trip, fused = unfused, plain-conv special case).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "nn/modulated_conv.h"
#include "nn/state_dict.h"
#include "nn/stylegan2.h"
#include "nn/upfirdn2d.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::nn {
namespace {
namespace fs = std::filesystem;

StyleGAN2Config small_config() {
    StyleGAN2Config config;
    config.z_dim = 16;
    config.w_dim = 24;
    config.mapping_layers = 3;
    config.img_resolution = 16;
    config.channels = {{4, 12}, {8, 10}, {16, 6}};
    return config;
}

TEST(StyleGAN2, OfficialFixtureMatches) {
    const auto report = testing::run_shared_fixture("stylegan2_ada");
    if (!report)
        GTEST_SKIP() << "no shared fixture " << testing::shared_fixture_dir("stylegan2_ada");
    testing::expect_all_cases_pass(*report, 8);
}

TEST(StyleGAN2, ConfigIsDetectedFromSavedWeights) {
    torch::manual_seed(1);
    StyleGAN2Generator generator(small_config());
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "stylegan2" / "small.safetensors";
    save_state(*generator, path);

    const auto file = SafetensorsFile::open(path);
    const auto config = StyleGAN2Config::detect_from_weights(file);
    EXPECT_EQ(config.to_json(), small_config().to_json());
    EXPECT_EQ(config.num_ws(), 6);

    auto loaded = load_stylegan2_generator(file);
    torch::NoGradGuard no_grad;
    generator->eval();
    const auto z = torch::randn({2, 16});
    EXPECT_TRUE(torch::equal(generator->forward(z, 0.5), loaded->forward(z, 0.5)));
    EXPECT_EQ(loaded->forward(z).sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
}

TEST(StyleGAN2, LoadingRejectsWrongShapes) {
    StyleGAN2Generator generator(small_config());
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "stylegan2" / "wrong.safetensors";
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : generator->named_parameters()) {
        tensors.emplace_back(p.key(),
                             p.key() == "synthesis.b8.conv1.bias" ? torch::zeros({3}) : p.value());
    }
    for (const auto& b : generator->named_buffers())
        tensors.emplace_back(b.key(), b.value());
    save_safetensors(path, tensors);
    StyleGAN2Generator other(small_config());
    EXPECT_THROW(load_state(*other, SafetensorsFile::open(path)), Error);
}

TEST(ModulatedConv, FusedAndUnfusedAgree) {
    torch::manual_seed(2);
    const auto x = torch::randn({3, 8, 6, 6});
    const auto w = torch::randn({5, 8, 3, 3});
    const auto styles = torch::randn({3, 8});
    const auto noise = torch::randn({6, 6});
    const auto f = make_resample_filter({1, 3, 3, 1});
    for (const int64_t up : {1, 2}) {
        ModulatedConvOptions options;
        options.up = up;
        options.padding = 1;
        options.flip_weight = up == 1;
        const auto n = up == 1 ? noise : torch::Tensor();
        const auto fused = modulated_conv2d(x, w, styles, n, f, options);
        options.fused = false;
        const auto unfused = modulated_conv2d(x, w, styles, n, f, options);
        EXPECT_TRUE(torch::allclose(fused, unfused, 1e-5, 1e-5)) << "up=" << up;
    }
}

TEST(ModulatedConv, UnitStylesWithoutDemodulationIsAPlainConvolution) {
    torch::manual_seed(3);
    const auto x = torch::randn({2, 4, 5, 5});
    const auto w = torch::randn({3, 4, 3, 3});
    ModulatedConvOptions options;
    options.padding = 1;
    options.demodulate = false;
    const auto y = modulated_conv2d(x, w, torch::ones({2, 4}), {}, {}, options);
    EXPECT_TRUE(torch::allclose(y, torch::conv2d(x, w, {}, 1, 1), 1e-5, 1e-5));
}

TEST(Upfirdn2d, MatchesADirectLoop) {
    torch::manual_seed(4);
    const auto x = torch::randn({1, 1, 5, 4});
    const auto f = torch::rand({3, 2});
    const auto y = upfirdn2d(x, f, 2, 1, {1, 0, 2, -1}, false, 1.0);
    // Zero insertion, padding (left 1 in x, top 2 / bottom crop 1 in y), true convolution.
    const int64_t uh = 10, uw = 8;
    auto up = torch::zeros({uh, uw});
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 4; ++j)
            up[2 * i][2 * j] = x[0][0][i][j];
    auto padded = torch::zeros({uh + 2 - 1, uw + 1});
    padded.slice(0, 2, uh + 1).slice(1, 1, uw + 1).copy_(up.slice(0, 0, uh - 1));
    const int64_t oh = padded.size(0) - 3 + 1, ow = padded.size(1) - 2 + 1;
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, oh, ow}));
    for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
            double s = 0;
            for (int64_t a = 0; a < 3; ++a)
                for (int64_t b = 0; b < 2; ++b)
                    s += padded[i + a][j + b].item<double>() * f[2 - a][1 - b].item<double>();
            EXPECT_NEAR(y[0][0][i][j].item<double>(), s, 1e-5);
        }
    }
}

}  // namespace
}  // namespace avatar::nn
