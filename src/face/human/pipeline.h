#pragma once
// human 3.3.6's face pipeline (human.detect with face mesh, iris, emotion and description on;
// rotation off; caching off): BlazeFace -> FaceMesh (faces with faceScore <= min confidence are
// dropped) -> Iris -> Emotion and FaceRes on the FaceMesh crop, plus the result fields human
// derives: box, angles, gaze and camera distance.
#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "face/human/attributes.h"
#include "face/human/blazeface.h"
#include "face/human/facemesh.h"

namespace avatar::face::human {

struct FaceRotation {
    double pitch = 0, yaw = 0, roll = 0;  // radians
    std::array<double, 9> matrix{};       // row-major, from mesh points 10, 152, 234, 454
    double gaze_bearing = 0, gaze_strength = 0;
};

// human's FaceResult of one face (the fields our parity checks and the tracker use).
struct HumanFace {
    FaceDetection detection;
    FaceMeshResult mesh;
    std::optional<IrisResult> iris;
    torch::Tensor mesh_int;        // [468 or 478, 3] human's truncated mesh (the FaceResult's mesh)
    torch::Tensor mesh_raw;        // human's meshRaw: mesh_int / (W, H, 192)
    std::array<int64_t, 4> box{};  // human's box: mesh-centred box of the ROI's size, clamped
    std::array<double, 4> box_raw{};
    std::array<double, 2> size{};
    double score = 0, box_score = 0, face_score = 0;
    // Attributes (present when run).
    std::optional<torch::Tensor> emotion_probs;  // [7]
    std::vector<EmotionScore> emotion;
    std::optional<FaceResOutput> faceres;  // [1, ...] each
    std::optional<FaceAttributes> attributes;
    std::optional<FaceRotation> rotation;
    double distance = 0;  // camera distance from the iris size (0 without iris)
};

struct HumanOptions {
    BlazeFaceOptions detector;
    bool mesh = true, iris = true, emotion = true, description = true;
    IrisMode iris_mode = IrisMode::kLibrary;
    double emotion_min_confidence = 0.1;
    double description_min_confidence = 0.1;
};

// The pipeline on an image [H, W, 3] (RGB 0..255).
std::vector<HumanFace> human_detect(const torch::Tensor& image, const HumanOptions& options = {});

// human's calculateFaceAngle from a FaceResult's meshRaw (>= 300 points), boxRaw and mesh.
FaceRotation human_face_angle(const torch::Tensor& mesh_raw, const torch::Tensor& mesh_int,
                              const std::array<double, 4>& box_raw, int64_t height, int64_t width);
// human's calculateCameraDistance (metres) from the 478-point mesh; 0 without iris points.
double human_camera_distance(const torch::Tensor& mesh_int, int64_t width);

}  // namespace avatar::face::human
