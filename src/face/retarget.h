#pragma once
// Retargeting motion between faces in the coefficient space of the face model (layout
// avatar-face-v1, face_model.h): what every engine driven by coefficients uses to put a driving
// video's motion on a source portrait or video.
//
// Relative motion (the default): the source keeps its own pose and expression, and the driving
// video's CHANGES from its reference frame (by default its first frame) are added on top:
//   expression = clamp(source_e + strength * (driving_e[t] - driving_e[ref]), 0, 1)
//   rotation   = delta^strength * source_R,   delta = driving_R[t] * driving_R[ref]^T
//                (delta^strength: the same axis, strength times the angle)
//   translation= source_t + strength * (driving_t[t] - driving_t[ref]) * source_s / driving_s[ref]
//   scale      = source_s * (driving_s[t] / driving_s[ref])^strength
//   gaze       = source_g + strength * (driving_g[t] - driving_g[ref])
// so a driving face that differs from the source (a wider mouth at rest, a head held lower,
// another distance to the camera) moves the source by how much it moves, not to where it is.
// This avoids the distorted head proportions that absolute motion gives across identities
// (official DPE's users' complaint, shared/docs/official_repos.md).
// Absolute motion: expression = source_e + strength * (driving_e[t] - source_e) (strength 1:
// the driving values), rotation = the driving rotation (slerped from the source's by strength),
// gaze likewise; translation and scale stay the source's (they are in another image's pixels).
//
// Regions choose what is transferred; everything else stays the source's:
//   pose   rotation, translation, scale
//   eyes   blink_*, eye_wide_*, and gaze
//   brows  brow_*
//   mouth  jaw_open, mouth_close, smile_*, frown_*, pucker, funnel, stretch_*, upper_lip_up,
//          lower_lip_down, cheek_puff
//   expression = eyes + brows + mouth;  all = pose + expression
//
// Renormalisation (PVP, appendix B): before anything else, each driving expression mode is
// mapped from the driving video's statistics to the source's,
//   e' = (e - mean_driving) / max(std_driving, min_std) * std_source + mean_source,
// for when the two videos' expression distributions differ (needs a source video, not a still).
#include <torch/torch.h>

#include <string>

#include "face/face_model.h"

namespace avatar::face {

enum MotionRegion : unsigned {
    kRegionPose = 1,
    kRegionEyes = 2,
    kRegionBrows = 4,
    kRegionMouth = 8,
    kRegionExpression = kRegionEyes | kRegionBrows | kRegionMouth,
    kRegionAll = kRegionPose | kRegionExpression,
};

// "all", "pose", "expression", "eyes", "brows", "mouth" (also "lips"), or a comma-separated list
// ("pose,eyes"). Throws avatar::Error naming the unknown word.
unsigned parse_motion_regions(const std::string& text);

// Which expression modes of face_model() belong to `regions`: bool [E].
torch::Tensor expression_modes_of(unsigned regions);

struct RetargetOptions {
    bool relative = true;
    double strength = 1.0;  // >= 0; 0 = the source unchanged
    unsigned regions = kRegionAll;
    int64_t reference_frame = 0;  // the driving frame whose motion counts as "no change"
    bool renormalise = false;
    double min_std = 0.02;  // floor of the driving standard deviation in renormalisation
};

// source: pose [S, 7], identity [K] or [S, K], expression [S, E], gaze [S, 4] with S = 1 (a still
// portrait: used for every output frame) or S = T (a video: frame t with driving frame t).
// driving: pose [T, 7], expression [T, E], gaze [T, 4] (its identity is not used). Undefined gaze
// (on either side) gives the source's gaze, or zeros. Returns T rows with the source's identity,
// float64. Rows with NaN (no face) in the driving give the source's row; NaN in the source stays
// NaN. Throws avatar::Error on bad shapes, a reference frame out of range or without a face.
FaceCoefficients retarget_motion(const FaceCoefficients& source, const FaceCoefficients& driving,
                                 const RetargetOptions& options = {});

}  // namespace avatar::face
