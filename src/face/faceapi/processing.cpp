#include "face/faceapi/processing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::faceapi {
namespace {
using nn::tfjs::js_round;

// Per-channel RGB means of the nets (float32 constants in the library).
constexpr float kTinyDetectorMean[3] = {117.001f, 114.697f, 97.404f};
constexpr float kFaceMean[3] = {122.782f, 117.001f, 104.298f};

// The five Tiny-YOLO anchors (width, height) in grid cells.
constexpr double kTinyAnchors[5][2] = {{1.603231, 2.094468},
                                       {6.041143, 7.080126},
                                       {2.882459, 3.518061},
                                       {4.266906, 5.178857},
                                       {9.041765, 10.66308}};

torch::Tensor mean_rgb(const float (&mean)[3], const torch::Tensor& like) {
    return torch::tensor({mean[0], mean[1], mean[2]}, like.options().dtype(torch::kFloat32));
}

double sigmoid(double x) {
    return 1.0 / (1.0 + std::exp(-x));
}

double iou(const std::array<double, 4>& a, const std::array<double, 4>& b) {
    const double overlap_w = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
    const double overlap_h = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
    const double intersection = overlap_w * overlap_h;
    const double area_a = (a[2] - a[0]) * (a[3] - a[1]);
    const double area_b = (b[2] - b[0]) * (b[3] - b[1]);
    return intersection / (area_a + area_b - intersection);
}

// A [rows, cols] tensor as float64 on the CPU, for the scalar post-processing.
torch::Tensor host_double(const torch::Tensor& t) {
    return t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

struct Point {
    double x, y;
};

// The mean of points [begin, end), summed in order like the library.
Point mean_point(const torch::Tensor& points, int64_t begin, int64_t end) {
    const auto p = points.accessor<double, 2>();
    Point sum{0.0, 0.0};
    for (int64_t i = begin; i < end; ++i) {
        sum.x += p[i][0];
        sum.y += p[i][1];
    }
    const double n = static_cast<double>(end - begin);
    return {sum.x / n, sum.y / n};
}

torch::Tensor host_points(const torch::Tensor& points) {
    check(points.dim() == 2 && points.size(0) == kLandmarkCount && points.size(1) == 2, "landmarks",
          "expected 68 points [68, 2]");
    return host_double(points);
}

}  // namespace

// ---- preprocessing ----------------------------------------------------------------------------

void check_image(const torch::Tensor& image, const char* subject) {
    check(image.defined() && image.dim() == 3 && image.size(2) == 3, subject,
          "expected an RGB image [H, W, 3], got " +
              (image.defined()
                   ? std::to_string(image.dim()) + " dimensions" +
                         (image.dim() == 3 ? " with " + std::to_string(image.size(2)) + " channels"
                                           : std::string())
                   : std::string("no tensor")));
    check(image.size(0) > 0 && image.size(1) > 0, subject, "empty image");
    check(image.scalar_type() != torch::kBool && !image.is_complex(), subject,
          "expected a real-valued image");
}

torch::Tensor to_batch_tensor(const torch::Tensor& image, int64_t size, bool centred) {
    check_image(image);
    check(size > 0, "toBatchTensor", "the input size must be positive");
    auto x = image.to(torch::kFloat32).unsqueeze(0);
    x = nn::tfjs::pad_to_square(x, centred);
    if (x.size(1) != size)
        x = nn::tfjs::resize_bilinear_legacy(x, size, size);
    return x;
}

torch::Tensor normalize_tiny_detector(const torch::Tensor& x) {
    return (x - mean_rgb(kTinyDetectorMean, x)) / 255.0f;
}

torch::Tensor normalize_ssd(const torch::Tensor& x) {
    return x / 127.5f - 1.0f;
}

torch::Tensor normalize_face(const torch::Tensor& x) {
    return (x - mean_rgb(kFaceMean, x)) / 255.0f;
}

torch::Tensor tiny_detector_input(const torch::Tensor& image, int64_t input_size) {
    check(input_size >= 32 && input_size % 32 == 0, "TinyFaceDetector",
          "the input size must be a positive multiple of 32, got " + std::to_string(input_size));
    return normalize_tiny_detector(to_batch_tensor(image, input_size, /*centred=*/false));
}

torch::Tensor ssd_input(const torch::Tensor& image) {
    return normalize_ssd(to_batch_tensor(image, kSsdInputSize, /*centred=*/false));
}

torch::Tensor face_net_input(const torch::Tensor& image, const std::vector<CropRect>& crops,
                             int64_t size) {
    check_image(image);
    std::vector<torch::Tensor> inputs;
    inputs.reserve(crops.size());
    for (const auto& c : crops) {
        check(c.width > 0 && c.height > 0 && c.x >= 0 && c.y >= 0 &&
                  c.x + c.width <= image.size(1) && c.y + c.height <= image.size(0),
              "face crop",
              "crop (" + std::to_string(c.x) + ", " + std::to_string(c.y) + ", " +
                  std::to_string(c.width) + "x" + std::to_string(c.height) +
                  ") does not lie inside the " + std::to_string(image.size(1)) + "x" +
                  std::to_string(image.size(0)) + " image");
        const auto crop = image.slice(0, c.y, c.y + c.height).slice(1, c.x, c.x + c.width);
        inputs.push_back(to_batch_tensor(crop, size, /*centred=*/true));
    }
    if (inputs.empty())
        return torch::empty({0, size, size, 3}, image.options().dtype(torch::kFloat32));
    return normalize_face(torch::cat(inputs, 0));
}

std::pair<int64_t, int64_t> reshaped_dimensions(int64_t width, int64_t height, int64_t size) {
    const double scale = static_cast<double>(size) / static_cast<double>(std::max(width, height));
    return {static_cast<int64_t>(js_round(static_cast<double>(width) * scale)),
            static_cast<int64_t>(js_round(static_cast<double>(height) * scale))};
}

// ---- detection --------------------------------------------------------------------------------

std::vector<int64_t> non_max_suppression(const std::vector<std::array<double, 4>>& boxes,
                                         const std::vector<double>& scores, double iou_threshold,
                                         int64_t max_results) {
    check(boxes.size() == scores.size(), "non_max_suppression",
          "boxes and scores differ in number");
    std::vector<int64_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    std::vector<int64_t> kept;
    for (const auto candidate : order) {
        if (max_results > 0 && static_cast<int64_t>(kept.size()) >= max_results)
            break;
        const bool overlaps = std::any_of(kept.begin(), kept.end(), [&](int64_t k) {
            return iou(boxes[candidate], boxes[k]) > iou_threshold;
        });
        if (!overlaps)
            kept.push_back(candidate);
    }
    return kept;
}

std::vector<Detection> decode_tiny_detector(const torch::Tensor& raw, int64_t image_width,
                                            int64_t image_height,
                                            const TinyDetectorParams& params) {
    const auto grid = raw.dim() == 4 ? raw.squeeze(0) : raw;
    check(grid.dim() == 3 && grid.size(0) == grid.size(1) && grid.size(2) == 25,
          "TinyFaceDetector output", "expected the raw grid [G, G, 25] (NHWC)");
    check(image_width > 0 && image_height > 0, "TinyFaceDetector", "empty image");
    const int64_t cells = grid.size(0);
    const auto values = host_double(grid);
    const double* v = values.data_ptr<double>();

    // Boxes are relative to the padded square; these factors make them relative to the image.
    const auto [reshaped_w, reshaped_h] =
        reshaped_dimensions(image_width, image_height, params.input_size);
    const double correction_x = static_cast<double>(params.input_size) / reshaped_w;
    const double correction_y = static_cast<double>(params.input_size) / reshaped_h;
    const double n = static_cast<double>(cells);

    std::vector<std::array<double, 4>> corners;
    std::vector<double> scores;
    for (int64_t row = 0; row < cells; ++row) {
        for (int64_t col = 0; col < cells; ++col) {
            for (int64_t a = 0; a < 5; ++a) {
                const double* t = v + ((row * cells + col) * 25 + a * 5);
                const double score = sigmoid(t[4]);
                if (!(score > params.score_threshold))
                    continue;
                const double center_x =
                    (static_cast<double>(col) + sigmoid(t[0])) / n * correction_x;
                const double center_y =
                    (static_cast<double>(row) + sigmoid(t[1])) / n * correction_y;
                const double w = std::exp(t[2]) * kTinyAnchors[a][0] / n * correction_x;
                const double h = std::exp(t[3]) * kTinyAnchors[a][1] / n * correction_y;
                corners.push_back(
                    {center_x - w / 2, center_y - h / 2, center_x + w / 2, center_y + h / 2});
                scores.push_back(score);
            }
        }
    }
    std::vector<Detection> detections;
    for (const auto i : non_max_suppression(corners, scores, params.iou_threshold)) {
        const auto& c = corners[static_cast<size_t>(i)];
        detections.push_back({static_cast<float>(c[0] * image_width),
                              static_cast<float>(c[1] * image_height),
                              static_cast<float>((c[2] - c[0]) * image_width),
                              static_cast<float>((c[3] - c[1]) * image_height),
                              static_cast<float>(scores[static_cast<size_t>(i)])});
    }
    return detections;
}

SsdDecoded decode_ssd(const torch::Tensor& box_encodings, const torch::Tensor& class_logits,
                      const torch::Tensor& anchors) {
    check(box_encodings.dim() == 2 && box_encodings.size(1) == 4, "SSD box encodings",
          "expected [K, 4]");
    check(class_logits.dim() == 2 && class_logits.size(1) == 3 &&
              class_logits.size(0) == box_encodings.size(0),
          "SSD class logits", "expected [K, 3] with the K of the box encodings");
    check(anchors.dim() == 2 && anchors.size(1) == 4 && anchors.size(0) == box_encodings.size(0),
          "SSD anchors", "expected [K, 4] with the K of the box encodings");
    const auto a = anchors.to(box_encodings.device(), box_encodings.scalar_type());
    const auto anchor_h = a.select(1, 2) - a.select(1, 0);
    const auto anchor_w = a.select(1, 3) - a.select(1, 1);
    const auto anchor_cy = a.select(1, 0) + anchor_h / 2;
    const auto anchor_cx = a.select(1, 1) + anchor_w / 2;
    const auto center_y = box_encodings.select(1, 0) / 10 * anchor_h + anchor_cy;
    const auto center_x = box_encodings.select(1, 1) / 10 * anchor_w + anchor_cx;
    const auto half_h = torch::exp(box_encodings.select(1, 2) / 5) * anchor_h / 2;
    const auto half_w = torch::exp(box_encodings.select(1, 3) / 5) * anchor_w / 2;
    auto boxes = torch::stack(
        {center_y - half_h, center_x - half_w, center_y + half_h, center_x + half_w}, 1);
    return {boxes, torch::sigmoid(class_logits.select(1, 1))};
}

SsdSelection select_ssd_detections(const SsdDecoded& decoded, int64_t image_width,
                                   int64_t image_height, const SsdParams& params) {
    check(image_width > 0 && image_height > 0, "SsdMobilenetV1", "empty image");
    const auto boxes = host_double(decoded.boxes_yxyx);
    const auto scores = host_double(decoded.scores);
    const int64_t count = scores.size(0);
    const double* b = boxes.data_ptr<double>();
    const double* s = scores.data_ptr<double>();

    std::vector<int64_t> candidates;
    std::vector<std::array<double, 4>> candidate_boxes;  // (y1, x1, y2, x2): IoU is axis-agnostic
    std::vector<double> candidate_scores;
    for (int64_t i = 0; i < count; ++i) {
        if (s[i] > params.min_confidence) {
            candidates.push_back(i);
            candidate_boxes.push_back({b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]});
            candidate_scores.push_back(s[i]);
        }
    }
    const auto [reshaped_w, reshaped_h] =
        reshaped_dimensions(image_width, image_height, kSsdInputSize);
    const double scale_y = static_cast<double>(kSsdInputSize) / reshaped_h;
    const double scale_x = static_cast<double>(kSsdInputSize) / reshaped_w;

