#include "face/human/blazeface.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "face/human/common.h"
#include "face/human/models.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {
namespace {
constexpr int64_t kInputSize = 256;
constexpr int64_t kKeypoints = 6;
}  // namespace

torch::Tensor blazeface_preprocess(const torch::Tensor& image) {
    const auto x = detail::image_batch(image, "blazeface input");
    const auto resized = nn::tfjs::resize_bilinear_legacy(x, kInputSize, kInputSize);
    return resized / 127.5f - 1.0f;
}

torch::Tensor blazeface_anchors() {
    std::vector<float> values;
    for (const auto& [stride, per_cell] : {std::pair<int64_t, int>{16, 2}, {32, 6}}) {
        const int64_t grid = (kInputSize + stride - 1) / stride;
        for (int64_t y = 0; y < grid; ++y) {
            for (int64_t x = 0; x < grid; ++x) {
                for (int n = 0; n < per_cell; ++n) {
                    values.push_back(static_cast<float>(stride * (x + 0.5)));
                    values.push_back(static_cast<float>(stride * (y + 0.5)));
                }
            }
        }
    }
    return torch::tensor(values).view({-1, 2});
}

BlazeFaceDecoded blazeface_decode(const torch::Tensor& identity, const torch::Tensor& identity_1,
                                  const torch::Tensor& identity_2,
                                  const torch::Tensor& identity_3) {
    BlazeFaceDecoded d;
    const auto rows512 = torch::cat({identity, identity_2}, 2);
    const auto rows384 = torch::cat({identity_1, identity_3}, 2);
    d.batch = torch::cat({rows512, rows384}, 1).squeeze(0).to(torch::kFloat32);
    check(d.batch.dim() == 2 && d.batch.size(0) == 896 && d.batch.size(1) == 17, "blazeface",
          "unexpected raw output shapes");
    d.anchors = blazeface_anchors().to(d.batch.device());
    // float32 arithmetic in the library's order (decodeBoxes).
    const float size = static_cast<float>(kInputSize);
    const auto centres = d.batch.slice(1, 1, 3) + d.anchors;
    const auto sizes = d.batch.slice(1, 3, 5) / size;
    const auto centres_n = centres / size;
    const auto half = sizes / 2.0f;
    const auto starts = (centres_n - half) * size;
    const auto ends = (centres_n + half) * size;
    d.boxes = torch::cat({starts, ends}, 1);
    d.scores = torch::sigmoid(d.batch.select(1, 0));
    return d;
}

BlazeFaceDecoded blazeface_run(const torch::Tensor& input) {
    const auto& net = model(Model::kBlazeFace);
    static const std::array<size_t, 4> index{
        net.output_index("Identity"), net.output_index("Identity_1"),
        net.output_index("Identity_2"), net.output_index("Identity_3")};
    const auto out = net.run(input.to(models_device()));
    return blazeface_decode(out[index[0]], out[index[1]], out[index[2]], out[index[3]]);
}

std::vector<int64_t> non_max_suppression(const torch::Tensor& boxes, const torch::Tensor& scores,
                                         int max_output, double iou_threshold,
                                         double score_threshold) {
    const auto b = boxes.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const auto s = scores.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t n = s.numel();
    const double* bp = b.data_ptr<double>();
    const double* sp = s.data_ptr<double>();
    std::vector<int64_t> candidates;
    for (int64_t i = 0; i < n; ++i) {
        if (sp[i] > score_threshold)
            candidates.push_back(i);
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](int64_t a, int64_t c) { return sp[a] > sp[c]; });
    auto iou = [&](int64_t i, int64_t j) {
        const double* p = bp + 4 * i;
        const double* q = bp + 4 * j;
        const double ymin_i = std::min(p[0], p[2]), xmin_i = std::min(p[1], p[3]);
        const double ymax_i = std::max(p[0], p[2]), xmax_i = std::max(p[1], p[3]);
        const double ymin_j = std::min(q[0], q[2]), xmin_j = std::min(q[1], q[3]);
        const double ymax_j = std::max(q[0], q[2]), xmax_j = std::max(q[1], q[3]);
        const double area_i = (ymax_i - ymin_i) * (xmax_i - xmin_i);
        const double area_j = (ymax_j - ymin_j) * (xmax_j - xmin_j);
        if (area_i <= 0 || area_j <= 0)
            return 0.0;
        const double iy1 = std::max(ymin_i, ymin_j), ix1 = std::max(xmin_i, xmin_j);
        const double iy2 = std::min(ymax_i, ymax_j), ix2 = std::min(xmax_i, xmax_j);
        const double inter = std::max(iy2 - iy1, 0.0) * std::max(ix2 - ix1, 0.0);
        return inter / (area_i + area_j - inter);
    };
    std::vector<int64_t> kept;
    for (const int64_t c : candidates) {
        if (static_cast<int>(kept.size()) >= max_output)
            break;
        bool keep = true;
        for (const int64_t k : kept) {
            if (iou(c, k) >= iou_threshold) {
                keep = false;
                break;
            }
        }
        if (keep)
            kept.push_back(c);
    }
    return kept;
}

