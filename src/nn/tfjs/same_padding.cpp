#include "nn/tfjs/same_padding.h"

#include <algorithm>

namespace avatar::nn::tfjs {

std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride) {
    const int64_t out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
    return {total / 2, total - total / 2};
}

torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                       int64_t stride_w, double value) {
    const auto [top, bottom] = same_padding(x.size(2), kernel_h, stride_h);
    const auto [left, right] = same_padding(x.size(3), kernel_w, stride_w);
    if (top == 0 && bottom == 0 && left == 0 && right == 0)
        return x;
    namespace F = torch::nn::functional;
    return F::pad(x, F::PadFuncOptions({left, right, top, bottom}).value(value));
}

}  // namespace avatar::nn::tfjs
