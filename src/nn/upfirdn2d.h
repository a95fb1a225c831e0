#pragma once
// upfirdn2d: upsample (zero insertion), FIR filter, downsample — the resampling op of StyleGAN2
// and EG3D. This is the straightforward composite of ATen ops whose numerics equal the official
// reference path bit for bit in fp32 (shared/reference/stylegan2_ada/SPEC.md §2).
#include <torch/torch.h>

#include <array>
#include <vector>

namespace avatar::nn {

// Padding in the official order: {x_before, x_after, y_before, y_after}; negative values crop.
using Padding2d = std::array<int64_t, 4>;

// The normalised 2-D FIR filter of a 1-D kernel: outer(k, k) / sum, as float32
// (e.g. {1, 3, 3, 1} gives the 4x4 filter stored in `resample_filter` buffers).
torch::Tensor make_resample_filter(const std::vector<double>& kernel);

// x [N, C, H, W]; filter 2-D [fh, fw]. Steps: insert up-1 zeros after each sample, pad (or crop
// where negative), convolve depthwise with the filter scaled by `gain` (flipped unless
// `flip_filter`, i.e. a true convolution), keep every `down`-th sample.
torch::Tensor upfirdn2d(const torch::Tensor& x, const torch::Tensor& filter, int64_t up = 1,
                        int64_t down = 1, Padding2d padding = {0, 0, 0, 0},
                        bool flip_filter = false, double gain = 1.0);

// 2x upsampling with the padding that keeps the image centred, gain up^2.
torch::Tensor upsample2d(const torch::Tensor& x, const torch::Tensor& filter);
// 2x downsampling with centring padding, gain 1.
torch::Tensor downsample2d(const torch::Tensor& x, const torch::Tensor& filter);

}  // namespace avatar::nn
