#include "nn/camera.h"

#include <cmath>

#include "core/error.h"

namespace avatar::nn {
namespace {

// math_utils.normalize_vecs: x / ||x|| with no epsilon. linalg_vector_norm is what torch.norm
// dispatches to, so the rounding is the official one.
torch::Tensor normalize_vectors(const torch::Tensor& v) {
    return v / torch::linalg_vector_norm(v, 2, {-1}, /*keepdim=*/true, c10::nullopt);
}

}  // namespace

torch::Tensor ffhq_intrinsics() {
    return torch::tensor({kFfhqFocal, 0.0, 0.5, 0.0, kFfhqFocal, 0.5, 0.0, 0.0, 1.0},
                         torch::kFloat32)
        .reshape({3, 3});
}

torch::Tensor pack_camera(const torch::Tensor& cam2world, const torch::Tensor& intrinsics) {
    check(cam2world.dim() == 3 && cam2world.size(1) == 4 && cam2world.size(2) == 4, "camera",
          "cam2world must be [B, 4, 4]");
    const int64_t batch = cam2world.size(0);
    auto k = intrinsics;
    if (k.dim() == 2)
        k = k.unsqueeze(0).expand({batch, 3, 3});
    check(k.dim() == 3 && k.size(0) == batch && k.size(1) == 3 && k.size(2) == 3, "camera",
          "intrinsics must be [3, 3] or [B, 3, 3]");
    return torch::cat({cam2world.reshape({batch, 16}), k.reshape({batch, 9}).to(cam2world.dtype())},
                      1);
}

std::pair<torch::Tensor, torch::Tensor> unpack_camera(const torch::Tensor& c) {
    check(c.dim() == 2 && c.size(1) >= 25, "camera", "expects cameras c [B, 25]");
    return {c.narrow(1, 0, 16).reshape({-1, 4, 4}), c.narrow(1, 16, 9).reshape({-1, 3, 3})};
}

torch::Tensor look_at_pose(const torch::Tensor& horizontal, const torch::Tensor& vertical,
                           const torch::Tensor& lookat, double radius) {
    check(horizontal.dim() == 1 && vertical.sizes() == horizontal.sizes(), "look_at_pose",
          "horizontal and vertical angles must be [K] each");
    check(lookat.numel() == 3, "look_at_pose", "lookat must hold 3 numbers");
    const int64_t count = horizontal.size(0);
    const auto h = horizontal.to(torch::kFloat32).reshape({count, 1});
    auto v = vertical.to(torch::kFloat32).reshape({count, 1});
    v = torch::clamp(v, 1e-5, M_PI - 1e-5);
    v = v / M_PI;
    const auto phi = torch::arccos(1 - 2 * v);

    // The sphere is centred on the world origin; x and z use pi - h so that h = pi/2 is frontal.
    const auto sin_phi = radius * torch::sin(phi);
    const auto origin = torch::cat(
        {sin_phi * torch::cos(M_PI - h), radius * torch::cos(phi), sin_phi * torch::sin(M_PI - h)},
        1);
    const auto forward_in = normalize_vectors(lookat.to(torch::kFloat32).reshape({1, 3}) - origin);

    // create_cam2world_matrix: right = -(up x forward), up' = forward x right (OpenCV: y down).
    const auto forward = normalize_vectors(forward_in);
    const auto world_up =
        torch::tensor({0.0f, 1.0f, 0.0f}, torch::kFloat32).expand_as(forward).contiguous();
    const auto right = -normalize_vectors(torch::cross(world_up, forward, -1));
    const auto up = normalize_vectors(torch::cross(forward, right, -1));

    auto rotation = torch::eye(4, torch::kFloat32).unsqueeze(0).repeat({count, 1, 1});
    rotation.narrow(1, 0, 3).narrow(2, 0, 3).copy_(torch::stack({right, up, forward}, -1));
    auto translation = torch::eye(4, torch::kFloat32).unsqueeze(0).repeat({count, 1, 1});
    translation.narrow(1, 0, 3).select(2, 3).copy_(origin);
    return torch::matmul(translation, rotation);
}

torch::Tensor ffhq_camera(double yaw, double pitch) {
    const auto h = torch::tensor({M_PI / 2 + yaw}, torch::kFloat32);
    const auto v = torch::tensor({M_PI / 2 + pitch}, torch::kFloat32);
    const auto lookat = torch::tensor({0.0f, 0.0f, 0.2f}, torch::kFloat32);
    return pack_camera(look_at_pose(h, v, lookat, 2.7), ffhq_intrinsics());
}

}  // namespace avatar::nn
