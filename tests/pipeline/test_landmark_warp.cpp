// The piecewise-affine landmark warp (pipeline/landmark_warp.h): when the target points are an
// affine map of the source points, every triangle moves by that same map, so the whole output is
// the source warped affinely, which this test computes independently with grid_sample.
#include <gtest/gtest.h>

#include "core/error.h"
#include "face/canonical_face.h"
#include "face/face_fixtures.h"
#include "pipeline/landmark_warp.h"

namespace avatar::pipeline {
namespace {
namespace F = torch::nn::functional;

// A smooth, textured test picture, uint8 [256, 256, 3].
torch::Tensor picture() {
    const auto y = torch::arange(256, torch::kFloat32).view({256, 1, 1});
    const auto x = torch::arange(256, torch::kFloat32).view({1, 256, 1});
    const auto c = torch::tensor({0.0f, 1.0f, 2.0f}).view({1, 1, 3});
    return (127.5 + 80 * torch::sin(x * 0.07 + c) * torch::cos(y * 0.05 - c))
        .round()
        .to(torch::kUInt8);
}

// The canonical face as 468 image points, 9 px per cm, centred at (128, 120), with depth.
torch::Tensor face_points() {
    const auto v = face::canonical_face().vertices;
    return torch::stack({v.select(1, 0) * 9 + 128, -v.select(1, 1) * 9 + 120, -v.select(1, 2) * 9},
                        1);
}

// out(p) = source(A^-1 (p - b)) with grid_sample at pixel centres.
torch::Tensor affine_reference(const torch::Tensor& image, const torch::Tensor& a,
                               const torch::Tensor& b) {
    const auto ys = torch::arange(256, torch::kFloat64) + 0.5;
    const auto xs = torch::arange(256, torch::kFloat64) + 0.5;
    const auto p = torch::stack(torch::meshgrid({ys, xs}, "ij"), -1).flip(-1);
    const auto q = (p - b).matmul(torch::inverse(a).t());
    const auto norm = (q / 256.0 * 2 - 1).to(torch::kFloat32).unsqueeze(0);
    const auto s = F::grid_sample(
        image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32), norm,
        F::GridSampleFuncOptions().padding_mode(torch::kBorder).align_corners(false));
    return s[0].permute({1, 2, 0});
}

TEST(LandmarkWarp, AffineTargetsGiveTheAffineWarp) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto image = picture();
    const auto src = face_points();
    // A similarity (rotation 6 degrees, scale 1.1) plus a shift: the background follows it
    // exactly, so the whole frame must match the reference.
    const double a = 6 * M_PI / 180;
    const auto m = torch::tensor(
        {{1.1 * std::cos(a), -1.1 * std::sin(a)}, {1.1 * std::sin(a), 1.1 * std::cos(a)}},
        torch::kFloat64);
    const auto b = torch::tensor({7.0, -4.0}, torch::kFloat64);
    const auto centre = torch::tensor({128.0, 120.0}, torch::kFloat64);
    auto dst = src.clone();
    dst.narrow(1, 0, 2).copy_((src.narrow(1, 0, 2) - centre).matmul(m.t()) + centre + b);
    const auto out = piecewise_affine_warp(image, src, dst).to(torch::kFloat32);
    const auto reference = affine_reference(image, m, b - centre.matmul(m.t()) + centre);
    const auto error = (out - reference).abs();
    // Inside the face the 3x3 samples per pixel average the texture a little; elsewhere the
    // background is resampled at pixel centres like the reference.
    EXPECT_LT(error.mean().item<double>(), 1.0);
    EXPECT_LT(torch::quantile(error.flatten(), 0.99).item<double>(), 8.0);
}

TEST(LandmarkWarp, MovingOnePartMovesOnlyThatPart) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto image = picture();
    const auto src = face_points();
    auto dst = src.clone();
    // Pull the chin points (below y = 150 px) 6 px further down: the forehead stays put.
    const auto chin = dst.select(1, 1) > 150;
    dst.select(1, 1).masked_scatter_(chin, dst.select(1, 1).masked_select(chin) + 6);
    const auto out = piecewise_affine_warp(image, src, dst).to(torch::kInt32);
    const auto in = image.to(torch::kInt32);
    // Forehead inside the face (rows 60..80, columns 100..156): its triangles did not move, so it
    // is the source up to the supersampling's slight smoothing.
    EXPECT_LT((out.narrow(0, 60, 20).narrow(1, 100, 56) - in.narrow(0, 60, 20).narrow(1, 100, 56))
                  .abs()
                  .to(torch::kFloat32)
                  .mean()
                  .item<double>(),
              1.0);
    // Around the chin the picture changed.
    EXPECT_GT((out.narrow(0, 160, 30) - in.narrow(0, 160, 30))
                  .abs()
                  .to(torch::kFloat32)
                  .mean()
                  .item<double>(),
              4.0);
}

TEST(LandmarkWarp, BadInputs) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto image = picture();
    const auto p = face_points();
    EXPECT_THROW(piecewise_affine_warp(image, p.narrow(0, 0, 68), p), Error);
    EXPECT_THROW(piecewise_affine_warp(image.to(torch::kFloat32), p, p), Error);
    auto nan = p.clone();
    nan[3][0] = NAN;
    EXPECT_THROW(piecewise_affine_warp(image, p, nan), Error);
    EXPECT_EQ(piecewise_affine_warp(image, p, p, 128, 96).sizes(),
              (std::vector<int64_t>{128, 96, 3}));
}

}  // namespace
}  // namespace avatar::pipeline
