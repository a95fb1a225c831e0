#include "face/tracker.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "face/faceapi/faceapi.h"
#include "face/human/attributes.h"
#include "face/human/blazeface.h"
#include "face/human/facemesh.h"
#include "face/human/match.h"

namespace avatar::face {
namespace {
namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double iou(const human::Box& a, const human::Box& b) {
    const double w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
    const double h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
    if (w <= 0 || h <= 0)
        return 0;
    const double inter = w * h;
    return inter / (a.width() * a.height() + b.width() * b.height() - inter);
}

// The extent of the mesh's x, y.
human::Box mesh_extent(const torch::Tensor& mesh) {
    const auto xy = mesh.narrow(1, 0, 2).to(torch::kFloat64);
    const auto lo = std::get<0>(xy.min(0)), hi = std::get<0>(xy.max(0));
    return {lo[0].item<double>(), lo[1].item<double>(), hi[0].item<double>(), hi[1].item<double>()};
}

// The next frame's FaceMesh region: a square of roi_scale x the mesh extent about its centre.
human::Box roi_from_mesh(const torch::Tensor& mesh, double roi_scale) {
    const auto extent = mesh_extent(mesh);
    const double side = std::max(extent.width(), extent.height()) * roi_scale;
    const double cx = extent.centre_x(), cy = extent.centre_y();
    return {cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2};
}

}  // namespace

std::array<double, 4> detection_box_from_mesh(const torch::Tensor& mesh468) {
    const auto extent = mesh_extent(mesh468);
    const double side = std::max(extent.width(), extent.height());
    const double cx = extent.centre_x() - 0.012 * side, cy = extent.centre_y() - 0.080 * side;
    const double w = 0.787 * side, h = 1.145 * side;
    return {cx - w / 2, cy - h / 2, w, h};
}

namespace {

struct Filters {
    OneEuroFilter* mesh;
    OneEuroFilter* landmarks;
    OneEuroFilter* iris;
    double time_s;
};

// Everything measured on one face once FaceMesh has found it: iris (refining the eye contours),
// smoothing, the 68 points, the pose and the embedding.
TrackedFace measure_face(const torch::Tensor& frame, const human::FaceMeshResult& mesh,
                         const TrackerOptions& options, Filters* filters,
                         FaceTracker::StageTimes* times) {
    TrackedFace result;
    result.found = true;
    result.confidence = mesh.faceflag;
    torch::Tensor points = mesh.points;  // float64 [468, 3]
    if (options.iris) {
        const auto start = Clock::now();
        const auto eyes = human::iris(mesh, human::IrisMode::kConsistent);
        times->iris_ms += elapsed_ms(start);
        points = eyes.points.narrow(0, 0, 468);  // eye contours refined by the iris model
        result.iris = eyes.iris_points.to(torch::kFloat32);
    }
    result.raw_mesh468 = points.to(torch::kFloat32);
    if (filters != nullptr) {
        points = (*filters->mesh)(points, filters->time_s);
        if (result.iris.defined())
            result.iris = (*filters->iris)(result.iris, filters->time_s);
    }
    result.mesh468 = points.to(torch::kFloat32);
    const auto extent = mesh_extent(result.mesh468);
    result.box = {extent.x1, extent.y1, extent.x2, extent.y2};

    if (options.landmarks68) {
        const auto start = Clock::now();
        const auto b = detection_box_from_mesh(mesh.points);
        faceapi::Detection box;
        box.x = static_cast<float>(b[0]);
        box.y = static_cast<float>(b[1]);
        box.width = static_cast<float>(b[2]);
        box.height = static_cast<float>(b[3]);
        box.score = static_cast<float>(mesh.faceflag);
        auto landmarks = faceapi::default_faceapi().landmarks68(frame, box).to(torch::kFloat32);
        if (filters != nullptr)
            landmarks = (*filters->landmarks)(landmarks, filters->time_s);
        result.landmarks68 = landmarks;
        times->landmarks68_ms += elapsed_ms(start);
    }
    {
        const auto start = Clock::now();
        result.pose = head_pose_from_mesh468(result.mesh468.to(torch::kFloat64));
        times->pose_ms += elapsed_ms(start);
    }
    if (options.embeddings) {
        // FaceRes on the square about the mesh (the tracking ROI), the same framing whether the
        // face was just detected or tracked.
        const auto start = Clock::now();
        result.embedding =
            human::faceres_embedding(frame, roi_from_mesh(result.raw_mesh468, options.roi_scale))
                .to(torch::kFloat32);
        times->embedding_ms += elapsed_ms(start);
    }
    return result;
}

// A face found by a detector: its box (for overlap and size) and FaceMesh's region for it.
struct Candidate {
    human::Box box;
    human::Box roi;
};

// BlazeFace on a frame padded to a square (bottom/right, so coordinates stay the same): the
// detector was trained on undistorted squares.
std::vector<Candidate> detect_blazeface(const torch::Tensor& frame, double confidence) {
    const int64_t h = frame.size(0), w = frame.size(1);
    auto square = frame;
    if (h != w) {
        const int64_t side = std::max(h, w);
        square = F::pad(frame.permute({2, 0, 1}).unsqueeze(0),
                        F::PadFuncOptions({0, side - w, 0, side - h}))[0]
                     .permute({1, 2, 0});
    }
    human::BlazeFaceOptions detector;
    detector.min_confidence = confidence;
    detector.iou_threshold = 0.3;
    std::vector<Candidate> candidates;
    for (const auto& d : human::detect_blazeface(square, detector))
        candidates.push_back({d.box, d.roi});
    return candidates;
}

// face-api's SSD. Its boxes frame a face differently from BlazeFace's; the FaceMesh region is
// placed where the mesh of such a box lies (the inverse of detection_box_from_mesh).
std::vector<Candidate> detect_ssd(const torch::Tensor& frame, double confidence, double roi_scale) {
    std::vector<Candidate> candidates;
    for (const auto& d :
         faceapi::default_faceapi().detect_ssd(frame, static_cast<float>(confidence))) {
        const double side = (d.width / 0.787 + d.height / 1.145) / 2;
        const double cx = d.x + d.width / 2.0 + 0.012 * side;
        const double cy = d.y + d.height / 2.0 + 0.080 * side;
        const double half = side * roi_scale / 2;
        candidates.push_back({{d.x, d.y, d.x + d.width, d.y + d.height},
                              {cx - half, cy - half, cx + half, cy + half}});
    }
    return candidates;
}

std::vector<Candidate> detect_candidates(const torch::Tensor& frame,
                                         const TrackerOptions& options) {
    std::vector<Candidate> candidates;
    if (options.detector != FaceDetector::kSsd)
        candidates = detect_blazeface(frame, options.detection_confidence);
    const bool run_ssd = options.detector != FaceDetector::kBlazeFace ||
                         (options.ssd_fallback && candidates.empty());
    if (run_ssd) {
        for (const auto& c : detect_ssd(frame, options.detection_confidence, options.roi_scale)) {
            const bool known =
                std::any_of(candidates.begin(), candidates.end(),
                            [&](const Candidate& k) { return iou(k.roi, c.roi) > 0.3; });
            if (!known)
                candidates.push_back(c);
        }
    }
    return candidates;
}

void check_frame(const torch::Tensor& frame) {
    avatar::check(frame.dim() == 3 && frame.size(2) == 3 && frame.scalar_type() == torch::kUInt8,
                  "tracker frame", "expected uint8 [H, W, 3] RGB");
}

}  // namespace

std::vector<TrackedFace> detect_faces(const torch::Tensor& image, const TrackerOptions& options) {
    check_frame(image);
    FaceTracker::StageTimes times;
    std::vector<TrackedFace> faces;
    for (const auto& candidate : detect_candidates(image, options)) {
        const auto first = human::facemesh(image, candidate.roi);
        if (first.faceflag < options.acquisition_confidence)
            continue;
        const auto mesh = human::facemesh(image, roi_from_mesh(first.points, options.roi_scale));
        if (mesh.faceflag < options.acquisition_confidence)
            continue;
        // Two candidates of one face (e.g. from both detectors) converge on the same mesh.
        const auto extent = mesh_extent(mesh.points);
        const bool duplicate = std::any_of(faces.begin(), faces.end(), [&](const TrackedFace& f) {
            return iou(extent, {f.box[0], f.box[1], f.box[2], f.box[3]}) > 0.5;
        });
        if (duplicate)
            continue;
        auto face = measure_face(image, mesh, options, nullptr, &times);
        face.detected = true;
        faces.push_back(std::move(face));
    }
    std::sort(faces.begin(), faces.end(),
              [](const TrackedFace& a, const TrackedFace& b) { return a.box[0] < b.box[0]; });
    return faces;
}

const TrackedFace* largest_face(const std::vector<TrackedFace>& faces) {
    const auto area = [](const TrackedFace& f) {
        return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
    };
    const auto largest =
        std::max_element(faces.begin(), faces.end(),
                         [&](const auto& a, const auto& b) { return area(a) < area(b); });
    return largest == faces.end() ? nullptr : &*largest;
}

std::vector<TrackedFace> detect_faces(const torch::Tensor& image) {
    TrackerOptions options;
    options.detector = FaceDetector::kBoth;
    return detect_faces(image, options);
}

struct FaceTracker::State {
    std::optional<human::Box> roi;       // where FaceMesh looks in the next frame
    std::optional<human::Box> last_box;  // the last frame's mesh extent (for identity)
    torch::Tensor identity;              // FaceRes embedding at the first acquisition
    bool acquired_once = false;
    OneEuroFilter mesh_filter, landmarks_filter, iris_filter;