Box squared_roi(const Box& box, double scale, std::array<double, 2>* size) {
    // enlargeBox
    const double cx = box.centre_x(), cy = box.centre_y();
    const double w = std::abs(box.x2 - box.x1), h = std::abs(box.y2 - box.y1);
    const double hw = scale * w / 2, hh = scale * h / 2;
    const Box enlarged{cx - hw, cy - hh, cx + hw, cy + hh};
    // squarifyBox
    const double ecx = enlarged.centre_x(), ecy = enlarged.centre_y();
    const double ew = std::abs(enlarged.x2 - enlarged.x1), eh = std::abs(enlarged.y2 - enlarged.y1);
    const double half = std::max(ew, eh) / 2;
    if (size != nullptr)
        *size = {nn::tfjs::js_round(ew), nn::tfjs::js_round(eh)};
    return {nn::tfjs::js_round(ecx - half), nn::tfjs::js_round(ecy - half),
            nn::tfjs::js_round(ecx + half), nn::tfjs::js_round(ecy + half)};
}

std::array<int64_t, 4> clamp_box(const Box& box, int64_t height, int64_t width) {
    const double x = std::max(0.0, box.x1), y = std::max(0.0, box.y1);
    return {
        static_cast<int64_t>(detail::js_trunc(x)), static_cast<int64_t>(detail::js_trunc(y)),
        static_cast<int64_t>(detail::js_trunc(std::min(static_cast<double>(width), box.x2) - x)),
        static_cast<int64_t>(detail::js_trunc(std::min(static_cast<double>(height), box.y2) - y))};
}

std::vector<FaceDetection> blazeface_detections(const BlazeFaceDecoded& decoded, int64_t height,
                                                int64_t width, const BlazeFaceOptions& options) {
    const auto picks = non_max_suppression(decoded.boxes, decoded.scores, options.max_detected,
                                           options.iou_threshold, options.min_confidence);
    const auto boxes = decoded.boxes.detach().to(torch::kCPU, torch::kFloat64);
    const auto batch = decoded.batch.detach().to(torch::kCPU, torch::kFloat64);
    const auto anchors = decoded.anchors.detach().to(torch::kCPU, torch::kFloat64);
    const auto scores = decoded.scores.detach().to(torch::kCPU, torch::kFloat64);
    const double fx = static_cast<double>(width) / kInputSize;
    const double fy = static_cast<double>(height) / kInputSize;
    std::vector<FaceDetection> detections;
    for (const int64_t i : picks) {
        FaceDetection d;
        d.anchor = static_cast<int>(i);
        d.score = scores[i].item<double>();
        if (!(d.score > options.min_confidence))
            continue;
        const auto b = boxes[i];
        d.box = {b[0].item<double>() * fx, b[1].item<double>() * fy, b[2].item<double>() * fx,
                 b[3].item<double>() * fy};
        const double ax = anchors[i][0].item<double>(), ay = anchors[i][1].item<double>();
        for (int64_t k = 0; k < kKeypoints; ++k) {
            d.keypoints[static_cast<size_t>(k)] = {(batch[i][5 + 2 * k].item<double>() + ax) * fx,
                                                   (batch[i][6 + 2 * k].item<double>() + ay) * fy};
        }
        d.roi = squared_roi(d.box, options.scale, &d.size);
        if (!(d.size[0] > 0 && d.size[1] > 0))
            continue;
        d.box_xywh = clamp_box(d.roi, height, width);
        d.box_score = nn::tfjs::js_round(100 * d.score) / 100;
        detections.push_back(d);
    }
    return detections;
}

std::vector<FaceDetection> detect_blazeface(const torch::Tensor& image,
                                            const BlazeFaceOptions& options) {
    torch::NoGradGuard no_grad;
    const auto decoded = blazeface_run(blazeface_preprocess(image));
    return blazeface_detections(decoded, image.size(0), image.size(1), options);
}

}  // namespace avatar::face::human
