#include "nn/tfjs/image_ops.h"

#include <cmath>

#include "core/error.h"

namespace avatar::nn::tfjs {
namespace {
namespace F = torch::nn::functional;

void require_nhwc(const torch::Tensor& x, const char* op) {
    check(x.dim() == 4, op,
          "expected an NHWC tensor [N, H, W, C], got " + std::to_string(x.dim()) + " dimensions");
    check(x.size(1) > 0 && x.size(2) > 0, op, "empty image");
}

// Legacy sample positions along one axis: (lower index, upper index, fraction).
struct AxisSamples {
    torch::Tensor lower, upper, fraction;
};

// Built on `device` so that index_select works on images that are not on the CPU.
AxisSamples legacy_axis(int64_t in, int64_t out, const torch::Device& device) {
    const double ratio = static_cast<double>(in) / static_cast<double>(out);
    auto source = torch::arange(out, torch::TensorOptions(torch::kFloat64).device(device)) * ratio;
    auto lower = source.floor();
    auto fraction = source - lower;
    auto lower_index = lower.to(torch::kLong).clamp_max(in - 1);
    auto upper_index = (lower_index + 1).clamp_max(in - 1);
    return {lower_index, upper_index, fraction};
}

}  // namespace

double js_round(double value) {
    return std::floor(value + 0.5);
}

torch::Tensor resize_bilinear_legacy(const torch::Tensor& x, int64_t out_h, int64_t out_w) {
    require_nhwc(x, "resize_bilinear_legacy");
    check(out_h > 0 && out_w > 0, "resize_bilinear_legacy", "output size must be positive");
    const auto rows = legacy_axis(x.size(1), out_h, x.device());
    const auto cols = legacy_axis(x.size(2), out_w, x.device());
    // Gather the samples in the input's dtype and convert only them (not the whole image).
    const auto top = x.index_select(1, rows.lower);
    const auto bottom = x.index_select(1, rows.upper);
    const auto col_fraction = cols.fraction.view({1, 1, out_w, 1});
    auto lerp_cols = [&](const torch::Tensor& r) {
        const auto left = r.index_select(2, cols.lower).to(torch::kFloat64);
        const auto right = r.index_select(2, cols.upper).to(torch::kFloat64);
        return left + (right - left) * col_fraction;
    };
    const auto t = lerp_cols(top);
    const auto b = lerp_cols(bottom);
    return (t + (b - t) * rows.fraction.view({1, out_h, 1, 1})).to(x.scalar_type());
}

torch::Tensor resize_bilinear_half_pixel(const torch::Tensor& x, int64_t out_h, int64_t out_w) {
    require_nhwc(x, "resize_bilinear_half_pixel");
    const auto nchw = x.permute({0, 3, 1, 2});
    const auto resized = F::interpolate(nchw, F::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{out_h, out_w})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
    return resized.permute({0, 2, 3, 1}).contiguous();
}

torch::Tensor crop_and_resize(const torch::Tensor& image, const torch::Tensor& boxes,
                              int64_t crop_h, int64_t crop_w, double extrapolation) {
    require_nhwc(image, "crop_and_resize");
    check(image.size(0) == 1, "crop_and_resize", "expected a single image [1, H, W, C]");
    check(boxes.dim() == 2 && boxes.size(1) == 4, "crop_and_resize", "boxes must be [K, 4]");
    check(crop_h > 0 && crop_w > 0, "crop_and_resize", "crop size must be positive");
    const int64_t height = image.size(1), width = image.size(2), channels = image.size(3);
    const auto img = image[0];  // samples are gathered first, then converted to float64
    const auto b = boxes.to(torch::kFloat64).cpu();
    std::vector<torch::Tensor> crops;
    for (int64_t k = 0; k < boxes.size(0); ++k) {
        const double y1 = b[k][0].item<double>(), x1 = b[k][1].item<double>();
        const double y2 = b[k][2].item<double>(), x2 = b[k][3].item<double>();
        auto positions = [](double lo, double hi, int64_t size, int64_t count) {
            if (count > 1) {
                const double step =
                    (hi - lo) * static_cast<double>(size - 1) / static_cast<double>(count - 1);
                return lo * static_cast<double>(size - 1) +
                       torch::arange(count, torch::kFloat64) * step;
            }
            return torch::full({1}, 0.5 * (lo + hi) * static_cast<double>(size - 1),
                               torch::kFloat64);
        };
        const auto ys = positions(y1, y2, height, crop_h).to(image.device());
        const auto xs = positions(x1, x2, width, crop_w).to(image.device());
        const auto y_valid = (ys >= 0) & (ys <= static_cast<double>(height - 1));
        const auto x_valid = (xs >= 0) & (xs <= static_cast<double>(width - 1));
        const auto y_top = ys.floor().clamp(0, height - 1);
        const auto y_bottom = ys.ceil().clamp(0, height - 1);
        const auto y_lerp = (ys - ys.floor()).view({crop_h, 1, 1});
        const auto x_left = xs.floor().clamp(0, width - 1);
        const auto x_right = xs.ceil().clamp(0, width - 1);
        const auto x_lerp = (xs - xs.floor()).view({1, crop_w, 1});
        auto rows = [&](const torch::Tensor& index) {
            return img.index_select(0, index.to(torch::kLong));
        };
        auto lerp_x = [&](const torch::Tensor& r) {
            const auto left = r.index_select(1, x_left.to(torch::kLong)).to(torch::kFloat64);
            const auto right = r.index_select(1, x_right.to(torch::kLong)).to(torch::kFloat64);
            return left + (right - left) * x_lerp;
        };
        const auto top = lerp_x(rows(y_top));
        const auto bottom = lerp_x(rows(y_bottom));
        auto crop = top + (bottom - top) * y_lerp;
        const auto valid = (y_valid.view({crop_h, 1, 1}) & x_valid.view({1, crop_w, 1}))
                               .expand({crop_h, crop_w, channels});
        crop = torch::where(valid, crop, torch::full_like(crop, extrapolation));
        crops.push_back(crop);
    }
    if (crops.empty())
        return torch::empty({0, crop_h, crop_w, channels}, image.options());
    return torch::stack(crops).to(image.scalar_type());
}

torch::Tensor pad_to_square(const torch::Tensor& x, bool centred) {
    require_nhwc(x, "pad_to_square");
    const int64_t height = x.size(1), width = x.size(2);
    if (height == width)
        return x;
    const int64_t d = std::abs(height - width);
    const int64_t after = centred ? static_cast<int64_t>(js_round(static_cast<double>(d) / 2)) : d;
    const int64_t before = d - after;
    // F::pad pads the last dimensions first: (C), then W, then H.
    if (height < width)
        return F::pad(x, F::PadFuncOptions({0, 0, 0, 0, before, after}));
    return F::pad(x, F::PadFuncOptions({0, 0, before, after, 0, 0}));
}

}  // namespace avatar::nn::tfjs
