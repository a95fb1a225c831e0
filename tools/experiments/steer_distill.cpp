// Experiment (not built by CMake; docs/training.md, session 19): can the driving path learn the
// steered motion code when it is given as a target? motion_encoder.cpp trained a copy of the
// encoder and `mlp` through the frozen decoders (render L1, flow points) and it learnt nothing;
// here the target is the code itself. Phase 1: for TARGET_BATCHES batches of the synthetic
// training world (half cross-identity), the model's reading of the driving image d0 is fitted to
// the true points (engines/dpe/motion_fit.h, the `both` render, FIT_STEPS steps, in the
// directions space so that a reader can produce it: d* = d0 + delta . Q^T). Phase 2: a trainable
// copy of the generator's encoder and `mlp` (image -> alpha; the basis stays the loaded one)
// learns |reader(D) - d*|^2 over those batches in turn for STEPS steps. Every EVAL_EVERY steps,
// on HELD_OUT batches with their own targets: crop PSNR of the `both` render against the
// rendered truth and the render's point error (grid units), for d0, the reader and d*, and the
// reader's code error |d - d*| against d0's, within a clip and across people.
//
// Build as tools/experiments/motion_code_oracle.cpp says. Run:
//   OMP_NUM_THREADS=1 build/steer_distill WEIGHTS TARGET_BATCHES HELD_OUT FIT_STEPS STEPS LR
//     EVAL_EVERY
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "engines/dpe/motion_fit.h"
#include "train/synthetic_clips.h"

namespace {

namespace dpe = avatar::engines::dpe;

torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
    return -10 * torch::log10(((a - b) / 2).pow(2).mean({1, 2, 3}));
}

struct Example {
    avatar::train::ClipPairs pairs;
    dpe::SourceCode code;
    torch::Tensor start, target;  // d0 and d*, [B, style_dim]
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr,
                     "usage: %s WEIGHTS TARGET_BATCHES HELD_OUT FIT_STEPS STEPS LR EVAL_EVERY\n",
                     argv[0]);
        return 2;
    }
    torch::set_num_threads(1);
    torch::manual_seed(1);
    const auto file = avatar::SafetensorsFile::open(argv[1]);
    auto g = dpe::load_dpe_generator(file);       // encodes the source and renders: frozen
    auto reader = dpe::load_dpe_generator(file);  // reads the driving image: learns
    const int target_batches = std::atoi(argv[2]), held_out_batches = std::atoi(argv[3]);
    const int fit_steps = std::atoi(argv[4]), steps = std::atoi(argv[5]);
    const double lr = std::atof(argv[6]);
    const int every = std::atoi(argv[7]);
    g->eval();
    reader->eval();
    for (auto& p : g->parameters())
        p.set_requires_grad(false);
    std::vector<torch::Tensor> trained;
    for (auto& p : reader->named_parameters()) {
        const bool learns = p.key().rfind("mlp.", 0) == 0 || p.key().rfind("enc.", 0) == 0;
        p.value().set_requires_grad(learns);
        if (learns)
            trained.push_back(p.value());
    }
    avatar::train::SyntheticClipOptions world;
    world.image_size = static_cast<int>(g->config().size);
    world.seed = 4242;  // not the training runs' world (seed 1)
    world.photo_textures = {"faceapi-demo"};
    avatar::train::SyntheticClipSampler sampler(world);
    const dpe::MotionFitOptions fit{fit_steps, 0.03, dpe::MotionFitSpace::kDirections};
    const auto example = [&](int64_t index) {
        Example e;
        e.pairs = sampler.mixed(index, 8, 0.5);
        torch::NoGradGuard no_grad;
        e.code = g->encode(e.pairs.source);
        e.start = g->motion(e.pairs.driving);
        e.target =
            dpe::fit_motion_to_points(g, e.code, e.start, dpe::Stage::kBoth, e.pairs.source_points,
                                      e.pairs.source_cycle_points, fit);
        return e;
    };
    std::vector<Example> train, held_out;
    for (int k = 0; k < held_out_batches; ++k)  // batch indices far from the trained ones
        held_out.push_back(example(400000 + k * 4 + 1));
    for (int b = 0; b < target_batches; ++b) {
        train.push_back(example(b * 4 + 1));
        if ((b + 1) % 10 == 0) {
            std::printf("targets: %d batches\n", b + 1);
            std::fflush(stdout);
        }
    }
    const auto read_motion = [&](const torch::Tensor& driving) {
        return g->directions(reader->alpha(reader->encoder()->forward(driving).first));
    };
    const auto evaluate = [&](int step) {
        torch::NoGradGuard no_grad;
        // [within, across] sums of: psnr d0, reader, d*; point error d0, reader, d*; code error
        // d0, reader.
        double sums[2][8] = {};
        int counts[2] = {0, 0};
        for (const auto& e : held_out) {
            const auto d = read_motion(e.pairs.driving);
            const torch::Tensor codes[3] = {e.start, d, e.target};
            for (int c = 0; c < 3; ++c) {
                std::map<std::string, torch::Tensor> traced;
                const auto out =
                    g->render(e.code, codes[c], dpe::Stage::kBoth, dpe::Trace(&traced, ""));
                const auto p = psnr(out, e.pairs.source_cycle);
                const auto err = dpe::render_point_error(
                    traced, dpe::Stage::kBoth, e.pairs.source_cycle_points, e.pairs.source_points);
                const auto code_err = (codes[c] - e.target).norm(2, 1);
                for (int64_t i = 0; i < p.size(0); ++i) {
                    const int w = e.pairs.same_identity[i].item<bool>() ? 0 : 1;
                    sums[w][c] += p[i].item<double>();
                    sums[w][3 + c] += err[i].item<double>();
                    if (c < 2)
                        sums[w][6 + c] += code_err[i].item<double>();
                    if (c == 0)
                        ++counts[w];
                }
            }
        }
        for (int w = 0; w < 2; ++w) {
            const double n = counts[w];
            std::printf(
                "step %d %s (n %d): psnr d0 %.3f reader %.3f d* %.3f | points d0 %.5f reader "
                "%.5f d* %.5f | |d-d*| d0 %.3f reader %.3f\n",
                step, w == 0 ? "within" : "across", counts[w], sums[w][0] / n, sums[w][1] / n,
                sums[w][2] / n, sums[w][3] / n, sums[w][4] / n, sums[w][5] / n, sums[w][6] / n,
                sums[w][7] / n);
        }
        std::fflush(stdout);
    };
    evaluate(0);
    torch::optim::Adam adam(trained, torch::optim::AdamOptions(lr).betas({0.9, 0.99}));
    double loss_sum = 0;
    for (int s = 1; s <= steps; ++s) {
        const auto& e = train[static_cast<size_t>(s - 1) % train.size()];
        adam.zero_grad();
        const auto loss = (read_motion(e.pairs.driving) - e.target).pow(2).sum(1).mean();
        loss.backward();
        adam.step();
        loss_sum += loss.item<double>();
        if (s % every == 0) {
            std::printf("step %d train |d-d*|^2 %.4f\n", s, loss_sum / every);
            loss_sum = 0;
            evaluate(s);
        }
    }
    return 0;
}
