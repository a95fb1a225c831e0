#pragma once
// EG3D's SuperresolutionHybrid8XDC (shared/reference/eg3d/SPEC.md §8): two StyleGAN2 synthesis
// blocks with 2x upsampling each, fed with the neural rendering resized to 128² and modulated by
// the LAST w only. Built on nn::SynthesisBlock; registered as "block0" and "block1".
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "nn/stylegan2.h"

namespace avatar::nn::eg3d {

struct SuperresolutionConfig {
    int64_t in_channels = 32;       // feature channels of the neural rendering
    int64_t block0_channels = 256;  // hard-coded officially, read from shapes here
    int64_t block1_channels = 128;
    int64_t w_dim = 512;
    int64_t input_resolution = 128;  // the rendering is resized to this first
    int64_t img_channels = 3;
    // conv_clamp is 256 because sr_num_fp16_res > 0 in every official config; it is not stored
    // in checkpoints. (The fp16 arithmetic itself is CUDA-only and not reproduced.)
    std::optional<double> conv_clamp = 256.0;

    int64_t output_resolution() const { return input_resolution * 4; }
};

struct SuperresolutionTrace {
    torch::Tensor rgb_resized, x_resized;  // the 128² inputs of block0
    torch::Tensor ws;                      // [B, 3, w_dim]: the last w, three times
    SynthesisBlockTrace block0, block1;
};

class SuperresolutionImpl : public torch::nn::Module {
public:
    explicit SuperresolutionImpl(const SuperresolutionConfig& config);
    // rgb [B, 3, r, r] and features x [B, C, r, r] of the neural rendering, ws [B, num_ws, w_dim]
    // -> image [B, 3, 4 * input_resolution, ...] (nominally in [-1, 1]; not clamped). Inputs not
    // at input_resolution are resized with antialiased bilinear interpolation (align_corners =
    // false), as the official sr_antialias = true.
    torch::Tensor forward(const torch::Tensor& rgb, const torch::Tensor& x, const torch::Tensor& ws,
                          NoiseMode noise_mode = NoiseMode::kNone,
                          SuperresolutionTrace* trace = nullptr);

    const SuperresolutionConfig& config() const { return config_; }
    SynthesisBlock block0{nullptr}, block1{nullptr};

private:
    SuperresolutionConfig config_;
};
TORCH_MODULE(Superresolution);

// F.interpolate(x, size, mode='bilinear', align_corners=False, antialias=True).
torch::Tensor resize_bilinear_antialias(const torch::Tensor& x, int64_t height, int64_t width);

}  // namespace avatar::nn::eg3d
