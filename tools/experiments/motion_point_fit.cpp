// Experiment (not built by CMake; docs/training.md, session 18): how much does a frozen DPE
// generator gain when its motion code is fitted, per pair, to where the face's points must go,
// instead of to the truth image (motion_code_oracle.cpp)? The direction vector d (what both
// decoders get) starts at the model's reading of the driving image and is refined by the
// engine's fit_motion_to_points (engines/dpe/motion_fit.h: STEPS Adam steps on the flow-point
// error of the `both` render, in SPACE `latent` or `directions`). No image is compared. The points
// are the synthetic world's true ones (the best case; `avatar benchmark synthbench --methods
// dpe-fitted` fits to points read from the images). Printed per pair: PSNR over the crop and
// over the face (its central 1/1.7) of the unchanged source, the model and the fitted render
// against the rendered truth; render_point_error before and after (grid units).
//
// Build as tools/experiments/motion_code_oracle.cpp says. Run:
//   OMP_NUM_THREADS=1 build/motion_point_fit WEIGHTS BATCHES BATCH STEPS LR CROSS_FRACTION SPACE
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>

#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "engines/dpe/motion_fit.h"
#include "train/synthetic_clips.h"

namespace {

namespace dpe = avatar::engines::dpe;

torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
    return -10 * torch::log10(((a - b) / 2).pow(2).mean({1, 2, 3}));
}
// The same over the face: the central 1/1.7 of the crop (the crop is 1.7 faces wide).
torch::Tensor face_psnr(const torch::Tensor& a, const torch::Tensor& b) {
    const int64_t size = a.size(3), face = static_cast<int64_t>(size / 1.7 + 0.5),
                  start = (size - face) / 2;
    return psnr(a.narrow(2, start, face).narrow(3, start, face),
                b.narrow(2, start, face).narrow(3, start, face));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s WEIGHTS BATCHES BATCH STEPS LR CROSS_FRACTION SPACE\n",
                     argv[0]);
        return 2;
    }
    torch::set_num_threads(1);
    const int batches = std::atoi(argv[2]), batch = std::atoi(argv[3]), steps = std::atoi(argv[4]);
    const double lr = std::atof(argv[5]), cross = std::atof(argv[6]);
    const dpe::MotionFitOptions fit_options{steps, lr, dpe::parse_motion_fit_space(argv[7])};
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
        "pair,same,motion_px,copy_psnr,model_psnr,fit_psnr,model_err,fit_err,copy_face,model_face,"
        "fit_face\n");
    for (int b = 0; b < batches; ++b) {
        const auto pairs = sampler.mixed(b * 4 + 1, batch, cross);  // as motion_code_oracle
        const auto& truth = pairs.source_cycle;
        const auto& target = pairs.source_cycle_points;
        const auto& source = pairs.source_points;
        const auto motion_px = (target - source).norm(2, 2).mean(1) * (world.image_size / 2.0);
        const auto render_scored = [&](const dpe::SourceCode& code, const torch::Tensor& d) {
            std::map<std::string, torch::Tensor> traced;
            const auto render = g->render(code, d, dpe::Stage::kBoth, dpe::Trace(&traced, ""));
            return std::make_tuple(
                psnr(render, truth), face_psnr(render, truth),
                dpe::render_point_error(traced, dpe::Stage::kBoth, target, source));
        };
        torch::NoGradGuard no_grad;
        const auto code = g->encode(pairs.source);
        const auto d = g->motion(pairs.driving);
        const auto [model, model_face, model_err] = render_scored(code, d);
        const auto fitted =
            dpe::fit_motion_to_points(g, code, d, dpe::Stage::kBoth, source, target, fit_options);
        const auto [fit, fit_face, fit_err] = render_scored(code, fitted);
        const auto copy = psnr(pairs.source, truth), copy_face = face_psnr(pairs.source, truth);
        for (int i = 0; i < batch; ++i)
            std::printf("%d,%d,%.3f,%.3f,%.3f,%.3f,%.5f,%.5f,%.3f,%.3f,%.3f\n", b * batch + i,
                        static_cast<int>(pairs.same_identity[i].item<bool>()),
                        motion_px[i].item<double>(), copy[i].item<double>(),
                        model[i].item<double>(), fit[i].item<double>(), model_err[i].item<double>(),
                        fit_err[i].item<double>(), copy_face[i].item<double>(),
                        model_face[i].item<double>(), fit_face[i].item<double>());
        std::fflush(stdout);
    }
    return 0;
}
