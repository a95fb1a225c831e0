#include "face/human/facemesh.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "face/human/common.h"
#include "face/human/models.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {
namespace {
constexpr int64_t kMeshSize = 192;
constexpr int64_t kIrisSize = 64;
constexpr int64_t kIrisPoints = 76;  // 71 eye-region points, then 5 iris points
constexpr int64_t kIrisFirst = 71;

// MediaPipe's mesh annotation indices of the eye region (the canonical face mesh's eye contours,
// eyebrows and irises), and where each contour sits among the Iris model's 71 eye-region points.
struct EyeContour {
    std::vector<int> right_mesh, left_mesh;  // mesh vertices of the contour, per eye
    std::vector<int> iris_points;            // the Iris model's points for it, in the same order
    bool lid0;                               // EyeUpper0 / EyeLower0: replaced in every case
};

const std::vector<EyeContour>& eye_contours() {
    static const std::vector<EyeContour> contours{
        // EyeUpper0
        {{246, 161, 160, 159, 158, 157, 173},
         {466, 388, 387, 386, 385, 384, 398},
         {9, 10, 11, 12, 13, 14, 15},
         true},
        // EyeUpper1
        {{247, 30, 29, 27, 28, 56, 190},
         {467, 260, 259, 257, 258, 286, 414},
         {25, 26, 27, 28, 29, 30, 31},
         false},
        // EyeUpper2
        {{113, 225, 224, 223, 222, 221, 189},
         {342, 445, 444, 443, 442, 441, 413},
         {41, 42, 43, 44, 45, 46, 47},
         false},
        // EyeLower0
        {{33, 7, 163, 144, 145, 153, 154, 155, 133},
         {263, 249, 390, 373, 374, 380, 381, 382, 362},
         {0, 1, 2, 3, 4, 5, 6, 7, 8},
         true},
        // EyeLower1
        {{130, 25, 110, 24, 23, 22, 26, 112, 243},
         {359, 255, 339, 254, 253, 252, 256, 341, 463},
         {16, 17, 18, 19, 20, 21, 22, 23, 24},
         false},
        // EyeLower2
        {{226, 31, 228, 229, 230, 231, 232, 233, 244},
         {446, 261, 448, 449, 450, 451, 452, 453, 464},
         {32, 33, 34, 35, 36, 37, 38, 39, 40},
         false},
        // EyeLower3
        {{143, 111, 117, 118, 119, 120, 121, 128, 245},
         {372, 340, 346, 347, 348, 349, 350, 357, 465},
         {54, 55, 56, 57, 58, 59, 60, 61, 62},
         false},
        // EyebrowUpper
        {{156, 70, 63, 105, 66, 107, 55, 193},
         {383, 300, 293, 334, 296, 336, 285, 417},
         {63, 64, 65, 66, 67, 68, 69, 70},
         false},
        // EyebrowLower
        {{35, 124, 46, 53, 52, 65},
         {265, 353, 276, 283, 282, 295},
         {48, 49, 50, 51, 52, 53},
         false},
    };
    return contours;
}

// Eye corners (first and last of EyeLower0), [left, right].
constexpr std::array<std::array<int, 2>, 2> kEyeCorners{{{263, 362}, {33, 133}}};
// Upper/lower lid centres whose depth the iris points take: EyeUpper0[3], EyeLower0[4].
constexpr std::array<std::array<int, 2>, 2> kLidCentres{{{386, 374}, {159, 145}}};

using Points = std::vector<std::array<double, 3>>;

Points to_points(const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().view({-1, 3});
    Points p(static_cast<size_t>(c.size(0)));
    const double* d = c.data_ptr<double>();
    for (size_t i = 0; i < p.size(); ++i)
        p[i] = {d[3 * i], d[3 * i + 1], d[3 * i + 2]};
    return p;
}

torch::Tensor to_tensor(const Points& p) {
    auto t = torch::empty({static_cast<int64_t>(p.size()), 3}, torch::kFloat64);
    double* d = t.data_ptr<double>();
    for (size_t i = 0; i < p.size(); ++i) {
        d[3 * i] = p[i][0];
        d[3 * i + 1] = p[i][1];
        d[3 * i + 2] = p[i][2];
    }
    return t;
}

}  // namespace

