#pragma once
// The DPE generator (OpenTalker/DPE networks/generator.py as coded; shared/reference/dpe/SPEC.md):
// an appearance encoder, a linear motion MLP with an orthonormal direction basis, and two
// flow-warping StyleGAN2-style decoders, one per edit. Modules carry the official names.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "nn/rosinality.h"

namespace avatar::engines::dpe {

struct DPEConfig {
    int64_t size = 256;  // image resolution
    int64_t style_dim = 512;
    int64_t motion_dim = 20;
    std::map<int64_t, int64_t> channels;  // resolution -> channels (4 .. size)

    // The official Generator(256, 512, 20, channel_multiplier=1) table.
    static DPEConfig official();
    static DPEConfig detect_from_weights(const SafetensorsFile& file,
                                         const std::string& prefix = "");
    nlohmann::json to_json() const;
};

namespace rosinality = nn::rosinality;
using rosinality::Trace;

// EncoderApp: image -> appearance code wa [B, style_dim] and features from 8x8 up to full size.
class EncoderImpl : public torch::nn::Module {
public:
    explicit EncoderImpl(const DPEConfig& config);
    std::pair<torch::Tensor, std::vector<torch::Tensor>> forward(const torch::Tensor& image,
                                                                 const Trace& trace = {});

private:
    rosinality::ConvLayer stem_{nullptr};
    std::vector<rosinality::ResBlock> blocks_;
    rosinality::EqualConv2d final_{nullptr};
};
TORCH_MODULE(Encoder);

// One decoder (Synthesis): a latent and the encoder features -> image. Each block predicts a
// flow and a mask that warp the encoder feature of its resolution into the decoder stream.
class DecoderImpl : public torch::nn::Module {
public:
    explicit DecoderImpl(const DPEConfig& config);
    torch::Tensor forward(const torch::Tensor& latent, const std::vector<torch::Tensor>& feats,
                          const Trace& trace = {});

private:
    struct Block {
        rosinality::StyledConv up{nullptr}, conv{nullptr};
        rosinality::ModulatedConv2d flow_conv{nullptr};
        torch::Tensor flow_bias;
        rosinality::Upsample flow_upsample{nullptr};
        rosinality::EqualConv2d rgb_conv{nullptr};
        rosinality::FusedLeakyReLU rgb_activation{nullptr};
        torch::Tensor rgb_bias;
        rosinality::Upsample rgb_upsample{nullptr};
    };
    torch::Tensor const_input_;
    rosinality::StyledConv conv1_{nullptr};
    std::vector<Block> blocks_;
};
TORCH_MODULE(Decoder);

// The stages of the official forward. The official names are kept: 'exp' runs the module
// called dec_pose and transfers expression; 'pose' runs dec_exp and transfers pose.
enum class Stage { kExpression, kPose, kBoth };
Stage parse_stage(const std::string& name);  // "exp" | "pose" | "both"

// Everything the generator needs of a source image, computed once per source.
struct SourceCode {
    torch::Tensor wa;                  // [B, style_dim]
    std::vector<torch::Tensor> feats;  // low to high resolution
};

class GeneratorImpl : public torch::nn::Module {
public:
    explicit GeneratorImpl(const DPEConfig& config);

    SourceCode encode(const torch::Tensor& image, const Trace& trace = {});
    // The motion of a driving image: directions d = alpha(wa_drive) . Q^T, [B, style_dim].
    torch::Tensor motion(const torch::Tensor& driving_image, const Trace& trace = {});
    // Renders the source with the driving motion `d`. For kBoth the first result is re-encoded.
    torch::Tensor render(const SourceCode& source, const torch::Tensor& d, Stage stage,
                         const Trace& trace = {});
    // The official Generator.forward(img_source, img_drive, stage).
    torch::Tensor forward(const torch::Tensor& source, const torch::Tensor& driving, Stage stage,
                          const Trace& trace = {});

    // Q [style_dim... 512, motion_dim] of the direction weights, computed once (on load).
    // While training (is_training() with gradients on), directions() refactorises every call;
    // call refresh_basis() after changing the weights.
    const torch::Tensor& basis() const { return basis_; }
    void refresh_basis();
    torch::Tensor alpha(const torch::Tensor& wa, const Trace& trace = {});  // mlp
    torch::Tensor directions(const torch::Tensor& alpha);                   // alpha . Q^T
    torch::Tensor mlp_pose(const torch::Tensor& d);
    torch::Tensor mlp_exp(const torch::Tensor& d);
    Encoder encoder() const { return encoder_; }
    Decoder dec_pose() const { return dec_pose_; }
    Decoder dec_exp() const { return dec_exp_; }
    const DPEConfig& config() const { return config_; }

private:
    DPEConfig config_;
    Encoder encoder_{nullptr};
    Decoder dec_pose_{nullptr}, dec_exp_{nullptr};
    std::vector<rosinality::EqualLinear> mlp_, mlp_pose_, mlp_exp_;
    torch::Tensor direction_weight_, basis_;
};
TORCH_MODULE(Generator);

Generator load_dpe_generator(const SafetensorsFile& file, const std::string& prefix = "");

}  // namespace avatar::engines::dpe
