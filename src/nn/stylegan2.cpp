#include "nn/stylegan2.h"

#include <cmath>

#include "core/error.h"
#include "nn/modulated_conv.h"
#include "nn/state_dict.h"
#include "nn/upfirdn2d.h"

namespace avatar::nn {

// ---------------------------------------------------------------------------------------------
// Configuration

int64_t StyleGAN2Config::num_ws() const {
    const auto blocks = static_cast<int64_t>(channels.size());
    return blocks == 0 ? 0 : 2 * blocks;  // b4: 1 conv; others: 2 convs; plus the last torgb
}

StyleGAN2Config StyleGAN2Config::detect_from_weights(const SafetensorsFile& file,
                                                     const std::string& prefix) {
    const std::string& subject = file.subject();
    auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
        check(file.contains(prefix + name), subject,
              "not a StyleGAN2 generator: tensor '" + prefix + name + "' is missing");
        return file.info(prefix + name).shape;
    };
    StyleGAN2Config config;
    config.mapping_layers = 0;
    while (
        file.contains(prefix + "mapping.fc" + std::to_string(config.mapping_layers) + ".weight")) {
        ++config.mapping_layers;
    }
    check(config.mapping_layers > 0, subject, "not a StyleGAN2 generator: no mapping.fc0.weight");
    config.w_dim =
        shape("mapping.fc" + std::to_string(config.mapping_layers - 1) + ".weight").at(0);
    config.c_dim = 0;
    config.embed_features = 0;
    if (file.contains(prefix + "mapping.embed.weight")) {
        // fc0 reads cat[z, embed(c)], so z_dim is what remains of its input.
        config.c_dim = shape("mapping.embed.weight").at(1);
        config.embed_features = shape("mapping.embed.weight").at(0);
    }
    config.z_dim = shape("mapping.fc0.weight").at(1) - config.embed_features;
    check(config.z_dim > 0, subject,
          "mapping.fc0.weight is narrower than the embedding: generators without z are not "
          "supported");
    config.img_channels = shape("synthesis.b4.torgb.weight").at(0);
    for (int64_t res = 4;
         file.contains(prefix + "synthesis.b" + std::to_string(res) + ".conv1.weight"); res *= 2) {
        config.channels[res] = shape("synthesis.b" + std::to_string(res) + ".conv1.weight").at(0);
        config.img_resolution = res;
    }
    for (const auto& [res, ch] : config.channels) {
        check(file.contains(prefix + "synthesis.b" + std::to_string(res) + ".torgb.weight"),
              subject, "only the 'skip' architecture (a torgb in every block) is supported");
        (void)ch;
    }
    return config;
}

nlohmann::json StyleGAN2Config::to_json() const {
    nlohmann::json ch;
    for (const auto& [res, c] : channels)
        ch[std::to_string(res)] = c;
    nlohmann::json out{{"z_dim", z_dim},
                       {"c_dim", c_dim},
                       {"w_dim", w_dim},
                       {"img_resolution", img_resolution},
                       {"img_channels", img_channels},
                       {"mapping_layers", mapping_layers},
                       {"num_ws", num_ws()},
                       {"channels", ch}};
    if (c_dim > 0)
        out["embed_features"] = embed_features;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Layers

FullyConnectedLayerImpl::FullyConnectedLayerImpl(int64_t in_features, int64_t out_features,
                                                 Activation activation, double lr_multiplier,
                                                 double bias_init)
    : activation_(activation),
      weight_gain_(lr_multiplier / std::sqrt(static_cast<double>(in_features))),
      bias_gain_(lr_multiplier) {
    weight =
        register_parameter("weight", torch::randn({out_features, in_features}) / lr_multiplier);
    bias = register_parameter("bias", torch::full({out_features}, bias_init));
}

torch::Tensor FullyConnectedLayerImpl::forward(const torch::Tensor& x) {
    const auto w = weight * weight_gain_;
    const auto b = bias_gain_ != 1.0 ? bias * bias_gain_ : bias;
    if (activation_ == Activation::kLinear)
        return torch::addmm(b.unsqueeze(0), x, w.t());
    return bias_act(x.matmul(w.t()), b, activation_);
}

MappingNetworkImpl::MappingNetworkImpl(const StyleGAN2Config& config)
    : c_dim_(config.c_dim), num_ws_(config.num_ws()) {
    const int64_t embed_features = config.c_dim > 0 ? config.embed_features : 0;
    if (config.c_dim > 0) {
        check(embed_features > 0, "MappingNetwork", "c_dim > 0 needs embed_features > 0");
        embed_ = register_module(
            "embed", FullyConnectedLayer(config.c_dim, embed_features, Activation::kLinear, 1.0));
    }
    for (int64_t i = 0; i < config.mapping_layers; ++i) {
        const int64_t in = i == 0 ? config.z_dim + embed_features : config.w_dim;
        layers_.push_back(register_module(
            "fc" + std::to_string(i), FullyConnectedLayer(in, config.w_dim, Activation::kLeakyReLU,
                                                          config.mapping_lr_multiplier)));
    }
    w_avg = register_buffer("w_avg", torch::zeros({config.w_dim}));
}

namespace {
torch::Tensor normalize_2nd_moment(const torch::Tensor& x) {
    return x * (x.square().mean(1, /*keepdim=*/true) + 1e-8).rsqrt();
}
}  // namespace

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z, double truncation_psi,
                                          std::optional<int64_t> truncation_cutoff,
                                          std::vector<torch::Tensor>* layer_outputs) {
    MappingTrace trace;
    auto ws = forward(z, torch::Tensor(), truncation_psi, truncation_cutoff, &trace);
    if (layer_outputs != nullptr)
        *layer_outputs = std::move(trace.layers);
    return ws;
}

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z, const torch::Tensor& c,
                                          double truncation_psi,
                                          std::optional<int64_t> truncation_cutoff,
                                          MappingTrace* trace) {
    auto x = normalize_2nd_moment(z.to(torch::kFloat32));
    if (c_dim_ > 0) {
        check(c.defined() && c.dim() == 2 && c.size(0) == z.size(0) && c.size(1) == c_dim_,
              "MappingNetwork", "expects the conditioning c [N, " + std::to_string(c_dim_) + "]");
        const auto embedded = embed_->forward(c.to(torch::kFloat32));
        if (trace != nullptr)
            trace->embed = embedded;
        x = torch::cat({x, normalize_2nd_moment(embedded)}, 1);
    }
    if (trace != nullptr)
        trace->fc_input = x;
    for (auto& layer : layers_) {
        x = layer->forward(x);
        if (trace != nullptr)
            trace->layers.push_back(x);
    }
    x = x.unsqueeze(1).repeat({1, num_ws_, 1});
    if (truncation_psi != 1.0) {
        // torch.lerp, as the official code: its formula switches at weight 0.5.
        if (!truncation_cutoff) {
            x = w_avg.lerp(x, truncation_psi);
        } else {
            auto head = x.narrow(1, 0, *truncation_cutoff);
            head.copy_(w_avg.lerp(head, truncation_psi));
        }
    }
    return x;
}

