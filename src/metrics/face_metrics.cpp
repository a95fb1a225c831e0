#include "metrics/face_metrics.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace avatar::metrics {

double cosine_similarity(const torch::Tensor& a, const torch::Tensor& b) {
    check(a.numel() == b.numel() && a.numel() > 0, "cosine_similarity",
          "embeddings must have the same, non-zero size");
    const auto x = a.detach().flatten().to(torch::kFloat64).cpu();
    const auto y = b.detach().flatten().to(torch::kFloat64).cpu();
    // x.y / sqrt((x.x)(y.y)) rather than x.y / (|x||y|): for x == y, sqrt(fl(a * a)) == a in
    // IEEE arithmetic, so identical embeddings give exactly 1.
    const double xx = x.dot(x).item<double>(), yy = y.dot(y).item<double>();
    check(xx > 0 && yy > 0, "cosine_similarity", "an embedding is all zeros");
    return x.dot(y).item<double>() / std::sqrt(xx * yy);
}

double euclidean_distance(const torch::Tensor& a, const torch::Tensor& b) {
    check(a.numel() == b.numel() && a.numel() > 0, "euclidean_distance",
          "descriptors must have the same, non-zero size");
    return (a.detach().flatten().to(torch::kFloat64).cpu() -
            b.detach().flatten().to(torch::kFloat64).cpu())
        .norm()
        .item<double>();
}

double keypoint_distance(const torch::Tensor& points, const torch::Tensor& reference) {
    check(points.dim() == 2 && points.size(1) == 2 && points.sizes() == reference.sizes(),
          "keypoint_distance", "expected two [N, 2] point sets of the same size");
    const auto d =
        points.detach().to(torch::kFloat64).cpu() - reference.detach().to(torch::kFloat64).cpu();
    return d.pow(2).sum(1).sqrt().mean().item<double>();
}

double inter_ocular_distance68(const torch::Tensor& points68) {
    check(points68.dim() == 2 && points68.size(0) == 68 && points68.size(1) == 2,
          "inter_ocular_distance68", "expected [68, 2] points");
    const auto p = points68.detach().to(torch::kFloat64).cpu();
    const double iod = (p[36] - p[45]).norm().item<double>();
    check(iod > 0, "inter_ocular_distance68", "the eye corners coincide");
    return iod;
}

torch::Tensor convex_hull_mask(const torch::Tensor& points, int64_t height, int64_t width) {
    check(points.dim() == 2 && points.size(1) == 2 && points.size(0) >= 3, "convex_hull_mask",
          "expected [N >= 3, 2] points");
    const auto p = points.detach().to(torch::kFloat32).cpu().contiguous();
    std::vector<cv::Point2f> input(static_cast<size_t>(p.size(0)));
    const float* data = p.data_ptr<float>();
    for (size_t i = 0; i < input.size(); ++i)
        input[i] = {data[2 * i], data[2 * i + 1]};
    std::vector<cv::Point2f> hull;
    cv::convexHull(input, hull);
    std::vector<cv::Point> polygon;
    for (const auto& q : hull)
        polygon.emplace_back(static_cast<int>(std::lround(q.x)),
                             static_cast<int>(std::lround(q.y)));
    cv::Mat mask = cv::Mat::zeros(static_cast<int>(height), static_cast<int>(width), CV_8UC1);
    cv::fillConvexPoly(mask, polygon, cv::Scalar(1));
    return torch::from_blob(mask.data, {height, width}, torch::kUInt8).clone();
}

}  // namespace avatar::metrics