    SsdSelection selection;
    for (const auto k : non_max_suppression(candidate_boxes, candidate_scores, params.iou_threshold,
                                            params.max_results)) {
        const int64_t i = candidates[static_cast<size_t>(k)];
        auto clip = [](double value) { return std::clamp(value, 0.0, 1.0); };
        const double top = clip(b[4 * i]) * scale_y, left = clip(b[4 * i + 1]) * scale_x;
        const double bottom = clip(b[4 * i + 2]) * scale_y, right = clip(b[4 * i + 3]) * scale_x;
        selection.indices.push_back(i);
        selection.detections.push_back(
            {static_cast<float>(left * image_width), static_cast<float>(top * image_height),
             static_cast<float>((right - left) * image_width),
             static_cast<float>((bottom - top) * image_height), static_cast<float>(s[i])});
    }
    return selection;
}

// ---- landmarks and face crops ----------------------------------------------------------------

CropRect clip_at_image_borders(const Box& box, int64_t image_width, int64_t image_height) {
    const double x = std::max(box.x, 0.0);
    const double y = std::max(box.y, 0.0);
    const double width = std::min(box.x + box.width - x, static_cast<double>(image_width) - x);
    const double height = std::min(box.y + box.height - y, static_cast<double>(image_height) - y);
    CropRect crop{static_cast<int64_t>(std::floor(x)), static_cast<int64_t>(std::floor(y)),
                  static_cast<int64_t>(std::floor(width)),
                  static_cast<int64_t>(std::floor(height))};
    check(crop.width > 0 && crop.height > 0 && crop.x < image_width && crop.y < image_height,
          "face box",
          "the box (" + std::to_string(box.x) + ", " + std::to_string(box.y) + ", " +
              std::to_string(box.width) + "x" + std::to_string(box.height) +
              ") has no pixel inside the " + std::to_string(image_width) + "x" +
              std::to_string(image_height) + " image");
    return crop;
}