SynthesisLayerImpl::SynthesisLayerImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim,
                                       int64_t resolution, int64_t up,
                                       std::optional<double> conv_clamp)
    : resolution_(resolution), up_(up), conv_clamp_(conv_clamp) {
    affine = register_module(
        "affine", FullyConnectedLayer(w_dim, in_channels, Activation::kLinear, 1.0, 1.0));
    weight = register_parameter("weight", torch::randn({out_channels, in_channels, 3, 3}));
    bias = register_parameter("bias", torch::zeros({out_channels}));
    noise_strength = register_parameter("noise_strength", torch::zeros({}));
    resample_filter = register_buffer("resample_filter", make_resample_filter({1, 3, 3, 1}));
    noise_const = register_buffer("noise_const", torch::randn({resolution, resolution}));
}

torch::Tensor SynthesisLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& w,
                                          NoiseMode noise_mode, bool fused_modconv,
                                          torch::Tensor* styles_out,
                                          c10::optional<at::Generator> generator) {
    const auto styles = affine->forward(w);
    if (styles_out != nullptr)
        *styles_out = styles;
    torch::Tensor noise;
    if (noise_mode == NoiseMode::kConst) {
        noise = noise_const * noise_strength;
    } else if (noise_mode == NoiseMode::kRandom) {
        noise = torch::randn({x.size(0), 1, resolution_, resolution_}, generator, x.options()) *
                noise_strength;
    }
    ModulatedConvOptions options;
    options.up = up_;
    options.padding = 1;
    options.flip_weight = up_ == 1;  // the official choice (slightly faster, same result)
    options.fused = fused_modconv;
    auto y = modulated_conv2d(x, weight, styles, noise, resample_filter, options);
    const double gain = default_gain(Activation::kLeakyReLU);
    std::optional<double> clamp;
    if (conv_clamp_)
        clamp = *conv_clamp_ * 1.0;  // conv_clamp * gain, with gain = 1 here
    return bias_act(y, bias, Activation::kLeakyReLU, gain, clamp);
}

ToRGBLayerImpl::ToRGBLayerImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim,
                               std::optional<double> conv_clamp)
    : weight_gain_(1.0 / std::sqrt(static_cast<double>(in_channels))), conv_clamp_(conv_clamp) {
    affine = register_module(
        "affine", FullyConnectedLayer(w_dim, in_channels, Activation::kLinear, 1.0, 1.0));
    weight = register_parameter("weight", torch::randn({out_channels, in_channels, 1, 1}));
    bias = register_parameter("bias", torch::zeros({out_channels}));
}

