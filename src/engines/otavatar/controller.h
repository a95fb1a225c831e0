#pragma once
// OTAvatar's motion controller (VideoCodeBook in theEricMa/OTAvatar): a 27-frame window of 70
// coefficients (expression 64, angles 3, translation 3) -> per-layer latent offsets for the
// EG3D generator, as a combination of 20 orthonormal directions. Architecture as coded:
// shared/reference/otavatar_controller/SPEC.md §1-2.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"

namespace avatar::engines::otavatar {

struct ControllerConfig {
    int64_t coeff_channels = 70;  // 64 when the official if_use_pose is off
    int64_t descriptor_channels = 256;
    int64_t mapping_layers = 3;  // dilated residual convolutions
    int64_t refine_layers = 5;   // applications of the one shared refine Linear
    int64_t num_directions = 20;
    int64_t w_dim = 512;
    int64_t num_ws = 14;  // latent layers driven (EG3D 256 backbone)
    int64_t window = 27;  // frames per driving window (2 * semantic_radius + 1)

    static ControllerConfig detect_from_weights(const SafetensorsFile& file,
                                                const std::string& prefix = "");
    nlohmann::json to_json() const;
};

struct ControllerOutput {
    torch::Tensor alpha;       // [B, num_ws, num_directions]
    torch::Tensor directions;  // [B, num_ws, w_dim]: the latent offsets, alpha @ Q^T
    // Intermediates, for parity checks.
    torch::Tensor first_out, descriptor, refine_sum, refine_out;
    std::vector<torch::Tensor> encoder_inputs, encoder_conv_outputs, shared_linear_outputs;
    torch::Tensor pool_in;
};

class MotionControllerImpl : public torch::nn::Module {
public:
    explicit MotionControllerImpl(const ControllerConfig& config);

    // driving [B, coeff_channels, window].
    ControllerOutput forward(const torch::Tensor& driving);

    // The orthonormal basis Q [w_dim, num_directions] of the direction weights: LAPACK
    // Householder QR of (weight + 1e-8), as torch.linalg.qr. The official code recomputes it on
    // every forward; it depends only on the weights, so it is computed once here (on load).
    const torch::Tensor& basis() const { return basis_; }
    void refresh_basis();

    // Loads weights under `prefix`. The checkpoint stores the shared refine Linear five times
    // (mapping_Refine.{0,2,4,6,8}); the copies must be equal.
    void load_weights(const SafetensorsFile& file, const std::string& prefix = "");

private:
    ControllerConfig config_;
    torch::nn::Conv1d first_{nullptr};
    std::vector<torch::nn::Conv1d> encoders_;
    torch::nn::Linear refine_shared_{nullptr}, refine_out_{nullptr};
    torch::Tensor direction_weight_;
    torch::Tensor basis_;
};
TORCH_MODULE(MotionController);

MotionController load_motion_controller(const SafetensorsFile& file,
                                        const std::string& prefix = "");

}  // namespace avatar::engines::otavatar
