#include "nn/upfirdn2d.h"

#include "core/error.h"

namespace avatar::nn {

torch::Tensor make_resample_filter(const std::vector<double>& kernel) {
    check(!kernel.empty(), "resample filter", "empty kernel");
    const auto k = torch::tensor(kernel, torch::kFloat32);
    auto f = torch::outer(k, k);
    return f / f.sum();
}

torch::Tensor upfirdn2d(const torch::Tensor& x, const torch::Tensor& filter, int64_t up,
                        int64_t down, Padding2d padding, bool flip_filter, double gain) {
    check(x.dim() == 4, "upfirdn2d", "expects x of shape [N, C, H, W]");
    check(filter.dim() == 2, "upfirdn2d", "expects a 2-D filter");
    check(up >= 1 && down >= 1, "upfirdn2d", "up and down must be >= 1");
    const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);

    // Zero insertion: each sample followed by up-1 zeros along both axes.
    auto y = x.reshape({batch, channels, height, 1, width, 1});
    if (up > 1) {
        y = torch::constant_pad_nd(y, {0, up - 1, 0, 0, 0, up - 1});
    }
    y = y.reshape({batch, channels, height * up, width * up});

    // Pad where positive, crop where negative.
    const auto [px0, px1, py0, py1] = padding;
    y = torch::constant_pad_nd(y, {std::max<int64_t>(px0, 0), std::max<int64_t>(px1, 0),
                                   std::max<int64_t>(py0, 0), std::max<int64_t>(py1, 0)});
    y = y.slice(2, std::max<int64_t>(-py0, 0), y.size(2) - std::max<int64_t>(-py1, 0))
            .slice(3, std::max<int64_t>(-px0, 0), y.size(3) - std::max<int64_t>(-px1, 0));

    // Depthwise convolution; conv2d correlates, so flipping the filter makes it a convolution.
    auto f = (filter * gain).to(x.scalar_type());
    if (!flip_filter)
        f = f.flip({0, 1});
    f = f.unsqueeze(0).unsqueeze(0).repeat({channels, 1, 1, 1});
    y = torch::conv2d(y, f, /*bias=*/torch::Tensor(), /*stride=*/torch::IntArrayRef{1, 1},
                      /*padding=*/torch::IntArrayRef{0, 0}, /*dilation=*/torch::IntArrayRef{1, 1},
                      channels);

    if (down > 1)
        y = y.slice(2, 0, c10::nullopt, down).slice(3, 0, c10::nullopt, down);
    return y;
}

torch::Tensor upsample2d(const torch::Tensor& x, const torch::Tensor& filter) {
    const int64_t fw = filter.size(1), fh = filter.size(0), up = 2;
    const Padding2d padding{(fw + up - 1) / 2, (fw - up) / 2, (fh + up - 1) / 2, (fh - up) / 2};
    return upfirdn2d(x, filter, up, 1, padding, false, static_cast<double>(up * up));
}

torch::Tensor downsample2d(const torch::Tensor& x, const torch::Tensor& filter) {
    const int64_t fw = filter.size(1), fh = filter.size(0), down = 2;
    const Padding2d padding{(fw - down + 1) / 2, (fw - down) / 2, (fh - down + 1) / 2,
                            (fh - down) / 2};
    return upfirdn2d(x, filter, 1, down, padding, false, 1.0);
}

}  // namespace avatar::nn
