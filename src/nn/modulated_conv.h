#pragma once
// StyleGAN2's modulated convolution and the resampling convolution under it (NVlabs layout, the
// reference paths of training/networks.py and torch_utils/ops/conv2d_resample.py, described in
// shared/reference/stylegan2_ada/SPEC.md §2-3). fp32 only: the fp16 pre-normalisation of the
// official code is not reached in fp32 and is not implemented.
#include <torch/torch.h>

#include "nn/upfirdn2d.h"

namespace avatar::nn {

// 2-D convolution of x [N, C, H, W] with w [O, C/groups, kh, kw], optionally upsampled by 2
// through `filter` (a transposed convolution followed by a blur, as the official fast path).
// `flip_weight` = true is ordinary correlation (what conv2d does). Only up in {1, 2} with
// symmetric non-negative padding is supported (all that the generators use).
torch::Tensor conv2d_resample(const torch::Tensor& x, const torch::Tensor& w,
                              const torch::Tensor& filter, int64_t up, int64_t padding,
                              int64_t groups, bool flip_weight);

struct ModulatedConvOptions {
    int64_t up = 1;
    int64_t padding = 0;
    bool demodulate = true;
    bool flip_weight = true;
    // Fused: one grouped convolution with per-sample weights (the eval path). Unfused: scale the
    // activations before and after a shared convolution (the training path). Equal in exact
    // arithmetic, different in rounding; both are reproduced.
    bool fused = true;
};

// x [N, C, H, W], weight [O, C, kh, kw], styles [N, C]; `noise` (broadcastable to the output, may
// be undefined) is added after demodulation; `filter` is needed when up > 1.
torch::Tensor modulated_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& styles, const torch::Tensor& noise,
                               const torch::Tensor& filter, const ModulatedConvOptions& options);

}  // namespace avatar::nn
