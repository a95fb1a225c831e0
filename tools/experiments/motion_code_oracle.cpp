// Experiment (not built by CMake; docs/training.md, session 17): can a frozen DPE generator
// render a driving frame's motion when its motion code is optimised against the truth instead
// of read from the driving image? Per pair of the synthetic training world, the `both` render of
// the source S against its rendered truth (S's person with D's pose and expression, S's crop),
// PSNR over the crop, for: the unchanged source, the model as it is, alpha (the motion_dim
// numbers) optimised, and the direction vector d (style_dim numbers, fed to both decoders)
// optimised. One CSV row per pair on stdout.
//
// Build from a configured build folder (its libavatar.a), e.g.
//   c++ -O2 -std=c++17 -I src -I build/generated -isystem /usr/include/torch/csrc/api/include
//     -isystem /usr/include/opencv4 tools/experiments/motion_code_oracle.cpp
//     -o build/motion_code_oracle build/libavatar.a <the avatar target's link libraries>
// (one command)
// (the link line is the avatar target's in build/build.ninja). Run:
//   OMP_NUM_THREADS=1 build/motion_code_oracle WEIGHTS BATCHES BATCH STEPS CROSS_FRACTION ALPHA
// ALPHA 0 skips the alpha optimisation (its column is then 0).
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "train/synthetic_clips.h"

namespace {

namespace dpe = avatar::engines::dpe;

// Per pair, over [-1, 1] images.
torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
    return -10 * torch::log10(((a - b) / 2).pow(2).mean({1, 2, 3}));
}
torch::Tensor l1(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().mean({1, 2, 3});
}

// Adam on `code` (one row per pair: the pairs' losses are summed, so each row follows its own
// pair's gradient) to fit the render of `render_with(code)` to `truth`.
template <typename Render>
void fit(torch::Tensor& code, const torch::Tensor& truth, int steps, Render render_with) {
    code.set_requires_grad(true);
    torch::optim::Adam adam({code}, torch::optim::AdamOptions(0.03));
    for (int s = 0; s < steps; ++s) {
        adam.zero_grad();
        l1(render_with(code), truth).sum().backward();
        adam.step();
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s WEIGHTS BATCHES BATCH STEPS CROSS_FRACTION ALPHA\n",
                     argv[0]);
        return 2;
    }
    torch::set_num_threads(1);
    const int batches = std::atoi(argv[2]), batch = std::atoi(argv[3]), steps = std::atoi(argv[4]);
    const double cross = std::atof(argv[5]);
    const bool optimise_alpha = std::atoi(argv[6]) != 0;
    auto g = dpe::load_dpe_generator(avatar::SafetensorsFile::open(argv[1]));
    g->eval();
    for (auto& p : g->parameters())
        p.set_requires_grad(false);
    avatar::train::SyntheticClipOptions world;
    world.image_size = static_cast<int>(g->config().size);
    world.seed = 4242;  // not the training runs' world (seed 1)
    world.photo_textures = {"faceapi-demo"};
    avatar::train::SyntheticClipSampler sampler(world);
    std::printf(
        "pair,same,motion_px,copy_psnr,recon_psnr,model_psnr,alpha_psnr,latent_psnr,"
        "alpha_shift,model_alpha_norm\n");
    for (int b = 0; b < batches; ++b) {
        // Batches index / clip_reuse alike show the same people: step by clip_reuse.
        const auto pairs = sampler.mixed(b * 4 + 1, batch, cross);
        const auto& truth = pairs.source_cycle;  // D itself within a clip
        const auto motion_px =
            (pairs.source_cycle_points - pairs.source_points).norm(2, 2).mean(1) *
            (world.image_size / 2.0);
        dpe::SourceCode code;
        torch::Tensor alpha0, recon, model;
        {
            torch::NoGradGuard no_grad;
            code = g->encode(pairs.source);
            recon = psnr(g->render(code, g->motion(pairs.source), dpe::Stage::kBoth), pairs.source);
            alpha0 = g->alpha(g->encoder()->forward(pairs.driving).first);
            model = psnr(g->render(code, g->directions(alpha0), dpe::Stage::kBoth), truth);
        }
        auto alpha = alpha0.clone();
        auto alpha_psnr = torch::zeros_like(model);
        if (optimise_alpha) {
            fit(alpha, truth, steps, [&](const torch::Tensor& a) {
                return g->render(code, g->directions(a), dpe::Stage::kBoth);
            });
            torch::NoGradGuard no_grad;
            alpha_psnr = psnr(g->render(code, g->directions(alpha), dpe::Stage::kBoth), truth);
        }
        torch::Tensor d;
        {
            torch::NoGradGuard no_grad;
            d = g->directions(alpha0).clone();
        }
        fit(d, truth, steps,
            [&](const torch::Tensor& x) { return g->render(code, x, dpe::Stage::kBoth); });
        torch::NoGradGuard no_grad;
        const auto latent_psnr = psnr(g->render(code, d, dpe::Stage::kBoth), truth);
        const auto shift = (alpha - alpha0).norm(2, 1), norm = alpha0.norm(2, 1);
        const auto copy = psnr(pairs.source, truth);
        for (int i = 0; i < batch; ++i)
            std::printf("%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", b * batch + i,
                        static_cast<int>(pairs.same_identity[i].item<bool>()),
                        motion_px[i].item<double>(), copy[i].item<double>(),
                        recon[i].item<double>(), model[i].item<double>(),
                        alpha_psnr[i].item<double>(), latent_psnr[i].item<double>(),
                        shift[i].item<double>(), norm[i].item<double>());
        std::fflush(stdout);
    }
    return 0;
}