torch::Tensor ToRGBLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& w,
                                      bool fused_modconv, torch::Tensor* styles_out) {
    // The gain goes on the styles, not the weight (the weight is never demodulated here).
    const auto affine_out = affine->forward(w);
    if (styles_out != nullptr)
        *styles_out = affine_out;  // reported before the gain, as hooks see it
    const auto styles = affine_out * weight_gain_;
    ModulatedConvOptions options;
    options.demodulate = false;
    options.fused = fused_modconv;
    const auto y = modulated_conv2d(x, weight, styles, torch::Tensor(), torch::Tensor(), options);
    return bias_act(y, bias, Activation::kLinear, std::nullopt, conv_clamp_);
}

SynthesisBlockImpl::SynthesisBlockImpl(int64_t in_channels, int64_t out_channels, int64_t w_dim,
                                       int64_t resolution, int64_t img_channels,
                                       std::optional<double> conv_clamp)
    : in_channels_(in_channels) {
    if (in_channels == 0) {
        const_input =
            register_parameter("const", torch::randn({out_channels, resolution, resolution}));
    }
    resample_filter = register_buffer("resample_filter", make_resample_filter({1, 3, 3, 1}));
    if (in_channels != 0) {
        conv0 = register_module(
            "conv0", SynthesisLayer(in_channels, out_channels, w_dim, resolution, 2, conv_clamp));
    }
    conv1 = register_module(
        "conv1", SynthesisLayer(out_channels, out_channels, w_dim, resolution, 1, conv_clamp));
    torgb = register_module("torgb", ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp));
}

std::pair<torch::Tensor, torch::Tensor> SynthesisBlockImpl::forward(
    const torch::Tensor& x_in, const torch::Tensor& img_in, const torch::Tensor& ws,
    NoiseMode noise_mode, bool fused_modconv, SynthesisBlockTrace* trace) {
    auto record = [&](const std::string& name, const torch::Tensor& t) {
        if (trace != nullptr)
            trace->tensors[name] = t;
    };
    int64_t w_index = 0;
    auto next_w = [&] { return ws.select(1, w_index++); };
    torch::Tensor styles;
    torch::Tensor x;
    if (in_channels_ == 0) {
        x = const_input.unsqueeze(0).repeat({ws.size(0), 1, 1, 1});
    } else {
        x = conv0->forward(x_in.to(torch::kFloat32), next_w(), noise_mode, fused_modconv, &styles);
        record("conv0.affine", styles);
        record("conv0", x);
    }
    x = conv1->forward(x, next_w(), noise_mode, fused_modconv, &styles);
    record("conv1.affine", styles);
    record("conv1", x);

    torch::Tensor img = img_in;
    if (img.defined())
        img = upsample2d(img, resample_filter);
    const auto y = torgb->forward(x, next_w(), fused_modconv, &styles).to(torch::kFloat32);
    record("torgb.affine", styles);
    record("torgb", y);
    img = img.defined() ? img.add_(y) : y;
    record("x", x);
    record("img", img);
    return {x, img};
}

SynthesisNetworkImpl::SynthesisNetworkImpl(const StyleGAN2Config& config) {
    int64_t previous_channels = 0;
    for (const auto& [res, channels] : config.channels) {
        auto block = register_module("b" + std::to_string(res),
                                     SynthesisBlock(previous_channels, channels, config.w_dim, res,
                                                    config.img_channels, config.conv_clamp));
        blocks_.emplace_back(res, block);
        previous_channels = channels;
    }
}

torch::Tensor SynthesisNetworkImpl::forward(const torch::Tensor& ws_in, NoiseMode noise_mode,
                                            bool fused_modconv,
                                            std::map<std::string, SynthesisBlockTrace>* traces) {
    const auto ws = ws_in.to(torch::kFloat32);
    torch::Tensor x, img;
    int64_t w_index = 0;
    for (auto& [res, block] : blocks_) {
        // Consecutive blocks share one w: the torgb of a block and conv0 of the next.
        const auto block_ws = ws.narrow(1, w_index, block->num_conv() + 1);
        w_index += block->num_conv();
        SynthesisBlockTrace* trace =
            traces != nullptr ? &(*traces)["b" + std::to_string(res)] : nullptr;
        std::tie(x, img) = block->forward(x, img, block_ws, noise_mode, fused_modconv, trace);
    }
    return img;
}

StyleGAN2GeneratorImpl::StyleGAN2GeneratorImpl(const StyleGAN2Config& config) : config_(config) {
    mapping = register_module("mapping", MappingNetwork(config));
    synthesis = register_module("synthesis", SynthesisNetwork(config));
}

torch::Tensor StyleGAN2GeneratorImpl::forward(const torch::Tensor& z, double truncation_psi,
                                              std::optional<int64_t> truncation_cutoff,
                                              NoiseMode noise_mode) {
    return synthesis->forward(mapping->forward(z, truncation_psi, truncation_cutoff), noise_mode,
                              /*fused_modconv=*/true);
}

StyleGAN2Generator load_stylegan2_generator(const SafetensorsFile& file,
                                            const std::string& prefix) {
    StyleGAN2Generator generator(StyleGAN2Config::detect_from_weights(file, prefix));
    load_state(*generator, file, prefix);
    generator->eval();
    return generator;
}

}  // namespace avatar::nn