torch::Tensor landmarks_relative(const torch::Tensor& raw, const std::vector<CropRect>& crops) {
    check(raw.dim() == 2 && raw.size(1) == 2 * kLandmarkCount &&
              raw.size(0) == static_cast<int64_t>(crops.size()),
          "landmark output", "expected [N, 136] with one row per crop");
    const double size = static_cast<double>(kFaceNetInputSize);
    std::vector<torch::Tensor> rows;
    for (size_t i = 0; i < crops.size(); ++i) {
        const double w = static_cast<double>(crops[i].width);
        const double h = static_cast<double>(crops[i].height);
        // The crop's extent inside the 112 input, and the padding the library assumes.
        const double scale = size / std::max(w, h);
        const double inner_w = w * scale, inner_h = h * scale;
        const double pad_x = inner_h > inner_w ? (inner_h - inner_w) / 2 : 0.0;
        const double pad_y = inner_w > inner_h ? (inner_w - inner_h) / 2 : 0.0;
        const auto xy = raw[static_cast<int64_t>(i)].reshape({kLandmarkCount, 2});
        const auto x = (xy.select(1, 0) * size - pad_x) / inner_w;
        const auto y = (xy.select(1, 1) * size - pad_y) / inner_h;
        rows.push_back(torch::stack({x, y}, 1).reshape({2 * kLandmarkCount}));
    }
    if (rows.empty())
        return torch::empty({0, 2 * kLandmarkCount}, raw.options());
    return torch::stack(rows);
}

