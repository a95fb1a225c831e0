#pragma once
// StyleGAN2 generator in the NVlabs layout (stylegan2-ada-pytorch training/networks.py), the
// generator PVP fine-tunes and the backbone EG3D builds on. Modules are registered under the
// official names, so `load_state(generator, file)` loads a converted official checkpoint.
// Architecture as coded: shared/reference/stylegan2_ada/SPEC.md. Only the 'skip' architecture and
// fp32 are implemented (what ffhq.pkl and PVP use).
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "core/safetensors.h"
#include "nn/bias_act.h"

namespace avatar::nn {

struct StyleGAN2Config {
    int64_t z_dim = 512;
    int64_t c_dim = 0;
    int64_t w_dim = 512;
    int64_t img_resolution = 1024;
    int64_t img_channels = 3;
    int64_t mapping_layers = 8;
    // Width of the camera/class embedding concatenated to z (c_dim > 0 only; w_dim officially).
    int64_t embed_features = 0;
    double mapping_lr_multiplier = 0.01;  // not stored in checkpoints: the FFHQ value
    std::optional<double> conv_clamp;     // not stored in checkpoints: None for ffhq.pkl
    std::map<int64_t, int64_t> channels;  // resolution -> channels of block b{res}

    int64_t num_ws() const;  // 2 per block after b4, plus b4's conv and the last torgb

    // Reads every size from tensor shapes under `prefix` (e.g. "", "G_ema." or EG3D's
    // "backbone."); throws Error naming the file if the tensors are not a StyleGAN2 generator of
    // the supported kind. A conditional mapping (mapping.embed) gives c_dim and embed_features.
    static StyleGAN2Config detect_from_weights(const SafetensorsFile& file,
                                               const std::string& prefix = "");
    nlohmann::json to_json() const;
};

enum class NoiseMode { kConst, kRandom, kNone };

// FullyConnectedLayer: weight [out, in] and bias stored at initialisation scale; the
// learning-rate multiplier is applied at run time (equalised learning rate).
class FullyConnectedLayerImpl : public torch::nn::Module {
public:
    FullyConnectedLayerImpl(int64_t in_features, int64_t out_features, Activation activation,
                            double lr_multiplier, double bias_init = 0.0);
    torch::Tensor forward(const torch::Tensor& x);

    torch::Tensor weight, bias;

private:
    Activation activation_;
    double weight_gain_, bias_gain_;
};
TORCH_MODULE(FullyConnectedLayer);

// What the mapping network computed, for parity checks of intermediates.
struct MappingTrace {
    torch::Tensor embed;     // embed(c) before normalisation (c_dim > 0 only)
    torch::Tensor fc_input;  // the input of fc0: norm(z), or cat[norm(z), norm(embed(c))]
    std::vector<torch::Tensor> layers;  // fc0 .. fcN-1 outputs
};

class MappingNetworkImpl : public torch::nn::Module {
public:
    explicit MappingNetworkImpl(const StyleGAN2Config& config);
    // z [N, z_dim] and, when c_dim > 0, the conditioning c [N, c_dim] (e.g. EG3D's 25-d camera)
    // -> ws [N, num_ws, w_dim]; truncation towards w_avg by psi, on the first `truncation_cutoff`
    // ws only when given.
    torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& c,
                          double truncation_psi = 1.0,
                          std::optional<int64_t> truncation_cutoff = std::nullopt,
                          MappingTrace* trace = nullptr);
    // The unconditional network (c_dim = 0). `layer_outputs`, if given, receives fc0..fcN-1.
    torch::Tensor forward(const torch::Tensor& z, double truncation_psi = 1.0,
                          std::optional<int64_t> truncation_cutoff = std::nullopt,
                          std::vector<torch::Tensor>* layer_outputs = nullptr);

    int64_t c_dim() const { return c_dim_; }
    int64_t num_ws() const { return num_ws_; }

