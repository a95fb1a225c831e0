#pragma once
// PVP's latent module (ExprAlphaV2 in ken2576/pvp): per-frame W+ codes for a person-specific
// StyleGAN2 from head pose and expression. Pose picks a blend of the person's pivot latents
// (k-means keyframes inverted by PTI); expression adds bounded offsets to the first 8 ws.
// Architecture as coded: shared/reference/pvp/SPEC.md §2-4.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"

namespace avatar::engines::pvp {

struct LatentModuleConfig {
    int64_t num_anchors = 200;  // pivots (k-means keyframes)
    int64_t num_ws = 18;        // ws of the generator
    int64_t latent_size = 512;  // w_dim
    int64_t input_size = 53;    // DECA jaw pose (3) + expression (50)
    int64_t hidden_size = 128;
    int64_t mod_style_count = 8;  // ws offset by expression; the rest come from the pivots only
    double beta = 0.02;           // lower bound of the constrained blend weights is -beta

    // Sizes from tensor shapes under `prefix` ("" or "latent_module."); beta is not stored in
    // checkpoints and keeps the official value. Throws Error naming the file otherwise.
    static LatentModuleConfig detect_from_weights(const SafetensorsFile& file,
                                                  const std::string& prefix = "");
    nlohmann::json to_json() const;
};

// What generate() returns; `ws` is [B, 1, num_ws, w] as the official code returns it.
struct LatentCodes {
    torch::Tensor ws;         // [B, 1, num_ws, latent]
    torch::Tensor delta;      // [B, mod_style_count, latent], expression offsets in (-1, 1)
    torch::Tensor alpha;      // [B, num_anchors], constrained and normalised blend weights
    torch::Tensor rot_alpha;  // [B, num_anchors], the pose net's raw output (for parity checks)
    torch::Tensor w_plus;     // [B, num_ws, latent], the blended pivots
};

class LatentModuleImpl : public torch::nn::Module {
public:
    explicit LatentModuleImpl(const LatentModuleConfig& config);

    // x [B, 53] (jaw 3 + expression 50); pitch and yaw [B, 1] in radians.
    LatentCodes generate(const torch::Tensor& x, const torch::Tensor& pitch,
                         const torch::Tensor& yaw);

    const LatentModuleConfig& config() const { return config_; }
    torch::Tensor all_anchors, w_opt, alpha;

private:
    LatentModuleConfig config_;
    std::vector<torch::nn::Sequential> expr_nets_;
    torch::nn::Sequential alpha_net_{nullptr};
};
TORCH_MODULE(LatentModule);

LatentModule load_latent_module(const SafetensorsFile& file, const std::string& prefix = "");

// PVP's compute_pitch_yaw: from the third row (x, y, z) of each rotation R [B, 3, 3],
// yaw = atan2(x, z) and pitch = atan2(y, z), in degrees, each [B, 1].
std::pair<torch::Tensor, torch::Tensor> pitch_yaw_degrees(const torch::Tensor& rotation);

}  // namespace avatar::engines::pvp
