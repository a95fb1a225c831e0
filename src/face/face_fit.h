#pragma once
// Fitting the face model (face/face_model.h) to FaceMesh's 468 points, per video: one identity
// shared by all frames, pose and expression per frame (layout "avatar-face-v1",
// docs/face-model.md).
//
// Model of a frame n:  image_point = F * (s_n * R_n * V(identity, expression_n)) + t_n,
// F = diag(1, -1, -1), the weak-perspective (scaled orthographic) projection of head_pose.h;
// FaceMesh's z takes part with weight z_weight. Minimised by Levenberg-Marquardt (hand-written
// Gauss-Newton with analytic Jacobians, batched over frames; the shared identity is solved
// jointly through a Schur complement) in float64, from head_pose_from_mesh468's pose, with the
// rotation updated multiplicatively and expressions projected onto [0, 1] after every step:
//   sum_n sum_v |residual_nv / s0_n|^2                 (cm^2; x, y weight 1, z weight z_weight^2)
//   + identity_prior * |identity|^2 + expression_prior * sum_n |expression_n|^2
//   + smoothness * sum_n |expression_n - expression_n-1|^2
// where s0_n is the initial scale (px/cm), so the weights do not depend on the image size.
#include <torch/torch.h>

namespace avatar::face {

struct FaceFitOptions {
    double identity_prior = 1e-4;
    double expression_prior = 1e-4;
    double smoothness = 0.0;  // 0 = frames independent except for the shared identity
    double z_weight = 1.0;
    int iterations = 15;       // Levenberg-Marquardt steps (stops early on convergence)
    bool fit_identity = true;  // false: identity stays at `initial_identity` (or zeros)
    double jaw_weight = 0.2;   // 68-point fit only: weight of the 17 sliding jaw points (0-16)
};

struct FaceFitResult {
    torch::Tensor pose;        // float64 [N, 7] (pitch, yaw, roll rad; translation px; scale)
    torch::Tensor identity;    // float64 [K]
    torch::Tensor expression;  // float64 [N, E], in [0, 1]
    torch::Tensor rms;         // float64 [N] root-mean-square 2D (x, y) residual per frame, px
};

// points: [N, 468, 3] or [468, 3] (image px, y down, z as FaceMesh). initial_identity: [K] or
// undefined. Throws avatar::Error on bad shapes.
FaceFitResult fit_face_mesh468(const torch::Tensor& points, const FaceFitOptions& options = {},
                               const torch::Tensor& initial_identity = {});

// The same fit from face-api's 68 points [N, 68, 2] or [68, 2] (image px, 2D only), through the
// fixed correspondence kMesh468Of68 (head_pose.h): each of the 68 points is one model vertex.
// The jaw points slide over the surface with the pose, hence their weight options.jaw_weight.
// Start: head_pose_from_landmarks68 per frame. With 136 numbers a frame, identity and
// expression are less determined than from 468 points: raise the priors (and share the identity
// over many frames). rms is over the 68 points.
FaceFitResult fit_face_landmarks68(const torch::Tensor& points, const FaceFitOptions& options = {},
                                   const torch::Tensor& initial_identity = {});

// Gaze [N, 4] (layout order: left pitch, yaw; right pitch, yaw; radians; eye_model.h) from the
// observed iris centres iris [N, 2, 2] (image px; [.., 0, :] the subject's left eye, as rows 0
// and 5 of FaceTracker's iris points) of faces with the fitted pose [N, 7] and identity [K]:
// per eye, the (pitch, yaw) whose model iris centre projects onto the observed one
// (Gauss-Newton in cm, prior * |angles|^2 toward looking straight ahead). Rows with a
// non-finite input give NaN. Throws avatar::Error on bad shapes.
torch::Tensor fit_gaze(const torch::Tensor& iris, const torch::Tensor& pose,
                       const torch::Tensor& identity, double prior = 1e-3);

// A whole tracked video in the layout avatar-face-v1: the identity is fitted once on up to
// `identity_frames` frames spread evenly over the video, then every frame is fitted with that
// identity held, in chunks of `chunk_frames` (memory stays bounded on long videos), and gaze from
// the iris centres. Frames without a face (found false) get NaN rows.
struct SequenceFitOptions {
    FaceFitOptions fit;  // priors, smoothness (within a chunk), z weight, iterations
    int64_t identity_frames = 48;
    int64_t chunk_frames = 256;
    double gaze_prior = 1e-3;
};
struct SequenceFit {
    torch::Tensor pose;        // float64 [N, 7]
    torch::Tensor identity;    // float64 [K]
    torch::Tensor expression;  // float64 [N, E]
    torch::Tensor gaze;        // float64 [N, 4]; NaN rows also where iris is undefined
    torch::Tensor rms;         // float64 [N] px
};
// mesh [N, 468, 3] (FaceTracker's mesh468), found [N] bool, iris [N, 10, 2 or 3] or undefined.
// Throws avatar::Error on bad shapes or when no frame has a face.
SequenceFit fit_face_sequence(const torch::Tensor& mesh, const torch::Tensor& found,
                              const torch::Tensor& iris, const SequenceFitOptions& options = {});

// The model's 468 points in image coordinates: pose [N, 7], identity [K] or [N, K], expression
// [N, E] -> [N, 468, 3] (differentiable; the inverse of the fit's data term).
torch::Tensor project_face(const torch::Tensor& pose, const torch::Tensor& identity,
                           const torch::Tensor& expression);

}  // namespace avatar::face
