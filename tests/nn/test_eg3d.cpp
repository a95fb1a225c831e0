// EG3D tri-plane generator (nn/eg3d) and EG3D cameras (nn/camera): parity with the official code
// on the shared fixture, and properties that hold without it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "nn/camera.h"
#include "nn/eg3d/renderer.h"
#include "nn/eg3d/triplane.h"
#include "nn/state_dict.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::nn::eg3d {
namespace {
namespace fs = std::filesystem;

// A tiny generator of the EG3D structure; the widths differ from one another, so that a mix-up
// shows as a shape error.
TriPlaneConfig tiny_config() {
    TriPlaneConfig config;
    auto& b = config.backbone;
    b.z_dim = 16;
    b.c_dim = 25;
    b.embed_features = 20;
    b.w_dim = 24;
    b.mapping_layers = 2;
    b.img_resolution = 16;
    b.img_channels = 3 * 5;
    b.channels = {{4, 12}, {8, 10}, {16, 6}};
    config.plane_channels = 5;
    config.decoder_hidden = 9;
    config.decoder_outputs = 1 + 7;
    auto& sr = config.superresolution;
    sr.in_channels = 7;
    sr.block0_channels = 11;
    sr.block1_channels = 8;
    sr.w_dim = 24;
    sr.input_resolution = 8;
    config.rendering.depth_resolution = 6;
    config.rendering.depth_resolution_importance = 5;
    config.neural_rendering_resolution = 4;
    return config;
}

void save_module(torch::nn::Module& module, const fs::path& path) {
    save_state(module, path);
}

TEST(EG3D, OfficialFixtureMatches) {
    const auto report = testing::run_shared_fixture("eg3d");
    if (!report)
        GTEST_SKIP() << "no shared fixture " << testing::shared_fixture_dir("eg3d");
    EXPECT_EQ(report->fixture, "eg3d");
    testing::expect_all_cases_pass(*report, 12);
}

TEST(EG3D, ConfigIsDetectedFromSavedWeightsAndReloads) {
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    TriPlaneGenerator generator(tiny_config());
    generator->eval();
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "eg3d" / "tiny.safetensors";
    save_module(*generator, path);

    const auto file = SafetensorsFile::open(path);
    auto detected = TriPlaneConfig::detect_from_weights(file);
    // Rendering options are not stored in weights: compare the rest.
    detected.rendering = tiny_config().rendering;
    detected.neural_rendering_resolution = tiny_config().neural_rendering_resolution;
    EXPECT_EQ(detected.to_json(), tiny_config().to_json()) << detected.to_json().dump(1);
    EXPECT_EQ(detected.backbone.num_ws(), 6);

    register_builtin_modules();
    const auto model = ModelRegistry::instance().detect(file);
    ASSERT_TRUE(model.has_value());
    EXPECT_EQ(model->model, "eg3d");

    auto loaded = load_triplane_generator(file, "", tiny_config().rendering);
    const auto z = torch::randn({2, 16});
    const auto c = torch::cat({ffhq_camera(0.3, -0.1), ffhq_camera(-0.2, 0.1)}, 0);
    const auto ws = generator->mapping(z, c, 0.7);
    EXPECT_TRUE(torch::equal(ws, loaded->mapping(z, c, 0.7)));
    EXPECT_EQ(ws.sizes(), (std::vector<int64_t>{2, 6, 24}));

    const auto noise = RenderNoise::draw(2, 16, tiny_config().rendering);
    const auto a = generator->synthesize(ws, c, noise, 4);
    const auto b = loaded->synthesize(ws, c, noise, 4);
    EXPECT_TRUE(torch::equal(a.image, b.image));
    EXPECT_EQ(a.image.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
    EXPECT_EQ(a.rendering.feature_image.sizes(), (std::vector<int64_t>{2, 7, 4, 4}));
    EXPECT_EQ(a.rendering.depth_image.sizes(), (std::vector<int64_t>{2, 1, 4, 4}));
    EXPECT_TRUE(torch::equal(a.rendering.image, a.rendering.feature_image.narrow(1, 0, 3)));
}

TEST(EG3D, DetectionRejectsAPlainStyleGAN2) {
    StyleGAN2Config config;
    config.z_dim = 8;
    config.w_dim = 8;
    config.mapping_layers = 1;
    config.img_resolution = 8;
    config.channels = {{4, 4}, {8, 4}};
    StyleGAN2Generator plain(config);
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "eg3d" / "plain.safetensors";
    save_module(*plain, path);
    EXPECT_THROW(TriPlaneConfig::detect_from_weights(SafetensorsFile::open(path)), Error);
}

TEST(EG3D, SameGeneratorSeedRendersTheSameFrame) {
    torch::manual_seed(12);
    torch::NoGradGuard no_grad;
    TriPlaneGenerator generator(tiny_config());
    generator->eval();
    const auto ws = torch::randn({1, 6, 24});
    const auto c = ffhq_camera();
    const auto planes = generator->synthesize_planes(ws);
    auto render = [&](uint64_t seed) {
        auto gen = at::detail::createCPUGenerator(seed);
        const auto noise = RenderNoise::draw(1, 16, tiny_config().rendering, gen);
        return generator->render_planes(c, planes, 4, noise).feature_image;
    };
    EXPECT_TRUE(torch::equal(render(7), render(7)));
    EXPECT_FALSE(torch::equal(render(7), render(8)));
}

TEST(EG3DCamera, FrontalLookAtIsTheFlippedIdentityAtRadius) {
    const auto pose = look_at_pose(torch::tensor({static_cast<float>(M_PI / 2)}),
                                   torch::tensor({static_cast<float>(M_PI / 2)}),
                                   torch::tensor({0.0f, 0.0f, 0.0f}), 2.7)[0];
    const auto expected = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f,
                                         0.0f, -1.0f, 2.7f, 0.0f, 0.0f, 0.0f, 1.0f})
                              .reshape({4, 4});
    EXPECT_TRUE(torch::allclose(pose, expected, 0.0, 1e-5)) << pose;
}

