#include "nn/modulated_conv.h"

#include "core/error.h"
#include "nn/conv_transpose.h"

namespace avatar::nn {

torch::Tensor conv2d_resample(const torch::Tensor& x, const torch::Tensor& w,
                              const torch::Tensor& filter, int64_t up, int64_t padding,
                              int64_t groups, bool flip_weight) {
    check(up == 1 || up == 2, "conv2d_resample", "only up = 1 or 2 is supported");
    check(padding >= 0, "conv2d_resample", "negative padding is not supported");
    const int64_t out_channels = w.size(0), in_per_group = w.size(1);
    const int64_t kh = w.size(2), kw = w.size(3);
    if (up == 1) {
        const auto weight = flip_weight ? w : w.flip({2, 3});
        return torch::conv2d(x, weight, /*bias=*/torch::Tensor(), /*stride=*/1, padding,
                             /*dilation=*/1, groups);
    }
    check(filter.defined() && filter.dim() == 2, "conv2d_resample", "up = 2 needs a 2-D filter");
    const int64_t fh = filter.size(0), fw = filter.size(1);
    // The transposed convolution wants [in, out/groups, kh, kw] per group.
    torch::Tensor wt;
    if (groups == 1) {
        wt = w.transpose(0, 1);
    } else {
        wt = w.reshape({groups, out_channels / groups, in_per_group, kh, kw})
                 .transpose(1, 2)
                 .reshape({groups * in_per_group, out_channels / groups, kh, kw});
    }
    // Padding of the whole up-filter-down chain, then the part the transposed conv absorbs.
    int64_t px0 = padding + (fw + up - 1) / 2 - (kw - 1);
    int64_t px1 = padding + (fw - up) / 2 - (kw - up);
    int64_t py0 = padding + (fh + up - 1) / 2 - (kh - 1);
    int64_t py1 = padding + (fh - up) / 2 - (kh - up);
    const int64_t pxt = std::max<int64_t>(std::min(-px0, -px1), 0);
    const int64_t pyt = std::max<int64_t>(std::min(-py0, -py1), 0);
    // A transposed convolution already flips spatially; the official code passes the opposite
    // flip flag to it, so flip_weight=false here means "do not flip" once more.
    if (flip_weight)
        wt = wt.flip({2, 3});
    // LibTorch's CPU conv_transpose2d (col2im) is ~20x slower than the same work as ordinary
    // convolutions; without padding the sub-pixel form is equal up to summation order.
    auto y = (pyt == 0 && pxt == 0)
                 ? conv_transpose2d_stride2(x, wt, groups)
                 : torch::conv_transpose2d(x, wt, /*bias=*/torch::Tensor(),
                                           /*stride=*/torch::IntArrayRef{up, up},
                                           /*padding=*/torch::IntArrayRef{pyt, pxt},
                                           /*output_padding=*/torch::IntArrayRef{0, 0}, groups);
    return upfirdn2d(y, filter, 1, 1, {px0 + pxt, px1 - pxt, py0 + pyt, py1 - pyt}, false,
                     static_cast<double>(up * up));
}

torch::Tensor modulated_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& styles, const torch::Tensor& noise,
                               const torch::Tensor& filter, const ModulatedConvOptions& options) {
    check(x.dim() == 4 && weight.dim() == 4 && styles.dim() == 2, "modulated_conv2d",
          "expects x [N,C,H,W], weight [O,C,kh,kw], styles [N,C]");
    const int64_t batch = x.size(0);
    const int64_t out_channels = weight.size(0), in_channels = weight.size(1);
    const int64_t kh = weight.size(2), kw = weight.size(3);
    check(styles.size(0) == batch && styles.size(1) == in_channels && x.size(1) == in_channels,
          "modulated_conv2d", "styles and x must match the weight's input channels");

    torch::Tensor w;       // per-sample weights [N, O, C, kh, kw]
    torch::Tensor dcoefs;  // demodulation coefficients [N, O]
    if (options.demodulate || options.fused) {
        w = weight.unsqueeze(0) * styles.reshape({batch, 1, -1, 1, 1});
    }
    if (options.demodulate)
        dcoefs = (w.square().sum({2, 3, 4}) + 1e-8).rsqrt();

    if (!options.fused) {
        auto y = x * styles.reshape({batch, -1, 1, 1});
        y = conv2d_resample(y, weight, filter, options.up, options.padding, 1, options.flip_weight);
        const auto d = options.demodulate ? dcoefs.reshape({batch, -1, 1, 1}) : torch::Tensor();
        if (options.demodulate && noise.defined())
            return torch::addcmul(noise, y, d);
        if (options.demodulate)
            return y * d;
        if (noise.defined())
            return y.add_(noise);
        return y;
    }

    if (options.demodulate)
        w = w * dcoefs.reshape({batch, -1, 1, 1, 1});
    auto y = conv2d_resample(x.reshape({1, -1, x.size(2), x.size(3)}),
                             w.reshape({-1, in_channels, kh, kw}), filter, options.up,
                             options.padding, batch, options.flip_weight);
    y = y.reshape({batch, out_channels, y.size(2), y.size(3)});
    if (noise.defined())
        y.add_(noise);
    return y;
}

}  // namespace avatar::nn
