#include "engines/pvp/latent_module.h"

#include <cmath>

#include "core/error.h"
#include "nn/state_dict.h"

namespace avatar::engines::pvp {
namespace {

// Linear -> LeakyReLU (PyTorch's default slope 0.01, as the official nn.LeakyReLU()) -> Linear
// -> Tanh; the parameterless layers keep their official indices 1 and 3.
torch::nn::Sequential make_mlp(int64_t in, int64_t hidden, int64_t out) {
    return torch::nn::Sequential(
        torch::nn::Linear(in, hidden),
        torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.01)),
        torch::nn::Linear(hidden, out), torch::nn::Tanh());
}

}  // namespace

LatentModuleConfig LatentModuleConfig::detect_from_weights(const SafetensorsFile& file,
                                                           const std::string& prefix) {
    auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
        check(file.contains(prefix + name), file.subject(),
              "not a PVP latent module: tensor '" + prefix + name + "' is missing");
        return file.info(prefix + name).shape;
    };
    LatentModuleConfig config;
    const auto& anchors = shape("all_anchors");
    check(anchors.size() == 3, file.subject(), "all_anchors must be [N, num_ws, w_dim]");
    config.num_anchors = anchors[0];
    config.num_ws = anchors[1];
    config.latent_size = anchors[2];
    config.input_size = shape("expr_net.0.0.weight").at(1);
    config.hidden_size = shape("expr_net.0.0.weight").at(0);
    config.mod_style_count = 0;
    while (file.contains(prefix + "expr_net." + std::to_string(config.mod_style_count) +
                         ".0.weight")) {
        ++config.mod_style_count;
    }
    check(!file.contains(prefix + "expr_net.0.4.weight"), file.subject(),
          "only layer_count 2 (two linear layers per net) is supported");
    check(shape("alpha_net.2.weight").at(0) == config.num_anchors, file.subject(),
          "alpha_net output size differs from the number of anchors");
    check(config.mod_style_count <= config.num_ws, file.subject(),
          "more expression-modulated ws than the generator has");
    return config;
}

nlohmann::json LatentModuleConfig::to_json() const {
    return {{"num_anchors", num_anchors},
            {"num_ws", num_ws},
            {"latent_size", latent_size},
            {"input_size", input_size},
            {"hidden_size", hidden_size},
            {"mod_style_count", mod_style_count},
            {"beta", beta}};
}

LatentModuleImpl::LatentModuleImpl(const LatentModuleConfig& config) : config_(config) {
    all_anchors = register_buffer(
        "all_anchors", torch::zeros({config.num_anchors, config.num_ws, config.latent_size}));
    w_opt = register_buffer("w_opt", torch::zeros({1, config.num_ws, config.latent_size}));
    alpha =
        register_buffer("alpha", torch::full({1, config.num_anchors}, 1.0 / config.num_anchors));
    auto expr_net = register_module("expr_net", torch::nn::ModuleList());
    for (int64_t i = 0; i < config.mod_style_count; ++i) {
        auto mlp = make_mlp(config.input_size, config.hidden_size, config.latent_size);
        expr_net->push_back(mlp);
        expr_nets_.push_back(mlp);
    }
    alpha_net_ = register_module("alpha_net", make_mlp(2, config.hidden_size, config.num_anchors));
}

LatentCodes LatentModuleImpl::generate(const torch::Tensor& x, const torch::Tensor& pitch,
                                       const torch::Tensor& yaw) {
    LatentCodes codes;
    codes.rot_alpha = alpha_net_->forward(torch::cat({pitch, yaw}, -1));
    // Blend weights kept above -beta by a sharp softplus, then normalised (no epsilon, as the
    // official code).
    auto a = alpha + codes.rot_alpha;
    a = torch::softplus(a + config_.beta, /*beta=*/100, /*threshold=*/20) - config_.beta;
    codes.alpha = a / a.sum(-1, /*keepdim=*/true);
    codes.w_plus = torch::einsum("bn,nlc->blc", {codes.alpha, all_anchors});

    std::vector<torch::Tensor> offsets;
    for (auto& net : expr_nets_)
        offsets.push_back(net->forward(x));
    codes.delta = torch::stack(offsets, 1);
    const int64_t m = config_.mod_style_count;
    auto modulated = codes.w_plus.narrow(1, 0, m) + codes.delta;
    auto ws = m == config_.num_ws
                  ? modulated
                  : torch::cat({modulated, codes.w_plus.narrow(1, m, config_.num_ws - m)}, 1);
    codes.ws = ws.unsqueeze(1);
    return codes;
}

LatentModule load_latent_module(const SafetensorsFile& file, const std::string& prefix) {
    LatentModule module(LatentModuleConfig::detect_from_weights(file, prefix));
    nn::load_state(*module, file, prefix);
    module->eval();
    return module;
}

std::pair<torch::Tensor, torch::Tensor> pitch_yaw_degrees(const torch::Tensor& rotation) {
    check(rotation.dim() == 3 && rotation.size(1) == 3 && rotation.size(2) == 3, "rotation",
          "expected [B, 3, 3] rotation matrices");
    const auto row = rotation.select(1, 2);  // third row: (x, y, z)
    const auto x = row.select(1, 0), y = row.select(1, 1), z = row.select(1, 2);
    const auto yaw = torch::atan2(x, z) * 180 / M_PI;
    const auto pitch = torch::atan2(y, z) * 180 / M_PI;
    return {pitch.unsqueeze(1), yaw.unsqueeze(1)};
}

}  // namespace avatar::engines::pvp
