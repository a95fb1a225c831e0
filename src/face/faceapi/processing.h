#pragma once
// face-api's pre- and post-processing, reproduced exactly (the goldens of
// shared/reference/face_models hold the library's own numbers, quirks included):
//  - NetInput.toBatchTensor: zero-pad to a square (detectors: bottom/right; face nets: centred),
//    then the legacy TF1 bilinear resize, then each net's normalisation;
//  - decoding of the Tiny-YOLO grid and of the SSD anchors, greedy non-maximum suppression,
//    and the undoing of the detector's padding (computeReshapedDimensions);
//  - landmark post-processing and the three face crops (detection box, alignedRect, dlib rect).
//
// Images are RGB [H, W, 3] tensors with values 0..255 (uint8, or float when gradients must reach
// the pixels); network inputs are NHWC float32 like the library's (nets.h takes them NCHW).
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace avatar::face::faceapi {

constexpr int64_t kSsdInputSize = 512;
constexpr int64_t kFaceNetInputSize = 112;  // landmark and expression nets
constexpr int64_t kRecognitionInputSize = 150;
constexpr int kLandmarkCount = 68;

// One detected face in image pixels: left, top, width, height, and the detector's score.
struct Detection {
    float x = 0, y = 0, width = 0, height = 0, score = 0;
};

// A rectangle in image pixels, in double precision (the library's JS numbers).
struct Box {
    double x = 0, y = 0, width = 0, height = 0;
};

// An integer crop rectangle, as Box.clipAtImageBorders produces it.
struct CropRect {
    int64_t x = 0, y = 0, width = 0, height = 0;
};

// ---- preprocessing ----------------------------------------------------------------------------

// Checks that `image` is [H, W, 3] with H, W > 0 (throws Error naming `subject` otherwise).
void check_image(const torch::Tensor& image, const char* subject = "image");

// NetInput.toBatchTensor(size, centred) for one [H, W, 3] image: float32, zero-padded to a square
// (centred or bottom/right), resized to size x size with the legacy TF1 sampling unless already
// that size. Returns NHWC [1, size, size, 3], on the image's device.
torch::Tensor to_batch_tensor(const torch::Tensor& image, int64_t size, bool centred);

// The normalisations of the nets, on NHWC float tensors.
torch::Tensor normalize_tiny_detector(const torch::Tensor& x);  // (x - mean) / 255
torch::Tensor normalize_ssd(const torch::Tensor& x);            // x / 127.5 - 1
torch::Tensor normalize_face(const torch::Tensor& x);           // (x - mean) / 255

// The complete inputs (NHWC) the library feeds its nets.
torch::Tensor tiny_detector_input(const torch::Tensor& image, int64_t input_size);
torch::Tensor ssd_input(const torch::Tensor& image);
// tf.slice3d of each crop, then toBatchTensor(size, centred) and the face normalisation:
// [K, size, size, 3]. size is kFaceNetInputSize or kRecognitionInputSize.
torch::Tensor face_net_input(const torch::Tensor& image, const std::vector<CropRect>& crops,
                             int64_t size);

// computeReshapedDimensions: the (width, height) the image takes inside the size x size input,
// scale = size / max(W, H), rounded half up like JavaScript.
std::pair<int64_t, int64_t> reshaped_dimensions(int64_t width, int64_t height, int64_t size);

// ---- detection --------------------------------------------------------------------------------

// Greedy non-maximum suppression: candidates by score (descending, ties in index order); a
// candidate is kept unless its IoU with an already kept box exceeds `iou_threshold`; at most
// `max_results` (<= 0: no limit). Boxes are corners [x1, y1, x2, y2] (any consistent axis
// order). Returns the kept indices in the order they were kept.
std::vector<int64_t> non_max_suppression(const std::vector<std::array<double, 4>>& boxes,
                                         const std::vector<double>& scores, double iou_threshold,
                                         int64_t max_results = 0);

struct TinyDetectorParams {
    int64_t input_size = 416;
    double score_threshold = 0.5;
    double iou_threshold = 0.4;
};

// TinyYolov2Base.extractBoxes + NMS: raw NHWC [G, G, 25] (or [1, G, G, 25]) of an image of
// width x height -> detections in image pixels, in NMS order. Boxes are not clipped.
std::vector<Detection> decode_tiny_detector(const torch::Tensor& raw, int64_t image_width,
                                            int64_t image_height,
                                            const TinyDetectorParams& params = {});

// SSD outputLayer: box encodings [K, 4] (ty, tx, th, tw) and class logits [K, 3] with anchors
// [K, 4] (ymin, xmin, ymax, xmax) -> boxes [K, 4] (ymin, xmin, ymax, xmax, normalised to the
// padded 512 square) and face scores sigmoid(logit[:, 1]) [K]. Differentiable torch ops.
struct SsdDecoded {
    torch::Tensor boxes_yxyx;
    torch::Tensor scores;
};
SsdDecoded decode_ssd(const torch::Tensor& box_encodings, const torch::Tensor& class_logits,
                      const torch::Tensor& anchors);

struct SsdParams {
    double min_confidence = 0.5;
    int64_t max_results = 100;
    double iou_threshold = 0.5;
};

// SsdMobilenetv1.locateFaces after the net: NMS over scores > min_confidence, then boxes clipped
// to [0, 1] and mapped from the padded square to image pixels. `indices` are the kept anchor rows.
struct SsdSelection {
    std::vector<int64_t> indices;
    std::vector<Detection> detections;
};
SsdSelection select_ssd_detections(const SsdDecoded& decoded, int64_t image_width,
                                   int64_t image_height, const SsdParams& params = {});

// ---- landmarks and face crops ----------------------------------------------------------------

// Box.clipAtImageBorders: x, y clamped to >= 0, the far edges to the image, then all four
// floored. Throws Error if nothing of the box lies inside the image.
CropRect clip_at_image_borders(const Box& box, int64_t image_width, int64_t image_height);

// FaceLandmark68NetBase.postProcess: raw [N, 136] (68 (x, y) relative to the padded 112 input of
// each crop) -> relative to each crop [N, 136]. Keeps the library's half-pixel quirk: it assumes
// the padding was |w' - h'| / 2 on each side, while toBatchTensor put round(d / 2) after.
torch::Tensor landmarks_relative(const torch::Tensor& raw, const std::vector<CropRect>& crops);

// Relative landmarks [136] or [1, 136] -> image pixels [68, 2]: scaled by the crop size and
// shifted by `origin` (the library shifts by the detection box's unfloored x, y, while the crop
// started at the floored ones). Computed in float64.
torch::Tensor landmarks_to_image(const torch::Tensor& relative, const CropRect& crop,
                                 double origin_x, double origin_y);

// FaceLandmarks.align(): the min bounding box of the points padded by 20 % of its width and
// height (10 % each side). The expression net's crop. points [68, 2].
Box aligned_rect(const torch::Tensor& points);

// FaceLandmarks.align(null, {useDlibAlignment: true}): an axis-aligned square of side
// floor(mean eye-to-mouth distance / 0.45) around the eyes' and mouth's mean centre (x at 0.5,
// y at 0.43 of the side), corners floored at >= 0. The recognition net's crop. points [68, 2].
Box dlib_aligned_rect(const torch::Tensor& points);

inline Box to_box(const Detection& d) {
    return {d.x, d.y, d.width, d.height};
}

}  // namespace avatar::face::faceapi
