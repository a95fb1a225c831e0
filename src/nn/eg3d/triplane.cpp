#include "nn/eg3d/triplane.h"

#include "core/error.h"
#include "nn/camera.h"
#include "nn/state_dict.h"

namespace avatar::nn::eg3d {

// ---------------------------------------------------------------------------------------------
// Configuration

TriPlaneConfig TriPlaneConfig::detect_from_weights(const SafetensorsFile& file,
                                                   const std::string& prefix) {
    const std::string& subject = file.subject();
    auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
        check(file.contains(prefix + name), subject,
              "not an EG3D tri-plane generator: tensor '" + prefix + name + "' is missing");
        return file.info(prefix + name).shape;
    };
    TriPlaneConfig config;
    config.backbone = StyleGAN2Config::detect_from_weights(file, prefix + "backbone.");
    check(config.backbone.c_dim > 0, subject,
          "not an EG3D tri-plane generator: the backbone mapping has no camera embedding");
    check(config.backbone.img_channels % 3 == 0, subject,
          "the backbone's image channels (" + std::to_string(config.backbone.img_channels) +
              ") do not split into three planes");
    config.plane_channels = config.backbone.img_channels / 3;

    const auto& fc0 = shape("decoder.net.0.weight");
    const auto& fc1 = shape("decoder.net.2.weight");
    check(fc0.size() == 2 && fc1.size() == 2 && fc1.at(1) == fc0.at(0), subject,
          "decoder.net.0 and decoder.net.2 do not chain");
    check(fc0.at(1) == config.plane_channels, subject,
          "the decoder reads " + std::to_string(fc0.at(1)) + " features, the planes have " +
              std::to_string(config.plane_channels));
    config.decoder_hidden = fc0.at(0);
    config.decoder_outputs = fc1.at(0);
    check(config.decoder_outputs >= 4, subject, "the decoder must give sigma and >= 3 features");

    auto& sr = config.superresolution;
    const auto& sr0 = shape("superresolution.block0.conv0.weight");
    const auto& sr1 = shape("superresolution.block1.conv0.weight");
    sr.in_channels = sr0.at(1);
    sr.block0_channels = sr0.at(0);
    sr.block1_channels = sr1.at(0);
    sr.w_dim = shape("superresolution.block0.conv0.affine.weight").at(1);
    sr.img_channels = shape("superresolution.block1.torgb.weight").at(0);
    // block0 works at twice the input resolution; its noise buffer has that size.
    sr.input_resolution = shape("superresolution.block0.conv0.noise_const").at(0) / 2;
    check(sr.in_channels == config.feature_channels(), subject,
          "the SR reads " + std::to_string(sr.in_channels) + " channels, the decoder gives " +
              std::to_string(config.feature_channels()));
    check(sr.w_dim == config.backbone.w_dim, subject, "the SR and the backbone disagree on w_dim");
    return config;
}

nlohmann::json TriPlaneConfig::to_json() const {
    return {{"backbone", backbone.to_json()},
            {"plane_channels", plane_channels},
            {"plane_resolution", backbone.img_resolution},
            {"decoder_hidden", decoder_hidden},
            {"decoder_outputs", decoder_outputs},
            {"superresolution",
             {{"in_channels", superresolution.in_channels},
              {"block0_channels", superresolution.block0_channels},
              {"block1_channels", superresolution.block1_channels},
              {"input_resolution", superresolution.input_resolution},
              {"output_resolution", superresolution.output_resolution()}}},
            {"neural_rendering_resolution", neural_rendering_resolution},
            {"depth_resolution", rendering.depth_resolution},
            {"depth_resolution_importance", rendering.depth_resolution_importance}};
}

// ---------------------------------------------------------------------------------------------
// Generator

TriPlaneGeneratorImpl::TriPlaneGeneratorImpl(const TriPlaneConfig& config) : config_(config) {
    backbone = register_module("backbone", StyleGAN2Generator(config.backbone));
    superresolution = register_module("superresolution", Superresolution(config.superresolution));
    decoder = register_module("decoder", OSGDecoder(config.plane_channels, config.decoder_hidden,
                                                    config.decoder_outputs));
}

