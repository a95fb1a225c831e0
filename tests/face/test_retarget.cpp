// Retargeting (face/retarget.h): relative motion leaves the source unchanged at the reference
// frame and adds the driving changes, strength scales them, regions keep the rest the source's,
// absolute motion copies the driving values, renormalisation maps statistics, frames without a
// face are harmless.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "face/face_model.h"
#include "face/retarget.h"
#include "face_fixtures.h"

namespace avatar::face {
namespace {

constexpr double kDeg = M_PI / 180;

FaceCoefficients random_motion(int64_t n, uint64_t seed) {
    const auto& m = face_model();
    auto gen = at::detail::createCPUGenerator(seed);
    const auto u = [&](double lo, double hi, int64_t k) {
        return lo + (hi - lo) * torch::rand({n, k}, gen, torch::kFloat64);
    };
    FaceCoefficients c;
    c.pose = torch::cat({u(-20 * kDeg, 20 * kDeg, 3), u(100, 200, 2), u(-2, 2, 1), u(5, 9, 1)}, 1);
    c.identity = u(-0.5, 0.5, m.identity_count());
    c.expression = u(0.1, 0.6, m.expression_count());
    c.gaze = u(-10 * kDeg, 10 * kDeg, 4);
    return c;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>();
}

int64_t mode(const std::string& name) {
    const auto& names = face_model().expression_names;
    return std::find(names.begin(), names.end(), name) - names.begin();
}

TEST(Retarget, RelativeMotionStartsAtTheSource) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto source = random_motion(1, 1);
    const auto driving = random_motion(6, 2);
    const auto out = retarget_motion(source, driving);
    ASSERT_EQ(out.pose.sizes(), (std::vector<int64_t>{6, 7}));
    // At the reference frame nothing changes.
    EXPECT_LT(max_diff(out.pose[0], source.pose[0]), 1e-9);
    EXPECT_LT(max_diff(out.expression[0], source.expression[0]), 1e-12);
    EXPECT_LT(max_diff(out.gaze[0], source.gaze[0]), 1e-12);
    EXPECT_LT(max_diff(out.identity[3], source.identity[0]), 0.0 + 1e-15);
    // Expression and gaze: source + driving change.
    const auto expected =
        (source.expression + driving.expression - driving.expression[0]).clamp(0, 1);
    EXPECT_LT(max_diff(out.expression, expected), 1e-12);
    // Rotation: the driving rotation change applied to the source rotation.
    const auto r_src = euler_rad_to_rotation(source.pose.narrow(1, 0, 3))[0];
    const auto r_drv = euler_rad_to_rotation(driving.pose.narrow(1, 0, 3));
    const auto r_out = euler_rad_to_rotation(out.pose.narrow(1, 0, 3));
    for (int64_t t = 0; t < 6; ++t)
        EXPECT_LT(max_diff(r_out[t], r_drv[t].matmul(r_drv[0].t()).matmul(r_src)), 1e-9) << t;
    // Scale follows the driving ratio; translation the driving shift in source pixels.
    const auto ratio = driving.pose.select(1, 6) / driving.pose[0][6];
    EXPECT_LT(max_diff(out.pose.select(1, 6), source.pose[0][6] * ratio), 1e-9);
    const auto shift = (driving.pose.narrow(1, 3, 3) - driving.pose[0].narrow(0, 3, 3)) *
                       (source.pose[0][6] / driving.pose[0][6]);
    EXPECT_LT(max_diff(out.pose.narrow(1, 3, 3), source.pose[0].narrow(0, 3, 3) + shift), 1e-9);
}

TEST(Retarget, SelfRetargetingReproducesTheDriving) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto driving = random_motion(5, 3);
    FaceCoefficients first{driving.pose.narrow(0, 0, 1), driving.identity.narrow(0, 0, 1),
                           driving.expression.narrow(0, 0, 1), driving.gaze.narrow(0, 0, 1)};
    for (bool relative : {true, false}) {
        RetargetOptions options;
        options.relative = relative;
        const auto out = retarget_motion(first, driving, options);
        EXPECT_LT(max_diff(out.expression, driving.expression), 1e-12) << relative;
        EXPECT_LT(max_diff(euler_rad_to_rotation(out.pose.narrow(1, 0, 3)),
                           euler_rad_to_rotation(driving.pose.narrow(1, 0, 3))),
                  1e-9)
            << relative;
        EXPECT_LT(max_diff(out.gaze, driving.gaze), 1e-12) << relative;
        if (relative) {
            EXPECT_LT(max_diff(out.pose, driving.pose), 1e-9);
        }
    }
}