TEST(EG3DCamera, LookAtPosesAreRigidAndLookAtThePivot) {
    torch::manual_seed(13);
    const auto h = torch::rand({16}) * 2 + 0.5;
    const auto v = torch::rand({16}) * 2 + 0.5;
    const auto pivot = torch::tensor({0.0f, 0.05f, 0.2f});
    const auto poses = look_at_pose(h, v, pivot, 2.7);
    const auto rotation = poses.narrow(1, 0, 3).narrow(2, 0, 3);
    const auto origin = poses.narrow(1, 0, 3).select(2, 3);
    const auto eye = torch::eye(3).expand({16, 3, 3});
    EXPECT_TRUE(torch::allclose(torch::matmul(rotation.transpose(1, 2), rotation), eye, 0, 1e-5));
    EXPECT_TRUE(torch::allclose(torch::linalg_det(rotation), torch::ones({16}), 0, 1e-5));
    // On the sphere around the world origin, and the optical axis (column 2) hits the pivot.
    EXPECT_TRUE(torch::allclose(origin.norm(2, 1), torch::full({16}, 2.7), 0, 1e-5));
    const auto to_pivot = pivot.unsqueeze(0) - origin;
    const auto axis = rotation.select(2, 2);
    EXPECT_TRUE(torch::allclose(axis, to_pivot / to_pivot.norm(2, 1, true), 0, 1e-5));
    // OpenCV convention: camera y (column 1) points down, i.e. against world +y.
    EXPECT_TRUE((rotation.select(2, 1).select(1, 1) < 0).all().item<bool>());
    // Unused last row.
    EXPECT_TRUE(
        torch::equal(poses.select(1, 3), torch::tensor({0.0f, 0.0f, 0.0f, 1.0f}).expand({16, 4})));
}

TEST(EG3DCamera, PackAndUnpackAreInverse) {
    const auto c = ffhq_camera(0.2, 0.1);
    ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 25}));
    const auto [cam2world, intrinsics] = unpack_camera(c);
    EXPECT_TRUE(torch::equal(intrinsics[0], ffhq_intrinsics()));
    EXPECT_TRUE(torch::equal(pack_camera(cam2world, intrinsics), c));
    EXPECT_THROW(unpack_camera(torch::zeros({1, 24})), Error);
}

