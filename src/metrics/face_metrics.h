#pragma once
// Face metrics on the outputs of the face front end (embeddings, landmarks, meshes): identity
// similarity (CSIM), keypoint distance (AKD) and the face region for masked PSNR/SSIM. The nets
// that produce the inputs live in face/; these are the plain formulas.
#include <torch/torch.h>

namespace avatar::metrics {

// Cosine similarity of two embeddings of any shape (flattened), in float64. 1 for identical.
double cosine_similarity(const torch::Tensor& a, const torch::Tensor& b);
// Euclidean distance of two descriptors (flattened), float64. 0 for identical.
double euclidean_distance(const torch::Tensor& a, const torch::Tensor& b);

// AKD: the mean over points of the euclidean distance between corresponding points [N, 2].
double keypoint_distance(const torch::Tensor& points, const torch::Tensor& reference);
// Inter-ocular distance of iBUG-68 points: between the outer eye corners 36 and 45 (300-W's
// normalisation).
double inter_ocular_distance68(const torch::Tensor& points68);

// The filled convex hull of points [N, 2] (image px) as a uint8 [H, W] mask in {0, 1}.
torch::Tensor convex_hull_mask(const torch::Tensor& points, int64_t height, int64_t width);

}  // namespace avatar::metrics
