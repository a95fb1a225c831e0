#include "nn/stylegan2_registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "metrics/benchmark.h"
#include "nn/bias_act.h"
#include "nn/modulated_conv.h"
#include "nn/stylegan2.h"
#include "nn/upfirdn2d.h"

namespace avatar::nn {
namespace {
using nlohmann::json;

std::vector<OutputCheck> run_upfirdn2d(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto x = io.input("x");
    const auto f = make_resample_filter({1, 3, 3, 1});
    io.output("filter", f);
    io.output("upsample2d", upsample2d(x, f));
    io.output("downsample2d", downsample2d(x, f));
    io.output("up2_pad2121_gain4", upfirdn2d(x, f, 2, 1, {2, 1, 2, 1}, false, 4.0));
    io.output("blur_pad1111_gain4", upfirdn2d(x, f, 1, 1, {1, 1, 1, 1}, false, 4.0));
    io.output("crop_pad-1_2_0_1", upfirdn2d(x, f, 1, 1, {-1, 2, 0, 1}));
    return io.results();
}

std::vector<OutputCheck> run_bias_act(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto x = io.input("x");
    const auto b = io.input("b");
    io.output("lrelu", bias_act(x, b, Activation::kLeakyReLU));
    io.output("lrelu_gain1.5_clamp0.5", bias_act(x, b, Activation::kLeakyReLU, 1.5, 0.5));
    io.output("linear", bias_act(x, b, Activation::kLinear));
    return io.results();
}

// The generator of the fixture, built from its weights (cached per fixture folder).
StyleGAN2Generator fixture_generator(const ReferenceFixture& fixture) {
    return cached_model<StyleGAN2Generator>(
        fixture.weights().subject(), [&] { return load_stylegan2_generator(fixture.weights()); });
}

std::vector<OutputCheck> run_modconv(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto x = io.input("x"), x_small = io.input("x_small");
    const auto w3 = io.input("weight3x3"), w1 = io.input("weight1x1");
    const auto styles = io.input("styles"), noise = io.input("noise");
    const auto f = make_resample_filter({1, 3, 3, 1});
    for (const bool fused : {true, false}) {
        const std::string suffix = fused ? "_fused" : "_unfused";
        ModulatedConvOptions up1;
        up1.padding = 1;
        up1.fused = fused;
        io.output("up1_demod" + suffix, modulated_conv2d(x, w3, styles, noise, f, up1));
        ModulatedConvOptions up2 = up1;
        up2.up = 2;
        up2.flip_weight = false;
        io.output("up2_demod" + suffix, modulated_conv2d(x_small, w3, styles, {}, f, up2));
    }
    ModulatedConvOptions k1;
    k1.demodulate = false;
    io.output("k1_nodemod_fused", modulated_conv2d(x, w1, styles, {}, f, k1));
    return io.results();
}

std::vector<OutputCheck> run_mapping(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    const auto z = io.input("z");
    std::vector<torch::Tensor> layers;
    io.output("ws psi=1", generator->mapping->forward(z, 1.0, std::nullopt, &layers));
    for (size_t i = 0; i < layers.size(); ++i) {
        io.intermediate("mapping/psi1/fc" + std::to_string(i), layers[i]);
    }
    io.output("ws psi=0.7", generator->mapping->forward(z, 0.7));
    io.output("ws psi=0.7 cutoff=4", generator->mapping->forward(z, 0.7, 4));
    return io.results();
}

// synth, synth_nonoise, synth_unfused: the synthesis network and every recorded intermediate.
std::vector<OutputCheck> run_synthesis(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    const std::string name = spec.at("name").get<std::string>();
    const NoiseMode noise = name == "synth_nonoise" ? NoiseMode::kNone : NoiseMode::kConst;
    const bool fused = name != "synth_unfused";
    std::map<std::string, SynthesisBlockTrace> traces;
    io.output("img", generator->synthesis->forward(io.input("ws"), noise, fused, &traces));
    // Intermediate keys read "<case>/b<res>/x" (block outputs) or "<case>/b<res>.<layer>".
    for (const auto& key_json : spec.value("intermediates", json::array())) {
        const auto key = key_json.get<std::string>();
        const auto slash = key.find('/');
        const auto rest = key.substr(slash + 1);
        const auto sep = rest.find_first_of("/.");
        const auto block = rest.substr(0, sep);
        const auto item = rest.substr(sep + 1);
        const auto& tensors = traces.at(block).tensors;
        const auto it = tensors.find(item);
        if (it == tensors.end())
            continue;  // conv0 of b4 does not exist
        io.intermediate(key, it->second);
    }
    return io.results();
}

std::vector<OutputCheck> run_generator(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("img", fixture_generator(fixture)->forward(io.input("z"), 0.7));
    return io.results();
}

}  // namespace

void register_stylegan2_reference_cases() {
    auto& registry = ReferenceRegistry::instance();
    registry.add({"stylegan2_ada", "nn::upfirdn2d, upsample2d, downsample2d",
                  case_named("upfirdn2d"), run_upfirdn2d});
    registry.add({"stylegan2_ada", "nn::bias_act", case_named("bias_act"), run_bias_act});
    registry.add({"stylegan2_ada", "nn::modulated_conv2d", case_named("modconv"), run_modconv});
    registry.add({"stylegan2_ada", "nn::MappingNetwork", case_named("mapping"), run_mapping});
    registry.add({"stylegan2_ada", "nn::SynthesisNetwork",
                  case_named_any({"synth", "synth_nonoise", "synth_unfused"}), run_synthesis});
    registry.add({"stylegan2_ada", "nn::StyleGAN2Generator", case_named("G"), run_generator});
}

}  // namespace avatar::nn

namespace avatar::nn {

void register_stylegan2_model() {
    metrics::BenchmarkRegistry::instance().add(
        {"stylegan2.synthesis1024",
         "StyleGAN2-ADA FFHQ-1024 synthesis (official config, PVP's renderer), const noise",
         "image",
         [] {
             StyleGAN2Config config;
             for (int64_t res = 4; res <= 1024; res *= 2) {
                 config.channels[res] = std::min<int64_t>(32768 / res, 512);
             }
             torch::manual_seed(0);
             StyleGAN2Generator g(config);
             g->eval();
             auto ws = torch::randn({1, config.num_ws(), config.w_dim});
             return std::function<void()>(
                 [g, ws]() mutable { g->synthesis->forward(ws, NoiseMode::kConst, true); });
         },
         std::nullopt});

    ModelSpec spec;
    spec.name = "stylegan2-ada";
    spec.engine = "nn";
    spec.description = "StyleGAN2 generator, NVlabs stylegan2-ada-pytorch layout (PVP's backbone)";
    spec.detect = detect_config<StyleGAN2Config>({"mapping.fc0.weight", "synthesis.b4.const"});
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::nn