    torch::Tensor w_avg;

private:
    FullyConnectedLayer embed_{nullptr};  // "embed" in checkpoints; c_dim > 0 only
    std::vector<FullyConnectedLayer> layers_;
    int64_t c_dim_, num_ws_;
};
TORCH_MODULE(MappingNetwork);

class SynthesisLayerImpl : public torch::nn::Module {
public:
    SynthesisLayerImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim, int64_t resolution,
                       int64_t up, std::optional<double> conv_clamp);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w, NoiseMode noise_mode,
                          bool fused_modconv, torch::Tensor* styles_out = nullptr,
                          c10::optional<at::Generator> generator = c10::nullopt);

    FullyConnectedLayer affine{nullptr};
    torch::Tensor weight, bias, noise_strength, noise_const, resample_filter;

private:
    int64_t resolution_, up_;
    std::optional<double> conv_clamp_;
};
TORCH_MODULE(SynthesisLayer);

class ToRGBLayerImpl : public torch::nn::Module {
public:
    ToRGBLayerImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim,
                   std::optional<double> conv_clamp);
    // `styles_out` receives the affine output before the 1/sqrt(in) gain.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w, bool fused_modconv,
                          torch::Tensor* styles_out = nullptr);

    FullyConnectedLayer affine{nullptr};
    torch::Tensor weight, bias;

private:
    double weight_gain_;
    std::optional<double> conv_clamp_;
};
TORCH_MODULE(ToRGBLayer);

// What a block computed, for parity checks of intermediates.
struct SynthesisBlockTrace {
    std::map<std::string, torch::Tensor> tensors;  // "conv0", "conv0.affine", ..., "x", "img"
};

class SynthesisBlockImpl : public torch::nn::Module {
public:
    SynthesisBlockImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim, int64_t resolution,
                       int64_t img_channels, std::optional<double> conv_clamp);
    // ws [N, num_conv + 1, w_dim]; returns (x, img).
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                    const torch::Tensor& img,
                                                    const torch::Tensor& ws, NoiseMode noise_mode,
                                                    bool fused_modconv,
                                                    SynthesisBlockTrace* trace = nullptr);
    int64_t num_conv() const { return in_channels_ == 0 ? 1 : 2; }

    torch::Tensor const_input, resample_filter;  // const_input is "const" in checkpoints
    SynthesisLayer conv0{nullptr}, conv1{nullptr};
    ToRGBLayer torgb{nullptr};

private:
    int64_t in_channels_;
};
TORCH_MODULE(SynthesisBlock);

class SynthesisNetworkImpl : public torch::nn::Module {
public:
    explicit SynthesisNetworkImpl(const StyleGAN2Config& config);
    // ws [N, num_ws, w_dim] -> img [N, img_channels, R, R], nominally in [-1, 1].
    // `traces`, if given, receives each block's intermediates keyed by "b{res}".
    torch::Tensor forward(const torch::Tensor& ws, NoiseMode noise_mode = NoiseMode::kConst,
                          bool fused_modconv = true,
                          std::map<std::string, SynthesisBlockTrace>* traces = nullptr);

private:
    std::vector<std::pair<int64_t, SynthesisBlock>> blocks_;
};
TORCH_MODULE(SynthesisNetwork);

class StyleGAN2GeneratorImpl : public torch::nn::Module {
public:
    explicit StyleGAN2GeneratorImpl(const StyleGAN2Config& config);
    torch::Tensor forward(const torch::Tensor& z, double truncation_psi = 1.0,
                          std::optional<int64_t> truncation_cutoff = std::nullopt,
                          NoiseMode noise_mode = NoiseMode::kConst);

    const StyleGAN2Config& config() const { return config_; }
    MappingNetwork mapping{nullptr};
    SynthesisNetwork synthesis{nullptr};

private:
    StyleGAN2Config config_;
};
TORCH_MODULE(StyleGAN2Generator);

// Builds the generator the file describes and loads its weights (official names under `prefix`).
StyleGAN2Generator load_stylegan2_generator(const SafetensorsFile& file,
                                            const std::string& prefix = "");

}  // namespace avatar::nn
