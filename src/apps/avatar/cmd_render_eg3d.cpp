// avatar render-eg3d: a developer tool that renders one view of an EG3D tri-plane generator.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "media/image.h"
#include "nn/camera.h"
#include "nn/eg3d/triplane.h"

namespace avatar::cli {
namespace {

struct RenderEG3DOptions {
    std::string weights;
    std::string ws_file;
    int64_t seed = -1;
    double psi = 0.7;
    double yaw = 0.0, pitch = 0.0;
    int64_t resolution = 0;
    uint64_t noise_seed = 0;
    std::string output;
    std::string raw_output;
};

// ws from a safetensors file: the tensor "ws", or the file's only tensor; [num_ws, w] or
// [1, num_ws, w].
torch::Tensor read_ws(const std::string& path, int64_t num_ws, int64_t w_dim) {
    const auto file = SafetensorsFile::open(path);
    std::string name = "ws";
    if (!file.contains(name)) {
        check(file.tensors().size() == 1, path,
              "expected a tensor named 'ws' (or a single tensor)");
        name = file.tensors().front().name;
    }
    auto ws = file.get(name).to(torch::kFloat32);
    if (ws.dim() == 2)
        ws = ws.unsqueeze(0);
    check(ws.dim() == 3 && ws.size(0) == 1 && ws.size(1) == num_ws && ws.size(2) == w_dim, path,
          "tensor '" + name + "' has shape " + c10::str(ws.sizes()) + ", the generator needs [1, " +
              std::to_string(num_ws) + ", " + std::to_string(w_dim) + "]");
    return ws;
}

int run(const RenderEG3DOptions& o, const GlobalOptions& global) {
    check(!o.ws_file.empty() || o.seed >= 0, "--ws", "give a ws file (--ws) or a seed (--seed)");
    const auto start = std::chrono::steady_clock::now();
    auto generator = nn::eg3d::load_triplane_generator(SafetensorsFile::open(o.weights));
    const auto& config = generator->config();
    constexpr double kDegrees = M_PI / 180.0;
    const auto camera = nn::ffhq_camera(o.yaw * kDegrees, o.pitch * kDegrees);
    torch::NoGradGuard no_grad;
    torch::Tensor ws;
    if (!o.ws_file.empty()) {
        ws = read_ws(o.ws_file, generator->num_ws(), config.backbone.w_dim);
    } else {
        // The latent of a seed, conditioned on the frontal camera as EG3D's generation scripts do.
        auto rng = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(o.seed));
        const auto z = torch::randn({1, config.backbone.z_dim}, rng);
        ws = generator->mapping(z, nn::ffhq_camera(), o.psi);
    }
    const int64_t resolution = o.resolution > 0 ? o.resolution : config.neural_rendering_resolution;
    auto rng = at::make_generator<at::CPUGeneratorImpl>(o.noise_seed);
    const auto noise =
        nn::eg3d::RenderNoise::draw(1, resolution * resolution, config.rendering, rng);
    const auto out = generator->synthesize(ws, camera, noise, resolution);
    media::write_image(o.output, media::to_uint8_hwc(out.image.clamp(-1, 1)));
    if (!o.raw_output.empty()) {
        media::write_image(o.raw_output, media::to_uint8_hwc(out.rendering.image.clamp(-1, 1)));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (global.json) {
        print_json({{"output", o.output},
                    {"size", {out.image.size(3), out.image.size(2)}},
                    {"neural_rendering_resolution", resolution},
                    {"seconds", seconds}});
    } else {
        std::printf(
            "%s: %lldx%lld from a %lld^2 neural rendering, yaw %.1f, pitch %.1f degrees, "
            "%.1f s\n",
            o.output.c_str(), static_cast<long long>(out.image.size(3)),
            static_cast<long long>(out.image.size(2)), static_cast<long long>(resolution), o.yaw,
            o.pitch, seconds);
    }
    return 0;
}

}  // namespace

void add_render_eg3d_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto o = std::make_shared<RenderEG3DOptions>();
    auto* cmd = app.add_subcommand(
        "render-eg3d",
        "Developer tool: render one view of an EG3D tri-plane generator (e.g. a converted "
        "ffhqrebalanced512-64 or OTAvatar net_G_ema) from a latent, through tri-planes, volume "
        "rendering and super-resolution, to a PNG/JPEG.");
    cmd->add_option("--weights", o->weights, "EG3D generator weights (.safetensors)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--ws", o->ws_file,
                    "Latent: a .safetensors holding 'ws' [1, num_ws, w_dim] (or one tensor)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--seed", o->seed, "Or: map the z of this seed (frontal camera conditioning)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--psi", o->psi, "Truncation for --seed")->capture_default_str();
    cmd->add_option(
           "--yaw", o->yaw,
           "Camera yaw in degrees: rotation about the vertical axis away from the frontal view")
        ->capture_default_str();
    cmd->add_option("--pitch", o->pitch, "Camera pitch in degrees")->capture_default_str();
    cmd->add_option("--resolution", o->resolution,
                    "Neural rendering resolution (default: the model's, 64 for OTAvatar)");
    cmd->add_option("--noise-seed", o->noise_seed,
                    "Seed of the renderer's depth jitter and importance sampling")
        ->capture_default_str();
    cmd->add_option("--raw", o->raw_output, "Also write the low-resolution neural rendering");
    cmd->add_option("-o,--output", o->output, "Image to write (.png or .jpg)")->required();
    commands.push_back({cmd, [o, &global] { return run(*o, global); }});
}

}  // namespace avatar::cli
