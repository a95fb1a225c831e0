// `avatar bench face.fit`: the face model fit (face/face_fit.h) on real tracked points, the 89
// frames of the bundled talking-head sample tracked once in the untimed setup.
//   face.fit.mesh468         32 frames solved as one batch, identity known (a video after its
//                            identity is fitted: what `avatar track --fit` does per chunk)
//   face.fit.mesh468_single  one frame at a time, identity known (live use, latency)
//   face.fit.landmarks68     32 frames from face-api's 68 points, identity known
//   face.fit.video           the whole sample: identity, every frame, gaze (fit_face_sequence)
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "face/face_fit.h"
#include "face/registration.h"
#include "face/tracker.h"
#include "media/video_reader.h"
#include "metrics/benchmark.h"

namespace avatar::face {
namespace {

struct TrackedSample {
    torch::Tensor mesh;         // [N, 468, 3]
    torch::Tensor landmarks68;  // [N, 68, 2]
    torch::Tensor iris;         // [N, 10, 3]
    torch::Tensor found;        // [N] bool
    torch::Tensor identity;     // [K] fitted on all frames
};

std::shared_ptr<const TrackedSample> tracked_sample() {
    static std::weak_ptr<const TrackedSample> cache;
    if (auto sample = cache.lock())
        return sample;
    torch::NoGradGuard no_grad;
    media::VideoReader reader(std::filesystem::path(AVATAR_SOURCE_DIR) /
                              "assets/samples/talking.mp4");
    FaceTracker tracker;
    std::vector<torch::Tensor> mesh, landmarks, iris;
    int64_t index = 0;
    while (auto frame = reader.next_frame()) {
        const auto f = tracker.track(*frame, static_cast<double>(index++) / 25.0);
        if (!f.found)
            continue;
        mesh.push_back(f.mesh468);
        landmarks.push_back(f.landmarks68);
        iris.push_back(f.iris);
    }
    avatar::check(mesh.size() >= 32, "assets/samples/talking.mp4",
                  "the face fit benchmark needs 32 frames with a face");
    auto sample = std::make_shared<TrackedSample>();
    sample->mesh = torch::stack(mesh);
    sample->landmarks68 = torch::stack(landmarks);
    sample->iris = torch::stack(iris);
    sample->found = torch::ones({sample->mesh.size(0)}, torch::kBool);
    sample->identity = fit_face_mesh468(sample->mesh).identity;
    cache = sample;
    return sample;
}

void add(const std::string& name, const std::string& description, int64_t items,
         std::function<void(const TrackedSample&, int64_t)> fit) {
    metrics::BenchmarkRegistry::instance().add({name, description, "frame",
                                                [fit] {
                                                    auto sample = tracked_sample();
                                                    auto iteration = std::make_shared<int64_t>(0);
                                                    return std::function<void()>(
                                                        [sample, fit, iteration] {
                                                            torch::NoGradGuard no_grad;
                                                            fit(*sample, (*iteration)++);
                                                        });
                                                },
                                                std::nullopt, items});
}

}  // namespace

void register_face_fit_benchmarks() {
    FaceFitOptions known;
    known.fit_identity = false;
    add("face.fit.mesh468", "468-point fit of 32 real frames as one batch, identity known", 32,
        [known](const TrackedSample& s, int64_t i) {
            const int64_t start = (i * 32) % (s.mesh.size(0) - 31);
            fit_face_mesh468(s.mesh.narrow(0, start, 32), known, s.identity);
        });
    add("face.fit.mesh468_single", "468-point fit of one real frame, identity known", 1,
        [known](const TrackedSample& s, int64_t i) {
            fit_face_mesh468(s.mesh[i % s.mesh.size(0)], known, s.identity);
        });
    add("face.fit.landmarks68", "68-point fit of 32 real frames as one batch, identity known", 32,
        [known](const TrackedSample& s, int64_t i) {
            const int64_t start = (i * 32) % (s.mesh.size(0) - 31);
            fit_face_landmarks68(s.landmarks68.narrow(0, start, 32), known, s.identity);
        });
    // items: the sample's 89 frames (all with a face).
    add("face.fit.video",
        "fit_face_sequence of the whole 89-frame sample: identity, every frame, gaze", 89,
        [](const TrackedSample& s, int64_t) { fit_face_sequence(s.mesh, s.found, s.iris); });
}

}  // namespace avatar::face
