#include "face/faceapi/faceapi.h"

#include "core/error.h"

namespace avatar::face::faceapi {

FaceApi::FaceApi(torch::Device device) : device_(device) {}

template <typename Net>
Net FaceApi::load_once(std::optional<Net>& slot, Net (*loader)(const std::filesystem::path&)) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!slot) {
        Net net = loader({});
        net->to(device_);
        slot = net;
    }
    return *slot;
}

TinyFaceDetector FaceApi::tiny_face_detector() {
    return load_once(tiny_, &load_tiny_face_detector);
}

SsdMobilenetV1 FaceApi::ssd_mobilenetv1() {
    return load_once(ssd_, &load_ssd_mobilenetv1);
}

FaceProcessorNet FaceApi::landmark_net(bool tiny) {
    return tiny ? load_once(landmark_tiny_, &load_face_landmark_68_tiny)
                : load_once(landmark_, &load_face_landmark_68);
}

FaceProcessorNet FaceApi::expression_net() {
    return load_once(expression_, &load_face_expression);
}

FaceRecognitionNet FaceApi::recognition_net() {
    return load_once(recognition_, &load_face_recognition);
}

torch::Tensor FaceApi::prepare(const torch::Tensor& image) const {
    check_image(image);
    return image.to(device_);
}

std::vector<Detection> FaceApi::detect_tiny(const torch::Tensor& image, int input_size,
                                            float score_threshold) {
    torch::NoGradGuard no_grad;  // detection is a discrete decision; nothing to differentiate
    const auto img = prepare(image);
    const auto x = to_nchw(tiny_detector_input(img, input_size));
    const auto raw = to_nhwc(tiny_face_detector()->forward(x));
    TinyDetectorParams params;
    params.input_size = input_size;
    params.score_threshold = score_threshold;
    return decode_tiny_detector(raw, img.size(1), img.size(0), params);
}

std::vector<Detection> FaceApi::detect_ssd(const torch::Tensor& image, float min_confidence,
                                           int max_results) {
    torch::NoGradGuard no_grad;
    const auto img = prepare(image);
    auto net = ssd_mobilenetv1();
    const auto out = net->forward(to_nchw(ssd_input(img)));
    const auto decoded = decode_ssd(out.box_encodings[0], out.class_logits[0], net->anchors());
    SsdParams params;
    params.min_confidence = min_confidence;
    params.max_results = max_results;
    return select_ssd_detections(decoded, img.size(1), img.size(0), params).detections;
}

torch::Tensor FaceApi::landmarks68(const torch::Tensor& image, const Detection& face, bool tiny) {
    return landmarks68(image, std::vector<Detection>{face}, tiny)[0];
}

torch::Tensor FaceApi::landmarks68(const torch::Tensor& image, const std::vector<Detection>& faces,
                                   bool tiny) {
    const auto img = prepare(image);
    if (faces.empty())
        return torch::empty({0, kLandmarkCount, 2}, img.options().dtype(torch::kFloat64));
    std::vector<CropRect> crops;
    for (const auto& face : faces)
        crops.push_back(clip_at_image_borders(to_box(face), img.size(1), img.size(0)));
    const auto x = to_nchw(face_net_input(img, crops, kFaceNetInputSize));
    const auto relative = landmarks_relative(landmark_net(tiny)->forward(x), crops);
    std::vector<torch::Tensor> points;
    for (size_t i = 0; i < faces.size(); ++i) {
        points.push_back(landmarks_to_image(relative[static_cast<int64_t>(i)], crops[i], faces[i].x,
                                            faces[i].y));
    }
    return torch::stack(points);
}

std::vector<CropRect> FaceApi::crops_from_points(const torch::Tensor& points,
                                                 const torch::Tensor& image,
                                                 Box (*rect)(const torch::Tensor&)) const {
    std::vector<CropRect> crops;
    for (int64_t k = 0; k < points.size(0); ++k)
        crops.push_back(clip_at_image_borders(rect(points[k]), image.size(1), image.size(0)));
    return crops;
}

namespace {
// points [68, 2] -> [1, 68, 2]; [K, 68, 2] stays.
torch::Tensor as_batch(const torch::Tensor& points) {
    check(points.defined() && (points.dim() == 2 || points.dim() == 3), "landmarks",
          "expected points [68, 2] or [K, 68, 2]");
    return points.dim() == 2 ? points.unsqueeze(0) : points;
}
}  // namespace

Expression FaceApi::expression(const torch::Tensor& image, const torch::Tensor& points68) {
    const auto img = prepare(image);
    const auto points = as_batch(points68);
    const auto crops = crops_from_points(points, img, &aligned_rect);
    const auto out = expression_net()->forward_with_features(
        to_nchw(face_net_input(img, crops, kFaceNetInputSize)));
    Expression result{torch::softmax(out.output, 1), out.features};
    if (points68.dim() == 2)
        result = {result.probabilities[0], result.features[0]};
    return result;
}

torch::Tensor FaceApi::descriptor(const torch::Tensor& image, const torch::Tensor& points68) {
    const auto img = prepare(image);
    const auto points = as_batch(points68);
    const auto crops = crops_from_points(points, img, &dlib_aligned_rect);
    const auto out =
        recognition_net()->forward(to_nchw(face_net_input(img, crops, kRecognitionInputSize)));
    return points68.dim() == 2 ? out[0] : out;
}

FaceApi& default_faceapi() {
    static FaceApi instance(torch::kCPU);
    return instance;
}

std::vector<Detection> detect_tiny(const torch::Tensor& image_u8_hwc, int input_size,
                                   float score_threshold) {
    return default_faceapi().detect_tiny(image_u8_hwc, input_size, score_threshold);
}

std::vector<Detection> detect_ssd(const torch::Tensor& image_u8_hwc, float min_confidence,
                                  int max_results) {
    return default_faceapi().detect_ssd(image_u8_hwc, min_confidence, max_results);
}

torch::Tensor landmarks68(const torch::Tensor& image_u8_hwc, const Detection& face, bool tiny) {
    return default_faceapi().landmarks68(image_u8_hwc, face, tiny);
}

Expression expression(const torch::Tensor& image_u8_hwc, const torch::Tensor& points68) {
    return default_faceapi().expression(image_u8_hwc, points68);
}

torch::Tensor descriptor(const torch::Tensor& image_u8_hwc, const torch::Tensor& points68) {
    return default_faceapi().descriptor(image_u8_hwc, points68);
}

double descriptor_distance(const torch::Tensor& a, const torch::Tensor& b) {
    check(a.numel() == b.numel(), "descriptor_distance", "descriptors differ in size");
    return (a.to(torch::kFloat64).flatten() - b.to(torch::kFloat64).flatten())
        .norm()
        .item<double>();
}

}  // namespace avatar::face::faceapi
