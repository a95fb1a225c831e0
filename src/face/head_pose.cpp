#include "face/head_pose.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "face/canonical_face.h"

namespace avatar::face {
namespace {

constexpr double kRadToDeg = 180.0 / M_PI;

std::string shape_string(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i)
        s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
}

// (1, -1, -1): image frame <-> pose frame (an involution).
torch::Tensor axis_flip(int64_t dims, const torch::TensorOptions& options) {
    return dims == 2 ? torch::tensor({1.0, -1.0}, options)
                     : torch::tensor({1.0, -1.0, -1.0}, options);
}

double scalar_of(const torch::Tensor& t, const char* what) {
    check(t.defined() && t.dim() == 0, std::string("HeadPose::") + what,
          "not an unbatched pose (use the tensors of a batched pose)");
    return t.item<double>();
}

}  // namespace

// @vladmandic/human@3.3.6 src/face/facemeshcoords.ts, VTX68: the mesh vertex of each of the 68
// dlib/iBUG points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67). Same values as
// key vtx68_human_lib of shared/reference/face_models/geometry/landmarks68_to_mesh468.json.
const std::array<int, 68> kMesh468Of68 = {
    127, 234, 132, 58,  172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 454, 356,
    70,  63,  105, 66,  107, 336, 296, 334, 293, 300, 168, 6,   195, 4,   98,  97,  2,
    326, 327, 33,  160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 57,  40,  37,
    0,   267, 270, 287, 321, 314, 17,  84,  91,  78,  81,  13,  311, 308, 402, 14,  178};

double HeadPose::yaw() const {
    return scalar_of(angles.dim() == 1 ? angles[0] : angles, "yaw");
}
double HeadPose::pitch() const {
    return scalar_of(angles.dim() == 1 ? angles[1] : angles, "pitch");
}
double HeadPose::roll() const {
    return scalar_of(angles.dim() == 1 ? angles[2] : angles, "roll");
}
double HeadPose::rms_value() const {
    return scalar_of(rms, "rms");
}

SimilarityFit fit_similarity(const torch::Tensor& src_in, const torch::Tensor& dst_in,
                             const torch::Tensor& weights_in) {
    const std::string subject = "fit_similarity";
    check(src_in.defined() && dst_in.defined(), subject, "undefined point tensor");
    check((src_in.dim() == 2 || src_in.dim() == 3) && (dst_in.dim() == 2 || dst_in.dim() == 3),
          subject,
          "points must be [N, D] or [B, N, D]; got src " + shape_string(src_in) + ", dst " +
              shape_string(dst_in));
    const int64_t n = src_in.size(-2);
    const int64_t d = src_in.size(-1);
    check(d == 2 || d == 3, subject, "points must have D = 2 or 3 coordinates");
    check(dst_in.size(-2) == n && dst_in.size(-1) == d, subject,
          "src " + shape_string(src_in) + " and dst " + shape_string(dst_in) + " differ");
    check(n >= d, subject, "need at least D points");
    check(src_in.is_floating_point() && dst_in.is_floating_point(), subject,
          "points must be floating point");
    const bool batched =
        src_in.dim() == 3 || dst_in.dim() == 3 || (weights_in.defined() && weights_in.dim() == 2);
    int64_t b = 1;
    for (const auto* t : {&src_in, &dst_in, &weights_in})
        if (t->defined() && t->dim() == (t == &weights_in ? 2 : 3))
            b = std::max(b, t->size(0));

    const auto dtype = torch::promote_types(src_in.scalar_type(), dst_in.scalar_type());
    const auto options = dst_in.options().dtype(dtype);
    auto batch = [&](const torch::Tensor& t, int64_t unbatched_dim) {
        auto x = t.to(options);
        if (x.dim() == unbatched_dim)
            x = x.unsqueeze(0);
        check(x.size(0) == b || x.size(0) == 1, subject, "batch sizes differ");
        auto sizes = x.sizes().vec();
        sizes[0] = b;
        return x.expand(sizes);
    };
    const auto src = batch(src_in, 2);  // [B, N, D]
    const auto dst = batch(dst_in, 2);
    torch::Tensor w;
    if (weights_in.defined()) {
        check(weights_in.size(-1) == n && (weights_in.dim() == 1 || weights_in.dim() == 2), subject,
              "weights must be [N] or [B, N]; got " + shape_string(weights_in));
        w = batch(weights_in, 1);
    } else {
        w = torch::ones({b, n}, options);
    }

    const auto wn = (w / w.sum(-1, true)).unsqueeze(-1);  // [B, N, 1], sums to 1
    const auto mu_src = (wn * src).sum(1);                // [B, D]
    const auto mu_dst = (wn * dst).sum(1);
    const auto src_c = src - mu_src.unsqueeze(1);
    const auto dst_c = dst - mu_dst.unsqueeze(1);
    const auto covariance = torch::matmul((dst_c * wn).transpose(1, 2), src_c);  // [B, D, D]
    const auto src_variance = (wn.squeeze(-1) * src_c.pow(2).sum(-1)).sum(-1);   // [B]

    const auto [u, sv, vh] = torch::linalg_svd(covariance, /*full_matrices=*/false);
    // det(U Vh) = -1 means the best orthogonal map is a reflection: flip the last direction.
    const auto sign = torch::sign(torch::linalg_det(u) * torch::linalg_det(vh)).detach();
    const auto last = torch::where(sign < 0, -torch::ones_like(sign), torch::ones_like(sign));
    const auto e = torch::cat({torch::ones({b, d - 1}, options), last.unsqueeze(-1)}, -1);  // [B,D]
    const auto rotation = torch::matmul(u * e.unsqueeze(-2), vh);
    const auto scale = (sv * e).sum(-1) / src_variance;
    const auto translation =
        mu_dst - scale.unsqueeze(-1) * torch::matmul(rotation, mu_src.unsqueeze(-1)).squeeze(-1);
    const auto fitted = scale.view({b, 1, 1}) * torch::matmul(src, rotation.transpose(1, 2)) +
                        translation.unsqueeze(1);
    const auto rms = torch::sqrt((wn.squeeze(-1) * (fitted - dst).pow(2).sum(-1)).sum(-1));

    SimilarityFit fit{scale, rotation, translation, rms};
    if (!batched) {
        fit.scale = fit.scale.squeeze(0);
        fit.rotation = fit.rotation.squeeze(0);
        fit.translation = fit.translation.squeeze(0);
        fit.rms = fit.rms.squeeze(0);
    }
    return fit;
}

