// Closing the loop (issue #8): the project's own tracker (BlazeFace + FaceMesh) and face-model
// fitter, run on rendered frames, recover the coefficients the frames were rendered from.
// Needs the pinned npm face models; skips cleanly without them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "face/face_fit.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "face/model_files.h"
#include "face/tracker.h"
#include "synth/head.h"
#include "synth/motion_generator.h"

namespace avatar::synth {
namespace {

bool have_models() {
    return testing::have_mediapipe_package() &&
           std::filesystem::exists(face::human_model_file("facemesh.json")) &&
           std::filesystem::exists(face::human_model_file("blazeface.json"));
}

TEST(ClosingTheLoop, TrackerAndFitterRecoverPoseAndExpression) {
    if (!have_models())
        GTEST_SKIP() << "the pinned face models are not installed under "
                     << face::npm_packages_dir();
    const int64_t D = face::face_layout_size();
    const auto& model = face::face_model();
    const int64_t K = model.identity_count(), E = model.expression_count();
    MotionOptions motion;
    motion.max_yaw_deg = 30.0;
    motion.max_pitch_deg = 15.0;
    motion.large_turn_interval = 2.0;
    double worst_angle = 0, sum_angle = 0, sum_expression = 0, sum_jaw = 0;
    std::vector<double> mode_error(static_cast<size_t>(E), 0.0);
    int n_angle = 0, n_expression = 0;
    for (uint64_t seed : {1u, 2u, 3u}) {
        const auto rows = generate_motion(seed, 16 * 6, motion);
        HeadRenderer head(random_appearance(seed), HeadRenderOptions{});
        face::TrackerOptions options;
        options.smooth = false;
        options.iris = false;
        options.landmarks68 = false;
        face::FaceTracker tracker(options);
        std::vector<torch::Tensor> meshes;
        std::vector<int64_t> used;
        RenderOutput out;
        for (int64_t f = 0; f < 16 * 6; f += 6) {
            const float* row = &rows[static_cast<size_t>(f * D)];
            head.render(row, out);
            const auto frame =
                (torch::from_blob(out.rgb.data(), {out.height, out.width, 3}, torch::kFloat32) *
                 255.0f)
                    .round()
                    .clamp(0, 255)
                    .to(torch::kUInt8);
            const auto tracked = tracker.track(frame, static_cast<double>(f) / 25.0);
            if (!tracked.found)
                continue;
            meshes.push_back(tracked.mesh468);
            used.push_back(f);
        }
        ASSERT_GE(used.size(), 14u) << "the tracker lost the synthetic face (seed " << seed << ")";
        const auto fit = face::fit_face_mesh468(torch::stack(meshes));
        for (size_t i = 0; i < used.size(); ++i) {
            const float* row = &rows[static_cast<size_t>(used[i] * D)];
            for (int a = 0; a < 3; ++a) {
                const double err =
                    std::abs(fit.pose[static_cast<int64_t>(i)][a].item<double>() - row[a]) * 180.0 /
                    M_PI;
                worst_angle = std::max(worst_angle, err);
                sum_angle += err;
                ++n_angle;
            }
            for (int64_t e = 0; e < E; ++e) {
                const double err = std::abs(
                    fit.expression[static_cast<int64_t>(i)][e].item<double>() - row[7 + K + e]);
                sum_expression += err;
                mode_error[static_cast<size_t>(e)] += err;
                ++n_expression;
            }
            sum_jaw +=
                std::abs(fit.expression[static_cast<int64_t>(i)][0].item<double>() - row[7 + K]);
        }
    }
    const double mean_angle = sum_angle / n_angle;
    const double mean_expression = sum_expression / n_expression;
    std::printf(
        "closing the loop: angle error mean %.2f deg, max %.2f deg; expression mean abs "
        "error %.3f; jaw_open mean abs error %.3f\n",
        mean_angle, worst_angle, mean_expression, sum_jaw / (n_angle / 3));
    // Measured (3 identities x 16 frames, yaw up to 30 deg, pitch up to 15): angle error mean
    // 1.3 deg, max 5.0; jaw_open mean abs error 0.06, blinks 0.05. The other modes carry
    // systematic offsets between what FaceMesh sees on the renders and the model's neutral
    // (eye_wide about 0.9, mouth_close 0.8, brow_inner_up 0.75, lower_lip_down 0.5), hence the
    // loose bound on the mean over all modes (measured 0.29).
    const auto mae = [&](const char* name) {
        const auto it =
            std::find(model.expression_names.begin(), model.expression_names.end(), name);
        return mode_error[static_cast<size_t>(it - model.expression_names.begin())] / (n_angle / 3);
    };
    EXPECT_LT(mean_angle, 2.5);
    EXPECT_LT(worst_angle, 8.0);
    EXPECT_LT(mae("jaw_open"), 0.12);
    EXPECT_LT(mae("blink_left"), 0.12);
    EXPECT_LT(mae("blink_right"), 0.12);
    EXPECT_LT(mean_expression, 0.35);
}

}  // namespace
}  // namespace avatar::synth
