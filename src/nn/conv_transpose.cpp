#include "nn/conv_transpose.h"

#include "core/error.h"

namespace avatar::nn {

torch::Tensor conv_transpose2d_stride2(const torch::Tensor& x, const torch::Tensor& w,
                                       int64_t groups) {
    check(x.dim() == 4 && w.dim() == 4 && groups > 0 && x.size(1) == w.size(0) &&
              w.size(0) % groups == 0,
          "conv_transpose2d_stride2", "expects x [N, in, H, W] and w [in, out/groups, kh, kw]");
    const int64_t in = w.size(0), out_per_group = w.size(1), kh = w.size(2), kw = w.size(3);
    const int64_t h = x.size(2), wd = x.size(3);
    // The same weights as an ordinary (correlation) convolution: [out, in / groups, kh, kw].
    const auto wc = w.reshape({groups, in / groups, out_per_group, kh, kw})
                        .transpose(1, 2)
                        .reshape({groups * out_per_group, in / groups, kh, kw});
    auto y = torch::zeros({x.size(0), groups * out_per_group, 2 * (h - 1) + kh, 2 * (wd - 1) + kw},
                          x.options());
    // Output row 2m + p receives input row m - t through kernel row p + 2t (t = 0..T-1). As a
    // correlation over the input padded by T - 1, tap a reads input row m + a - (T - 1), i.e.
    // t = T - 1 - a: kernel rows p + 2(T-1), ..., p + 2, p in that order.
    for (int64_t py = 0; py < std::min<int64_t>(2, kh); ++py) {
        const int64_t ty = (kh - py + 1) / 2;
        const auto rows = torch::arange(py + 2 * (ty - 1), py - 1, -2, torch::kLong);
        for (int64_t px = 0; px < std::min<int64_t>(2, kw); ++px) {
            const int64_t tx = (kw - px + 1) / 2;
            const auto cols = torch::arange(px + 2 * (tx - 1), px - 1, -2, torch::kLong);
            const auto kernel = wc.index_select(2, rows).index_select(3, cols);
            const auto phase = torch::conv2d(x, kernel, /*bias=*/torch::Tensor(),
                                             /*stride=*/torch::IntArrayRef{1, 1},
                                             /*padding=*/torch::IntArrayRef{ty - 1, tx - 1},
                                             /*dilation=*/torch::IntArrayRef{1, 1}, groups);
            y.slice(2, py, c10::nullopt, 2).slice(3, px, c10::nullopt, 2).copy_(phase);
        }
    }
    return y;
}

}  // namespace avatar::nn
