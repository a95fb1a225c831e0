#include "engines/otavatar/driving.h"

#include "core/error.h"

namespace avatar::engines::otavatar {

std::pair<torch::Tensor, torch::Tensor> motion_windows(const torch::Tensor& coefficients,
                                                       const std::vector<int64_t>& frames,
                                                       int64_t radius) {
    check(coefficients.dim() == 2 && coefficients.size(1) >= 257, "coefficients",
          "expected Deep3DFaceRecon coefficients [N, 257 or more], got " +
              c10::str(coefficients.sizes()));
    const int64_t n = coefficients.size(0);
    check(n > 0, "coefficients", "no frames");
    const auto per_frame =
        torch::cat({coefficients.slice(1, 80, 144), coefficients.slice(1, 224, 227),
                    coefficients.slice(1, 254, 257)},
                   1);  // [N, 70]
    std::vector<int64_t> indices;
    for (const int64_t frame : frames) {
        check(frame >= 0 && frame < n, "frame " + std::to_string(frame),
              "outside the sequence of " + std::to_string(n) + " frames");
        for (int64_t k = -radius; k <= radius; ++k) {
            indices.push_back(std::min(std::max<int64_t>(frame + k, 0), n - 1));
        }
    }
    const auto index = torch::tensor(indices, torch::kInt64)
                           .reshape({static_cast<int64_t>(frames.size()), 2 * radius + 1});
    const auto windows = per_frame.index_select(0, index.flatten())
                             .reshape({index.size(0), index.size(1), per_frame.size(1)})
                             .transpose(1, 2)
                             .contiguous();
    return {index, windows};
}

torch::Tensor condition_rotations(const torch::Tensor& conditions) {
    check(conditions.dim() == 2 && conditions.size(1) == 7, "camera conditions",
          "expected [N, 7] (euler 3, translation 3, focal 1), got " + c10::str(conditions.sizes()));
    const auto c = conditions.to(torch::kFloat32);
    // The LMDB stores all three angles negated; the official loader flips x and y back.
    const auto ax = -c.select(1, 0), ay = -c.select(1, 1), az = c.select(1, 2);
    const auto one = torch::ones_like(ax), zero = torch::zeros_like(ax);
    auto matrix = [](std::vector<torch::Tensor> entries) {
        return torch::stack(entries, 1).reshape({-1, 3, 3});
    };
    const auto rx = matrix({one, zero, zero, zero, ax.cos(), -ax.sin(), zero, ax.sin(), ax.cos()});
    const auto ry = matrix({ay.cos(), zero, ay.sin(), zero, one, zero, -ay.sin(), zero, ay.cos()});
    const auto rz = matrix({az.cos(), -az.sin(), zero, az.sin(), az.cos(), zero, zero, zero, one});
    return rz.bmm(ry).bmm(rx).transpose(1, 2).contiguous();
}

torch::Tensor conditions_to_cameras(const torch::Tensor& conditions) {
    const auto rotations = condition_rotations(conditions);  // float32 [N, 3, 3]
    const auto translations = conditions.to(torch::kFloat32).slice(1, 3, 6).contiguous();
    const int64_t n = conditions.size(0);
    check(n >= 2, "camera conditions",
          "at least 2 frames are needed (the official temporal average of 1 frame is empty)");
    const auto r = rotations.accessor<float, 3>();
    const auto t = translations.accessor<float, 2>();
    const auto focal = conditions.to(torch::kFloat32).select(1, 6);
    auto cameras = torch::zeros({n, 25}, torch::kFloat64);
    auto out = cameras.accessor<double, 2>();
    for (int64_t i = 0; i < n; ++i) {
        const int64_t begin = std::max<int64_t>(i - 1, 0), end = std::min<int64_t>(i + 2, n - 1);
        const auto count = static_cast<float>(end - begin);
        // float32 means, summed in frame order.
        float mean_r[3][3] = {}, mean_t[3] = {};
        for (int64_t j = begin; j < end; ++j) {
            for (int a = 0; a < 3; ++a) {
                mean_t[a] += t[j][a];
                for (int b = 0; b < 3; ++b)
                    mean_r[a][b] += r[j][a][b];
            }
        }
        for (int a = 0; a < 3; ++a) {
            mean_t[a] /= count;
            for (int b = 0; b < 3; ++b)
                mean_r[a][b] /= count;
        }
        mean_t[2] -= 10.0f;
        float centre[3];
        for (int a = 0; a < 3; ++a) {
            float s = 0.0f;
            for (int b = 0; b < 3; ++b)
                s += mean_r[a][b] * mean_t[b];
            centre[a] = -s * 0.27f;
        }
        centre[1] += 0.015f;
        centre[2] += 0.161f;
        // cam2world: rotation with columns 1 and 2 negated (OpenGL -> OpenCV), translation
        // scaled to EG3D's radius 2.7, in float64.
        for (int a = 0; a < 3; ++a) {
            out[i][4 * a + 0] = mean_r[a][0];
            out[i][4 * a + 1] = -static_cast<double>(mean_r[a][1]);
            out[i][4 * a + 2] = -static_cast<double>(mean_r[a][2]);
            out[i][4 * a + 3] = static_cast<double>(centre[a]) / 4.0 * 2.7;
        }
        out[i][15] = 1.0;
        const double fx = 2985.29 / 700.0 * static_cast<double>(focal[i].item<float>()) / 1050.0;
        const double k[9] = {fx, 0.0, 0.5, 0.0, fx, 0.5, 0.0, 0.0, 1.0};
        for (int a = 0; a < 9; ++a)
            out[i][16 + a] = k[a];
    }
    return cameras.to(torch::kFloat32);
}

torch::Tensor add_intrinsic_bias(const torch::Tensor& cameras, const torch::Tensor& bias) {
    check(cameras.dim() == 2 && cameras.size(1) == 25, "cameras", "expected [B, 25]");
    check(bias.dim() == 2 && bias.size(1) == 18 && bias.size(0) == cameras.size(0),
          "intrinsic bias", "expected [B, 18] (scale 9, shift 9)");
    const auto k = cameras.slice(1, 16, 25);
    const auto scaled = k * (1 + torch::tanh(bias.slice(1, 0, 9))) + bias.slice(1, 9, 18);
    return torch::cat({cameras.slice(1, 0, 16), scaled}, 1);
}

}  // namespace avatar::engines::otavatar
