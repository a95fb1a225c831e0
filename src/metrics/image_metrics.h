#pragma once
// Full-reference image metrics with their standard definitions, on float images in [0, 1]
// ([N, C, H, W]; convert [-1, 1] images with (x + 1) / 2 first).
//
// PSNR = 10 log10(1 / MSE), the MSE over all pixels and channels of each image.
// SSIM (Wang et al. 2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data
// range 1, local statistics with population (biased) variances; the SSIM map is averaged over the
// valid window positions (no padding: (H - 10) x (W - 10)) and over channels.
// Masked variants restrict the average to a region (e.g. the face): PSNR over masked pixels,
// SSIM over window positions whose centre is in the mask.
#include <torch/torch.h>

namespace avatar::metrics {

// Per image of the batch: [N] float64.
torch::Tensor psnr(const torch::Tensor& prediction, const torch::Tensor& target);
torch::Tensor ssim(const torch::Tensor& prediction, const torch::Tensor& target);

// `mask` [N, 1, H, W] (or [1, 1, H, W]) in {0, 1} (any value > 0.5 counts as inside).
torch::Tensor masked_psnr(const torch::Tensor& prediction, const torch::Tensor& target,
                          const torch::Tensor& mask);
torch::Tensor masked_ssim(const torch::Tensor& prediction, const torch::Tensor& target,
                          const torch::Tensor& mask);

// The SSIM map [N, C, H - 10, W - 10] before averaging.
torch::Tensor ssim_map(const torch::Tensor& prediction, const torch::Tensor& target);

}  // namespace avatar::metrics
