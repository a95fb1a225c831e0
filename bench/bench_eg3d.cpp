// EG3D tri-plane generator at the OFFICIAL (ffhqrebalanced512-64, as OTAvatar) configuration with
// random weights, split as OTAvatar runs each frame: ws -> tri-planes (256²), planes + camera ->
// 64² feature image (48 + 48 samples per ray), super-resolution 64² -> 512². Batch 1, fp32, CPU,
// at 1 and 2 intra-op threads. Compare with shared/docs/baselines.md (official PyTorch, 2 threads:
// 6.7 s planes, 1.7 s render, 12.2 s SR).
//
//   build/bench/bench_eg3d --benchmark_filter=... --benchmark_format=json
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "nn/camera.h"
#include "nn/eg3d/triplane.h"

namespace {
using namespace avatar::nn;
using namespace avatar::nn::eg3d;

// The official configuration; every size here is what detect_from_weights reads from the real
// checkpoint (shared/reference/eg3d/manifest_full.json).
TriPlaneConfig official_config() {
    TriPlaneConfig config;
    auto& b = config.backbone;
    b.z_dim = 512;
    b.c_dim = 25;
    b.embed_features = 512;
    b.w_dim = 512;
    b.mapping_layers = 2;
    b.img_resolution = 256;
    b.img_channels = 96;
    for (int64_t res = 4; res <= 256; res *= 2)
        b.channels[res] = std::min<int64_t>(32768 / res, 512);
    config.plane_channels = 32;
    config.decoder_hidden = 64;
    config.decoder_outputs = 33;
    config.superresolution = SuperresolutionConfig{};  // 32 -> 256 -> 128 channels, 128 -> 512
    config.rendering = RenderingOptions{};             // 48 + 48 samples, [2.25, 3.3]
    config.neural_rendering_resolution = 64;
    return config;
}

struct Fixture {
    TriPlaneGenerator generator{official_config()};
    torch::Tensor ws, c, planes;
    RenderNoise noise;
    PlaneRendering rendering;

    Fixture() {
        torch::NoGradGuard no_grad;
        torch::manual_seed(2024);
        generator->eval();
        c = ffhq_camera(0.2, -0.1);
        ws = generator->mapping(torch::randn({1, 512}), c);
        planes = generator->synthesize_planes(ws);
        auto gen = at::detail::createCPUGenerator(7);
        noise = RenderNoise::draw(1, 64 * 64, generator->config().rendering, gen);
        rendering = generator->render_planes(c, planes, 64, noise);
    }
};

Fixture& fixture() {
    static Fixture f;  // built once: random official-size weights, one warm-up pass of each step
    return f;
}

void set_threads(benchmark::State& state) {
    at::set_num_threads(static_cast<int>(state.range(0)));
    state.counters["threads"] = static_cast<double>(state.range(0));
}

void BM_WsToPlanes(benchmark::State& state) {
    auto& f = fixture();
    set_threads(state);
    torch::NoGradGuard no_grad;
    for (auto _ : state)
        benchmark::DoNotOptimize(f.generator->synthesize_planes(f.ws));
}

void BM_RenderPlanes64(benchmark::State& state) {
    auto& f = fixture();
    set_threads(state);
    torch::NoGradGuard no_grad;
    for (auto _ : state)
        benchmark::DoNotOptimize(f.generator->render_planes(f.c, f.planes, 64, f.noise));
}

void BM_Superresolution512(benchmark::State& state) {
    auto& f = fixture();
    set_threads(state);
    torch::NoGradGuard no_grad;
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            f.generator->super_resolve(f.rendering.image, f.rendering.feature_image, f.ws));
    }
}

// Each step takes seconds: a fixed, small number of timed iterations keeps a run to minutes.
BENCHMARK(BM_WsToPlanes)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_RenderPlanes64)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Superresolution512)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
