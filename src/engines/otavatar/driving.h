#pragma once
// OTAvatar's per-frame driving inputs: the 27-frame coefficient window, the conversion of the
// tracker's 7-d camera to EG3D's 25-d camera, and the learned intrinsic bias
// (shared/reference/otavatar_controller/SPEC.md §3-5).
#include <torch/torch.h>

#include <vector>

namespace avatar::engines::otavatar {

// Deep3DFaceRecon coefficients [N, >=257] -> for each requested frame the window
// [70, 2*radius+1] of (expression 80:144, angles 224:227, translation 254:257) at frames
// clamp(i + k, 0, N-1), k = -radius..radius. Returns (indices [F, 2r+1] int64, windows [F, 70,
// 2r+1]).
std::pair<torch::Tensor, torch::Tensor> motion_windows(const torch::Tensor& coefficients,
                                                       const std::vector<int64_t>& frames,
                                                       int64_t radius = 13);

// The per-frame rotations of OTAvatar's tracker conditions [N, 7] (euler x, y, z; translation;
// focal): x and y angles negated, then (Rz Ry Rx)^T, in float32. [N, 3, 3].
torch::Tensor condition_rotations(const torch::Tensor& conditions);

// Tracker conditions [N, 7] -> EG3D cameras [N, 25] (cam2world 4x4 row-major, then normalised
// intrinsics 3x3): each frame averages rotation and translation over frames
// [max(i-1, 0), min(i+2, N-1)) (end exclusive, as the official code; N must be >= 2), moves the
// camera into EG3D's frame, and sets the focal from the tracker's. Float32/float64 as the
// official mix.
torch::Tensor conditions_to_cameras(const torch::Tensor& conditions);

// OTAvatar's add_bias without extrinsic bias: c [B, 25], intrinsic bias [B, 18] (scale 9, shift 9)
// -> c with K' = K * (1 + tanh(scale)) + shift on all 9 intrinsic entries.
torch::Tensor add_intrinsic_bias(const torch::Tensor& cameras, const torch::Tensor& bias);

}  // namespace avatar::engines::otavatar