TEST(Retarget, StrengthScalesTheChange) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto source = random_motion(1, 4);
    auto driving = random_motion(2, 5);
    // Frame 1: a pure 10 degree yaw change and a small expression change.
    driving.pose[1] = driving.pose[0];
    driving.pose[1][1] += 10 * kDeg;
    driving.expression[1] = driving.expression[0] + 0.05;
    RetargetOptions options;
    options.strength = 0;
    auto out = retarget_motion(source, driving, options);
    EXPECT_LT(max_diff(out.expression[1], source.expression[0]), 1e-12);
    EXPECT_LT(max_diff(out.pose[1], source.pose[0]), 1e-9);
    options.strength = 2;
    out = retarget_motion(source, driving, options);
    EXPECT_LT(max_diff(out.expression[1], (source.expression[0] + 0.1).clamp(0, 1)), 1e-12);
    // The rotation between output and source is 20 degrees.
    const auto r_src = euler_rad_to_rotation(source.pose.narrow(1, 0, 3))[0];
    const auto r_out = euler_rad_to_rotation(out.pose.narrow(1, 0, 3))[1];
    const double angle = std::acos((r_out.matmul(r_src.t()).trace().item<double>() - 1) / 2) / kDeg;
    EXPECT_NEAR(angle, 20.0, 1e-6);
    options.strength = -1;
    EXPECT_THROW(retarget_motion(source, driving, options), Error);
}

TEST(Retarget, RegionsKeepTheRestTheSources) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto source = random_motion(1, 6);
    const auto driving = random_motion(4, 7);
    RetargetOptions options;
    options.relative = false;
    options.regions = parse_motion_regions("eyes");
    auto out = retarget_motion(source, driving, options);
    for (const char* name : {"blink_left", "eye_wide_right"})
        EXPECT_LT(max_diff(out.expression.select(1, mode(name)),
                           driving.expression.select(1, mode(name))),
                  1e-12)
            << name;
    for (const char* name : {"jaw_open", "smile_left", "brow_inner_up"})
        EXPECT_LT(max_diff(out.expression.select(1, mode(name)),
                           source.expression[0][mode(name)].expand({4})),
                  1e-12)
            << name;
    EXPECT_LT(max_diff(out.gaze, driving.gaze), 1e-12);
    EXPECT_LT(max_diff(out.pose, source.pose.expand({4, 7})), 1e-12);

    options.regions = parse_motion_regions("pose,mouth");
    out = retarget_motion(source, driving, options);
    EXPECT_LT(max_diff(out.expression.select(1, mode("jaw_open")),
                       driving.expression.select(1, mode("jaw_open"))),
              1e-12);
    EXPECT_LT(max_diff(out.expression.select(1, mode("blink_left")),
                       source.expression[0][mode("blink_left")].expand({4})),
              1e-12);
    EXPECT_LT(max_diff(out.gaze, source.gaze.expand({4, 4})), 1e-12);
    EXPECT_LT(max_diff(out.pose.narrow(1, 0, 3), driving.pose.narrow(1, 0, 3)), 1e-9);
    EXPECT_EQ(parse_motion_regions("lips"), parse_motion_regions("mouth"));
    EXPECT_EQ(parse_motion_regions("all"), static_cast<unsigned>(kRegionAll));
    EXPECT_THROW(parse_motion_regions("nose"), Error);
}

TEST(Retarget, RenormalisationMapsTheDrivingStatistics) {
    SKIP_WITHOUT_MEDIAPIPE();
    const int64_t t = 200;
    const auto source = random_motion(t, 8);
    auto driving = random_motion(t, 9);
    // A driver who uses only a third of the range, around another mean.
    driving.expression = 0.1 + driving.expression / 3;
    RetargetOptions options;
    options.relative = false;
    options.renormalise = true;
    const auto out = retarget_motion(source, driving, options);
    EXPECT_LT(max_diff(out.expression.mean(0), source.expression.mean(0)), 1e-9);
    EXPECT_LT(max_diff(out.expression.std(0), source.expression.std(0)), 1e-9);
    // A still source has no statistics.
    FaceCoefficients still{source.pose.narrow(0, 0, 1), source.identity.narrow(0, 0, 1),
                           source.expression.narrow(0, 0, 1), source.gaze.narrow(0, 0, 1)};
    EXPECT_THROW(retarget_motion(still, driving, options), Error);
}

TEST(Retarget, FramesWithoutAFace) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto source = random_motion(1, 10);
    auto driving = random_motion(3, 11);
    driving.pose[1].fill_(NAN);
    driving.expression[1].fill_(NAN);
    driving.gaze[1].fill_(NAN);
    const auto out = retarget_motion(source, driving);
    EXPECT_LT(max_diff(out.pose[1], source.pose[0]), 1e-9);
    EXPECT_LT(max_diff(out.expression[1], source.expression[0]), 1e-12);
    EXPECT_TRUE(out.pose.isfinite().all().item<bool>());
    RetargetOptions options;
    options.reference_frame = 1;
    EXPECT_THROW(retarget_motion(source, driving, options), Error);
    options.reference_frame = 3;
    EXPECT_THROW(retarget_motion(source, driving, options), Error);
}

}  // namespace
}  // namespace avatar::face