torch::Tensor TriPlaneGeneratorImpl::mapping(const torch::Tensor& z, const torch::Tensor& c,
                                             double truncation_psi,
                                             std::optional<int64_t> truncation_cutoff,
                                             MappingTrace* trace) {
    return backbone->mapping->forward(z, c * config_.c_scale, truncation_psi, truncation_cutoff,
                                      trace);
}

torch::Tensor TriPlaneGeneratorImpl::synthesize_planes(
    const torch::Tensor& ws, NoiseMode noise_mode,
    std::map<std::string, SynthesisBlockTrace>* traces) {
    check(ws.dim() == 3 && ws.size(1) == num_ws() && ws.size(2) == config_.backbone.w_dim,
          "TriPlaneGenerator",
          "ws must be [B, " + std::to_string(num_ws()) + ", " +
              std::to_string(config_.backbone.w_dim) + "], got " + c10::str(ws.sizes()));
    const auto img = backbone->synthesis->forward(ws, noise_mode, /*fused_modconv=*/true, traces);
    // Channel k of the skip image belongs to plane k / C, feature k % C.
    return img.view({img.size(0), 3, config_.plane_channels, img.size(-2), img.size(-1)});
}

PlaneRendering TriPlaneGeneratorImpl::render_planes(const torch::Tensor& c,
                                                    const torch::Tensor& planes, int64_t resolution,
                                                    const RenderNoise& noise, bool keep_trace) {
    if (resolution <= 0)
        resolution = config_.neural_rendering_resolution;
    const auto [cam2world, intrinsics] = unpack_camera(c.to(torch::kFloat32));
    check(cam2world.size(0) == planes.size(0), "TriPlaneGenerator",
          "cameras and planes disagree on the batch size");
    const auto [origins, directions] = sample_rays(cam2world, intrinsics, resolution);
    auto rendered =
        render_rays(planes, decoder, origins, directions, config_.rendering, noise, keep_trace);
    const int64_t batch = origins.size(0);
    PlaneRendering out;
    out.feature_image = rendered.rgb.permute({0, 2, 1})
                            .reshape({batch, rendered.rgb.size(-1), resolution, resolution})
                            .contiguous();
    out.depth_image = rendered.depth.permute({0, 2, 1}).reshape({batch, 1, resolution, resolution});
    out.image = out.feature_image.narrow(1, 0, 3);
    out.weights_sum = rendered.weights_sum;
    if (keep_trace) {
        out.trace = std::move(rendered.trace);
        out.trace["ray_origins"] = origins;
        out.trace["ray_directions"] = directions;
    }
    return out;
}

torch::Tensor TriPlaneGeneratorImpl::super_resolve(const torch::Tensor& image,
                                                   const torch::Tensor& feature_image,
                                                   const torch::Tensor& ws,
                                                   SuperresolutionTrace* trace) {
    return superresolution->forward(image, feature_image, ws, NoiseMode::kNone, trace);
}

TriPlaneGeneratorImpl::Output TriPlaneGeneratorImpl::synthesize(const torch::Tensor& ws,
                                                                const torch::Tensor& c,
                                                                const RenderNoise& noise,
                                                                int64_t resolution) {
    Output out;
    const auto planes = synthesize_planes(ws);
    out.rendering = render_planes(c, planes, resolution, noise);
    out.image = super_resolve(out.rendering.image, out.rendering.feature_image, ws);
    return out;
}

TriPlaneGenerator load_triplane_generator(const SafetensorsFile& file, const std::string& prefix,
                                          const std::optional<RenderingOptions>& rendering) {
    auto config = TriPlaneConfig::detect_from_weights(file, prefix);
    if (rendering)
        config.rendering = *rendering;
    TriPlaneGenerator generator(config);
    load_state(*generator, file, prefix);
    generator->eval();
    return generator;
}

}  // namespace avatar::nn::eg3d
