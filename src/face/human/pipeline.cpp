#include "face/human/pipeline.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {
namespace {

using Vec3 = std::array<double, 3>;

Vec3 normalise(Vec3 v) {
    const double length = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    v[0] /= length;
    v[1] /= length;
    v[2] /= length;
    return v;
}

Vec3 sub(const Vec3& a, const Vec3& b) {
    return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}

Vec3 cross(const Vec3& a, const Vec3& b) {
    return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

}  // namespace

FaceRotation human_face_angle(const torch::Tensor& mesh_raw, const torch::Tensor& mesh_int,
                              const std::array<double, 4>& box_raw, int64_t height, int64_t width) {
    FaceRotation r;
    r.matrix = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const auto raw = mesh_raw.to(torch::kCPU, torch::kFloat64).contiguous();
    if (raw.size(0) < 300)
        return r;
    const double* m = raw.data_ptr<double>();
    const double w = static_cast<double>(width), h = static_cast<double>(height);
    const double size = std::max(box_raw[2] * w, box_raw[3] * h) / 1.5;
    auto point = [&](int i) {
        const double* p = m + 3 * i;
        return Vec3{p[0] * w / size, p[1] * h / size, p[2]};
    };
    const Vec3 top = point(10), bottom = point(152), left = point(234), right = point(454);
    const Vec3 y_axis = normalise(sub(bottom, top));
    Vec3 x_axis = normalise(sub(right, left));
    const Vec3 z_axis = normalise(cross(x_axis, y_axis));
    x_axis = cross(y_axis, z_axis);
    r.matrix = {x_axis[0], x_axis[1], x_axis[2], y_axis[0], y_axis[1],
                y_axis[2], z_axis[0], z_axis[1], z_axis[2]};
    // Euler angles (YZX), human's rotationMatrixToEulerAngle.
    const double r00 = r.matrix[0], r10 = r.matrix[3], r11 = r.matrix[4], r12 = r.matrix[5];
    const double r20 = r.matrix[6], r21 = r.matrix[7], r22 = r.matrix[8];
    const double pi = std::acos(-1.0);
    double tx = 0, ty = 0, tz = 0;
    if (r10 < 1) {
        if (r10 > -1) {
            tz = std::atan2(r10, std::sqrt(r00 * r00 + r20 * r20));
            ty = std::atan2(-r20, r00);
            tx = std::atan2(-r12, r11);
        } else {
            tz = -pi / 2;
            ty = -std::atan2(r21, r22);
        }
    } else {
        tz = pi / 2;
        ty = std::atan2(r21, r22);
    }
    r.pitch = std::isnan(tx) ? 0 : -tx;
    r.yaw = std::isnan(ty) ? 0 : -ty;
    r.roll = std::isnan(tz) ? 0 : -tz;

    // Gaze from the iris points (478-point meshes only).
    const auto mi = mesh_int.to(torch::kCPU, torch::kFloat64).contiguous();
    if (mi.size(0) == 478) {
        const double* q = mi.data_ptr<double>();
        auto X = [&](int i) { return q[3 * i]; };
        auto Y = [&](int i) { return q[3 * i + 1]; };
        auto Z = [&](int i) { return q[3 * i + 2]; };
        const bool use_right = Z(33) > Z(263);
        const int iris_centre = use_right ? 473 : 468;
        const double ecx = use_right ? (X(133) + X(33)) / 2 : (X(263) + X(362)) / 2;
        const double ecy = use_right ? (Y(133) + Y(33)) / 2 : (Y(263) + Y(362)) / 2;
        const double esx = use_right ? X(133) - X(33) : X(263) - X(362);
        const double esy = use_right ? Y(23) - Y(27) : Y(253) - Y(257);
        const double dx = (ecx - X(iris_centre)) / esx - 0.0;
        const double dy = 1.0 * (Y(iris_centre) - ecy) / esy - (-0.1);
        double strength = std::sqrt(dx * dx + dy * dy);
        strength = std::min({strength, box_raw[2] / 2, box_raw[3] / 2});
        r.gaze_strength = strength;
        r.gaze_bearing = std::fmod(std::atan2(0 - dy, 0 - dx) + pi / 2, pi);
    }
    return r;
}

double human_camera_distance(const torch::Tensor& mesh_int, int64_t width) {
    const auto m = mesh_int.to(torch::kCPU, torch::kFloat64).contiguous();
    if (m.size(0) < 478)
        return 0;
    const double* q = m.data_ptr<double>();
    auto X = [&](int i) { return q[3 * i]; };
    const double iris_size =
        std::max(std::abs(X(468 + 3) - X(468 + 1)), std::abs(X(473 + 3) - X(473 + 1))) /
        static_cast<double>(width);
    return nn::tfjs::js_round(1.17 / iris_size) / 100;
}

std::vector<HumanFace> human_detect(const torch::Tensor& image, const HumanOptions& options) {
    torch::NoGradGuard no_grad;
    check(image.dim() == 3 && image.size(2) == 3, "human_detect",
          "expected an RGB image [H, W, 3]");
    const int64_t height = image.size(0), width = image.size(1);
    const double min_confidence = options.detector.min_confidence;
    std::vector<HumanFace> faces;
    for (const auto& det : detect_blazeface(image, options.detector)) {
        HumanFace f;
        f.detection = det;
        f.box_score = det.box_score;
        f.size = det.size;
        if (!options.mesh) {
            f.box = det.box_xywh;
            f.box_raw = {det.roi.x1 / width, det.roi.y1 / height, det.roi.width() / width,
                         det.roi.height() / height};
            f.score = f.box_score;
            if (f.score > min_confidence)
                faces.push_back(std::move(f));
            continue;
        }
        f.mesh = facemesh(image, det.roi);
        f.face_score = f.mesh.face_score;
        if (f.face_score < min_confidence)
            continue;  // human drops the face (keepInvalid is off)
        if (options.iris) {
            f.iris = iris(f.mesh, options.iris_mode);
            f.mesh_int = f.iris->points_int;
        } else {
            f.mesh_int = f.mesh.points_int;
        }
        f.mesh_raw = f.mesh_int /
                     torch::tensor({static_cast<double>(width), static_cast<double>(height), 192.0},
                                   torch::kFloat64);
        f.score = f.face_score;
        // human's calculateFaceBox: the ROI's size about the mesh's extent centre.
        const auto xs = f.mesh_int.select(1, 0), ys = f.mesh_int.select(1, 1);
        const double min_x = xs.min().item<double>(), max_x = xs.max().item<double>();
        const double min_y = ys.min().item<double>(), max_y = ys.max().item<double>();
        const double cx = min_x + (max_x - min_x) / 2, cy = min_y + (max_y - min_y) / 2;
        const double bw = std::abs(det.roi.x2 - det.roi.x1), bh = std::abs(det.roi.y2 - det.roi.y1);
        const Box face_box{cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2};
        f.box = clamp_box(face_box, height, width);
        f.box_raw = {face_box.x1 / width, face_box.y1 / height, face_box.width() / width,
                     face_box.height() / height};
        if (f.score > min_confidence)
            faces.push_back(std::move(f));
    }
    for (auto& f : faces) {
        if (!options.mesh)
            continue;
        if (f.mesh_int.size(0) > 200)
            f.rotation = human_face_angle(f.mesh_raw, f.mesh_int, f.box_raw, height, width);
        if (options.emotion) {
            const auto probs = emotion_run(emotion_preprocess(f.mesh.face))[0];
            f.emotion_probs = probs;
            f.emotion = emotion_list(probs, options.emotion_min_confidence);
        }
        if (options.description) {
            f.faceres = faceres_run(faceres_preprocess(f.mesh.face));
            f.attributes = faceres_attributes(f.faceres->gender, f.faceres->age,
                                              options.description_min_confidence);
        }
        if (options.iris)
            f.distance = human_camera_distance(f.mesh_int, width);
    }
    return faces;
}

}  // namespace avatar::face::human