torch::Tensor landmarks_to_image(const torch::Tensor& relative, const CropRect& crop,
                                 double origin_x, double origin_y) {
    check(relative.numel() == 2 * kLandmarkCount, "relative landmarks",
          "expected 136 values (68 x, y pairs)");
    const auto xy = relative.reshape({kLandmarkCount, 2}).to(torch::kFloat64);
    const auto scale = torch::tensor(
        {static_cast<double>(crop.width), static_cast<double>(crop.height)}, xy.options());
    const auto shift = torch::tensor({origin_x, origin_y}, xy.options());
    return xy * scale + shift;
}

Box aligned_rect(const torch::Tensor& points) {
    const auto p = host_points(points);
    const auto lo = std::get<0>(p.min(0));
    const auto hi = std::get<0>(p.max(0));
    const double min_x = lo[0].item<double>(), min_y = lo[1].item<double>();
    const double width = hi[0].item<double>() - min_x, height = hi[1].item<double>() - min_y;
    const double pad_x = 0.2 * width, pad_y = 0.2 * height;
    return {min_x - pad_x / 2, min_y - pad_y / 2, width + pad_x, height + pad_y};
}

Box dlib_aligned_rect(const torch::Tensor& points) {
    const auto p = host_points(points);
    // iBUG 68 order: 36-41 one eye, 42-47 the other, 48-67 the mouth.
    const Point left_eye = mean_point(p, 36, 42);
    const Point right_eye = mean_point(p, 42, 48);
    const Point mouth = mean_point(p, 48, 68);
    auto distance = [](Point a, Point b) { return std::hypot(a.x - b.x, a.y - b.y); };
    const double eye_to_mouth = (distance(mouth, left_eye) + distance(mouth, right_eye)) / 2;
    const double size = std::floor(eye_to_mouth / 0.45);
    const double ref_x = (left_eye.x + right_eye.x + mouth.x) / 3;
    const double ref_y = (left_eye.y + right_eye.y + mouth.y) / 3;
    return {std::floor(std::max(0.0, ref_x - 0.5 * size)),
            std::floor(std::max(0.0, ref_y - 0.43 * size)), size, size};
}

}  // namespace avatar::face::faceapi