TEST(EG3DRays, DirectionsAreUnitAndPassThroughPixelCentres) {
    // Camera at the origin looking down +z with identity rotation: the ray of pixel (i, j) goes
    // through ((u - cx) / fx, (v - cy) / fy, 1) with u = (j + 0.5) / R, v = (i + 0.5) / R.
    const int64_t r = 8;
    const auto cam2world = torch::eye(4).unsqueeze(0);
    const auto intrinsics =
        torch::tensor({2.0f, 0.0f, 0.4f, 0.0f, 3.0f, 0.6f, 0.0f, 0.0f, 1.0f}).reshape({1, 3, 3});
    const auto [origins, directions] = sample_rays(cam2world, intrinsics, r);
    ASSERT_EQ(directions.sizes(), (std::vector<int64_t>{1, r * r, 3}));
    EXPECT_TRUE(torch::allclose(directions.norm(2, 2), torch::ones({1, r * r}), 0, 1e-6));
    EXPECT_TRUE(torch::equal(origins, torch::zeros({1, r * r, 3})));
    for (const auto& [i, j] : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {2, 5}, {7, 3}}) {
        const double u = (j + 0.5) / r, v = (i + 0.5) / r;
        auto expected = torch::tensor(
            {static_cast<float>((u - 0.4) / 2.0), static_cast<float>((v - 0.6) / 3.0), 1.0f});
        expected = expected / expected.norm();
        EXPECT_TRUE(torch::allclose(directions[0][i * r + j], expected, 0, 1e-6))
            << "pixel " << i << "," << j;
    }
}

TEST(EG3DRays, FrontalFfhqRaysAllPointIntoTheBox) {
    const auto [cam2world, intrinsics] = unpack_camera(ffhq_camera());
    const auto [origins, directions] = sample_rays(cam2world, intrinsics, 16);
    EXPECT_TRUE(torch::allclose(directions.norm(2, 2), torch::ones({1, 256}), 0, 1e-6));
    // At the far end of the ray range every point is still within the unit box.
    const auto far = origins + 3.3 * directions;
    EXPECT_LT(far.narrow(2, 0, 2).abs().max().item<float>(), 0.5f);
}

TEST(EG3DPlanes, ProjectionsAreXyXzZx) {
    const auto p = torch::tensor({0.1f, -0.2f, 0.3f}).reshape({1, 1, 3});
    const auto projected = project_onto_planes(plane_axes(), p);
    const auto expected = torch::tensor({0.1f, -0.2f, 0.1f, 0.3f, 0.3f, 0.1f}).reshape({3, 1, 2});
    EXPECT_TRUE(torch::allclose(projected, expected, 0, 1e-7)) << projected;
}

TEST(EG3DPlanes, SamplingAPlaneWithAConstantFeatureGivesItInsideTheBoxAndZeroFarOutside) {
    auto planes = torch::zeros({1, 3, 2, 4, 4});
    planes.select(1, 1).fill_(2.0);  // only the xz plane carries a value
    const auto coords = torch::tensor({0.1f, 0.2f, -0.3f, 5.0f, 5.0f, 5.0f}).reshape({1, 2, 3});
    const auto features = sample_from_planes(planes, coords, 1.0);
    ASSERT_EQ(features.sizes(), (std::vector<int64_t>{1, 3, 2, 2}));
    EXPECT_FLOAT_EQ(features[0][1][0][0].item<float>(), 2.0f);
    EXPECT_FLOAT_EQ(features[0][0][0][0].item<float>(), 0.0f);
    EXPECT_FLOAT_EQ(features[0][1][1][0].item<float>(), 0.0f);
}

