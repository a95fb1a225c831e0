#include "metrics/image_metrics.h"

#include <cmath>

#include "core/error.h"

namespace avatar::metrics {
namespace {

constexpr int64_t kWindow = 11;
constexpr double kSigma = 1.5;
constexpr double kC1 = 0.01 * 0.01;  // (K1 * data range)^2
constexpr double kC2 = 0.03 * 0.03;  // (K2 * data range)^2

void check_pair(const torch::Tensor& prediction, const torch::Tensor& target) {
    check(prediction.dim() == 4, "prediction", "expected images [N, C, H, W]");
    check(prediction.sizes() == target.sizes(), "target",
          "shape " + c10::str(target.sizes()) + " differs from the prediction's " +
              c10::str(prediction.sizes()));
}

torch::Tensor mask_for(const torch::Tensor& mask, const torch::Tensor& images) {
    check(mask.dim() == 4 && mask.size(1) == 1 && mask.size(2) == images.size(2) &&
              mask.size(3) == images.size(3) &&
              (mask.size(0) == 1 || mask.size(0) == images.size(0)),
          "mask", "expected [N or 1, 1, H, W] matching the images");
    return mask.to(torch::kFloat64)
        .gt(0.5)
        .to(torch::kFloat64)
        .expand({images.size(0), 1, images.size(2), images.size(3)});
}

// The normalised 1-D Gaussian of the window; the 2-D window is its outer product (separable).
torch::Tensor gaussian_1d() {
    auto x = torch::arange(kWindow, torch::kFloat64) - (kWindow - 1) / 2.0;
    auto g = torch::exp(-(x * x) / (2 * kSigma * kSigma));
    return g / g.sum();
}

// Valid (unpadded) Gaussian filtering of every channel, in float64.
torch::Tensor filter(const torch::Tensor& x) {
    const int64_t channels = x.size(1);
    const auto g = gaussian_1d().to(x.device());
    const auto horizontal = g.view({1, 1, 1, kWindow}).repeat({channels, 1, 1, 1});
    const auto vertical = g.view({1, 1, kWindow, 1}).repeat({channels, 1, 1, 1});
    auto y = torch::conv2d(x, horizontal, torch::Tensor(), torch::IntArrayRef{1, 1},
                           torch::IntArrayRef{0, 0}, torch::IntArrayRef{1, 1}, channels);
    return torch::conv2d(y, vertical, torch::Tensor(), torch::IntArrayRef{1, 1},
                         torch::IntArrayRef{0, 0}, torch::IntArrayRef{1, 1}, channels);
}

}  // namespace

torch::Tensor psnr(const torch::Tensor& prediction, const torch::Tensor& target) {
    check_pair(prediction, target);
    const auto diff = prediction.to(torch::kFloat64) - target.to(torch::kFloat64);
    const auto mse = diff.square().mean({1, 2, 3});
    return -10.0 * torch::log10(mse);  // inf for identical images
}

torch::Tensor masked_psnr(const torch::Tensor& prediction, const torch::Tensor& target,
                          const torch::Tensor& mask) {
    check_pair(prediction, target);
    const auto m = mask_for(mask, prediction);
    const auto diff = prediction.to(torch::kFloat64) - target.to(torch::kFloat64);
    const auto count = m.sum({1, 2, 3}) * prediction.size(1);
    check(count.min().item<double>() > 0, "mask", "empty for at least one image");
    const auto mse = (diff.square() * m).sum({1, 2, 3}) / count;
    return -10.0 * torch::log10(mse);
}

torch::Tensor ssim_map(const torch::Tensor& prediction, const torch::Tensor& target) {
    check_pair(prediction, target);
    check(prediction.size(2) >= kWindow && prediction.size(3) >= kWindow, "prediction",
          "SSIM needs images of at least 11 x 11 pixels");
    const auto x = prediction.to(torch::kFloat64), y = target.to(torch::kFloat64);
    const auto mu_x = filter(x), mu_y = filter(y);
    const auto var_x = filter(x * x) - mu_x * mu_x;
    const auto var_y = filter(y * y) - mu_y * mu_y;
    const auto cov = filter(x * y) - mu_x * mu_y;
    return ((2 * mu_x * mu_y + kC1) * (2 * cov + kC2)) /
           ((mu_x * mu_x + mu_y * mu_y + kC1) * (var_x + var_y + kC2));
}

torch::Tensor ssim(const torch::Tensor& prediction, const torch::Tensor& target) {
    return ssim_map(prediction, target).mean({1, 2, 3});
}

torch::Tensor masked_ssim(const torch::Tensor& prediction, const torch::Tensor& target,
                          const torch::Tensor& mask) {
    const auto map = ssim_map(prediction, target);
    constexpr int64_t r = (kWindow - 1) / 2;  // window centres of the valid positions
    const auto m = mask_for(mask, prediction)
                       .slice(2, r, prediction.size(2) - r)
                       .slice(3, r, prediction.size(3) - r);
    const auto count = m.sum({1, 2, 3}) * map.size(1);
    check(count.min().item<double>() > 0, "mask", "no window centre inside the mask");
    return (map * m).sum({1, 2, 3}) / count;
}

}  // namespace avatar::metrics
