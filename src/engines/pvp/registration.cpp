#include "engines/pvp/registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "engines/pvp/latent_module.h"
#include "nn/stylegan2.h"

namespace avatar::engines::pvp {
namespace {
using nlohmann::json;

std::vector<OutputCheck> run_generate(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto module = load_latent_module(fixture.weights());
    const auto codes = module->generate(io.input("x (jaw3+expr50)"), io.input("pitch (rad) [B,1]"),
                                        io.input("yaw (rad) [B,1]"));
    io.output("ws", codes.ws);
    io.output("delta", codes.delta);
    io.output("alpha", codes.alpha);
    io.intermediate("gen/rot_alpha", codes.rot_alpha);
    io.intermediate("gen/w_plus", codes.w_plus);
    return io.results();
}

// render_rgba: pose from rotation matrices, latent codes, the generator's synthesis, and the
// 1024 -> 512 resize of the full model (here 64 -> 512 up, plus the 2:1 down check).
std::vector<OutputCheck> run_render(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto module = load_latent_module(fixture.weights());
    // The generator lives in the stylegan2_ada fixture; the config names it relative to here.
    const auto generator_path =
        fixture.dir() / fixture.config().at("stylegan_weights").get<std::string>();
    auto generator = nn::load_stylegan2_generator(SafetensorsFile::open(generator_path));

    const auto [pitch_deg, yaw_deg] = pitch_yaw_degrees(io.input("R"));
    io.output("pitch_deg", pitch_deg);
    io.output("yaw_deg", yaw_deg);
    const auto codes =
        module->generate(io.input("x"), pitch_deg / 180 * M_PI, yaw_deg / 180 * M_PI);
    const auto ws = codes.ws.squeeze(1);
    io.intermediate("render/synth_ws", ws);
    io.output("w_delta", codes.delta);
    const auto image = generator->synthesis->forward(ws, nn::NoiseMode::kConst, true);
    io.output("style_pred", image);
    namespace F = torch::nn::functional;
    auto resize = [](const torch::Tensor& t, int64_t size) {
        return F::interpolate(t, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{size, size})
                                     .mode(torch::kBilinear)
                                     .align_corners(true)
                                     .antialias(true));
    };
    io.output("pred_rgb (512x512)", resize(image, 512));
    io.intermediate("render/style_pred_down2_flags", resize(image, image.size(2) / 2));
    return io.results();
}

}  // namespace

void register_pvp() {
    auto& references = ReferenceRegistry::instance();
    references.add(
        {"pvp", "engines::pvp::LatentModule::generate", case_named("gen"), run_generate});
    references.add({"pvp", "engines::pvp render path (pose, latent module, StyleGAN2 synthesis)",
                    case_named("render"), run_render});

    ModelSpec spec;
    spec.name = "pvp-latent";
    spec.engine = "pvp";
    spec.description = "PVP latent module (ExprAlphaV2): pose-blended pivots + expression offsets";
    spec.detect = detect_config<LatentModuleConfig>({"all_anchors", "alpha_net.0.weight"});
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::engines::pvp