torch::Tensor facemesh_preprocess_norm(const torch::Tensor& image, const torch::Tensor& box_yxyx) {
    const auto x = detail::image_batch(image, "facemesh input");
    const auto crop = nn::tfjs::crop_and_resize(x, box_yxyx.to(torch::kFloat32).view({-1, 4}),
                                                kMeshSize, kMeshSize);
    return crop / 255.0f;
}

torch::Tensor facemesh_preprocess(const torch::Tensor& image, const Box& roi) {
    check(image.dim() == 3, "facemesh input", "expected an RGB image [H, W, 3]");
    const double h = static_cast<double>(image.size(0)), w = static_cast<double>(image.size(1));
    return facemesh_preprocess_norm(image,
                                    detail::crop_box_yxyx(roi.y1, roi.x1, roi.y2, roi.x2, h, w));
}

torch::Tensor facemesh_to_image(const torch::Tensor& raw, const Box& roi, bool truncate) {
    const auto p = to_points(raw);
    const double bw = std::abs(roi.x2 - roi.x1), bh = std::abs(roi.y2 - roi.y1);
    const double cx = roi.centre_x(), cy = roi.centre_y();
    const double half = static_cast<double>(kMeshSize) / 2;
    Points out(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
        const double x = bw / kMeshSize * (p[i][0] - half) + cx;
        const double y = bh / kMeshSize * (p[i][1] - half) + cy;
        out[i] = truncate ? std::array<double, 3>{std::trunc(x), std::trunc(y), std::trunc(p[i][2])}
                          : std::array<double, 3>{x, y, bw / kMeshSize * p[i][2]};
    }
    return to_tensor(out);
}

std::pair<torch::Tensor, torch::Tensor> facemesh_run(const torch::Tensor& input) {
    const auto& net = model(Model::kFaceMesh);
    static const size_t mesh_index = net.output_index("output_mesh");
    static const size_t flag_index = net.output_index("output_faceflag");
    const auto out = net.run(input.to(models_device()));
    const auto mesh = out[mesh_index].view({-1, 468, 3});
    const auto flag = out[flag_index].view({-1});
    return {mesh, flag};
}

FaceMeshResult facemesh(const torch::Tensor& image, const Box& roi) {
    torch::NoGradGuard no_grad;
    FaceMeshResult r;
    r.roi = roi;
    r.face = facemesh_preprocess(image, roi);
    const auto [mesh, flag] = facemesh_run(r.face);
    r.raw = mesh[0].to(torch::kCPU);
    r.faceflag = flag[0].item<double>();
    r.face_score = nn::tfjs::js_round(100 * r.faceflag) / 100;
    r.points = facemesh_to_image(r.raw, roi, false);
    r.points_int = facemesh_to_image(r.raw, roi, true);
    return r;
}

std::array<Box, 2> iris_eye_boxes(const torch::Tensor& raw468, double scale) {
    const auto p = to_points(raw468);
    std::array<Box, 2> boxes;
    for (size_t eye = 0; eye < 2; ++eye) {
        const auto& a = p[static_cast<size_t>(kEyeCorners[eye][0])];
        const auto& b = p[static_cast<size_t>(kEyeCorners[eye][1])];
        const Box bounds{std::min(a[0], b[0]), std::min(a[1], b[1]), std::max(a[0], b[0]),
                         std::max(a[1], b[1])};
        boxes[eye] = squared_roi(bounds, scale);
    }
    return boxes;
}

torch::Tensor iris_preprocess(const torch::Tensor& face192, const std::array<Box, 2>& eye_boxes,
                              const std::array<bool, 2>& flip) {
    check(face192.dim() == 4 && face192.size(0) == 1, "iris input",
          "expected the FaceMesh crop [1, 192, 192, 3]");
    std::vector<torch::Tensor> crops;
    const double size = static_cast<double>(kMeshSize);
    for (size_t eye = 0; eye < 2; ++eye) {
        const auto& b = eye_boxes[eye];
        auto crop = nn::tfjs::crop_and_resize(
            face192, detail::crop_box_yxyx(b.y1, b.x1, b.y2, b.x2, size, size).to(face192.device()),
            kIrisSize, kIrisSize);
        if (flip[eye])
            crop = crop.flip({2});
        crops.push_back(crop);
    }
    return torch::cat(crops, 0);
}

