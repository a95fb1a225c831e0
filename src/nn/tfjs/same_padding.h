#pragma once
// TensorFlow 'SAME' padding for torch convolutions and pools on NCHW tensors.
//
// TF pads SAME asymmetrically: total = max((ceil(in / s) - 1) s + k - in, 0), with floor(total / 2)
// before and the rest after. torch's symmetric `padding` only matches for stride 1 and odd k, so
// strided SAME layers pad explicitly first.
#include <torch/torch.h>

#include <utility>

namespace avatar::nn::tfjs {

// (before, after) padding of one axis.
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride);

// Pads x [N, C, H, W] for a SAME conv or pool with the given kernel and stride; `value` is 0 for
// convs and -inf for max pools.
torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                       int64_t stride_w, double value = 0.0);

}  // namespace avatar::nn::tfjs
