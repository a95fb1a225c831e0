#pragma once
// The face-api front end the tracker uses: detect faces, then per face 68 landmarks, the
// expression (7 probabilities and the 256-d bottleneck feature) and the 128-d identity
// descriptor, each exactly as @vladmandic/face-api 1.7.15 computes them (same crops, same
// preprocessing, same post-processing).
//
// Images are RGB [H, W, 3] with values 0..255: uint8, or float32 when gradients must reach the
// pixels (everything after the integer crop rectangles is differentiable, so the descriptor and
// the expression feature can serve as training losses).
#include <torch/torch.h>

#include <array>
#include <mutex>
#include <optional>
#include <vector>

#include "face/faceapi/nets.h"
#include "face/faceapi/processing.h"

namespace avatar::face::faceapi {

// FaceExpressionNet's classes, in output order.
constexpr std::array<const char*, 7> kExpressionLabels = {
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"};

struct Expression {
    torch::Tensor probabilities;  // [7] (batched: [K, 7]), softmax of the logits
    torch::Tensor features;       // [256] (batched: [K, 256]), the bottleneck before the fc layer
};

// Holds the six nets, each loaded from the npm package on first use and kept; all on `device`.
// Thread-safe to share: loading is guarded, and the nets are only read afterwards.
class FaceApi {
public:
    explicit FaceApi(torch::Device device = torch::kCPU);
    FaceApi(const FaceApi&) = delete;
    FaceApi& operator=(const FaceApi&) = delete;

    const torch::Device& device() const { return device_; }

    // TinyFaceDetector at `input_size` (a multiple of 32; 416 by default, smaller is faster),
    // NMS IoU 0.4. Detections in image pixels, best first; boxes may leave the image.
    std::vector<Detection> detect_tiny(const torch::Tensor& image, int input_size = 416,
                                       float score_threshold = 0.5f);
    // SsdMobilenetV1 at 512, NMS IoU 0.5. More accurate and about 10x slower than tiny.
    std::vector<Detection> detect_ssd(const torch::Tensor& image, float min_confidence = 0.5f,
                                      int max_results = 100);

    // 68 iBUG points [68, 2] in image pixels, from the crop of the detection box.
    // tiny = FaceLandmark68TinyNet (faster, less precise).
    torch::Tensor landmarks68(const torch::Tensor& image, const Detection& face, bool tiny = false);
    // All faces in one batch: [K, 68, 2].
    torch::Tensor landmarks68(const torch::Tensor& image, const std::vector<Detection>& faces,
                              bool tiny = false);

    // Expression of the face whose 68 points are given ([68, 2], or [K, 68, 2] for a batch),
    // from the landmark-aligned crop (alignedRect) like the library.
    Expression expression(const torch::Tensor& image, const torch::Tensor& points68);
    // 128-d descriptor ([128], or [K, 128] for a batch) from the dlib-aligned crop. Compare two
    // with the euclidean distance (same person below about 0.6).
    torch::Tensor descriptor(const torch::Tensor& image, const torch::Tensor& points68);

    // The nets themselves (loaded on first use), for callers that bring their own inputs.
    TinyFaceDetector tiny_face_detector();
    SsdMobilenetV1 ssd_mobilenetv1();
    FaceProcessorNet landmark_net(bool tiny = false);
    FaceProcessorNet expression_net();
    FaceRecognitionNet recognition_net();

private:
    // The image on this object's device, after checking its shape.
    torch::Tensor prepare(const torch::Tensor& image) const;
    // One crop rectangle per face of points [K, 68, 2] (batched) using `rect`.
    std::vector<CropRect> crops_from_points(const torch::Tensor& points, const torch::Tensor& image,
                                            Box (*rect)(const torch::Tensor&)) const;
    template <typename Net>
    Net load_once(std::optional<Net>& slot, Net (*loader)(const std::filesystem::path&));

    torch::Device device_;
    std::mutex mutex_;
    std::optional<TinyFaceDetector> tiny_;
    std::optional<SsdMobilenetV1> ssd_;
    std::optional<FaceProcessorNet> landmark_, landmark_tiny_, expression_;
    std::optional<FaceRecognitionNet> recognition_;
};

// A process-wide CPU instance, for callers that do not manage their own.
FaceApi& default_faceapi();

// Shorthands on default_faceapi().
std::vector<Detection> detect_tiny(const torch::Tensor& image_u8_hwc, int input_size = 416,
                                   float score_threshold = 0.5f);
std::vector<Detection> detect_ssd(const torch::Tensor& image_u8_hwc, float min_confidence = 0.5f,
                                  int max_results = 100);
torch::Tensor landmarks68(const torch::Tensor& image_u8_hwc, const Detection& face,
                          bool tiny = false);
Expression expression(const torch::Tensor& image_u8_hwc, const torch::Tensor& points68);
torch::Tensor descriptor(const torch::Tensor& image_u8_hwc, const torch::Tensor& points68);

// Euclidean distance of two descriptors ([128] each), face-api's euclideanDistance.
double descriptor_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace avatar::face::faceapi