TEST(EG3DMarcher, WeightsArePartitionOfOpacityAndDepthStaysInRange) {
    torch::manual_seed(14);
    const auto depths = std::get<0>(torch::sort(torch::rand({2, 5, 9, 1}) + 2, 2));
    const auto densities = torch::randn({2, 5, 9, 1}) * 3;
    const auto colors = torch::rand({2, 5, 9, 4});
    const auto out = ray_march(colors, densities, depths);
    const auto total = out.weights.sum(2);
    EXPECT_TRUE((out.weights >= 0).all().item<bool>());
    EXPECT_TRUE((total <= 1 + 1e-6).all().item<bool>());
    EXPECT_TRUE((out.depth >= depths.min()).all().item<bool>());
    EXPECT_TRUE((out.depth <= depths.max()).all().item<bool>());
    // Colours in [0, 1] composite to within [-1, 2 * total - 1].
    EXPECT_TRUE((out.rgb >= -1 - 1e-6).all().item<bool>());
    EXPECT_TRUE((out.rgb <= 2 * total - 1 + 1e-5).all().item<bool>());

    // A wall of density at sample 4 takes (almost) all the weight in the interval before it.
    auto wall = torch::full({1, 1, 9, 1}, -30.0);
    wall[0][0][4][0] = 1e4;
    const auto even = torch::linspace(2.0, 3.0, 9).reshape({1, 1, 9, 1});
    const auto walled = ray_march(colors.narrow(0, 0, 1).narrow(1, 0, 1), wall, even);
    EXPECT_NEAR(walled.weights[0][0][3][0].item<float>(), 1.0f, 1e-5);
    EXPECT_NEAR(walled.depth.item<float>(), (even[0][0][3][0] + even[0][0][4][0]).item<float>() / 2,
                1e-5);
}

TEST(EG3DSampling, InverseCdfStaysInTheUsedBinsAndIsMonotoneInU) {
    torch::manual_seed(15);
    const auto bins = std::get<0>(torch::sort(torch::rand({3, 8}), 1));
    const auto weights = torch::rand({3, 6});
    const auto u = std::get<0>(torch::sort(torch::rand({3, 32}), 1));
    const auto samples = sample_pdf(bins, weights, u);
    // Only the first 7 bin edges are reachable: the last midpoint is never used.
    EXPECT_TRUE((samples >= bins.select(1, 0).unsqueeze(1) - 1e-6).all().item<bool>());
    EXPECT_TRUE((samples <= bins.select(1, 6).unsqueeze(1) + 1e-6).all().item<bool>());
    const auto steps = samples.narrow(1, 1, 31) - samples.narrow(1, 0, 31);
    EXPECT_TRUE((steps >= -1e-6).all().item<bool>());
    // u = 0 lands on the first edge.
    const auto first = sample_pdf(bins, weights, torch::zeros({3, 1}));
    EXPECT_TRUE(torch::allclose(first.squeeze(1), bins.select(1, 0)));
}

TEST(EG3DSampling, RenderNoiseHasTheOfficialShapes) {
    RenderingOptions options;
    const auto noise = RenderNoise::draw(2, 64 * 64, options);
    EXPECT_EQ(noise.jitter.sizes(), (std::vector<int64_t>{2, 4096, 48, 1}));
    EXPECT_EQ(noise.u.sizes(), (std::vector<int64_t>{2 * 4096, 48}));
    EXPECT_TRUE((noise.jitter >= 0).all().item<bool>() && (noise.jitter < 1).all().item<bool>());
    const auto depths = stratified_depths(noise.jitter, options);
    EXPECT_GE(depths.min().item<float>(), 2.25f);
    EXPECT_LT(depths.max().item<float>(), 3.3f + 1.05f / 47 + 1e-6f);
}

TEST(EG3DOptions, UnsupportedRenderingKwargsAreRejected) {
    EXPECT_NO_THROW(RenderingOptions::from_kwargs({{"depth_resolution", 12}}));
    EXPECT_THROW(RenderingOptions::from_kwargs({{"clamp_mode", "mipnerf"}}), Error);
    EXPECT_THROW(RenderingOptions::from_kwargs({{"ray_start", "auto"}, {"ray_end", "auto"}}),
                 Error);
    EXPECT_THROW(RenderingOptions::from_kwargs({{"disparity_space_sampling", true}}), Error);
}

}  // namespace
}  // namespace avatar::nn::eg3d