torch::Tensor rotation_to_euler_deg(const torch::Tensor& r) {
    check(r.dim() >= 2 && r.size(-1) == 3 && r.size(-2) == 3, "rotation_to_euler_deg",
          "expected [..., 3, 3], got " + shape_string(r));
    auto at = [&](int64_t i, int64_t j) { return r.select(-2, i).select(-1, j); };
    const auto yaw = torch::atan2(at(0, 2), at(2, 2));
    const auto pitch = torch::atan2(-at(1, 2), torch::sqrt(at(1, 0).pow(2) + at(1, 1).pow(2)));
    const auto roll = torch::atan2(at(1, 0), at(1, 1));
    return torch::stack({yaw, pitch, roll}, -1) * kRadToDeg;
}

torch::Tensor euler_deg_to_rotation(const torch::Tensor& angles) {
    check(angles.dim() >= 1 && angles.size(-1) == 3, "euler_deg_to_rotation",
          "expected [..., 3] (yaw, pitch, roll), got " + shape_string(angles));
    const auto a = angles / kRadToDeg;
    const auto cy = torch::cos(a.select(-1, 0)), sy = torch::sin(a.select(-1, 0));
    const auto cp = torch::cos(a.select(-1, 1)), sp = torch::sin(a.select(-1, 1));
    const auto cr = torch::cos(a.select(-1, 2)), sr = torch::sin(a.select(-1, 2));
    // Ry(yaw) Rx(pitch) Rz(roll), written out.
    const auto rows = std::vector<torch::Tensor>{
        torch::stack({cy * cr + sy * sp * sr, -cy * sr + sy * sp * cr, sy * cp}, -1),
        torch::stack({cp * sr, cp * cr, -sp}, -1),
        torch::stack({-sy * cr + cy * sp * sr, sy * sr + cy * sp * cr, cy * cp}, -1)};
    return torch::stack(rows, -2);
}

HeadPose head_pose_from_mesh468(const torch::Tensor& points) {
    const std::string subject = "head_pose_from_mesh468";
    check(points.defined() && (points.dim() == 2 || points.dim() == 3) &&
              points.size(-2) == kMeshVertices && points.size(-1) == 3,
          subject,
          "expected FaceMesh points [468, 3] or [B, 468, 3], got " +
              (points.defined() ? shape_string(points) : std::string("undefined")));
    check(points.is_floating_point(), subject, "points must be floating point");
    const auto& face = canonical_face();
    const auto options = points.options();
    const auto ids = face.procrustes_ids.to(points.device(), torch::kLong);
    const auto flip = axis_flip(3, options);
    const auto fit =
        fit_similarity(face.vertices.to(options).index_select(0, ids),
                       (points * flip).index_select(-2, ids), face.procrustes_weights.to(options));
    HeadPose pose;
    pose.rotation = fit.rotation;
    pose.angles = rotation_to_euler_deg(fit.rotation);
    pose.scale = fit.scale;
    pose.translation = fit.translation * flip;
    pose.rms = fit.rms;
    return pose;
}

