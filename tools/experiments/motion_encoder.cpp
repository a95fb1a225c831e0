// Experiment (not built by CMake; docs/training.md, session 18): does a trainable encoder of the
// driving image, beside frozen decoders and a frozen source encoder, render more of the motion
// than a better read-out of the frozen code (motion_readout.cpp)? A second copy of the
// generator's encoder and `mlp` (image -> code -> alpha) reads the driving image; the copy
// learns, the generator that encodes the source and renders (its basis, mlp_pose, mlp_exp and
// decoders) stays as loaded. Loss: the L1 of the `both` render against its rendered truth at
// half cross-identity pairs of the synthetic training world, as motion_readout.cpp; prints the
// held-out crop PSNR (within a clip and across people) every EVAL_EVERY steps. TRAIN_ENCODER 0
// trains only the copy's `mlp` (the control; motion_readout.cpp also trains mlp_pose and mlp_exp).
// LOSS `l1` is that L1; `points` is the trainer's flow phase instead (engines/dpe/flow_terms.h):
// the flow-point loss of the self-reconstructions and the first edits S' = e(S, D), D' = p(D, S)
// (weight 10) plus the L1 of S' and D' against their rendered truth (weight 5), as the shipped
// model's recipe weighs them.
//
// Build as tools/experiments/motion_code_oracle.cpp says. Run:
//   OMP_NUM_THREADS=1 build/motion_encoder WEIGHTS STEPS LR EVAL_EVERY TRAIN_ENCODER LOSS
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "engines/dpe/flow_terms.h"
#include "engines/dpe/generator.h"
#include "train/synthetic_clips.h"

namespace {

namespace dpe = avatar::engines::dpe;

torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
    return -10 * torch::log10(((a - b) / 2).pow(2).mean({1, 2, 3}));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7 || (std::string(argv[6]) != "l1" && std::string(argv[6]) != "points")) {
        std::fprintf(stderr, "usage: %s WEIGHTS STEPS LR EVAL_EVERY TRAIN_ENCODER l1|points\n",
                     argv[0]);
        return 2;
    }
    torch::set_num_threads(1);
    torch::manual_seed(1);
    const auto file = avatar::SafetensorsFile::open(argv[1]);
    auto g = dpe::load_dpe_generator(file);       // encodes the source and renders: frozen
    auto reader = dpe::load_dpe_generator(file);  // reads the driving image: learns
    const int steps = std::atoi(argv[2]), every = std::atoi(argv[4]);
    const double lr = std::atof(argv[3]);
    const bool train_encoder = std::atoi(argv[5]) != 0;
    const bool point_loss = std::string(argv[6]) == "points";
    g->eval();
    reader->eval();  // the direction basis stays as loaded
    for (auto& p : g->parameters())
        p.set_requires_grad(false);
    std::vector<torch::Tensor> trained;
    for (auto& p : reader->named_parameters()) {
        const bool learns =
            p.key().rfind("mlp.", 0) == 0 || (train_encoder && p.key().rfind("enc.", 0) == 0);
        p.value().set_requires_grad(learns);
        if (learns)
            trained.push_back(p.value());
    }
    std::printf("trained tensors: %zu\n", trained.size());
    avatar::train::SyntheticClipOptions world;
    world.image_size = static_cast<int>(g->config().size);
    world.seed = 4242;  // not the training runs' world (seed 1)
    world.photo_textures = {"faceapi-demo"};
    avatar::train::SyntheticClipSampler sampler(world);
    std::vector<avatar::train::ClipPairs> held_out;  // batch indices far from the trained ones
    for (int k = 0; k < 8; ++k)
        held_out.push_back(sampler.mixed(400000 + k * 4 + 1, 8, 0.5));
    const auto read_motion = [&](const torch::Tensor& driving) {
        return g->directions(reader->alpha(reader->encoder()->forward(driving).first));
    };
    const auto evaluate = [&](int step) {
        torch::NoGradGuard no_grad;
        double within = 0, across = 0;
        int n_within = 0, n_across = 0;
        for (const auto& h : held_out) {
            const auto code = g->encode(h.source);
            const auto scores =
                psnr(g->render(code, read_motion(h.driving), dpe::Stage::kBoth), h.source_cycle);
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
        dpe::SourceCode code, driving_code;
        {
            torch::NoGradGuard no_grad;
            code = g->encode(b.source);
            if (point_loss)
                driving_code = g->encode(b.driving);
        }
        adam.zero_grad();
        torch::Tensor loss;
        if (point_loss) {
            std::map<std::string, torch::Tensor> traced;
            const auto render = [&](const dpe::SourceCode& c, const torch::Tensor& d,
                                    dpe::Stage stage, dpe::Render r) {
                return g->render(c, d, stage, dpe::Trace(&traced, dpe::trace_prefix(r)));
            };
            const auto dS = read_motion(b.source), dD = read_motion(b.driving);
            render(code, dS, dpe::Stage::kExpression, dpe::Render::kSelfExp);
            render(code, dS, dpe::Stage::kPose, dpe::Render::kSelfPose);
            const auto S1 = render(code, dD, dpe::Stage::kExpression, dpe::Render::kS1);
            const auto D1 = render(driving_code, dS, dpe::Stage::kPose, dpe::Render::kD1);
            const auto edit_l1 =
                0.5 * ((S1 - b.source_edit).abs().mean() + (D1 - b.driving_edit).abs().mean());
            loss = 10 * dpe::flow_point_loss(traced, b, dpe::FlowTerms::kFirstEdits) + 10 * edit_l1;
        } else {
            const auto out = g->render(code, read_motion(b.driving), dpe::Stage::kBoth);
            loss = (out - b.source_cycle).abs().mean();
        }
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
