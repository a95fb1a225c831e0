#include "engines/otavatar/controller.h"

#include "core/error.h"
#include "nn/state_dict.h"

namespace avatar::engines::otavatar {
namespace {
constexpr double kSlope = 0.1;  // every LeakyReLU of the controller
const int64_t kSharedCopies[] = {2, 4, 6, 8};
}  // namespace

ControllerConfig ControllerConfig::detect_from_weights(const SafetensorsFile& file,
                                                       const std::string& prefix) {
    auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
        check(file.contains(prefix + name), file.subject(),
              "not an OTAvatar motion controller: tensor '" + prefix + name + "' is missing");
        return file.info(prefix + name).shape;
    };
    ControllerConfig config;
    const auto& first = shape("mapping_3DMM.first.0.weight");
    config.descriptor_channels = first.at(0);
    config.coeff_channels = first.at(1);
    check(first.at(2) == 7, file.subject(), "the first controller convolution must have kernel 7");
    config.mapping_layers = 0;
    while (file.contains(prefix + "mapping_3DMM.encoder" + std::to_string(config.mapping_layers) +
                         ".1.weight")) {
        ++config.mapping_layers;
    }
    const auto& direction = shape("direction.weight");
    config.w_dim = direction.at(0);
    config.num_directions = direction.at(1);
    const int64_t out = shape("mapping_Refine.10.weight").at(0);
    check(out % config.num_directions == 0 && out / config.num_directions >= 2, file.subject(),
          "refine output size is not (num_ws + 1) x num_directions");
    config.num_ws = out / config.num_directions - 1;
    // The window shrinks by 6 in the first conv and by 6 per dilated conv, and must end >= 1.
    config.window = 6 + 6 * config.mapping_layers + 3;
    return config;
}

nlohmann::json ControllerConfig::to_json() const {
    return {{"coeff_channels", coeff_channels},
            {"descriptor_channels", descriptor_channels},
            {"mapping_layers", mapping_layers},
            {"num_directions", num_directions},
            {"w_dim", w_dim},
            {"num_ws", num_ws},
            {"window", window}};
}

MotionControllerImpl::MotionControllerImpl(const ControllerConfig& config) : config_(config) {
    using namespace torch::nn;
    // Official names: mapping_3DMM.first.0, mapping_3DMM.encoder{i}.1 (index 0 is the LeakyReLU),
    // mapping_Refine.{0,10}, direction.weight.
    auto mapping_module = std::make_shared<Module>();
    auto first_seq =
        Sequential(Conv1d(Conv1dOptions(config.coeff_channels, config.descriptor_channels, 7)));
    first_ = Conv1d(first_seq->ptr<Conv1dImpl>(0));
    mapping_module->register_module("first", first_seq);
    for (int64_t i = 0; i < config.mapping_layers; ++i) {
        auto seq = Sequential(
            LeakyReLU(LeakyReLUOptions().negative_slope(kSlope)),
            Conv1d(Conv1dOptions(config.descriptor_channels, config.descriptor_channels, 3)
                       .dilation(3)));
        encoders_.push_back(seq->ptr<Conv1dImpl>(1));
        mapping_module->register_module("encoder" + std::to_string(i), seq);
    }
    register_module("mapping_3DMM", mapping_module);

    auto refine_module = std::make_shared<Module>();
    refine_shared_ = Linear(config.descriptor_channels, config.descriptor_channels);
    refine_out_ = Linear(config.descriptor_channels, (config.num_ws + 1) * config.num_directions);
    refine_module->register_module("0", refine_shared_);
    refine_module->register_module("10", refine_out_);
    register_module("mapping_Refine", refine_module);

    auto direction_module = std::make_shared<Module>();
    direction_weight_ = direction_module->register_parameter(
        "weight", torch::randn({config.w_dim, config.num_directions}));
    register_module("direction", direction_module);
    refresh_basis();
}

void MotionControllerImpl::refresh_basis() {
    torch::NoGradGuard no_grad;
    basis_ = std::get<0>(torch::linalg_qr(direction_weight_ + 1e-8, "reduced"));
}

ControllerOutput MotionControllerImpl::forward(const torch::Tensor& driving) {
    check(driving.dim() == 3 && driving.size(1) == config_.coeff_channels &&
              driving.size(2) == config_.window,
          "driving window",
          "expected [B, " + std::to_string(config_.coeff_channels) + ", " +
              std::to_string(config_.window) + "], got " + c10::str(driving.sizes()));
    ControllerOutput out;
    auto x = first_->forward(driving);
    out.first_out = x;
    for (auto& conv : encoders_) {
        out.encoder_inputs.push_back(x);
        const auto y = conv->forward(torch::leaky_relu(x, kSlope));
        out.encoder_conv_outputs.push_back(y);
        // Residual with the centre of the incoming stream (the dilated conv drops 3 per side).
        x = y + x.slice(2, 3, x.size(2) - 3);
    }
    out.pool_in = x;
    out.descriptor = x.mean(2, /*keepdim=*/true);  // AdaptiveAvgPool1d(1)
    const auto f = out.descriptor.permute({0, 2, 1});

    // Shortcut around L, R, L, R, L, R, L, R, L with one shared Linear L.
    auto h = f;
    for (int64_t i = 0; i < config_.refine_layers; ++i) {
        if (i > 0)
            h = torch::leaky_relu(h, kSlope);
        h = refine_shared_->forward(h);
        out.shared_linear_outputs.push_back(h);
    }
    out.refine_sum = f + h;
    out.refine_out = refine_out_->forward(torch::leaky_relu(out.refine_sum, kSlope));

    // Row 0 of the (num_ws + 1) x directions output is an offset shared by every layer.
    const auto rows = out.refine_out.view({-1, config_.num_ws + 1, config_.num_directions});
    out.alpha = rows.narrow(1, 0, 1) + rows.narrow(1, 1, config_.num_ws);
    out.directions = out.alpha.matmul(basis_.t());
    return out;
}

void MotionControllerImpl::load_weights(const SafetensorsFile& file, const std::string& prefix) {
    const auto report = nn::load_state(*this, file, prefix, /*strict=*/false);
    check(report.missing.empty(), file.subject(),
          "tensor '" + (report.missing.empty() ? std::string() : report.missing.front()) +
              "' is missing");
    // The only extra tensors allowed are the stored copies of the shared refine layer.
    size_t copies = 0;
    for (const int64_t index : kSharedCopies) {
        for (const char* field : {"weight", "bias"}) {
            const std::string key =
                prefix + "mapping_Refine." + std::to_string(index) + "." + field;
            if (!file.contains(key))
                continue;
            ++copies;
            const auto& shared =
                std::string(field) == "weight" ? refine_shared_->weight : refine_shared_->bias;
            check(torch::equal(file.get(key).to(shared.dtype()), shared), file.subject(),
                  "'" + key + "' differs from mapping_Refine.0: the refine layer is shared");
        }
    }
    check(report.unexpected.size() == copies, file.subject(),
          std::to_string(report.unexpected.size() - copies) + " unexpected tensor(s) (first: '" +
              report.unexpected.front() + "')");
    refresh_basis();
}

MotionController load_motion_controller(const SafetensorsFile& file, const std::string& prefix) {
    MotionController controller(ControllerConfig::detect_from_weights(file, prefix));
    controller->load_weights(file, prefix);
    controller->eval();
    return controller;
}

}  // namespace avatar::engines::otavatar
