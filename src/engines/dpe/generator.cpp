#include "engines/dpe/generator.h"

#include <cmath>

#include "core/error.h"
#include "nn/state_dict.h"

namespace avatar::engines::dpe {
namespace ros = rosinality;

namespace {
// Registers a list of EqualLinear layers under "<name>.<i>".
std::vector<ros::EqualLinear> make_linear_stack(
    torch::nn::Module& parent, const std::string& name,
    const std::vector<std::pair<int64_t, int64_t>>& sizes) {
    auto list = parent.register_module(name, torch::nn::ModuleList());
    std::vector<ros::EqualLinear> layers;
    for (const auto& [in, out] : sizes) {
        layers.emplace_back(in, out);
        list->push_back(layers.back());
    }
    return layers;
}

torch::Tensor run_stack(std::vector<ros::EqualLinear>& layers, torch::Tensor x,
                        const Trace& trace = {}, const std::string& name = "") {
    for (size_t i = 0; i < layers.size(); ++i) {
        x = layers[i]->forward(x);
        trace.record(name + "." + std::to_string(i), x);
    }
    return x;
}
}  // namespace

DPEConfig DPEConfig::official() {
    DPEConfig config;
    config.channels = {{4, 512}, {8, 512}, {16, 512}, {32, 512}, {64, 256}, {128, 128}, {256, 64}};
    return config;
}

DPEConfig DPEConfig::detect_from_weights(const SafetensorsFile& file, const std::string& prefix) {
    auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
        check(file.contains(prefix + name), file.subject(),
              "not a DPE generator: tensor '" + prefix + name + "' is missing");
        return file.info(prefix + name).shape;
    };
    DPEConfig config;
    config.style_dim = shape("dec_pose.conv1.conv.modulation.weight").at(1);
    config.motion_dim = shape("dir.weight").at(1);
    check(shape("dir.weight").at(0) == config.style_dim, file.subject(),
          "the direction basis must have style_dim rows");
    config.channels[4] = shape("dec_pose.input.input").at(1);
    // Decoder blocks: convs.{2k} upsample to 8 * 2^k.
    int64_t res = 8;
    for (int64_t k = 0;
         file.contains(prefix + "dec_pose.convs." + std::to_string(2 * k) + ".conv.weight");
         ++k, res *= 2) {
        config.channels[res] =
            shape("dec_pose.convs." + std::to_string(2 * k) + ".conv.weight").at(1);
    }
    config.size = res / 2;
    check(config.size >= 8, file.subject(), "a DPE generator needs at least one decoder block");
    // The encoder must mirror the decoder table (features are blended channel by channel).
    check(shape("enc.net_app.convs.0.0.weight").at(0) == config.channels.at(config.size),
          file.subject(), "encoder and decoder channel tables differ");
    return config;
}

nlohmann::json DPEConfig::to_json() const {
    nlohmann::json ch;
    for (const auto& [r, c] : channels)
        ch[std::to_string(r)] = c;
    return {{"size", size}, {"style_dim", style_dim}, {"motion_dim", motion_dim}, {"channels", ch}};
}

Stage parse_stage(const std::string& name) {
    if (name == "exp")
        return Stage::kExpression;
    if (name == "pose")
        return Stage::kPose;
    if (name == "both")
        return Stage::kBoth;
    throw Error("stage '" + name + "'", "unknown (expected exp, pose or both)");
}

// ---------------------------------------------------------------------------------------------

