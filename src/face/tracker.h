#pragma once
// Face tracking through a video: per frame the face box, FaceMesh's 468 points, face-api's 68
// points, the 10 iris points, the head pose and optionally the FaceRes identity embedding.
//
// Full detection (BlazeFace) runs only when there is no track: on the first frame and after a
// loss. While tracking, the FaceMesh region of interest comes from the previous frame's mesh, as
// MediaPipe does, so a frame costs FaceMesh + Iris + the 68-point net. A frame whose FaceMesh
// face probability falls below `tracking_confidence` loses the track, and detection runs again on
// that same frame; a frame with no face is reported as such and tracking goes on.
//
// Several faces: `face_index` < 0 follows the largest; N >= 0 the N-th from the image's left at
// the first acquisition. The chosen face's identity is kept across losses: when detection
// returns several faces, the one whose FaceRes embedding is closest to the first acquisition's
// wins (ties go to the overlap with the last known box).
//
// Smoothing: One-Euro filters on the 468, 68 and iris points (pixels), reset on every loss.
// The head pose is fitted to the smoothed mesh, so it is smooth too. The region of interest
// always follows the raw mesh (no lag in the tracking itself).
#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "face/head_pose.h"
#include "face/one_euro.h"

namespace avatar::face {

// Which detector finds faces when there is no track. BlazeFace (256 px, ~10 ms) sees faces
// down to about a tenth of the frame; face-api's SSD-MobileNetV1 (512 px, ~150-250 ms) finds
// smaller ones (group photos). kBoth takes the union.
enum class FaceDetector { kBlazeFace, kSsd, kBoth };

struct TrackerOptions {
    int face_index = -1;  // -1 = the largest face; N = the N-th from the left
    FaceDetector detector = FaceDetector::kBlazeFace;
    bool ssd_fallback = true;           // try SSD on frames where BlazeFace finds nothing
    double detection_confidence = 0.5;  // detector score to accept a face
    double tracking_confidence = 0.5;   // FaceMesh face probability to keep the track
    // FaceMesh face probability to accept a face the detector has just found (human's default):
    // the detector already vouched for it, and profiles or hands at the mouth score low.
    double acquisition_confidence = 0.2;
    double roi_scale = 1.5;   // tracking ROI side / mesh extent (matches detection's)
    bool landmarks68 = true;  // face-api's 68-point net on a box derived from the mesh
    bool iris = true;         // MediaPipe Iris (10 points, eye contours refined)
    bool embeddings = false;  // FaceRes 1024-d embedding every frame
    bool smooth = true;
    OneEuroParams smoothing{1.0, 0.05, 1.0};  // min_cutoff Hz, beta per px/s, d_cutoff Hz
};

struct TrackedFace {
    bool found = false;
    bool detected = false;        // full detection ran on this frame (first frame or after a loss)
    double confidence = 0;        // FaceMesh face probability
    std::array<double, 4> box{};  // x0, y0, x1, y1: the extent of the 468 points
    torch::Tensor mesh468;        // [468, 3] float32, image px (z in the x scale), smoothed
    torch::Tensor raw_mesh468;    // [468, 3] float32, the same before smoothing
    torch::Tensor landmarks68;    // [68, 2] float32 (undefined unless options.landmarks68)
    torch::Tensor iris;           // [10, 3] float32: left centre + 4, right centre + 4
    torch::Tensor embedding;      // [1024] float32 (undefined unless options.embeddings)
    std::optional<HeadPose> pose;
};

class FaceTracker {
public:
    explicit FaceTracker(TrackerOptions options = {});
    ~FaceTracker();
    FaceTracker(const FaceTracker&) = delete;
    FaceTracker& operator=(const FaceTracker&) = delete;

    // Tracks one frame: uint8 [H, W, 3] RGB; `time_s` (increasing) drives the smoothing.
    TrackedFace track(const torch::Tensor& frame, double time_s);
    // Forgets the track and the identity (the next frame starts afresh).
    void reset();
    const TrackerOptions& options() const { return options_; }

    // Cumulative time per stage (ms) and counts, for benchmarks and --verbose.
    struct StageTimes {
        double detect_ms = 0, mesh_ms = 0, iris_ms = 0, landmarks68_ms = 0, pose_ms = 0,
               embedding_ms = 0;
        int64_t frames = 0, detections = 0;
    };
    const StageTimes& stage_times() const { return times_; }

private:
    struct State;
    TrackerOptions options_;
    std::unique_ptr<State> state_;
    StageTimes times_;
};

// Every face of one image (no tracking, no smoothing), measured as the tracker measures its
// face, sorted from the image's left. Used for still images and for scoring.
std::vector<TrackedFace> detect_faces(const torch::Tensor& image,
                                      const TrackerOptions& options = {});

// The largest of `faces` by the box of its points (the subject of a talking-head frame), or
// nullptr when there are none.
const TrackedFace* largest_face(const std::vector<TrackedFace>& faces);

// face-api's 68-point net expects the crop of an SSD detection box; this is the box (left, top,
// width, height) that SSD gives for a face whose 468 points have this extent, from the 22 faces
// of the face_models fixture: centre (-0.012, -0.080) * side from the mesh box's centre, width
// 0.787 * side, height 1.145 * side, with side = max(mesh width, mesh height).
std::array<double, 4> detection_box_from_mesh(const torch::Tensor& mesh468);

}  // namespace avatar::face
