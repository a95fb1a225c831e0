// One-Euro filter: constants pass, jitter shrinks, ramps lag little once beta > 0.
#include <gtest/gtest.h>

#include "core/error.h"
#include "face/one_euro.h"

namespace avatar::face {
namespace {

constexpr double kFps = 30.0;

TEST(OneEuro, ConstantSignalPassesUnchanged) {
    OneEuroFilter filter({1.0, 0.5, 1.0});
    const auto x = torch::tensor({{1.5f, -2.0f}, {300.25f, 0.0f}});
    for (int i = 0; i < 50; ++i)
        EXPECT_TRUE(torch::equal(filter(x, i / kFps), x)) << i;
}

TEST(OneEuro, ReducesNoiseOnAStillSignal) {
    torch::manual_seed(2);
    OneEuroFilter filter({1.0, 0.0, 1.0});
    const int n = 300;
    const auto noise = torch::randn({n, 100}, torch::kFloat64);
    std::vector<torch::Tensor> out;
    for (int i = 0; i < n; ++i)
        out.push_back(filter(noise[i], i / kFps));
    const auto filtered = torch::stack(out).slice(0, 30);  // after the start-up
    const double ratio = (filtered.std().item<double>() / noise.slice(0, 30).std().item<double>());
    EXPECT_LT(ratio, 0.4);
}

double ramp_lag(double beta) {
    OneEuroFilter filter({1.0, beta, 1.0});
    const double speed = 100.0;  // units per second
    double lag = 0;
    for (int i = 0; i < 90; ++i) {
        const double t = i / kFps;
        lag = speed * t - filter(std::vector<double>{speed * t}, t)[0];
    }
    return lag;
}

TEST(OneEuro, SmallLagOnARampWithBeta) {
    const double step = 100.0 / kFps;    // motion per frame
    EXPECT_GT(ramp_lag(0.0), 3 * step);  // a plain 1 Hz low-pass lags several frames
    EXPECT_LT(ramp_lag(0.05), 1.0 * step);
    EXPECT_GT(ramp_lag(0.05), 0.0);
}

TEST(OneEuro, TimeStampsResetAndErrors) {
    OneEuroFilter filter;
    EXPECT_FALSE(filter.initialized());
    filter(std::vector<double>{0.0, 0.0}, 0.0);
    const auto a = filter(std::vector<double>{1.0, 2.0}, 0.1);
    EXPECT_GT(a[0], 0.0);
    EXPECT_LT(a[0], 1.0);
    EXPECT_EQ(filter(std::vector<double>{5.0, 5.0}, 0.1), a);  // duplicated frame
    EXPECT_THROW(filter(std::vector<double>{1.0, 2.0}, 0.05), Error);
    EXPECT_THROW(filter(std::vector<double>{1.0, 2.0, 3.0}, 0.2), Error);
    filter.reset();
    EXPECT_FALSE(filter.initialized());
    EXPECT_EQ(filter(std::vector<double>{7.0, 8.0}, 0.0), (std::vector<double>{7.0, 8.0}));
    EXPECT_THROW(OneEuroFilter({0.0, 0.0, 1.0}), Error);
    EXPECT_THROW(OneEuroFilter({1.0, -1.0, 1.0}), Error);
    EXPECT_THROW(OneEuroFilter({1.0, 0.0, 0.0}), Error);
}

TEST(OneEuro, KeepsDtypeAndShape) {
    OneEuroFilter filter({2.0, 0.1, 1.0});
    const auto x = torch::rand({468, 3});
    const auto y = filter(x, 0.0);
    EXPECT_EQ(y.scalar_type(), torch::kFloat32);
    const auto z = filter(x + 1, 1 / kFps);
    EXPECT_EQ(z.sizes(), x.sizes());
    EXPECT_TRUE(((z > x) & (z < x + 1)).all().item<bool>());
}

}  // namespace
}  // namespace avatar::face