EncoderImpl::EncoderImpl(const DPEConfig& config) {
    auto convs = register_module("convs", torch::nn::ModuleList());
    const auto& ch = config.channels;
    stem_ = ros::ConvLayer(3, ch.at(config.size), 1);
    convs->push_back(stem_);
    for (int64_t res = config.size; res > 4; res /= 2) {
        blocks_.emplace_back(ch.at(res), ch.at(res / 2));
        convs->push_back(blocks_.back());
    }
    final_ = ros::EqualConv2d(ch.at(4), config.style_dim, 4, 1, 0, /*bias=*/false);
    convs->push_back(final_);
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> EncoderImpl::forward(
    const torch::Tensor& image, const Trace& trace) {
    std::vector<torch::Tensor> outputs;
    auto x = stem_->forward(image);
    trace.record("convs.0", x);
    outputs.push_back(x);
    for (size_t i = 0; i < blocks_.size(); ++i) {
        const std::string name = "convs." + std::to_string(i + 1);
        x = blocks_[i]->forward(x, trace.sub(name));
        trace.record(name, x);
        outputs.push_back(x);
    }
    const auto code = final_->forward(x);  // [B, style_dim, 1, 1]
    trace.record("convs." + std::to_string(blocks_.size() + 1), code);
    const auto wa = code.squeeze(-1).squeeze(-1);
    // Features from 8x8 up to full size: every output but the 4x4 one, reversed.
    std::vector<torch::Tensor> feats(outputs.rbegin() + 1, outputs.rend());
    return {wa, feats};
}

DecoderImpl::DecoderImpl(const DPEConfig& config) {
    const auto& ch = config.channels;
    const int64_t style = config.style_dim;
    auto input = std::make_shared<torch::nn::Module>();
    const_input_ = input->register_parameter("input", torch::randn({1, ch.at(4), 4, 4}));
    register_module("input", input);
    conv1_ = register_module("conv1", ros::StyledConv(ch.at(4), ch.at(4), 3, style));
    // to_rgb1 is built by the official code and never used; kept so checkpoints load strictly.
    auto to_rgb1 = std::make_shared<torch::nn::Module>();
    auto to_rgb1_conv = std::make_shared<torch::nn::Module>();
    to_rgb1_conv->register_module("0", ros::EqualConv2d(ch.at(4), 3, 1, 1, 0, false));
    to_rgb1_conv->register_module("1", ros::FusedLeakyReLU(3));
    to_rgb1->register_module("conv", to_rgb1_conv);
    to_rgb1->register_parameter("bias", torch::zeros({1, 3, 1, 1}));
    register_module("to_rgb1", to_rgb1);

    auto convs = register_module("convs", torch::nn::ModuleList());
    auto to_rgbs = register_module("to_rgbs", torch::nn::ModuleList());
    auto to_flows = register_module("to_flows", torch::nn::ModuleList());
    for (int64_t res = 8; res <= config.size; res *= 2) {
        Block b;
        const int64_t in = ch.at(res / 2), out = ch.at(res);
        b.up = ros::StyledConv(in, out, 3, style, /*upsample=*/true);
        b.conv = ros::StyledConv(out, out, 3, style);
        convs->push_back(b.up);
        convs->push_back(b.conv);

        auto rgb = std::make_shared<torch::nn::Module>();
        b.rgb_upsample = rgb->register_module("upsample", ros::Upsample());
        auto rgb_conv = std::make_shared<torch::nn::Module>();
        b.rgb_conv = rgb_conv->register_module("0", ros::EqualConv2d(out, 3, 1, 1, 0, false));
        b.rgb_activation = rgb_conv->register_module("1", ros::FusedLeakyReLU(3));
        rgb->register_module("conv", rgb_conv);
        b.rgb_bias = rgb->register_parameter("bias", torch::zeros({1, 3, 1, 1}));
        to_rgbs->push_back(rgb);

        auto flow = std::make_shared<torch::nn::Module>();
        b.flow_upsample = flow->register_module("upsample", ros::Upsample());
        b.flow_conv = flow->register_module("conv", ros::ModulatedConv2d(out, 3, 1, style, false));
        b.flow_bias = flow->register_parameter("bias", torch::zeros({1, 3, 1, 1}));
        to_flows->push_back(flow);
        blocks_.push_back(b);
    }
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& latent,
                                   const std::vector<torch::Tensor>& feats, const Trace& trace) {
    check(feats.size() == blocks_.size(), "DPE decoder",
          "expected " + std::to_string(blocks_.size()) + " encoder features, got " +
              std::to_string(feats.size()));
    trace.record("latent", latent);
    // Every per-layer latent is the same vector (the official code repeats it n_latent times).
    auto x = conv1_->forward(const_input_.repeat({latent.size(0), 1, 1, 1}), latent);
    trace.record("conv1", x);
    torch::Tensor raw_previous, rgb;
    for (size_t k = 0; k < blocks_.size(); ++k) {
        auto& b = blocks_[k];
        const std::string flows = "to_flows." + std::to_string(k) + "/";
        x = b.up->forward(x, latent);
        trace.record("convs." + std::to_string(2 * k), x);
        x = b.conv->forward(x, latent);
        trace.record("convs." + std::to_string(2 * k + 1), x);

        // Flow and mask logits, refined from the previous block's (all three channels).
        auto raw = b.flow_conv->forward(x, latent) + b.flow_bias;
        if (raw_previous.defined())
            raw = raw + b.flow_upsample->forward(raw_previous);
        raw_previous = raw;
        trace.record(flows + "raw", raw);
        const int64_t r = x.size(2);
        // The identity grid is built in float64 and cast; with align_corners=false below it is
        // not an exact identity warp (as the official code).
        const auto axis = torch::linspace(-1.0, 1.0, r, torch::kFloat64).to(x.options());
        const auto identity =
            torch::stack({axis.view({1, r}).expand({r, r}), axis.view({r, 1}).expand({r, r})}, -1)
                .unsqueeze(0);
        const auto grid = torch::tanh(raw.narrow(1, 0, 2)).permute({0, 2, 3, 1}) + identity;
        trace.record(flows + "flow_grid", grid);
        const auto mask = torch::sigmoid(raw.narrow(1, 2, 1));
        trace.record(flows + "mask", mask);
        const auto warped = torch::grid_sampler(feats[k], grid, /*bilinear*/ 0, /*zeros*/ 0,
                                                /*align_corners=*/false) *
                            mask;
        trace.record(flows + "feat_warp", warped);
        x = warped + x * (1 - mask);
        trace.record(flows + "out", x);

        // RGB from the warped encoder features (not from the decoder stream).
        auto y = b.rgb_activation->forward(b.rgb_conv->forward(warped)) + b.rgb_bias;
        rgb = rgb.defined() ? y + b.rgb_upsample->forward(rgb) : y;
        trace.record("to_rgbs." + std::to_string(k), rgb);
    }
    trace.record("img", rgb);
    return rgb;
}

// ---------------------------------------------------------------------------------------------

GeneratorImpl::GeneratorImpl(const DPEConfig& config) : config_(config) {
    auto enc = register_module("enc", std::make_shared<torch::nn::Module>());
    encoder_ = enc->register_module("net_app", Encoder(config));
    dec_pose_ = register_module("dec_pose", Decoder(config));
    dec_exp_ = register_module("dec_exp", Decoder(config));
    const int64_t s = config.style_dim;
    mlp_ =
        make_linear_stack(*this, "mlp", {{s, s}, {s, s}, {s, s}, {s, s}, {s, config.motion_dim}});
    auto dir = register_module("dir", std::make_shared<torch::nn::Module>());
    direction_weight_ = dir->register_parameter("weight", torch::randn({s, config.motion_dim}));
    mlp_pose_ = make_linear_stack(*this, "mlp_pose", {{s, s}, {s, s}, {s, s}});
    mlp_exp_ = make_linear_stack(*this, "mlp_exp", {{s, s}, {s, s}, {s, s}});
    refresh_basis();
}

void GeneratorImpl::refresh_basis() {
    torch::NoGradGuard no_grad;
    // LAPACK Householder QR of weight + 1e-8, as the official Direction does on every call.
    basis_ = std::get<0>(torch::linalg_qr(direction_weight_ + 1e-8, "reduced"));
}

torch::Tensor GeneratorImpl::alpha(const torch::Tensor& wa, const Trace& trace) {
    return run_stack(mlp_, wa, trace, "mlp");
}
torch::Tensor GeneratorImpl::directions(const torch::Tensor& a) {
    if (is_training() && direction_weight_.requires_grad() && torch::GradMode::is_enabled()) {
        // Training: the basis is a function of dir.weight that gradients must reach (QR is
        // differentiable for a tall reduced factorisation). Inference uses the cached basis.
        const auto q = std::get<0>(torch::linalg_qr(direction_weight_ + 1e-8, "reduced"));
        return a.matmul(q.t());
    }
    return a.matmul(basis_.t());
}
torch::Tensor GeneratorImpl::mlp_pose(const torch::Tensor& d) {
    return run_stack(mlp_pose_, d);
}
torch::Tensor GeneratorImpl::mlp_exp(const torch::Tensor& d) {
    return run_stack(mlp_exp_, d);
}

SourceCode GeneratorImpl::encode(const torch::Tensor& image, const Trace& trace) {
    auto [wa, feats] = encoder_->forward(image);
    trace.record("wa", wa);
    for (size_t i = 0; i < feats.size(); ++i)
        trace.record("feat" + std::to_string(i), feats[i]);
    return {wa, feats};
}

torch::Tensor GeneratorImpl::motion(const torch::Tensor& driving_image, const Trace& trace) {
    const auto wa = encoder_->forward(driving_image).first;
    trace.record("enc_drv/wa", wa);
    const auto a = alpha(wa);
    trace.record("alpha_D", a);
    const auto d = directions(a);
    trace.record("directions_D", d);
    return d;
}

torch::Tensor GeneratorImpl::render(const SourceCode& source, const torch::Tensor& d, Stage stage,
                                    const Trace& trace) {
    if (stage == Stage::kPose) {
        const auto offset = mlp_exp(d);
        trace.record("directions_expD", offset);
        return dec_exp_->forward(source.wa + offset, source.feats, trace.sub("dec_exp/"));
    }
    const auto pose_offset = mlp_pose(d);
    trace.record("directions_poseD", pose_offset);
    const auto y =
        dec_pose_->forward(source.wa + pose_offset, source.feats, trace.sub("dec_pose/"));
    if (stage == Stage::kExpression)
        return y;
    // 'both': the expression result is re-encoded (unclamped) and given the pose edit.
    const auto recon = encode(y, trace.sub("enc_recon/"));
    const auto exp_offset = mlp_exp(d);
    trace.record("directions_expD", exp_offset);
    return dec_exp_->forward(recon.wa + exp_offset, recon.feats, trace.sub("dec_exp/"));
}

torch::Tensor GeneratorImpl::forward(const torch::Tensor& source, const torch::Tensor& driving,
                                     Stage stage, const Trace& trace) {
    const auto code = encode(source, trace.sub("enc_src/"));
    return render(code, motion(driving, trace), stage, trace);
}

Generator load_dpe_generator(const SafetensorsFile& file, const std::string& prefix) {
    Generator generator(DPEConfig::detect_from_weights(file, prefix));
    nn::load_state(*generator, file, prefix);
    generator->refresh_basis();
    generator->eval();
    return generator;
}

}  // namespace avatar::engines::dpe
