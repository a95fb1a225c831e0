// Landmark steering of DPE's motion (pipeline/motion_steering.h): where the driving face's motion
// puts the source's points (relative motion starts at the source, absolute takes the driver's
// rotation and keeps the source's place, the stage's regions decide what moves), and that
// steering a generator's code brings its warps closer to those points, from where the last
// frame's fit left off.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"
#include "engines/dpe/motion_fit.h"
#include "face/face_fit.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "pipeline/motion_steering.h"

namespace avatar::pipeline {
namespace {
namespace dpe = engines::dpe;

// A face-model fit of one image: a 3/4-turned face at (64, 60) px, 3.5 px per cm.
face::FaceFitResult face_at(double yaw, double expression_level, uint64_t seed) {
    const auto& model = face::face_model();
    auto gen = at::detail::createCPUGenerator(seed);
    face::FaceFitResult fit;
    fit.pose = torch::tensor({{0.05, yaw, -0.03, 64.0, 60.0, 0.0, 3.5}}, torch::kFloat64);
    fit.identity = torch::rand({model.identity_count()}, gen, torch::kFloat64) - 0.5;
    fit.expression =
        expression_level * torch::rand({1, model.expression_count()}, gen, torch::kFloat64);
    return fit;
}

face::FaceFitResult with_pose_of(face::FaceFitResult fit, const face::FaceFitResult& other) {
    fit.pose = other.pose.clone();
    return fit;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>();
}

TEST(LandmarkMotion, RelativeStartsAtTheSourceAbsoluteTakesTheDriversRotation) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto source = face_at(0.2, 0.3, 1);
    const auto reference = face_at(-0.1, 0.3, 2);
    const auto source_points = face::project_face(source.pose, source.identity, source.expression);
    face::RetargetOptions relative;
    relative.regions = face::kRegionAll;
    // The reference frame itself is no change.
    const auto still = landmark_motion(source, reference, relative, &reference);
    EXPECT_EQ(still.source.sizes(), (std::vector<int64_t>{468, 3}));
    EXPECT_LT(max_diff(still.source, source_points[0]), 1e-9);
    EXPECT_LT(max_diff(still.target, still.source), 1e-6);
    // A driver that turns its head: the source turns as far, for pose and both, not for exp.
    auto turned = reference;
    turned.pose = reference.pose.clone();
    turned.pose[0][1] += 0.3;
    const auto moved = landmark_motion(source, turned, relative, &reference);
    const auto moved_by = (moved.target - moved.source).slice(1, 0, 2).norm(2, 1).mean();
    EXPECT_GT(moved_by.item<double>(), 3.0);  // px: 0.3 rad of yaw on a 15 cm face at 3.5 px/cm
    relative.regions = stage_regions(dpe::Stage::kExpression);
    EXPECT_LT(
        max_diff(landmark_motion(source, turned, relative, &reference).target, source_points[0]),
        1e-6);
    relative.regions = stage_regions(dpe::Stage::kPose);
    EXPECT_LT(max_diff(landmark_motion(source, turned, relative, &reference).target, moved.target),
              1e-6);
    // Absolute: the driver's rotation on the source's place and size, with its identity.
    face::RetargetOptions absolute;
    absolute.relative = false;
    absolute.regions = stage_regions(dpe::Stage::kPose);
    auto expected_pose = source.pose.clone();
    expected_pose.narrow(1, 0, 3).copy_(turned.pose.narrow(1, 0, 3));
    EXPECT_LT(max_diff(landmark_motion(source, turned, absolute).target,
                       face::project_face(expected_pose, source.identity, source.expression)[0]),
              1e-6);
    EXPECT_THROW(landmark_motion(source, turned, relative), Error);  // no reference
    EXPECT_EQ(stage_regions(dpe::Stage::kBoth), static_cast<unsigned>(face::kRegionAll));
}

dpe::DPEConfig small_config() {
    dpe::DPEConfig config;
    config.size = 16;
    config.channels = {{4, 12}, {8, 10}, {16, 8}};
    return config;
}

TEST(MotionSteering, SteeringBringsTheWarpsToTheDriversPointsFromTheLastFit) {
    SKIP_WITHOUT_MEDIAPIPE();
    torch::manual_seed(5);
    dpe::Generator generator(small_config());
    generator->eval();
    torch::NoGradGuard no_grad;  // as in the jobs: the fit turns autograd on for itself
    DpeAnimator animator(generator, dpe::Stage::kBoth, MotionMode::kAbsolute);
    const auto source_crop_image = torch::rand({1, 3, 16, 16}) * 2 - 1;
    animator.set_source(source_crop_image);
    const auto motion = animator.motion_for(animator.driving_motion(torch::rand({1, 3, 16, 16})));

    // The source and a driver of another identity, turned and with another expression, as
    // FaceMesh would give them; the source crop around the source's points.
    const auto source = face_at(0.1, 0.2, 7);
    const auto driver = with_pose_of(face_at(0.1, 0.6, 8), source);
    auto turned = driver;
    turned.pose = driver.pose.clone();
    turned.pose[0][1] += 0.35;
    const auto mesh_of = [](const face::FaceFitResult& f) {
        return face::project_face(f.pose, f.identity, f.expression)[0].to(torch::kFloat32);
    };
    const auto source_mesh = mesh_of(source);
    const auto lo = std::get<0>(source_mesh.min(0)), hi = std::get<0>(source_mesh.max(0));
    const auto crop = face_crop(
        {lo[0].item<double>(), lo[1].item<double>(), hi[0].item<double>(), hi[1].item<double>()},
        16);

    // The error the fit minimises, recomputed here from the same fits.
    face::RetargetOptions absolute;
    absolute.relative = false;
    const auto points =
        landmark_motion(face::fit_face_mesh468(source_mesh.to(torch::kFloat64)),
                        face::fit_face_mesh468(mesh_of(turned).to(torch::kFloat64)), absolute);
    const auto grid = [&](const torch::Tensor& p) {
        return face::crop_grid_points(crop, p.slice(1, 0, 2)).to(torch::kFloat32).unsqueeze(0);
    };
    const auto code = generator->encode(source_crop_image);
    const auto error_of = [&](const torch::Tensor& m) {
        std::map<std::string, torch::Tensor> traced;
        generator->render(code, m, dpe::Stage::kBoth, dpe::Trace(&traced, ""));
        return dpe::render_point_error(traced, dpe::Stage::kBoth, grid(points.target),
                                       grid(points.source))
            .item<double>();
    };

    SteeringOptions options;
    options.fit.steps = 25;
    MotionSteering warm(MotionMode::kAbsolute, dpe::Stage::kBoth, options);
    EXPECT_THROW(warm.steer(animator, motion, mesh_of(turned)), Error);  // no source yet
    warm.set_source(source_mesh, crop);
    const auto first = warm.steer(animator, motion, mesh_of(turned));
    EXPECT_EQ(first.sizes(), motion.sizes());
    EXPECT_LT(error_of(first), 0.8 * error_of(motion));
    // The next frame starts from its own code plus the last correction, so it is not what a
    // fit from the code alone gives, and it lands at least as close.
    options.warm_start = false;
    MotionSteering cold(MotionMode::kAbsolute, dpe::Stage::kBoth, options);
    cold.set_source(source_mesh, crop);
    const auto cold_first = cold.steer(animator, motion, mesh_of(turned));
    EXPECT_TRUE(torch::allclose(cold_first, first));  // the first frame has nothing to carry
    const auto warm_second = warm.steer(animator, motion, mesh_of(turned));
    EXPECT_FALSE(torch::allclose(warm_second, cold.steer(animator, motion, mesh_of(turned))));
    EXPECT_LT(error_of(warm_second), error_of(first) + 1e-3);
    EXPECT_THROW(warm.steer(animator, motion, mesh_of(turned).narrow(0, 0, 68)), Error);
    options.fit.steps = -1;
    EXPECT_THROW(MotionSteering(MotionMode::kAbsolute, dpe::Stage::kBoth, options), Error);
}

}  // namespace
}  // namespace avatar::pipeline
