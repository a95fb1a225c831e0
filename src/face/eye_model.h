#pragma once
// The eyes of the face model (face_model.h) and the meaning of the layout's gaze columns
// (docs/face-model.md). One definition, shared by the gaze fit (face_fit.h) and the renderer of
// the synthetic world, so that a rendered gaze is read back as the same numbers.
//
// Each eye is a ball of radius r = kEyeballRadius * (1 + kEyeballSizePerUnit * eye_size) (cm;
// eye_size = the identity mode of that name) that rotates about its centre. The iris centre is
// the point of the ball along the gaze direction:
//   iris_centre = eyeball_centre + r * g(pitch, yaw),
//   g = euler_rad_to_rotation(pitch, yaw, 0) * (0, 0, 1)
//     = (sin yaw cos pitch, -sin pitch, cos yaw cos pitch)      (model frame: x right, y up, z out)
// so the eye's angles read like the head's: yaw > 0 looks to image right (the subject's left),
// pitch > 0 looks down. Gaze is relative to the head, in the model frame, not to the camera.
// The eyeball centre lies kEyeballDepth radii behind the centroid of the eye opening (contour
// ring 0) of the face with the given identity and a neutral expression, so with gaze 0 the iris
// centre is (1 - kEyeballDepth) r in front of the opening: the cornea bulges a little past the
// lids, as a real eye does. Expressions (blinks) move the lids, not the eyeballs.
#include <torch/torch.h>

namespace avatar::face {

inline constexpr double kEyeballRadius = 1.2;       // cm, an adult eyeball's radius
inline constexpr double kEyeballSizePerUnit = 0.1;  // radius change per unit of eye_size
inline constexpr double kEyeballDepth = 0.8;        // centre this many radii behind the opening

// Eyeball radii [...] (cm) of identity [..., K] (undefined = the canonical face's 1.2 cm).
torch::Tensor eyeball_radii(const torch::Tensor& identity);

// Eyeball centres [..., 2, 3] (cm, model frame; [0] = left eye = x > 0) of identity [..., K]
// (undefined = the canonical face), in the identity's dtype. Differentiable.
torch::Tensor eyeball_centres(const torch::Tensor& identity);

// Unit gaze directions [..., 2, 3] of the layout's gaze [..., 4] (left pitch, yaw; right pitch,
// yaw; radians). Differentiable.
torch::Tensor gaze_directions(const torch::Tensor& gaze);

// Iris centres [..., 2, 3] in the model frame: eyeball_centres(identity) + radius * direction.
// identity [K] or [..., K] broadcast against gaze [..., 4].
torch::Tensor iris_centres(const torch::Tensor& identity, const torch::Tensor& gaze);

}  // namespace avatar::face