IrisResult iris_augment(const torch::Tensor& raw468, const torch::Tensor& iris_raw,
                        const std::array<EyeCrop, 2>& eyes, IrisMode mode) {
    IrisResult r;
    r.eyes = eyes;
    r.raw = iris_raw.detach().to(torch::kCPU).reshape({2, kIrisPoints, 3});
    auto mesh = to_points(raw468);
    check(mesh.size() == 468, "iris", "expected the 468-point FaceMesh output");
    // Eye points in 192-px units (human's getEyeCoords).
    std::array<Points, 2> eye_points;
    for (size_t eye = 0; eye < 2; ++eye) {
        const bool unflip = mode == IrisMode::kLibrary ? eye == 0 : eyes[eye].flipped;
        const auto& box = eyes[eye].box;
        const double bw = std::abs(box.x2 - box.x1), bh = std::abs(box.y2 - box.y1);
        const auto p = to_points(r.raw[static_cast<int64_t>(eye)]);
        for (const auto& q : p) {
            const double u = q[0] / kIrisSize;
            eye_points[eye].push_back(
                {(unflip ? 1 - u : u) * bw + box.x1, q[1] / kIrisSize * bh + box.y1, q[2]});
        }
    }
    // Replace the eye contours where the two eyes' depths agree (human's augmentIris).
    auto replace = [&](size_t eye, bool lids_only) {
        for (const auto& c : eye_contours()) {
            if (lids_only && !c.lid0)
                continue;
            const auto& targets = eye == 0 ? c.left_mesh : c.right_mesh;
            for (size_t j = 0; j < c.iris_points.size(); ++j) {
                const auto& src = eye_points[eye][static_cast<size_t>(c.iris_points[j])];
                auto& dst = mesh[static_cast<size_t>(targets[j])];
                dst = {src[0], src[1], (src[2] + dst[2]) / 2};
            }
        }
    };
    const double depth_difference = mesh[static_cast<size_t>(kEyeCorners[0][0])][2] -
                                    mesh[static_cast<size_t>(kEyeCorners[1][0])][2];
    if (std::abs(depth_difference) < 30) {
        replace(0, false);
        replace(1, false);
    } else if (depth_difference < 1) {
        replace(0, true);
    } else {
        replace(1, true);
    }
    // Iris points take their depth from the lids (human's getAdjustedIrisCoords).
    for (size_t eye = 0; eye < 2; ++eye) {
        const double upper = mesh[static_cast<size_t>(kLidCentres[eye][0])][2];
        const double lower = mesh[static_cast<size_t>(kLidCentres[eye][1])][2];
        const double average = (upper + lower) / 2;
        for (int64_t i = 0; i < 5; ++i) {
            const auto& q = eye_points[eye][static_cast<size_t>(kIrisFirst + i)];
            const double z = i == 2 ? upper : i == 4 ? lower : average;
            mesh.push_back({q[0], q[1], z});
        }
    }
    r.raw478 = to_tensor(mesh);
    return r;
}

IrisResult iris(const FaceMeshResult& mesh, IrisMode mode) {
    torch::NoGradGuard no_grad;
    const auto boxes = iris_eye_boxes(mesh.raw);
    std::array<EyeCrop, 2> eyes;
    const std::array<bool, 2> flip = mode == IrisMode::kLibrary ? std::array<bool, 2>{true, true}
                                                                : std::array<bool, 2>{true, false};
    for (size_t eye = 0; eye < 2; ++eye)
        eyes[eye] = {boxes[eye], flip[eye]};
    const auto input = iris_preprocess(mesh.face, boxes, flip);
    const auto& net = model(Model::kIris);
    const auto raw = net.run(input.to(models_device()))[0];
    auto r = iris_augment(mesh.raw, raw, eyes, mode);
    r.input = input;
    r.points = facemesh_to_image(r.raw478, mesh.roi, false);
    r.points_int = facemesh_to_image(r.raw478, mesh.roi, true);
    r.iris_points = r.points.slice(0, 468, 478);
    return r;
}

}  // namespace avatar::face::human
