#include "nn/eg3d/superresolution.h"

#include "core/error.h"

namespace avatar::nn::eg3d {

torch::Tensor resize_bilinear_antialias(const torch::Tensor& x, int64_t height, int64_t width) {
    // The antialiased kernel equals plain bilinear when upsampling in exact arithmetic but rounds
    // differently (up to ~5e-7); the official call uses it, so parity needs it too.
    return at::_upsample_bilinear2d_aa(x, {height, width}, /*align_corners=*/false, c10::nullopt,
                                       c10::nullopt);
}

SuperresolutionImpl::SuperresolutionImpl(const SuperresolutionConfig& config) : config_(config) {
    const int64_t r = config.input_resolution;
    block0 = register_module(
        "block0", SynthesisBlock(config.in_channels, config.block0_channels, config.w_dim, 2 * r,
                                 config.img_channels, config.conv_clamp));
    block1 = register_module(
        "block1", SynthesisBlock(config.block0_channels, config.block1_channels, config.w_dim,
                                 4 * r, config.img_channels, config.conv_clamp));
}

torch::Tensor SuperresolutionImpl::forward(const torch::Tensor& rgb_in, const torch::Tensor& x_in,
                                           const torch::Tensor& ws_in, NoiseMode noise_mode,
                                           SuperresolutionTrace* trace) {
    check(rgb_in.dim() == 4 && x_in.dim() == 4 && x_in.size(1) == config_.in_channels,
          "superresolution",
          "expects rgb [B, 3, r, r] and features [B, " + std::to_string(config_.in_channels) +
              ", r, r]");
    check(ws_in.dim() == 3 && ws_in.size(2) == config_.w_dim, "superresolution",
          "ws must be [B, num_ws, " + std::to_string(config_.w_dim) + "]");
    // Only the last w modulates the SR; each block takes three (conv0, conv1, torgb).
    const auto ws = ws_in.narrow(1, ws_in.size(1) - 1, 1).repeat({1, 3, 1});
    auto x = x_in, rgb = rgb_in;
    const int64_t r = config_.input_resolution;
    if (x.size(-1) != r) {
        x = resize_bilinear_antialias(x, r, r);
        rgb = resize_bilinear_antialias(rgb, r, r);
    }
    if (trace != nullptr) {
        trace->ws = ws;
        trace->x_resized = x;
        trace->rgb_resized = rgb;
    }
    std::tie(x, rgb) = block0->forward(x, rgb, ws, noise_mode, /*fused_modconv=*/true,
                                       trace != nullptr ? &trace->block0 : nullptr);
    std::tie(x, rgb) = block1->forward(x, rgb, ws, noise_mode, /*fused_modconv=*/true,
                                       trace != nullptr ? &trace->block1 : nullptr);
    return rgb;
}

}  // namespace avatar::nn::eg3d
