#pragma once
// Steering DPE's motion with landmarks (ours; `avatar animate --fit-motion N`). DPE reads a
// driving frame's motion from its image alone, and on cross-identity pairs it moves the head
// less far than the driver does (docs/benchmarks.md). The front end already knows more: the
// source's and the driver's 468 points, each fitted with the face model, say where the driving
// motion puts the source's points. The motion code the decoders get is then refined so that
// their warps carry the source's points there (engines/dpe/motion_fit.h); the generator still
// renders everything. On synthbench v2 this is the `dpe-fitted` method (session 18).
#include <torch/torch.h>

#include <optional>

#include "engines/dpe/generator.h"
#include "engines/dpe/motion_fit.h"
#include "face/alignment.h"
#include "face/face_fit.h"
#include "face/retarget.h"
#include "pipeline/portrait_animation.h"

namespace avatar::pipeline {

// The source's fitted points and where the driving face's motion puts them, float64 [468, 3]
// (image px of the source). `options` is face::retarget_motion's: with options.relative the
// driver's change since `reference` (which must then be given) is added to the source's own
// motion, else the driver's rotation and expression themselves are taken; options.regions says
// what is transferred. The source keeps its identity.
struct LandmarkMotion {
    torch::Tensor source, target;
};
LandmarkMotion landmark_motion(const face::FaceFitResult& source,
                               const face::FaceFitResult& driving,
                               const face::RetargetOptions& options,
                               const face::FaceFitResult* reference = nullptr);

// Image px points [N, 2 or 3] of the source image -> the source crop's grid_sample coordinates as
// the motion fit takes them, float32 [1, N, 2] (face::crop_grid_points, the DPE trainer's
// convention).
torch::Tensor motion_fit_points(const face::CropTransform& crop, const torch::Tensor& points);

// What a DPE stage transfers, as retarget regions: exp -> the expression, pose -> the pose,
// both -> everything.
unsigned stage_regions(engines::dpe::Stage stage);

// One source at a time; each driving frame's motion code refined to its landmarks. Relative
// motion takes the first driving face given (after construction or reset_reference()) as the
// reference, as DpeAnimator does. Each frame's fit starts from the frame's own code plus the
// correction the previous frame's fit found (`warm_start`): consecutive frames move alike, so the
// fit starts close and the correction does not jump from frame to frame.
struct SteeringOptions {
    engines::dpe::MotionFitOptions fit;  // steps per frame, learning rate, space
    bool warm_start = true;
};

class MotionSteering {
public:
    MotionSteering(MotionMode mode, engines::dpe::Stage stage, SteeringOptions options);

    // The source's FaceMesh points ([468, 3], image px) and the crop the generator sees it in.
    // Fits the face model once per source. Throws Error for a mesh that is not [468, 3].
    void set_source(const torch::Tensor& mesh468, const face::CropTransform& crop);
    bool has_source() const { return source_fit_.pose.defined(); }

    // `motion` (the code DpeAnimator::motion_for gives for this frame) refined so that the
    // animator's warps carry the source's points where `driving_mesh468`'s motion puts them.
    torch::Tensor steer(DpeAnimator& animator, const torch::Tensor& motion,
                        const torch::Tensor& driving_mesh468);

    void reset_reference() { reference_fit_.reset(); }

private:
    MotionMode mode_;
    engines::dpe::Stage stage_;
    SteeringOptions options_;
    face::FaceFitResult source_fit_;
    face::CropTransform source_crop_;
    std::optional<face::FaceFitResult> reference_fit_;
    torch::Tensor correction_;  // the last fit's result minus its start
};

}  // namespace avatar::pipeline
