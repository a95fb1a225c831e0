// PSNR and SSIM against independent computations: the formulas written out with explicit loops
// in double precision (no convolution), and values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "metrics/image_metrics.h"

namespace avatar::metrics {
namespace {

// SSIM of one channel by direct summation over every valid 11x11 window.
double reference_ssim_channel(const torch::Tensor& a, const torch::Tensor& b,
                              const torch::Tensor& mask) {
    const int64_t h = a.size(0), w = a.size(1);
    double g[11], gsum = 0;
    for (int i = 0; i < 11; ++i)
        gsum += g[i] = std::exp(-((i - 5.0) * (i - 5.0)) / (2 * 1.5 * 1.5));
    const auto A = a.accessor<double, 2>(), B = b.accessor<double, 2>(),
               M = mask.accessor<double, 2>();
    double total = 0, count = 0;
    for (int64_t y = 0; y + 11 <= h; ++y) {
        for (int64_t x = 0; x + 11 <= w; ++x) {
            if (M[y + 5][x + 5] <= 0.5)
                continue;
            double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
            for (int i = 0; i < 11; ++i) {
                for (int j = 0; j < 11; ++j) {
                    const double wgt = g[i] * g[j] / (gsum * gsum);
                    const double u = A[y + i][x + j], v = B[y + i][x + j];
                    mx += wgt * u;
                    my += wgt * v;
                    sxx += wgt * u * u;
                    syy += wgt * v * v;
                    sxy += wgt * u * v;
                }
            }
            const double vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
            const double c1 = 1e-4, c2 = 9e-4;
            total +=
                ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    return total / count;
}

TEST(ImageMetrics, SsimMatchesDirectSummation) {
    torch::manual_seed(21);
    const auto target = torch::rand({2, 3, 24, 19}, torch::kFloat64);
    const auto prediction =
        (target + 0.1 * torch::randn({2, 3, 24, 19}, torch::kFloat64)).clamp(0, 1);
    auto mask = torch::zeros({2, 1, 24, 19}, torch::kFloat64);
    mask.slice(2, 4, 20).slice(3, 3, 15).fill_(1);
    const auto full = ssim(prediction, target);
    const auto masked = masked_ssim(prediction, target, mask);
    for (int n = 0; n < 2; ++n) {
        double expected = 0, expected_masked = 0;
        for (int c = 0; c < 3; ++c) {
            expected += reference_ssim_channel(prediction[n][c], target[n][c],
                                               torch::ones({24, 19}, torch::kFloat64));
            expected_masked += reference_ssim_channel(prediction[n][c], target[n][c], mask[n][0]);
        }
        EXPECT_NEAR(full[n].item<double>(), expected / 3, 1e-4);
        EXPECT_NEAR(masked[n].item<double>(), expected_masked / 3, 1e-4);
    }
}

TEST(ImageMetrics, PsnrByHand) {
    // Every pixel off by 0.1: MSE 0.01, PSNR exactly 20 dB.
    const auto target = torch::full({1, 3, 4, 4}, 0.5);
    EXPECT_NEAR(psnr(target + 0.1, target).item<double>(), 20.0, 1e-4);
    // Half of the pixels off by 0.2, half exact: MSE 0.02, PSNR = -10 log10(0.02) = 16.9897 dB.
    auto prediction = target.clone();
    prediction.slice(3, 0, 2) += 0.2;
    EXPECT_NEAR(psnr(prediction, target).item<double>(), 16.98970004, 1e-4);
    // Masked to the exact half: identical images, infinite PSNR; to the other half: 13.9794 dB.
    auto mask = torch::zeros({1, 1, 4, 4});
    mask.slice(3, 2, 4).fill_(1);
    EXPECT_TRUE(std::isinf(masked_psnr(prediction, target, mask).item<double>()));
    EXPECT_NEAR(masked_psnr(prediction, target, 1 - mask).item<double>(), 13.97940009, 1e-4);
}

TEST(ImageMetrics, SsimIdentityAndConstantShift) {
    const auto target = torch::rand({1, 1, 16, 16}, torch::kFloat64);
    EXPECT_NEAR(ssim(target, target).item<double>(), 1.0, 1e-12);
    // Constant images c and d: SSIM = (2cd + C1) / (c^2 + d^2 + C1), since all variances are 0.
    const double c = 0.3, d = 0.5, c1 = 1e-4;
    EXPECT_NEAR(ssim(torch::full({1, 1, 12, 12}, c), torch::full({1, 1, 12, 12}, d)).item<double>(),
                (2 * c * d + c1) / (c * c + d * d + c1), 1e-6);
}

TEST(ImageMetrics, BadInputsAreErrors) {
    EXPECT_THROW(ssim(torch::rand({1, 3, 8, 8}), torch::rand({1, 3, 8, 8})), Error);  // < 11 px
    EXPECT_THROW(psnr(torch::rand({1, 3, 8, 8}), torch::rand({1, 3, 8, 9})), Error);
    EXPECT_THROW(masked_psnr(torch::rand({1, 3, 8, 8}), torch::rand({1, 3, 8, 8}),
                             torch::zeros({1, 1, 8, 8})),
                 Error);
}

}  // namespace
}  // namespace avatar::metrics
