// `avatar bench face.track`: the tracker end to end on a 640x480 video, per frame. The frames
// are the bundled talking-head sample (a real face that moves and talks) letterboxed to 640x480,
// cycled; the first frame's full detection happens in the untimed setup, so "frame" measures a
// frame while a face is being tracked and "detect" a frame that needs full detection.
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "face/registration.h"
#include "face/tracker.h"
#include "media/video_reader.h"
#include "metrics/benchmark.h"

namespace avatar::face {
namespace {
namespace F = torch::nn::functional;

// The first `count` frames of assets/samples/talking.mp4, scaled to 480 rows and centred in a
// 640x480 grey frame.
std::shared_ptr<std::vector<torch::Tensor>> benchmark_frames(int count) {
    static std::weak_ptr<std::vector<torch::Tensor>> cache;
    if (auto frames = cache.lock())
        return frames;
    auto frames = std::make_shared<std::vector<torch::Tensor>>();
    media::VideoReader reader(std::filesystem::path(AVATAR_SOURCE_DIR) /
                              "assets/samples/talking.mp4");
    while (static_cast<int>(frames->size()) < count) {
        auto frame = reader.next_frame();
        if (!frame)
            break;
        auto x = frame->permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
        const int64_t height = 480;
        const int64_t width = std::min<int64_t>(640, frame->size(1) * height / frame->size(0));
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{height, width})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
        auto canvas = torch::full({1, 3, 480, 640}, 128.0f);
        canvas.narrow(3, (640 - width) / 2, width).copy_(x);
        frames->push_back(
            canvas[0].permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8).contiguous());
    }
    avatar::check(!frames->empty(), "assets/samples/talking.mp4", "no frames for the benchmark");
    cache = frames;
    return frames;
}

void add_tracking_benchmark(const std::string& name, const std::string& description,
                            TrackerOptions options, bool redetect_every_frame) {
    metrics::BenchmarkRegistry::instance().add(
        {name, description, "frame",
         [options, redetect_every_frame] {
             auto frames = benchmark_frames(25);
             auto tracker = std::make_shared<FaceTracker>(options);
             auto index = std::make_shared<int64_t>(0);
             // Acquire the face (full detection) before timing starts.
             const auto first = tracker->track(frames->front(), 0.0);
             avatar::check(first.found, "face.track benchmark", "no face in the sample video");
             return std::function<void()>([frames, tracker, index, redetect_every_frame] {
                 torch::NoGradGuard no_grad;
                 if (redetect_every_frame)
                     tracker->reset();
                 ++*index;
                 const auto& frame = (*frames)[static_cast<size_t>(*index) % frames->size()];
                 tracker->track(frame, static_cast<double>(*index) / 25.0);
             });
         },
         std::nullopt});
}

}  // namespace

void register_tracker_benchmarks() {
    TrackerOptions full;
    add_tracking_benchmark("face.track.frame",
                           "640x480 frame while tracking: FaceMesh, Iris, 68 points, pose, "
                           "smoothing (the default of avatar track)",
                           full, false);
    TrackerOptions mesh_only = full;
    mesh_only.iris = false;
    mesh_only.landmarks68 = false;
    add_tracking_benchmark("face.track.frame_mesh_only",
                           "640x480 frame while tracking: FaceMesh, pose, smoothing "
                           "(--no-iris --no-landmarks68)",
                           mesh_only, false);
    add_tracking_benchmark("face.track.detect",
                           "640x480 frame with full detection: BlazeFace, then as face.track.frame",
                           full, true);
}

}  // namespace avatar::face
