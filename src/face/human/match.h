#pragma once
// Identity metrics between face descriptors (rows of [N, D] tensors): the plain ones (computed
// in float64) and the two JavaScript libraries' own functions, reproduced exactly.
#include <torch/torch.h>

namespace avatar::face::human {

// Pairwise cosine similarity [N, N] (float64).
torch::Tensor cosine_matrix(const torch::Tensor& descriptors);
// Pairwise euclidean distance [N, N] (float64).
torch::Tensor euclidean_matrix(const torch::Tensor& descriptors);
// Cosine after subtracting the mean descriptor of the set (float64).
torch::Tensor cosine_meancentred_matrix(const torch::Tensor& descriptors);

// Cosine similarity of two descriptors (differentiable, any dtype): an identity loss is 1 - it.
torch::Tensor cosine_similarity(const torch::Tensor& a, const torch::Tensor& b);

// faceapi.euclideanDistance(a, b): sqrt of the sum of squared differences, summed in order.
double faceapi_euclidean_distance(const torch::Tensor& a, const torch::Tensor& b);

struct HumanMatchOptions {
    double order = 2, multiplier = 25, min = 0.2, max = 0.8;
};
// human.match.distance: round(100 multiplier sum |a - b|^order) / 100.
double human_match_distance(const torch::Tensor& a, const torch::Tensor& b,
                            const HumanMatchOptions& options = {});
// human.match.similarity: 1 - root(distance) / 100 normalised to [min, max], clamped to [0, 1],
// rounded to 0.01 (1 for identical descriptors).
double human_match_similarity(const torch::Tensor& a, const torch::Tensor& b,
                              const HumanMatchOptions& options = {});

}  // namespace avatar::face::human
