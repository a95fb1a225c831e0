#pragma once
// The project's own linear morphable face model on MediaPipe's canonical mesh (DESIGN.md §4,
// docs/face-model.md):
//   vertices(identity, expression) = mean + B_id * identity + B_exp * expression   [468, 3] cm
// with mean = canonical_face().vertices (x right, y up, z toward the viewer, centimetres).
//
// Sides: the canonical face looks at the viewer, so the SUBJECT'S LEFT is canonical x > 0
// (MediaPipe's "left eye" 263/362/386/374 has x > 0). Modes named *_left act on x > 0.
//
// Each mode is a sum of components; a component is a smooth region weight times an affine
// displacement field:  d(v) = w(v) * (M (v - c) + t), where
//   w(v) = (1 - smoothstep(inner, outer, dist(v, anchors)))          region and falloff
//        * smoothstep(0, pin_radius, dist(v, pinned))                 vertices held still
//        * smoothstep(-0.3, 0.3, side * v.x)   (side = +-1 only)      one side of the face
// (dist = Euclidean distance in the canonical space, cm). A rigid rotation by angle a about a
// pivot p is M = R(a) - I, c = p; a scaling by factors f about c is M = diag(f - 1).
// Mirrored components (eye size, eye spacing) use the reflection of the field for x < 0.
// Right-side modes are the exact mirror images of the left ones (vertex mirror map below).
//
// Units: one unit of a coefficient is a plausible full-strength displacement (jaw_open 1.0 =
// 25 degrees of jaw rotation, blink 1.0 = lid closed, face_width 1.0 = +8 % width). Identity
// coefficients live in about [-1, 1] (0 = the canonical face), expression coefficients in
// [0, 1] (0 = neutral). Everything is deterministic, built from the canonical face on first use
// and cached; no trained data.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace avatar::face {

struct FaceModel {
    torch::Tensor mean;                // float64 [468, 3] cm, the canonical vertices
    torch::Tensor identity_basis;      // float64 [K, 468, 3] cm per unit coefficient
    torch::Tensor expression_basis;    // float64 [E, 468, 3]
    torch::Tensor identity_regions;    // float64 [K, 468] region weight of each mode in [0, 1]
    torch::Tensor expression_regions;  // float64 [E, 468]
    std::vector<std::string> identity_names;
    std::vector<std::string> expression_names;
    std::vector<int64_t> mirror;  // mirror[v] = the vertex at v's reflection x -> -x
    // The eye openings (MediaPipe's contour ring 0, upper lid then lower lid, 16 vertices each):
    // [0] the subject's left eye (x > 0), [1] the right eye.
    std::array<std::vector<int64_t>, 2> eye_contours;

    int64_t identity_count() const { return static_cast<int64_t>(identity_names.size()); }
    int64_t expression_count() const { return static_cast<int64_t>(expression_names.size()); }

    // Vertices of a batch: identity [B, K] (or [K]), expression [B, E] (or [E]) -> [B, 468, 3]
    // (or [468, 3]), in the coefficients' dtype and device; plain torch ops, differentiable.
    // Either coefficient tensor may be undefined (= zeros). Throws avatar::Error on bad shapes.
    torch::Tensor vertices(const torch::Tensor& identity, const torch::Tensor& expression) const;
};

// The model, built on the first call (from canonical_face()) and cached (thread-safe).
const FaceModel& face_model();

const std::vector<std::string>& identity_mode_names();
const std::vector<std::string>& expression_mode_names();

// Rotation matrices [..., 3, 3] of (pitch, yaw, roll) radians [..., 3] with head_pose.h's
// convention: R = Ry(yaw) * Rx(pitch) * Rz(roll) in the pose frame (x right, y up, z to viewer).
// Differentiable.
torch::Tensor euler_rad_to_rotation(const torch::Tensor& pitch_yaw_roll);

// ---- the coefficient layout "avatar-face-v1" (docs/face-model.md) ---------------------------
// One row = pose 7 (pitch, yaw, roll radians; translation x, y, z; scale) + identity K +
// expression E + gaze 4 (left eye pitch, yaw; right eye pitch, yaw; radians).
// Pose (weak perspective, as head_pose.h): image_point = F * (scale * R * model_vertex) +
// translation with F = diag(1, -1, -1) (the pose frame is the image frame with y and z flipped), R
// from (pitch, yaw, roll) by euler_rad_to_rotation, scale in pixels per cm, translation = where the
// model origin lands in image coordinates (x, y down, z as FaceMesh gives it), pixels.
inline constexpr const char* kFaceLayoutName = "avatar-face-v1";
inline constexpr int kFaceLayoutVersion = 1;
inline constexpr int64_t kPoseSize = 7;
inline constexpr int64_t kGazeSize = 4;

struct FaceCoefficients {
    torch::Tensor pose;        // [..., 7]
    torch::Tensor identity;    // [..., K]
    torch::Tensor expression;  // [..., E]
    torch::Tensor gaze;        // [..., 4]
};

int64_t face_layout_size();  // 7 + K + E + 4 of face_model()
// Concatenates along the last dimension (all parts must be defined and agree on batch shape).
torch::Tensor pack_face_coefficients(const FaceCoefficients& coefficients);
// Splits rows [..., face_layout_size()] (views into `rows`); throws avatar::Error on bad width.
FaceCoefficients unpack_face_coefficients(const torch::Tensor& rows);

}  // namespace avatar::face