torch::Tensor posed_canonical_vertices(const HeadPose& pose) {
    check(pose.rotation.defined() && pose.translation.defined() && pose.scale.defined(),
          "posed_canonical_vertices", "empty pose");
    const auto options = pose.rotation.options();
    const auto vertices = canonical_face().vertices.to(options);  // [468, 3]
    const auto flip = axis_flip(3, options);
    // image = flip * (s R v) + t_image
    const auto rotated = torch::matmul(vertices, pose.rotation.transpose(-1, -2));
    return (pose.scale.unsqueeze(-1).unsqueeze(-1) * rotated) * flip +
           pose.translation.unsqueeze(-2);
}

HeadPose head_pose_from_landmarks68(const torch::Tensor& points_in, const Pose68Options& options) {
    const std::string subject = "head_pose_from_landmarks68";
    check(points_in.defined() && points_in.dim() == 2 && points_in.size(0) == 68 &&
              points_in.size(1) == 2,
          subject,
          "expected face-api points [68, 2], got " +
              (points_in.defined() ? shape_string(points_in) : std::string("undefined")));
    check(points_in.is_floating_point(), subject, "points must be floating point");
    check(options.jaw_weight >= 0, subject, "jaw_weight must be >= 0");
    const auto points = points_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const auto vertices = canonical_face().vertices.to(torch::kFloat64).contiguous();
    const double* p = points.data_ptr<double>();
    const double* v = vertices.data_ptr<double>();

    std::array<cv::Vec3d, 68> model;
    std::array<cv::Vec2d, 68> target;
    std::array<double, 68> weight;
    double weight_sum = 0;
    cv::Vec3d mu_model(0, 0, 0);
    cv::Vec2d mu_target(0, 0);
    for (int k = 0; k < 68; ++k) {
        const int i = kMesh468Of68[size_t(k)];
        model[size_t(k)] = cv::Vec3d(v[3 * i], v[3 * i + 1], v[3 * i + 2]);
        target[size_t(k)] = cv::Vec2d(p[2 * k], -p[2 * k + 1]);  // y up
        check(std::isfinite(p[2 * k]) && std::isfinite(p[2 * k + 1]), subject,
              "point " + std::to_string(k) + " is not finite");
        weight[size_t(k)] = k < 17 ? options.jaw_weight : 1.0;
        weight_sum += weight[size_t(k)];
        mu_model += weight[size_t(k)] * model[size_t(k)];
        mu_target += weight[size_t(k)] * target[size_t(k)];
    }
    mu_model /= weight_sum;
    mu_target /= weight_sum;

    // Closed-form start: weighted least-squares affine A (2x3) of the centred model onto the
    // centred points, then the nearest s * (orthonormal rows).
    cv::Matx33d mm = cv::Matx33d::zeros();
    cv::Matx23d tm = cv::Matx23d::zeros();
    for (size_t k = 0; k < 68; ++k) {
        const cv::Vec3d m = model[k] - mu_model;
        const cv::Vec2d t = target[k] - mu_target;
        mm += weight[k] * (cv::Matx31d(m) * cv::Matx13d(m[0], m[1], m[2]));
        tm += weight[k] * (cv::Matx21d(t) * cv::Matx13d(m[0], m[1], m[2]));
    }
    cv::Matx33d mm_inv;
    check(cv::invert(mm, mm_inv, cv::DECOMP_SVD) > 0, subject, "degenerate canonical vertices");
    const cv::Matx23d affine = tm * mm_inv;
    cv::Mat w_sv, u_sv, vt_sv;
    cv::SVD::compute(cv::Mat(affine), w_sv, u_sv, vt_sv);
    double scale = 0.5 * (w_sv.at<double>(0) + w_sv.at<double>(1));
    check(std::isfinite(scale) && scale > 0, subject, "degenerate points (zero spread)");
    const cv::Mat rows = u_sv * vt_sv;  // 2x3, orthonormal rows
    cv::Vec3d r1(rows.at<double>(0, 0), rows.at<double>(0, 1), rows.at<double>(0, 2));
    cv::Vec3d r2(rows.at<double>(1, 0), rows.at<double>(1, 1), rows.at<double>(1, 2));
    const cv::Vec3d r3 = r1.cross(r2);
    cv::Matx33d rotation(r1[0], r1[1], r1[2], r2[0], r2[1], r2[2], r3[0], r3[1], r3[2]);
    const cv::Vec3d rm = rotation * mu_model;
    cv::Vec2d translation = mu_target - scale * cv::Vec2d(rm[0], rm[1]);

    // Gauss-Newton on the true objective sum w |s P R m + t - x|^2, with R <- R exp([dw]x).
    auto residual_sum = [&]() {
        double sum = 0;
        for (size_t k = 0; k < 68; ++k) {
            const cv::Vec3d q = rotation * model[k];
            const cv::Vec2d r = scale * cv::Vec2d(q[0], q[1]) + translation - target[k];
            sum += weight[k] * r.dot(r);
        }
        return sum;
    };
    for (int iteration = 0; iteration < options.iterations; ++iteration) {
        cv::Matx66d h = cv::Matx66d::zeros();
        cv::Vec6d g(0, 0, 0, 0, 0, 0);
        for (size_t k = 0; k < 68; ++k) {
            const cv::Vec3d q = rotation * model[k];
            const cv::Vec2d r = scale * cv::Vec2d(q[0], q[1]) + translation - target[k];
            // d(R exp([dw]x) m)/d(dw) = -R [m]x
            const cv::Vec3d& m = model[k];
            const cv::Matx33d m_cross(0, -m[2], m[1], m[2], 0, -m[0], -m[1], m[0], 0);
            const cv::Matx33d dq = -1.0 * (rotation * m_cross);
            cv::Matx<double, 2, 6> j;
            for (int c = 0; c < 3; ++c) {
                j(0, c) = scale * dq(0, c);
                j(1, c) = scale * dq(1, c);
            }
            j(0, 3) = q[0];
            j(1, 3) = q[1];
            j(0, 4) = 1;
            j(1, 5) = 1;
            h += weight[k] * (j.t() * j);
            g += weight[k] * (j.t() * r);
        }
        cv::Vec6d step;
        if (!cv::solve(h, -g, step, cv::DECOMP_CHOLESKY))
            break;
        cv::Matx33d update;
        cv::Rodrigues(cv::Vec3d(step[0], step[1], step[2]), update);
        rotation = rotation * update;
        scale += step[3];
        translation += cv::Vec2d(step[4], step[5]);
        if (cv::norm(step) < 1e-12 * (1 + scale))
            break;
    }
    check(std::isfinite(scale) && scale > 0, subject, "the fit diverged");

    const auto out = points_in.options().requires_grad(false);
    const auto r64 = torch::from_blob(rotation.val, {3, 3}, torch::kFloat64).clone();
    HeadPose pose;
    pose.rotation = r64.to(out);
    pose.angles = rotation_to_euler_deg(r64).to(out);
    pose.scale = torch::tensor(scale, torch::kFloat64).to(out);
    pose.translation =
        torch::tensor({translation[0], -translation[1], 0.0}, torch::kFloat64).to(out);
    pose.rms = torch::tensor(std::sqrt(residual_sum() / weight_sum), torch::kFloat64).to(out);
    return pose;
}

