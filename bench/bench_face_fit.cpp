// How well the face model (face/face_fit.h) fits real faces, reported as Google Benchmark
// counters beside the time of the fit itself (tracking happens once, untimed):
//
// BM_FitPhotos/468 and /68: the 22 faces of the six face-api demo photos (the face_models fixture
//   in ../shared, or $AVATAR_SHARED_DIR; skipped without it), found by detect_faces, each fitted
//   alone (its own identity). Counters: reprojection error of the fitted model against the
//   points it was fitted to, per point, mean and 95th percentile, in pixels and as a fraction of
//   the inter-ocular distance (outer eye corners 36-45 of face-api's 68 points); the photos have
//   very different face sizes, so the normalised figure is the comparable one.
// BM_StillHead/smooth and /raw: the bundled talking.mp4. Its motion is a zoom and sway of one
//   still photo (assets/samples/README.md), so the head's rotation, expression and gaze are
//   constant and every frame-to-frame change of them is jitter. Tracked with and without the
//   One-Euro smoothing, fitted by fit_face_sequence (identity shared). Counters: standard
//   deviation over the frames of pitch, yaw, roll (degrees), of each expression coefficient
//   (mean and max over the 22 modes) and of the gaze angles (degrees, mean over the 4); and the
//   reprojection error in pixels (mean, p95).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "core/safetensors.h"
#include "face/face_fit.h"
#include "face/tracker.h"
#include "media/video_reader.h"

namespace {
namespace fs = std::filesystem;
using namespace avatar;

fs::path shared_dir() {
    if (const char* env = std::getenv("AVATAR_SHARED_DIR"))
        return env;
    return fs::path(AVATAR_SOURCE_DIR) / ".." / "shared";
}

// Per-point 2D distances [..] -> (mean, p95).
std::pair<double, double> mean_p95(const torch::Tensor& distances) {
    const auto d = distances.flatten().to(torch::kFloat64);
    return {d.mean().item<double>(), torch::quantile(d, 0.95).item<double>()};
}

struct Photos {
    std::vector<torch::Tensor> mesh, landmarks68;  // per face
    std::vector<double> iod;                       // px
};

const std::optional<Photos>& photos() {
    static const std::optional<Photos> cache = []() -> std::optional<Photos> {
        const auto dir = shared_dir() / "reference/face_models/images";
        if (!fs::is_regular_file(dir / "faceapi_sample1.safetensors"))
            return std::nullopt;
        Photos p;
        for (int i = 1; i <= 6; ++i) {
            const auto file = dir / ("faceapi_sample" + std::to_string(i) + ".safetensors");
            const auto image = SafetensorsFile::open(file).get("image").contiguous();
            for (const auto& f : face::detect_faces(image)) {
                if (!f.found || !f.landmarks68.defined())
                    continue;
                p.mesh.push_back(f.mesh468.to(torch::kFloat64));
                p.landmarks68.push_back(f.landmarks68.to(torch::kFloat64));
                p.iod.push_back((f.landmarks68[36] - f.landmarks68[45]).norm().item<double>());
            }
        }
        return p;
    }();
    return cache;
}

void BM_FitPhotos(benchmark::State& state) {
    const bool use68 = state.range(0) == 68;
    const auto& p = photos();
    if (!p) {
        state.SkipWithError("the face_models fixture is not in ../shared (set AVATAR_SHARED_DIR)");
        return;
    }
    std::vector<torch::Tensor> errors, normalised;
    for (auto _ : state) {
        errors.clear();
        normalised.clear();
        for (size_t i = 0; i < p->mesh.size(); ++i) {
            torch::Tensor error;
            if (use68) {
                const auto fit = face::fit_face_landmarks68(p->landmarks68[i]);
                const auto ids = torch::tensor(
                    std::vector<int64_t>(face::kMesh468Of68.begin(), face::kMesh468Of68.end()));
                const auto model = face::project_face(fit.pose, fit.identity, fit.expression)
                                       .index_select(1, ids)
                                       .narrow(2, 0, 2)[0];
                error = (model - p->landmarks68[i]).norm(2, 1);
            } else {
                const auto fit = face::fit_face_mesh468(p->mesh[i]);
                const auto model = face::project_face(fit.pose, fit.identity, fit.expression)[0];
                error = (model - p->mesh[i]).narrow(1, 0, 2).norm(2, 1);
            }
            errors.push_back(error);
            normalised.push_back(error / p->iod[i]);
        }
    }
    const auto [mean_px, p95_px] = mean_p95(torch::cat(errors));
    const auto [mean_iod, p95_iod] = mean_p95(torch::cat(normalised));
    state.counters["faces"] = static_cast<double>(p->mesh.size());
    state.counters["err_px_mean"] = mean_px;
    state.counters["err_px_p95"] = p95_px;
    state.counters["err_iod_mean"] = mean_iod;
    state.counters["err_iod_p95"] = p95_iod;
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(p->mesh.size()));
}
BENCHMARK(BM_FitPhotos)->Arg(468)->Arg(68)->Unit(benchmark::kMillisecond);

