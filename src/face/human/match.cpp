#include "face/human/match.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {
namespace {

torch::Tensor rows64(const torch::Tensor& d) {
    check(d.dim() == 2, "descriptors", "expected [N, D]");
    return d.detach().to(torch::kCPU, torch::kFloat64);
}

std::vector<double> values(const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().view({-1});
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

torch::Tensor cosine_matrix(const torch::Tensor& descriptors) {
    const auto d = rows64(descriptors);
    const auto n = d / d.norm(2, 1, true);
    return n.matmul(n.t());
}

torch::Tensor euclidean_matrix(const torch::Tensor& descriptors) {
    const auto d = rows64(descriptors);
    return (d.unsqueeze(1) - d.unsqueeze(0)).pow(2).sum(2).sqrt();
}

torch::Tensor cosine_meancentred_matrix(const torch::Tensor& descriptors) {
    const auto d = rows64(descriptors);
    return cosine_matrix(d - d.mean(0, true));
}

torch::Tensor cosine_similarity(const torch::Tensor& a, const torch::Tensor& b) {
    return (a * b).sum(-1) / (a.norm(2, -1) * b.norm(2, -1));
}

double faceapi_euclidean_distance(const torch::Tensor& a, const torch::Tensor& b) {
    const auto x = values(a), y = values(b);
    check(x.size() == y.size(), "faceapi_euclidean_distance", "descriptor sizes differ");
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double diff = x[i] - y[i];
        sum += diff * diff;
    }
    return std::sqrt(sum);
}

double human_match_distance(const torch::Tensor& a, const torch::Tensor& b,
                            const HumanMatchOptions& options) {
    const auto x = values(a), y = values(b);
    check(x.size() == y.size(), "human_match_distance", "descriptor sizes differ");
    const bool euclidean = options.order == 2;
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double diff = euclidean ? x[i] - y[i] : std::abs(x[i] - y[i]);
        sum += euclidean ? diff * diff : std::pow(diff, options.order);
    }
    return nn::tfjs::js_round(100 * options.multiplier * sum) / 100;
}

double human_match_similarity(const torch::Tensor& a, const torch::Tensor& b,
                              const HumanMatchOptions& options) {
    const double dist = human_match_distance(a, b, options);
    if (dist == 0)
        return 1;
    const double root = options.order == 2 ? std::sqrt(dist) : std::pow(dist, 1 / options.order);
    const double norm = (1 - root / 100 - options.min) / (options.max - options.min);
    return nn::tfjs::js_round(100 * std::max(std::min(norm, 1.0), 0.0)) / 100;
}

}  // namespace avatar::face::human
