#pragma once
// EG3D's TriPlaneGenerator as OTAvatar uses it (models/triplane.py; shared/reference/eg3d/SPEC.md):
// a conditional StyleGAN2 whose 96-channel skip image is the tri-plane [B, 3, 32, R, R], a volume
// renderer of the planes, and SuperresolutionHybrid8XDC. Modules carry the official names
// ("backbone", "superresolution", "decoder"), so a converted ffhqrebalanced512-64 checkpoint or
// OTAvatar's net_G_ema loads by name; every width comes from tensor shapes.
//
// The split API is OTAvatar's per-frame path: synthesize_planes (before_planes) once per latent,
// render_planes (render_from_planes) per camera, super_resolve (sr).
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "core/safetensors.h"
#include "nn/eg3d/renderer.h"
#include "nn/eg3d/superresolution.h"
#include "nn/stylegan2.h"

namespace avatar::nn::eg3d {

struct TriPlaneConfig {
    StyleGAN2Config backbone;  // img_channels = 3 * plane_channels; c_dim = 25
    int64_t plane_channels = 32;
    int64_t decoder_hidden = 64;
    int64_t decoder_outputs = 33;  // sigma + the feature channels
    SuperresolutionConfig superresolution;
    // Not stored in checkpoints: the OTAvatar (ffhqrebalanced512-64) values.
    RenderingOptions rendering;
    int64_t neural_rendering_resolution = 64;
    double c_scale = 1.0;  // the mapping sees c * c_scale

    int64_t feature_channels() const { return decoder_outputs - 1; }

    // Reads the backbone, plane, decoder and SR sizes from tensor shapes under `prefix`; throws
    // Error naming the file if they are not an EG3D tri-plane generator.
    static TriPlaneConfig detect_from_weights(const SafetensorsFile& file,
                                              const std::string& prefix = "");
    nlohmann::json to_json() const;
};

// The neural rendering of the planes at one resolution R.
struct PlaneRendering {
    torch::Tensor feature_image;  // [B, F, R, R], the composite features (2 f - 1)
    torch::Tensor image;          // [B, 3, R, R] = feature_image[:, :3]
    torch::Tensor depth_image;    // [B, 1, R, R]
    torch::Tensor weights_sum;    // [B, R*R, 1] (dropped by the official render_from_planes)
    std::map<std::string, torch::Tensor> trace;  // fixture render/* keys, when asked for
};

class TriPlaneGeneratorImpl : public torch::nn::Module {
public:
    explicit TriPlaneGeneratorImpl(const TriPlaneConfig& config);

    // z [B, z_dim], camera c [B, 25] -> ws [B, num_ws, w_dim].
    torch::Tensor mapping(const torch::Tensor& z, const torch::Tensor& c,
                          double truncation_psi = 1.0,
                          std::optional<int64_t> truncation_cutoff = std::nullopt,
                          MappingTrace* trace = nullptr);

    // before_planes: ws [B, num_ws, w_dim] -> planes [B, 3, plane_channels, R, R].
    torch::Tensor synthesize_planes(const torch::Tensor& ws,
                                    NoiseMode noise_mode = NoiseMode::kConst,
                                    std::map<std::string, SynthesisBlockTrace>* traces = nullptr);

    // render_from_planes: cameras c [B, 25], planes, rendering resolution (0: the config's) and
    // the renderer's random numbers (RenderNoise::draw makes them).
    PlaneRendering render_planes(const torch::Tensor& c, const torch::Tensor& planes,
                                 int64_t resolution, const RenderNoise& noise,
                                 bool keep_trace = false);

    // sr: the rendering's rgb and features, ws -> image [B, 3, 512, 512] (not clamped).
    torch::Tensor super_resolve(const torch::Tensor& image, const torch::Tensor& feature_image,
                                const torch::Tensor& ws, SuperresolutionTrace* trace = nullptr);

    // The whole chain, as OTAvatar runs each frame (= G.synthesis(ws, c, R, noise_mode='const')).
    struct Output {
        torch::Tensor image;  // SR output [B, 3, 512, 512]
        PlaneRendering rendering;
    };
    Output synthesize(const torch::Tensor& ws, const torch::Tensor& c, const RenderNoise& noise,
                      int64_t resolution = 0);

    const TriPlaneConfig& config() const { return config_; }
    int64_t num_ws() const { return config_.backbone.num_ws(); }

    StyleGAN2Generator backbone{nullptr};
    Superresolution superresolution{nullptr};
    OSGDecoder decoder{nullptr};

private:
    TriPlaneConfig config_;
};
TORCH_MODULE(TriPlaneGenerator);

// Builds the generator the file describes and loads its weights (official names under
// `prefix`; F16 checkpoints are computed in float32). `rendering` replaces the default options.
TriPlaneGenerator load_triplane_generator(const SafetensorsFile& file,
                                          const std::string& prefix = "",
                                          const std::optional<RenderingOptions>& rendering = {});

}  // namespace avatar::nn::eg3d