torch::Tensor rotation_vector(const torch::Tensor& r) {
    const auto trace = r.diagonal(0, 1, 2).sum(1);
    const auto angle = torch::acos(((trace - 1) / 2).clamp(-1.0, 1.0));  // [N]
    const auto vee = torch::stack({r.select(1, 2).select(1, 1) - r.select(1, 1).select(1, 2),
                                   r.select(1, 0).select(1, 2) - r.select(1, 2).select(1, 0),
                                   r.select(1, 1).select(1, 0) - r.select(1, 0).select(1, 1)},
                                  1) /
                     2;  // sin(angle) * axis
    const auto sin = torch::sin(angle);
    // angle / sin(angle) -> 1 as angle -> 0.
    const auto factor = torch::where(angle < 1e-8, torch::ones_like(angle), angle / sin);
    return vee * factor.unsqueeze(1);
}

torch::Tensor rotation_from_vector(const torch::Tensor& w) {
    const auto theta = w.norm(2, {1}, true).clamp_min(1e-15);
    const auto k = w / theta;
    const auto zero = torch::zeros_like(theta.squeeze(1));
    const auto kx = k.select(1, 0), ky = k.select(1, 1), kz = k.select(1, 2);
    const auto K = torch::stack({zero, -kz, ky, kz, zero, -kx, -ky, kx, zero}, 1).view({-1, 3, 3});
    const auto st = torch::sin(theta).unsqueeze(2), ct = torch::cos(theta).unsqueeze(2);
    return torch::eye(3, w.options()).unsqueeze(0) + st * K + (1 - ct) * K.matmul(K);
}

}  // namespace avatar::face
