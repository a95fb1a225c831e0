#include "pipeline/motion_steering.h"

#include "core/error.h"
#include "face/face_model.h"

namespace avatar::pipeline {
namespace dpe = engines::dpe;

namespace {

face::FaceCoefficients coefficients_of(const face::FaceFitResult& fit) {
    return {fit.pose, fit.identity, fit.expression, torch::Tensor()};
}

void check_mesh(const torch::Tensor& mesh, const char* what) {
    check(mesh.defined() && mesh.dim() == 2 && mesh.size(0) == 468 && mesh.size(1) == 3, what,
          "a FaceMesh mesh must be [468, 3]");
}

}  // namespace

LandmarkMotion landmark_motion(const face::FaceFitResult& source,
                               const face::FaceFitResult& driving,
                               const face::RetargetOptions& options,
                               const face::FaceFitResult* reference) {
    check(!options.relative || reference != nullptr, "landmark_motion",
          "relative motion needs the driver's reference fit");
    auto driving_rows = coefficients_of(driving);
    auto retarget = options;
    if (options.relative) {
        // The reference as row 0 of a two-frame driving sequence, the frame as row 1.
        driving_rows.pose = torch::cat({reference->pose, driving.pose});
        driving_rows.expression = torch::cat({reference->expression, driving.expression});
        retarget.reference_frame = 0;
    }
    const auto moved = face::retarget_motion(coefficients_of(source), driving_rows, retarget);
    LandmarkMotion points;
    points.source = face::project_face(source.pose, source.identity, source.expression)[0];
    points.target =
        face::project_face(moved.pose, moved.identity, moved.expression)[moved.pose.size(0) - 1];
    return points;
}

torch::Tensor motion_fit_points(const face::CropTransform& crop, const torch::Tensor& points) {
    return face::crop_grid_points(crop, points.slice(1, 0, 2)).to(torch::kFloat32).unsqueeze(0);
}

unsigned stage_regions(dpe::Stage stage) {
    switch (stage) {
        case dpe::Stage::kExpression:
            return face::kRegionExpression;
        case dpe::Stage::kPose:
            return face::kRegionPose;
        case dpe::Stage::kBoth:
            break;
    }
    return face::kRegionAll;
}

MotionSteering::MotionSteering(MotionMode mode, dpe::Stage stage, SteeringOptions options)
    : mode_(mode), stage_(stage), options_(options) {
    check(options_.fit.steps >= 0, "--fit-motion", "must be >= 0 steps");
}

void MotionSteering::set_source(const torch::Tensor& mesh468, const face::CropTransform& crop) {
    check_mesh(mesh468, "MotionSteering (source)");
    // Each image fitted on its own, as a still portrait tool must (and as warp-fitted does).
    source_fit_ = face::fit_face_mesh468(mesh468.to(torch::kFloat64));
    source_crop_ = crop;
}

torch::Tensor MotionSteering::steer(DpeAnimator& animator, const torch::Tensor& motion,
                                    const torch::Tensor& driving_mesh468) {
    check(has_source(), "MotionSteering", "no source (set_source)");
    check_mesh(driving_mesh468, "MotionSteering (driving)");
    const auto driving_fit = face::fit_face_mesh468(driving_mesh468.to(torch::kFloat64));
    if (mode_ == MotionMode::kRelative && !reference_fit_)
        reference_fit_ = driving_fit;
    face::RetargetOptions retarget;
    retarget.relative = mode_ == MotionMode::kRelative;
    retarget.regions = stage_regions(stage_);
    const auto points = landmark_motion(source_fit_, driving_fit, retarget,
                                        reference_fit_ ? &*reference_fit_ : nullptr);
    const auto start = options_.warm_start && correction_.defined() ? motion + correction_ : motion;
    const auto fitted =
        animator.fit_motion(start, motion_fit_points(source_crop_, points.source),
                            motion_fit_points(source_crop_, points.target), options_.fit);
    correction_ = fitted - motion;
    return fitted;
}

}  // namespace avatar::pipeline
