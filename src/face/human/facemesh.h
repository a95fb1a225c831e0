#pragma once
// MediaPipe FaceMesh (468 points) and Iris on top of it, with human 3.3.6's exact processing:
// the ROI is cut with tf.image.cropAndResize to 192x192 (/255), the raw 192-px points are mapped
// back with box_size/192 (p - 96) + box_centre; human truncates the result to integers.
//
// Iris (human's augmentIris): an eye box around each eye's corners (x2.3, squared, rounded, in
// 192-px units), both crops 64x64. human 3.3.6 flips both crops left-right but un-flips only the
// left eye when decoding, so the right iris comes out mirrored inside its box. IrisMode selects
// that library behaviour (fixture parity) or a consistent one (our own use); never mixed.
#include <torch/torch.h>

#include <array>
#include <vector>

#include "face/human/blazeface.h"

namespace avatar::face::human {

struct FaceMeshResult {
    Box roi;                // the crop box, image pixels (integers when it comes from BlazeFace)
    torch::Tensor face;     // [1, 192, 192, 3] the network input (crop / 255)
    torch::Tensor raw;      // [468, 3] network output in 192-px crop units
    double faceflag = 0;    // face probability (the graph applies the sigmoid)
    double face_score = 0;  // human's faceScore: round(100 faceflag) / 100
    // [468, 3] float64 image pixels: x, y; z scaled like x (smaller is closer). Our own use.
    torch::Tensor points;
    // [468, 3] human's mesh: the same truncated to integers (Math.trunc), for parity.
    torch::Tensor points_int;
};

// cropAndResize(image, [roi / (H, W)], 192) / 255. image [H, W, 3] -> [1, 192, 192, 3].
torch::Tensor facemesh_preprocess(const torch::Tensor& image, const Box& roi);
// The same from a normalised [y1, x1, y2, x2] box (as the library stores it).
torch::Tensor facemesh_preprocess_norm(const torch::Tensor& image, const torch::Tensor& box_yxyx);

// human's transformRawCoords without rotation: raw [K, 3] (192-px) -> [K, 3] image pixels
// (float64). `truncate` applies Math.trunc as the library does.
torch::Tensor facemesh_to_image(const torch::Tensor& raw, const Box& roi, bool truncate);

// Runs FaceMesh on a preprocessed [N, 192, 192, 3] batch: mesh [N, 468, 3], faceflag [N].
std::pair<torch::Tensor, torch::Tensor> facemesh_run(const torch::Tensor& input);

// FaceMesh on one ROI of an image [H, W, 3] (RGB 0..255).
FaceMeshResult facemesh(const torch::Tensor& image, const Box& roi);

enum class IrisMode {
    // human 3.3.6: both eye crops flipped, only the left one un-flipped on decode (the right iris
    // comes out mirrored inside its box). For parity with the library.
    kLibrary,
    // The left eye's crop flipped (and un-flipped on decode), the right eye's not: the
    // orientation the Iris model expects. Measured on the fixture's 22 faces, the model's eye
    // contour then lies 3.0 / 2.4 px (192-px crop) from FaceMesh's for the left / right eye,
    // against 12.9 / 11.7 px the other way round. For our own use.
    kConsistent,
};

struct EyeCrop {
    Box box;  // eye box in 192-px FaceMesh crop units (integers)
    bool flipped = false;
};

struct IrisResult {
    std::array<EyeCrop, 2> eyes;  // 0 = left eye (subject's left, image right), 1 = right eye
    torch::Tensor input;          // [2, 64, 64, 3] the network input
    torch::Tensor raw;            // [2, 76, 3] network output, 64-px crop units
    // [478, 3] the mesh in 192-px units after human's augmentIris: eye contours replaced by the
    // iris model's where the eyes' depths agree, then 5 left and 5 right iris points.
    torch::Tensor raw478;
    // [10, 3] the iris points (left centre + 4, right centre + 4), image pixels (float64).
    torch::Tensor iris_points;
    torch::Tensor points;      // [478, 3] image pixels, float64
    torch::Tensor points_int;  // [478, 3] human's truncated integers
};

// Eye boxes from the raw 192-px mesh (human's getEyeBox): left eye = points 263/362, right
// eye = 33/133, enlarged by `scale`, squared, rounded. Returns [left, right].
std::array<Box, 2> iris_eye_boxes(const torch::Tensor& raw468, double scale = 2.3);
// The two 64x64 crops from the 192 face crop, flipped left-right where `flip` says.
torch::Tensor iris_preprocess(const torch::Tensor& face192, const std::array<Box, 2>& eye_boxes,
                              const std::array<bool, 2>& flip);
// From the raw network output [2, 76, 3] (or [2, 1, 1, 228]) to the 478-point raw mesh.
IrisResult iris_augment(const torch::Tensor& raw468, const torch::Tensor& iris_raw,
                        const std::array<EyeCrop, 2>& eyes, IrisMode mode);
// Runs Iris on the eyes of a FaceMesh result and augments its mesh.
IrisResult iris(const FaceMeshResult& mesh, IrisMode mode = IrisMode::kConsistent);

}  // namespace avatar::face::human
