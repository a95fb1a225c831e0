// Experiment (not built by CMake; docs/training.md, session 17): how much of the motion a better
// read-out of a frozen DPE encoder's code can render. Trains only the linear maps between the
// driving image's code and the latent (mlp, mlp_pose, mlp_exp; the direction basis stays),
// encoder and decoders frozen, on the L1 of the `both` render against its rendered truth, at
// half cross-identity pairs of the synthetic training world; prints the held-out crop PSNR
// (within a clip and across people) every EVAL_EVERY steps.
//
// Build as tools/experiments/motion_code_oracle.cpp says. Run:
//   OMP_NUM_THREADS=1 build/motion_readout WEIGHTS STEPS LR EVAL_EVERY
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "train/synthetic_clips.h"

namespace {

namespace dpe = avatar::engines::dpe;

torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
    return -10 * torch::log10(((a - b) / 2).pow(2).mean({1, 2, 3}));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s WEIGHTS STEPS LR EVAL_EVERY\n", argv[0]);
        return 2;
    }
    torch::set_num_threads(1);
    torch::manual_seed(1);
    auto g = dpe::load_dpe_generator(avatar::SafetensorsFile::open(argv[1]));
    const int steps = std::atoi(argv[2]), every = std::atoi(argv[4]);
    const double lr = std::atof(argv[3]);
    g->eval();  // the direction basis stays as loaded
    std::vector<torch::Tensor> trained;
    for (auto& p : g->named_parameters()) {
        const bool motion_map = p.key().rfind("mlp", 0) == 0;  // mlp., mlp_pose., mlp_exp.
        p.value().set_requires_grad(motion_map);
        if (motion_map)
            trained.push_back(p.value());
    }
    avatar::train::SyntheticClipOptions world;
    world.image_size = static_cast<int>(g->config().size);
    world.seed = 4242;  // not the training runs' world (seed 1)
    world.photo_textures = {"faceapi-demo"};
    avatar::train::SyntheticClipSampler sampler(world);
    std::vector<avatar::train::ClipPairs> held_out;  // batch indices far from the trained ones
    for (int k = 0; k < 8; ++k)
        held_out.push_back(sampler.mixed(400000 + k * 4 + 1, 8, 0.5));
    const auto evaluate = [&](int step) {
        torch::NoGradGuard no_grad;
        double within = 0, across = 0;
        int n_within = 0, n_across = 0;
        for (const auto& h : held_out) {
            const auto code = g->encode(h.source);
            const auto scores =
                psnr(g->render(code, g->motion(h.driving), dpe::Stage::kBoth), h.source_cycle);
            for (int64_t i = 0; i < scores.size(0); ++i) {
                const bool same = h.same_identity[i].item<bool>();
                (same ? within : across) += scores[i].item<double>();
                ++(same ? n_within : n_across);
            }
        }
        std::printf("step %d held-out crop PSNR: within %.3f (n %d), across %.3f (n %d)\n", step,
                    within / n_within, n_within, across / n_across, n_across);
        std::fflush(stdout);
    };
    evaluate(0);
    torch::optim::Adam adam(trained, torch::optim::AdamOptions(lr).betas({0.9, 0.99}));
    double loss_sum = 0;
    for (int s = 1; s <= steps; ++s) {
        const auto b = sampler.mixed(s * 4 + 1, 8, 0.5);
        dpe::SourceCode code;
        torch::Tensor driving_code;
        {
            torch::NoGradGuard no_grad;
            code = g->encode(b.source);
            driving_code = g->encoder()->forward(b.driving).first;
        }
        adam.zero_grad();
        const auto out = g->render(code, g->directions(g->alpha(driving_code)), dpe::Stage::kBoth);
        const auto loss = (out - b.source_cycle).abs().mean();
        loss.backward();
        adam.step();
        loss_sum += loss.item<double>();
        if (s % every == 0) {
            std::printf("step %d train L1 %.4f\n", s, loss_sum / every);
            loss_sum = 0;
            evaluate(s);
        }
    }
    return 0;
}