struct Track {
    torch::Tensor mesh, iris, found;
};

Track track_sample(bool smooth) {
    face::TrackerOptions options;
    options.smooth = smooth;
    options.landmarks68 = false;
    face::FaceTracker tracker(options);
    media::VideoReader reader(fs::path(AVATAR_SOURCE_DIR) / "assets/samples/talking.mp4");
    std::vector<torch::Tensor> mesh, iris;
    std::vector<uint8_t> found;
    int64_t index = 0;
    while (auto frame = reader.next_frame()) {
        const auto f = tracker.track(*frame, static_cast<double>(index++) / 25.0);
        found.push_back(f.found ? 1 : 0);
        mesh.push_back(f.found ? f.mesh468 : torch::full({468, 3}, NAN));
        iris.push_back(f.found ? f.iris : torch::full({10, 3}, NAN));
    }
    return {torch::stack(mesh), torch::stack(iris),
            torch::tensor(std::vector<int64_t>(found.begin(), found.end())).to(torch::kBool)};
}

void BM_StillHead(benchmark::State& state) {
    const bool smooth = state.range(0) == 1;
    static const Track smoothed = track_sample(true), raw = track_sample(false);
    const Track& t = smooth ? smoothed : raw;
    face::SequenceFit fit;
    for (auto _ : state)
        fit = face::fit_face_sequence(t.mesh, t.found, t.iris);
    const auto rows = t.found.nonzero().view({-1});
    const auto deg = 180.0 / M_PI;
    const auto angles_std = fit.pose.index_select(0, rows).narrow(1, 0, 3).std(0) * deg;
    const auto expression_std = fit.expression.index_select(0, rows).std(0);
    const auto gaze_std = fit.gaze.index_select(0, rows).std(0) * deg;
    const auto model = face::project_face(fit.pose.index_select(0, rows), fit.identity,
                                          fit.expression.index_select(0, rows));
    const auto [mean_px, p95_px] = mean_p95(
        (model - t.mesh.index_select(0, rows).to(torch::kFloat64)).narrow(2, 0, 2).norm(2, 2));
    state.counters["frames"] = static_cast<double>(rows.size(0));
    state.counters["pitch_std_deg"] = angles_std[0].item<double>();
    state.counters["yaw_std_deg"] = angles_std[1].item<double>();
    state.counters["roll_std_deg"] = angles_std[2].item<double>();
    state.counters["expr_std_mean"] = expression_std.mean().item<double>();
    state.counters["expr_std_max"] = expression_std.max().item<double>();
    state.counters["gaze_std_deg"] = gaze_std.mean().item<double>();
    state.counters["err_px_mean"] = mean_px;
    state.counters["err_px_p95"] = p95_px;
    state.SetItemsProcessed(state.iterations() * rows.size(0));
}
BENCHMARK(BM_StillHead)->ArgName("smooth")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