    explicit State(const OneEuroParams& p) : mesh_filter(p), landmarks_filter(p), iris_filter(p) {}
    void reset_filters() {
        mesh_filter.reset();
        landmarks_filter.reset();
        iris_filter.reset();
    }
};

FaceTracker::FaceTracker(TrackerOptions options)
    : options_(options), state_(std::make_unique<State>(options.smoothing)) {
    avatar::check(options_.roi_scale > 1.0 && options_.roi_scale < 4.0, "tracker roi_scale",
                  "must be in (1, 4)");
    avatar::check(options_.detection_confidence > 0 && options_.detection_confidence < 1,
                  "tracker detection_confidence", "must be in (0, 1)");
    avatar::check(options_.tracking_confidence > 0 && options_.tracking_confidence < 1,
                  "tracker tracking_confidence", "must be in (0, 1)");
    avatar::check(options_.acquisition_confidence > 0 && options_.acquisition_confidence < 1,
                  "tracker acquisition_confidence", "must be in (0, 1)");
}

FaceTracker::~FaceTracker() = default;

void FaceTracker::reset() {
    state_ = std::make_unique<State>(options_.smoothing);
}

TrackedFace FaceTracker::track(const torch::Tensor& frame, double time_s) {
    check_frame(frame);
    auto& s = *state_;
    TrackedFace result;
    ++times_.frames;

    auto detect = [&]() -> std::optional<human::Box> {
        const auto start = Clock::now();
        ++times_.detections;
        result.detected = true;
        auto faces = detect_candidates(frame, options_);
        times_.detect_ms += elapsed_ms(start);
        if (faces.empty())
            return std::nullopt;
        const Candidate* chosen = nullptr;
        if (faces.size() > 1 && s.identity.defined()) {
            // Keep the identity: the closest embedding, then the largest overlap.
            const auto start_embedding = Clock::now();
            double best = -INFINITY;
            for (const auto& f : faces) {
                const auto e = human::faceres_embedding(frame, f.roi);
                double score = human::cosine_similarity(e, s.identity).item<double>();
                if (s.last_box)
                    score += 0.05 * iou(f.box, *s.last_box);
                if (score > best) {
                    best = score;
                    chosen = &f;
                }
            }
            times_.embedding_ms += elapsed_ms(start_embedding);
        } else if (faces.size() > 1 && s.last_box) {
            chosen =
                &*std::max_element(faces.begin(), faces.end(), [&](const auto& a, const auto& b) {
                    return iou(a.box, *s.last_box) < iou(b.box, *s.last_box);
                });
        } else if (options_.face_index >= 0 && !s.acquired_once) {
            std::vector<const Candidate*> by_x;
            for (const auto& f : faces)
                by_x.push_back(&f);
            std::sort(by_x.begin(), by_x.end(),
                      [](auto* a, auto* b) { return a->box.centre_x() < b->box.centre_x(); });
            if (options_.face_index >= static_cast<int>(by_x.size()))
                return std::nullopt;  // not in view yet
            chosen = by_x[static_cast<size_t>(options_.face_index)];
        } else {
            chosen =
                &*std::max_element(faces.begin(), faces.end(), [](const auto& a, const auto& b) {
                    return a.box.width() * a.box.height() < b.box.width() * b.box.height();
                });
        }
        // Remember who we follow when others are around (or when embeddings are wanted anyway).
        if (!s.acquired_once && (faces.size() > 1 || options_.embeddings)) {
            const auto start_embedding = Clock::now();
            s.identity = human::faceres_embedding(frame, chosen->roi);
            times_.embedding_ms += elapsed_ms(start_embedding);
        }
        s.acquired_once = true;
        return chosen->roi;
    };

    std::optional<human::FaceMeshResult> mesh;
    for (int attempt = 0; attempt < 2 && !mesh; ++attempt) {
        if (!s.roi) {
            s.roi = detect();
            if (!s.roi)
                break;
        }
        const auto start = Clock::now();
        auto m = human::facemesh(frame, *s.roi);
        times_.mesh_ms += elapsed_ms(start);
        const double needed =
            result.detected ? options_.acquisition_confidence : options_.tracking_confidence;
        if (m.faceflag >= needed) {
            mesh = std::move(m);
        } else {
            s.roi.reset();  // lost: detect again on this same frame (once)
            if (result.detected)
                break;
        }
    }
    if (!mesh) {
        s.reset_filters();
        s.roi.reset();
        return result;
    }
    const bool detected = result.detected;
    Filters filters{&s.mesh_filter, &s.landmarks_filter, &s.iris_filter, time_s};
    result = measure_face(frame, *mesh, options_, options_.smooth ? &filters : nullptr, &times_);
    result.detected = detected;
    s.roi = roi_from_mesh(result.raw_mesh468, options_.roi_scale);
    s.last_box = mesh_extent(result.raw_mesh468);
    return result;
}

}  // namespace avatar::face
