#include "nn/eg3d/registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "nn/camera.h"
#include "nn/eg3d/triplane.h"

namespace avatar::nn::eg3d {
namespace {
using nlohmann::json;
using torch::indexing::Slice;

// The fixture's case outputs are listed as prose, so each runner names its reference tensors.
// Intermediates are held to the tolerance of the output they lead to (never a looser one).
// The fixture's generator for one weights file, with the fixture's rendering options (cached).
TriPlaneGenerator fixture_generator(const ReferenceFixture& fixture, const std::string& weights,
                                    const json& variant) {
    const auto key = (fixture.dir() / weights).string();
    return cached_model<TriPlaneGenerator>(key, [&] {
        const auto& kwargs = variant.at("generator_kwargs");
        auto generator =
            load_triplane_generator(fixture.weights(weights), "",
                                    RenderingOptions::from_kwargs(kwargs.at("rendering_kwargs")));
        const int64_t num_ws = variant.value("num_ws", generator->num_ws());
        check(num_ws == generator->num_ws(), key,
              "the fixture expects " + std::to_string(num_ws) + " ws, the weights give " +
                  std::to_string(generator->num_ws()));
        return generator;
    });
}

TriPlaneGenerator small_generator(const ReferenceFixture& fixture) {
    return fixture_generator(fixture, "weights.safetensors", fixture.config().at("small_config"));
}

int64_t small_rendering_resolution(const ReferenceFixture& fixture) {
    return fixture.config().at("small_config").at("neural_rendering_resolution").get<int64_t>();
}

RenderNoise stored_noise(const ReferenceFixture& fixture, const std::string& prefix) {
    return {fixture.tensor(prefix + "/jitter_coarse"), fixture.tensor(prefix + "/u_importance")};
}

std::vector<OutputCheck> run_camera_lookat(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto radius = io.reference("camera_lookat/radius").item<float>();
    io.check("camera_lookat/cam2world",
             look_at_pose(io.reference("camera_lookat/horizontal"),
                          io.reference("camera_lookat/vertical"),
                          io.reference("camera_lookat/lookat"), radius),
             io.tolerance("cam2world"));
    return io.results();
}

std::vector<OutputCheck> run_mapping(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto z = io.reference("mapping/z"), c = io.reference("mapping/c");
    const auto t = io.tolerance("ws");
    MappingTrace trace;
    io.check("mapping/ws", generator->mapping(z, c, 1.0, std::nullopt, &trace), t);
    io.check("mapping/embed_out", trace.embed, t);
    io.check("mapping/fc0_in", trace.fc_input, t);
    for (size_t i = 0; i < trace.layers.size(); ++i)
        io.check("mapping/fc" + std::to_string(i) + "_out", trace.layers[i], t);
    io.check("mapping/ws_psi0.7", generator->mapping(z, c, 0.7), t);
    io.check("mapping/ws_psi0.5_cutoff4", generator->mapping(z, c, 0.5, 4), t);
    return io.results();
}

std::vector<OutputCheck> run_synthesis(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto t = io.tolerance("planes");
    std::map<std::string, SynthesisBlockTrace> traces;
    io.check("e2e/planes",
             generator->synthesize_planes(io.reference("e2e/ws"), NoiseMode::kConst, &traces), t);
    // Keys read "synthesis/b<res>.<item>"; our traces name conv outputs "conv0" and raw styles
    // "conv0.affine".
    for (const auto& info : fixture.case_tensors().tensors()) {
        const std::string prefix = "synthesis/";
        if (info.name.rfind(prefix, 0) != 0)
            continue;
        const auto rest = info.name.substr(prefix.size());
        const auto dot = rest.find('.');
        const auto block = rest.substr(0, dot);
        auto item = rest.substr(dot + 1);
        for (const auto& [suffix, ours] : std::vector<std::pair<std::string, std::string>>{
                 {".out", ""}, {".styles_raw", ".affine"}}) {
            if (item.size() > suffix.size() &&
                item.compare(item.size() - suffix.size(), suffix.size(), suffix) == 0) {
                item = item.substr(0, item.size() - suffix.size()) + ours;
            }
        }
        const auto& tensors = traces.at(block).tensors;
        const auto found = tensors.find(item);
        check(found != tensors.end(), info.name, "no such intermediate in our synthesis trace");
        io.check(info.name, found->second, t);
    }
    return io.results();
}

std::vector<OutputCheck> run_ray_sampler(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto resolution = io.reference("ray_sampler/resolution").item<int64_t>();
    const auto [cam2world, intrinsics] = unpack_camera(io.reference("ray_sampler/c"));
    const auto [origins, directions] = sample_rays(cam2world, intrinsics, resolution);
    io.check("ray_sampler/ray_origins", origins, io.tolerance("ray_origins"));
    io.check("ray_sampler/ray_directions", directions, io.tolerance("ray_directions"));
    return io.results();
}

std::vector<OutputCheck> run_sample_from_planes(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto box_warp = small_generator(fixture)->config().rendering.box_warp;
    torch::Tensor projected;
    const auto features =
        sample_from_planes(io.reference("e2e/planes"), io.reference("sample_planes/coordinates"),
                           box_warp, &projected);
    io.check("sample_planes/features", features, io.tolerance("features"));
    io.check("sample_planes/projected", projected, io.tolerance("features"));
    return io.results();
}

std::vector<OutputCheck> run_decoder(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto out = generator->decoder->forward(io.reference("sample_planes/features"), true);
    const auto t = io.tolerance("rgb");
    io.check("decoder/rgb", out.rgb, t);
    io.check("decoder/sigma", out.sigma, t);
    for (const auto& [name, tensor] : out.trace)
        io.check("decoder/" + name, tensor, t);
    return io.results();
}

// Our fine pass evaluated at the reference's fine depths (our rays, planes, decoder and coarse
// samples): sigma_fine in the trace's flat [B, M*Di, 1] layout and the merged, depth-sorted
// all_colors and all_densities.
std::map<std::string, torch::Tensor> fine_pass_at(CaseChecker& io, TriPlaneGenerator& generator,
                                                  const PlaneRendering& rendering) {
    const auto depths_fine = io.reference("render/depths_fine");
    const auto& trace = rendering.trace;
    const auto& depths_coarse = trace.at("depths_coarse");
    const auto fine = decode_samples(io.reference("e2e/planes"), generator->decoder,
                                     trace.at("ray_origins"), trace.at("ray_directions"),
                                     depths_fine, generator->config().rendering.box_warp);
    // The trace holds the coarse samples flat, [B, M*D, C], as the fixture stores them.
    const auto& colors_coarse = trace.at("colors_coarse");
    const RaySamples coarse{colors_coarse.reshape({depths_coarse.size(0), depths_coarse.size(1),
                                                   depths_coarse.size(2), colors_coarse.size(-1)}),
                            trace.at("sigma_coarse").reshape_as(depths_coarse)};
    const auto all = merge_samples(depths_coarse, coarse, depths_fine, fine);
    return {{"sigma_fine", fine.sigma.reshape({depths_fine.size(0), -1, 1})},
            {"all_colors", all.colors},
            {"all_densities", all.densities}};
}

std::vector<OutputCheck> run_render_from_planes(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto rendering =
        generator->render_planes(io.reference("e2e/c"), io.reference("e2e/planes"),
                                 small_rendering_resolution(fixture), stored_noise(fixture, "e2e"),
                                 /*keep_trace=*/true);
    const auto t = io.tolerance("image_feature");
    io.check("e2e/image_feature", rendering.feature_image, t);
    io.check("e2e/image", rendering.image, t);  // a slice of the feature image
    io.check("e2e/image_depth", rendering.depth_image, io.tolerance("image_depth"));
    io.check("e2e/weights_sum", rendering.weights_sum, io.tolerance("weights_sum"));
    // The fine pass's densities and colours are pointwise functions of the fine depths, which
    // importance sampling (an inverse CDF of the coarse weights) makes: a last-bit difference in
    // those weights moves a fine depth by ~1e-7, and the random weights' density changes along a
    // ray by ~64 per unit depth (median; far more on some rays). So a correct port's fine sigma
    // can miss the render tolerance through the depths alone (seen: 7.9e-5 on an AMD EPYC with
    // depths_fine within 7.2e-7 and every output within 0.04 of its tolerance). They are checked
    // at the reference's fine depths instead: the same plane sampling, decoder and merge on the
    // same points, at the same tolerance. depths_fine itself is checked from our pipeline.
    const auto at_reference_depths = fine_pass_at(io, generator, rendering);
    for (const auto& entry : spec.value("intermediates", json::array())) {
        const auto key = entry.get<std::string>();
        const auto name = key.substr(key.find('/') + 1);
        const auto isolated = at_reference_depths.find(name);
        if (isolated != at_reference_depths.end()) {
            io.check(key, isolated->second, t);
            continue;
        }
        const auto found = rendering.trace.find(name);
        check(found != rendering.trace.end(), key, "no such intermediate in our renderer trace");
        io.check(key, found->second, t);
    }
    return io.results();
}

std::vector<OutputCheck> run_ray_marcher(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto t = io.tolerance("rgb_final");
    const auto out =
        ray_march(io.reference("render/all_colors"), io.reference("render/all_densities"),
                  io.reference("render/all_depths"));
    io.check("render/rgb_final", out.rgb, t);
    io.check("render/depth_final", out.depth, t);
    io.check("render/weights_final", out.weights, t);
    // The coarse pass: the decoder's flat [B, M*D, C] outputs regrouped per ray.
    const auto depths = io.reference("render/depths_coarse");
    const int64_t batch = depths.size(0), rays = depths.size(1), samples = depths.size(2);
    const auto colors = io.reference("render/colors_coarse").reshape({batch, rays, samples, -1});
    const auto sigma = io.reference("render/sigma_coarse").reshape({batch, rays, samples, 1});
    io.check("render/weights_coarse", ray_march(colors, sigma, depths).weights, t);
    return io.results();
}

std::vector<OutputCheck> run_sample_importance(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.check(
        "render/depths_fine",
        sample_importance(io.reference("render/depths_coarse"),
                          io.reference("render/weights_coarse"), io.reference("e2e/u_importance")),
        io.tolerance("depths_fine"));
    return io.results();
}

std::vector<OutputCheck> run_superresolution(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto t = io.tolerance("sr_image");
    SuperresolutionTrace trace;
    io.check("e2e/sr_image",
             generator->super_resolve(io.reference("e2e/image"), io.reference("e2e/image_feature"),
                                      io.reference("e2e/ws"), &trace),
             t);
    io.check("sr/x_interp_ch0-7", trace.x_resized.narrow(1, 0, 8), t);
    io.check("sr/rgb_interp", trace.rgb_resized, t);
    io.check("sr/ws_sr", trace.ws, t);
    const auto& block0 = trace.block0.tensors;
    io.check("sr/block0_img", block0.at("img"), t);
    const auto& x = block0.at("x");
    io.check("sr/block0_x_crop", x.index({Slice(), Slice(0, 8), Slice(0, 32), Slice(0, 32)}), t);
    io.check("sr/block0_x_chmean", x.mean({2, 3}), t);
    const auto& conv0 = block0.at("conv0");
    io.check("sr/block0_conv0_ch0-3", conv0.narrow(1, 0, 4), t);
    // Which pixels sit on the +-256 conv_clamp. A pixel whose value is within the SR tolerance of
    // the clamp may fall on either side, so the fraction may differ by at most the fraction of
    // such borderline pixels (and nothing else).
    const auto clamp = *generator->config().superresolution.conv_clamp;
    const auto magnitude = conv0.narrow(1, 0, 2).abs();
    const auto borderline =
        magnitude.ge(clamp - (t.atol + t.rtol * clamp)).logical_and(magnitude.lt(clamp));
    io.check("sr/block0_conv0_clamped_fraction_ch0-1",
             magnitude.ge(clamp).to(torch::kFloat32).mean({2, 3}),
             {borderline.to(torch::kFloat64).mean({2, 3}).max().item<double>(), 0.0});
    return io.results();
}

std::vector<OutputCheck> run_e2e(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = small_generator(fixture);
    const auto out =
        generator->synthesize(io.reference("e2e/ws"), io.reference("e2e/c"),
                              stored_noise(fixture, "e2e"), small_rendering_resolution(fixture));
    io.check("e2e/sr_image", out.image, io.tolerance("sr_image"));
    io.check("e2e/image_feature", out.rendering.feature_image, io.tolerance("image_feature"));
    io.check("e2e/image_depth", out.rendering.depth_image, io.tolerance("image_depth"));
    return io.results();
}

// The unpatched model (backbone at 256, 14 ws): the full chain, checked through crops and
// channel statistics (the fixture stores no full-size planes or SR image).
std::vector<OutputCheck> run_native256(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto& variant = fixture.config().at("native256");
    auto generator = fixture_generator(fixture, variant.at("weights").get<std::string>(), variant);
    const auto resolution = variant.at("neural_rendering_resolution").get<int64_t>();
    const auto ws = io.reference("native256/ws");
    // Rendering-side quantities use the case's image_feature tolerance, SR-side ones its
    // sr_image_crop tolerance.
    const auto render_t = io.tolerance("image_feature");
    const auto sr_t = io.tolerance("sr_image_crop");

    std::map<std::string, SynthesisBlockTrace> traces;
    const auto planes = generator->synthesize_planes(ws, NoiseMode::kConst, &traces);
    const auto window = Slice(120, 136);
    io.check("native256/planes_crop", planes.index({"...", window, window}), render_t);
    io.check("native256/planes_chmean", planes.mean({3, 4}), render_t);
    io.check("native256/planes_chstd", planes.std({3, 4}, /*unbiased=*/true), render_t);
    for (const int res : {4, 8, 16, 32}) {
        const auto block = "b" + std::to_string(res);
        io.check("native256/" + block + ".img", traces.at(block).tensors.at("img"), render_t);
    }

    const auto rendering = generator->render_planes(io.reference("native256/c"), planes, resolution,
                                                    stored_noise(fixture, "native256"), true);
    io.check("native256/image_feature", rendering.feature_image, render_t);
    io.check("native256/image_depth", rendering.depth_image, render_t);
    io.check("native256/weights_sum", rendering.weights_sum, render_t);
    io.check("native256/render_depths_fine", rendering.trace.at("depths_fine"), render_t);

    const auto sr = generator->super_resolve(rendering.image, rendering.feature_image, ws);
    const auto crop = Slice(192, 320);
    io.check("native256/sr_image_crop", sr.index({Slice(), Slice(), crop, crop}), sr_t);
    io.check("native256/sr_image_chmean", sr.mean({2, 3}), sr_t);
    io.check("native256/sr_image_chstd", sr.std({2, 3}, /*unbiased=*/true), sr_t);
    return io.results();
}

}  // namespace

void register_eg3d() {
    auto& references = ReferenceRegistry::instance();
    // The fixture's config.json has no "fixture" field: recognise it by the class it checks.
    references.add_fixture_recognizer("eg3d", [](const json& config) {
        return config.value("class", "") == "models.triplane.TriPlaneGenerator";
    });
    const std::vector<std::tuple<std::string, std::string, CaseRunner>> cases{
        {"camera_lookat", "nn::look_at_pose", run_camera_lookat},
        {"mapping", "nn::MappingNetwork (c_dim > 0) via eg3d::TriPlaneGenerator::mapping",
         run_mapping},
        {"synthesis", "eg3d::TriPlaneGenerator::synthesize_planes", run_synthesis},
        {"ray_sampler", "eg3d::sample_rays", run_ray_sampler},
        {"sample_from_planes", "eg3d::sample_from_planes", run_sample_from_planes},
        {"decoder", "eg3d::OSGDecoder", run_decoder},
        {"render_from_planes", "eg3d::TriPlaneGenerator::render_planes", run_render_from_planes},
        {"ray_marcher", "eg3d::ray_march", run_ray_marcher},
        {"sample_importance", "eg3d::sample_importance", run_sample_importance},
        {"superresolution", "eg3d::Superresolution", run_superresolution},
        {"e2e", "eg3d::TriPlaneGenerator::synthesize", run_e2e},
        {"native256", "eg3d::TriPlaneGenerator (unpatched 256² backbone)", run_native256},
    };
    for (const auto& [name, description, runner] : cases)
        references.add({"eg3d", description, case_named(name), runner});

    ModelSpec spec;
    spec.name = "eg3d";
    spec.engine = "nn";
    spec.description =
        "EG3D tri-plane generator (OTAvatar's TriPlaneGenerator): ws + camera -> planes -> "
        "volume rendering -> SR";
    spec.detect =
        detect_config<TriPlaneConfig>({"backbone.mapping.fc0.weight", "decoder.net.0.weight",
                                       "superresolution.block0.conv0.weight"});
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::nn::eg3d
