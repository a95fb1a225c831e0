#pragma once
// BlazeFace (MediaPipe back-camera model, 256 px) with human 3.3.6's exact pre- and
// post-processing: anisotropic resize of the whole frame to 256x256 (human's detector.square is
// off), anchors decoding, greedy NMS, and the FaceMesh ROI (box x1.4 about its centre, squared,
// corners rounded half up).
#include <torch/torch.h>

#include <array>
#include <vector>

namespace avatar::face::human {

// An axis-aligned box in image pixels: (x1, y1) top-left, (x2, y2) bottom-right.
struct Box {
    double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
    double width() const { return x2 - x1; }
    double height() const { return y2 - y1; }
    double centre_x() const { return x1 + (x2 - x1) / 2; }
    double centre_y() const { return y1 + (y2 - y1) / 2; }
};

struct BlazeFaceOptions {
    int max_detected = 20;       // human default 1; the fixture uses 20
    double iou_threshold = 0.1;  // NMS: a box overlapping a kept one by IoU >= this is dropped
    double min_confidence = 0.2;
    double scale = 1.4;  // ROI enlargement
};

struct FaceDetection {
    int anchor = -1;     // index of the picked anchor (0..895)
    double score = 0.0;  // sigmoid of the logit
    Box box;             // the detector box, image pixels
    // 6 keypoints, image pixels: eye on the image's left (subject's right eye), other eye, nose
    // tip, mouth, ear tragion on the image's left, on the image's right.
    std::array<std::array<double, 2>, 6> keypoints{};
    // FaceMesh ROI: box enlarged by options.scale, squared, corners Math.round()-ed (integers).
    Box roi;
    // human's size: the enlarged box's width and height, rounded.
    std::array<double, 2> size{};
    // human's clampBox(roi): [x, y, w, h] truncated to integers and clipped to the image.
    std::array<int64_t, 4> box_xywh{};
    // human's boxScore: round(100 score) / 100.
    double box_score = 0.0;
};

// Decoded detector output for all 896 anchors (human's getBoxes before NMS).
struct BlazeFaceDecoded {
    torch::Tensor batch;    // [896, 17]: logit, 16 regressors (512-anchor rows, then 384)
    torch::Tensor anchors;  // [896, 2] anchor centres in 256-px units
    torch::Tensor boxes;    // [896, 4] x1, y1, x2, y2 in 256-px units
    torch::Tensor scores;   // [896] sigmoid(logit)
};

// resizeBilinear(image, [256, 256]) (legacy sampling) / 127.5 - 1. image: [H, W, 3] (any dtype,
// RGB 0..255) -> [1, 256, 256, 3] float.
torch::Tensor blazeface_preprocess(const torch::Tensor& image);

// The 896 anchor centres ([896, 2], 256-px units): stride 16 (2 per cell), then stride 32 (6).
torch::Tensor blazeface_anchors();

// Decodes the four raw outputs (graph names Identity [1,512,1], Identity_1 [1,384,1],
// Identity_2 [1,512,16], Identity_3 [1,384,16]), float32 arithmetic as the library.
BlazeFaceDecoded blazeface_decode(const torch::Tensor& identity, const torch::Tensor& identity_1,
                                  const torch::Tensor& identity_2, const torch::Tensor& identity_3);

// Runs the network on a preprocessed [1, 256, 256, 3] input and decodes it.
BlazeFaceDecoded blazeface_run(const torch::Tensor& input);

// tf.image.nonMaxSuppression: candidates with score > threshold by descending score; a candidate
// is dropped if its IoU with a kept box is >= iou_threshold. boxes [N, 4] corners.
std::vector<int64_t> non_max_suppression(const torch::Tensor& boxes, const torch::Tensor& scores,
                                         int max_output, double iou_threshold,
                                         double score_threshold);

// From decoded outputs to detections in an image of the given size (human's getBoxes after NMS).
std::vector<FaceDetection> blazeface_detections(const BlazeFaceDecoded& decoded, int64_t height,
                                                int64_t width, const BlazeFaceOptions& options);

// The whole detector on an image [H, W, 3] (uint8 or float RGB 0..255).
std::vector<FaceDetection> detect_blazeface(const torch::Tensor& image,
                                            const BlazeFaceOptions& options = {});

// human's enlargeBox + squarifyBox: the FaceMesh ROI of a box.
Box squared_roi(const Box& box, double scale, std::array<double, 2>* size = nullptr);
// human's clampBox: [x, y, w, h] truncated, clipped to the image.
std::array<int64_t, 4> clamp_box(const Box& box, int64_t height, int64_t width);

}  // namespace avatar::face::human
