#pragma once
// EG3D's camera conventions (shared/reference/eg3d/SPEC.md §2): the 25-d camera vector, FFHQ
// intrinsics and the LookAt pose sampler of util/camera_utils.py.
//
// A camera is cam2world [4, 4] in the OpenCV convention (x right, y down, z forward into the
// scene; the last column is the camera position) plus intrinsics K [3, 3] normalised by the image
// size (fx, fy are fractions of the width/height; cx = cy = 0.5 is the centre). The 25-d vector is
// both flattened row-major and concatenated: [cam2world (16), K (9)].
#include <torch/torch.h>

namespace avatar::nn {

// EG3D's FFHQ focal length, normalised: 2985.29 / 700.
inline constexpr double kFfhqFocal = 4.2647;

// The FFHQ intrinsics [3, 3] float32: fx = fy = 4.2647, cx = cy = 0.5, no skew.
torch::Tensor ffhq_intrinsics();

// cam2world [B, 4, 4] and intrinsics [B, 3, 3] (or [3, 3], shared by the batch) -> c [B, 25].
torch::Tensor pack_camera(const torch::Tensor& cam2world, const torch::Tensor& intrinsics);
// c [B, >= 25] -> cam2world [B, 4, 4] (c[:, 0:16]) and intrinsics [B, 3, 3] (c[:, 16:25]).
std::pair<torch::Tensor, torch::Tensor> unpack_camera(const torch::Tensor& c);

// LookAtPoseSampler.sample with zero standard deviations: cameras on a sphere of `radius` around
// the WORLD ORIGIN (not around `lookat`), looking at `lookat` [3] with world up = +y.
// `horizontal` and `vertical` [K] are angles in radians: h = v = pi/2 is the frontal view at
// (0, 0, radius); v is clamped to [1e-5, pi - 1e-5] and mapped to the polar angle
// arccos(1 - 2 v / pi). Returns cam2world [K, 4, 4] float32, computed with the official op
// order in float32.
torch::Tensor look_at_pose(const torch::Tensor& horizontal, const torch::Tensor& vertical,
                           const torch::Tensor& lookat, double radius);

// The frontal FFHQ camera of OTAvatar/EG3D: look_at_pose(pi/2 + yaw, pi/2 + pitch, [0, 0, 0.2],
// 2.7) with FFHQ intrinsics, as c [1, 25].
torch::Tensor ffhq_camera(double yaw = 0.0, double pitch = 0.0);

}  // namespace avatar::nn
