#pragma once
// Head pose from face landmarks, against MediaPipe's canonical face (face/canonical_face.h).
//
// Frames. Landmarks come in image coordinates: x right, y down, in pixels; FaceMesh's z is
// relative depth in the x scale, growing away from the viewer. The canonical face is in
// centimetres with x right, y up and z toward the viewer. The fit happens in the "pose frame"
// = image frame with y and z flipped (x, -y, -z), where the canonical face is moved by a
// similarity:    pose_frame_point = scale * R * canonical_vertex + t.
//
// Euler convention (degrees): R = Ry(yaw) * Rx(pitch) * Rz(roll), rotations about the axes of
// the pose frame (x right, y up, z toward the viewer), intrinsic Y-X'-Z'' (yaw first). With the
// right-handed elementary rotations Rx, Ry, Rz:
//   yaw   > 0: the face turns toward image right (the nose moves right);
//   pitch > 0: the face turns down (the nose moves down, chin toward the chest);
//   roll  > 0: the head tilts counter-clockwise as seen in the image.
// Extraction: yaw = atan2(R02, R22), pitch = atan2(-R12, hypot(R10, R11)),
// roll = atan2(R10, R11); pitch is in [-90, 90], yaw and roll in (-180, 180].
// The rest pose (all angles 0) is the canonical face's own frontal pose. The fit is orthographic
// (no perspective camera, unlike MediaPipe's face_geometry), so a face looking into a close
// camera need not give 0; shared/docs/face_models.md quotes pitch 17.2 degrees for such a face.
// Subtract a per-video reference pose where "neutral" matters.
#include <torch/torch.h>

#include <array>
#include <cstdint>

namespace avatar::face {

// Weighted similarity fit (Umeyama 1991, with reflection handling): the scale s, rotation R and
// translation t minimising sum_i w_i |s R src_i + t - dst_i|^2.
//   src, dst: [N, D] or [B, N, D] (D = 2 or 3), any floating dtype and device;
//   weights:  [N] or [B, N], >= 0 with a positive sum (undefined tensor = all ones).
// Made of differentiable torch ops (torch::linalg_svd of the D x D covariance), so gradients
// flow to src, dst and weights; they are well defined when the covariance's singular values are
// distinct (any non-degenerate face). det(R) = +1 always: a reflection is turned into the nearest
// rotation by flipping the sign of the smallest singular direction.
struct SimilarityFit {
    torch::Tensor scale;        // [] or [B]
    torch::Tensor rotation;     // [D, D] or [B, D, D]
    torch::Tensor translation;  // [D] or [B, D]
    torch::Tensor rms;          // [] or [B]: sqrt(sum w |residual|^2 / sum w), in dst units
};
SimilarityFit fit_similarity(const torch::Tensor& src, const torch::Tensor& dst,
                             const torch::Tensor& weights = {});

struct HeadPose {
    // Batched as the input: [] / [B] scalars, [3] / [B, 3] vectors, [3, 3] / [B, 3, 3] matrices,
    // in the points' dtype and device, differentiable with respect to the points.
    torch::Tensor angles;       // (yaw, pitch, roll) in degrees, convention above
    torch::Tensor rotation;     // R, pose frame (x right, y up, z toward the viewer)
    torch::Tensor scale;        // landmark units (pixels) per centimetre
    torch::Tensor translation;  // where the canonical origin lands, in IMAGE coordinates
                                // (x, y down, z as the landmarks; z = 0 for 2D fits)
    torch::Tensor rms;          // weighted rms residual of the fit, in landmark units (pixels)

    // Plain numbers of an unbatched pose (throws avatar::Error for a batch).
    double yaw() const;
    double pitch() const;
    double roll() const;
    double rms_value() const;
};

// Pose from FaceMesh's 468 points [468, 3] or [B, 468, 3] (image px, y down, z as FaceMesh
// gives it), as MediaPipe's face_geometry does it minus the perspective refinement: the
// canonical vertices of the 33 Procrustes landmarks are fitted onto the flipped points with the
// 33 weights (fit_similarity). The rms is over those 33 weighted points.
HeadPose head_pose_from_mesh468(const torch::Tensor& points);

// The canonical face's 468 vertices placed by `pose` in image coordinates (x, y down, z as
// FaceMesh), [468, 3] or [B, 468, 3]: what head_pose_from_mesh468 fitted.
torch::Tensor posed_canonical_vertices(const HeadPose& pose);

// Euler angles (degrees, convention above) of rotation matrices [..., 3, 3] -> [..., 3], and back.
torch::Tensor rotation_to_euler_deg(const torch::Tensor& rotation);
torch::Tensor euler_deg_to_rotation(const torch::Tensor& yaw_pitch_roll_deg);

// Rotation matrices [N, 3, 3] of rotation vectors [N, 3] (axis times angle, Rodrigues), and the
// rotation vectors of rotation matrices (angles below 180 degrees). Made of torch ops.
torch::Tensor rotation_from_vector(const torch::Tensor& rotation_vector);
torch::Tensor rotation_vector(const torch::Tensor& rotation);

// The canonical vertex of each of face-api's 68 points (dlib/iBUG order): VTX68 of
// @vladmandic/human@3.3.6 src/face/facemeshcoords.ts, a hand-made semantic table (the fixture
// shared/reference/face_models/geometry/landmarks68_to_mesh468.json, key vtx68_human_lib).
extern const std::array<int, 68> kMesh468Of68;

struct Pose68Options {
    // Weight of the 17 jaw points (0-16) relative to the others (1): the 68-point jaw is a 2D
    // silhouette that slides over the surface with pose, so it fits a fixed vertex only to
    // ~0.3 inter-ocular distances (reference README section 8).
    double jaw_weight = 0.2;
    int iterations = 20;  // Gauss-Newton steps after the closed-form start (stops early)
};

// Pose from face-api's 68 points [68, 2] (image px, y down), 2D only, by our own weak-perspective
// (scaled orthographic) fit, no camera intrinsics needed:
//   (x, -y) = s * P * R * V_k + t,   P = the first two rows of the identity,
// with V_k = the canonical vertices kMesh468Of68. Start: the weighted least-squares affine map
// A (2x3) of the centred vertices onto the centred points, projected to the nearest
// s * (two orthonormal rows) by an SVD; then Gauss-Newton on (rotation vector, s, t) in double
// precision. Not differentiable (the result is detached). translation = (t_x, -t_y, 0) in image
// coordinates. Throws avatar::Error if the points are not [68, 2] or the fit is degenerate.
HeadPose head_pose_from_landmarks68(const torch::Tensor& points, const Pose68Options& options = {});

}  // namespace avatar::face
