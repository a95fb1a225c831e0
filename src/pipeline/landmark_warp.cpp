#include "pipeline/landmark_warp.h"

#include <cstring>

#include "core/error.h"
#include "face/canonical_face.h"
#include "face/head_pose.h"
#include "synth/rasterizer.h"

namespace avatar::pipeline {
namespace {
namespace F = torch::nn::functional;

// The source resampled through the similarity that maps source points onto target points:
// float [out_h, out_w, 3] in [0, 1].
torch::Tensor similarity_background(const torch::Tensor& image01, const torch::Tensor& src,
                                    const torch::Tensor& dst, int64_t out_h, int64_t out_w) {
    const auto fit = face::fit_similarity(src, dst);  // dst = s R src + t
    const double s = fit.scale.item<double>();
    const auto r = fit.rotation;  // [2, 2]
    const auto t = fit.translation;
    // For every output pixel centre p: source point q = R^T (p - t) / s.
    const auto ys = torch::arange(out_h, torch::kFloat64) + 0.5;
    const auto xs = torch::arange(out_w, torch::kFloat64) + 0.5;
    const auto grid = torch::stack(torch::meshgrid({ys, xs}, "ij"), -1).flip(-1);  // [H, W, (x, y)]
    const auto q = (grid - t).matmul(r) / s;  // row vectors: (p - t) R = (R^T (p - t))^T
    const int64_t h = image01.size(0), w = image01.size(1);
    // grid_sample with align_corners = false: -1 and 1 are the outer pixel edges.
    const auto norm = torch::stack({q.select(2, 0) / static_cast<double>(w) * 2 - 1,
                                    q.select(2, 1) / static_cast<double>(h) * 2 - 1},
                                   -1)
                          .to(torch::kFloat32)
                          .unsqueeze(0);
    const auto sampled = F::grid_sample(image01.permute({2, 0, 1}).unsqueeze(0), norm,
                                        F::GridSampleFuncOptions()
                                            .mode(torch::kBilinear)
                                            .padding_mode(torch::kBorder)
                                            .align_corners(false));
    return sampled[0].permute({1, 2, 0}).contiguous();
}

}  // namespace

torch::Tensor piecewise_affine_warp(const torch::Tensor& source, const torch::Tensor& source_points,
                                    const torch::Tensor& target_points, int64_t out_height,
                                    int64_t out_width) {
    avatar::check(source.dim() == 3 && source.size(2) == 3 && source.scalar_type() == torch::kUInt8,
                  "piecewise_affine_warp", "the source must be uint8 [H, W, 3]");
    for (const auto* p : {&source_points, &target_points})
        avatar::check(p->dim() == 2 && p->size(0) == 468 && (p->size(1) == 2 || p->size(1) == 3),
                      "piecewise_affine_warp", "points must be [468, 2 or 3] (FaceMesh order)");
    avatar::check(
        source_points.isfinite().all().item<bool>() && target_points.isfinite().all().item<bool>(),
        "piecewise_affine_warp", "points must be finite (a frame without a face?)");
    const int64_t h = source.size(0), w = source.size(1);
    const int64_t out_h = out_height > 0 ? out_height : h, out_w = out_width > 0 ? out_width : w;
    torch::NoGradGuard no_grad;
    const auto image01 = source.to(torch::kFloat32) / 255;
    const auto src2 = source_points.narrow(1, 0, 2).to(torch::kFloat64);
    const auto dst2 = target_points.narrow(1, 0, 2).to(torch::kFloat64);
    const auto background = similarity_background(image01, src2, dst2, out_h, out_w);

    // The face: the target mesh on the screen, textured with the source through UV = the
    // source points (normalised), so each triangle maps affinely (perspective off).
    synth::Texture texture(static_cast<int>(w), static_cast<int>(h));
    std::memcpy(texture.rgb.data(), image01.contiguous().data_ptr<float>(),
                texture.rgb.size() * sizeof(float));
    auto screen = torch::zeros({468, 3}, torch::kFloat32);
    screen.narrow(1, 0, 2).copy_(dst2);
    if (target_points.size(1) == 3)
        screen.select(1, 2).copy_(target_points.select(1, 2));
    screen = screen.contiguous();
    const auto uv =
        (src2 / torch::tensor({static_cast<double>(w), static_cast<double>(h)}, torch::kFloat64))
            .to(torch::kFloat32)
            .contiguous();
    const auto triangles = face::canonical_face().triangles.to(torch::kInt32).contiguous();
    synth::MeshView mesh;
    mesh.screen = screen.data_ptr<float>();
    mesh.uv = uv.data_ptr<float>();
    mesh.triangles = triangles.data_ptr<int32_t>();
    mesh.vertex_count = 468;
    mesh.triangle_count = triangles.size(0);
    mesh.texture = &texture;
    synth::RenderSettings settings;
    settings.width = static_cast<int>(out_w);
    settings.height = static_cast<int>(out_h);
    settings.supersample = 3;
    settings.perspective = false;
    settings.background = background.data_ptr<float>();
    synth::Rasterizer rasterizer;
    synth::RenderOutput out;
    rasterizer.render({mesh}, settings, out);
    return (out.rgb_tensor() * 255).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace avatar::pipeline
