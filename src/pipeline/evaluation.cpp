#include "pipeline/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "face/face_fit.h"
#include "face/faceapi/faceapi.h"
#include "face/human/match.h"
#include "face/tracker.h"
#include "media/frame_source.h"
#include "metrics/face_metrics.h"
#include "metrics/image_metrics.h"

namespace avatar::pipeline {
namespace {

const std::vector<std::string> kDefaultMetrics = {"psnr", "ssim"};

// uint8 [H, W, 3] -> float64 [1, 3, H, W] in [0, 1], the metrics' convention.
torch::Tensor unit_range(const torch::Tensor& image) {
    return image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat64) / 255.0;
}

// What the face metrics need of one image: found by a fresh tracker (full detection, no
// smoothing), the FaceRes embedding, face-api's 68 points and dlib descriptor, and the face
// region (convex hull of the 468 points).
struct FaceAnalysis {
    bool found = false;
    torch::Tensor points68;    // [68, 2]
    torch::Tensor embedding;   // [1024] FaceRes
    torch::Tensor descriptor;  // [128] face-api (dlib ResNet)
    torch::Tensor mask;        // [1, 1, H, W] float64 in {0, 1}
    torch::Tensor pose_deg;    // [3] pitch, yaw, roll of the face model fit (aed/apd only)
    torch::Tensor expression;  // [E] face model expression coefficients (aed/apd only)
};

bool needs_face(const std::string& name) {
    return name != "psnr" && name != "ssim";
}

// Which of the expensive per-face analyses the requested metrics need.
struct FaceNeeds {
    bool any = false;         // some metric needs the face at all
    bool embedding = false;   // csim: FaceRes
    bool descriptor = false;  // csim_dlib: face-api's dlib ResNet
    bool model = false;       // aed, apd: the face model fit
};

FaceNeeds face_needs(const std::vector<std::string>& names) {
    const auto has = [&](const char* name) {
        return std::find(names.begin(), names.end(), name) != names.end();
    };
    FaceNeeds needs;
    needs.any = std::any_of(names.begin(), names.end(), needs_face);
    needs.embedding = has("csim");
    needs.descriptor = has("csim_dlib");
    needs.model = has("aed") || has("apd");
    return needs;
}

face::TrackerOptions analysis_tracker_options(const FaceNeeds& needs) {
    face::TrackerOptions options;
    options.smooth = false;  // metrics judge each frame as it is
    options.embeddings = needs.embedding;
    options.iris = false;
    return options;
}

// The face of one image: with `tracker`, the tracked face of a sequence (full detection only on
// the first frame and when the track is lost); without, a full detection (largest face).
FaceAnalysis analyse_face(const torch::Tensor& image, const FaceNeeds& needs,
                          face::FaceTracker* tracker = nullptr, double time_s = 0.0) {
    FaceAnalysis analysis;
    face::TrackedFace tracked;
    if (tracker != nullptr) {
        tracked = tracker->track(image, time_s);
        if (!tracked.found)
            return analysis;
    } else {
        const auto faces = face::detect_faces(image, analysis_tracker_options(needs));
        const auto* largest = face::largest_face(faces);
        if (largest == nullptr)
            return analysis;
        tracked = *largest;
    }
    const auto& f = tracked;
    analysis.found = true;
    analysis.points68 = f.landmarks68;
    analysis.embedding = f.embedding;
    if (needs.descriptor)
        analysis.descriptor = face::faceapi::default_faceapi().descriptor(image, f.landmarks68);
    if (needs.model) {
        // Each image is fitted alone (its own identity), as the papers fit their 3DMM per frame.
        const auto fit = face::fit_face_mesh468(f.mesh468);
        analysis.pose_deg = fit.pose[0].narrow(0, 0, 3) * (180.0 / M_PI);
        analysis.expression = fit.expression[0];
    }
    analysis.mask =
        metrics::convex_hull_mask(f.mesh468.narrow(1, 0, 2), image.size(0), image.size(1))
            .to(torch::kFloat64)
            .view({1, 1, image.size(0), image.size(1)});
    return analysis;
}

const MetricInfo& metric_info(const std::string& name) {
    for (const auto& m : evaluation_metrics()) {
        if (m.name == name)
            return m;
    }
    std::string known;
    for (const auto& m : evaluation_metrics())
        known += (known.empty() ? "" : ", ") + m.name;
    throw Error("--metrics", "unknown metric '" + name + "' (known: " + known + ")");
}

// NaN means "no value" (e.g. no face in the frame) and prints empty; PSNR of identical images is
// +inf, which is a value.
std::string format_value(double v) {
    if (std::isnan(v))
        return "";
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    char text[32];
    std::snprintf(text, sizeof(text), "%.6g", v);
    return text;
}

}  // namespace

const std::vector<MetricInfo>& evaluation_metrics() {
    static const std::vector<MetricInfo> metrics = {
        {"psnr", "PSNR over the whole frame, 10 log10(1 / MSE) on [0, 1] RGB", "dB", true, false},
        {"ssim",
         "SSIM (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, [0, 1] RGB, valid windows, "
         "mean over channels)",
         "", true, false},
        {"face_psnr", "PSNR inside the ground truth's face region (hull of its 468 points)", "dB",
         true, false},
        {"face_ssim", "SSIM of the windows centred in the ground truth's face region", "", true,
         false},
        {"csim",
         "identity: cosine similarity of FaceRes (HSE, 1024-d) embeddings of prediction and "
         "source, or ground truth without --source; not ArcFace, so not comparable with papers' "
         "CSIM",
         "", true, false},
        {"csim_dlib",
         "identity: euclidean distance of face-api's dlib-ResNet 128-d descriptors (same person "
         "below about 0.6), prediction vs source, or ground truth without --source",
         "", false, false},
        {"akd", "mean distance of face-api's 68 landmarks, prediction vs ground truth", "px", false,
         false},
        {"akd_iod",
         "akd divided by the ground truth's inter-ocular distance (outer eye corners 36-45)", "",
         false, false},
        {"aed",
         "expression: mean absolute difference of the 22 expression coefficients of the "
         "project's face model (docs/face-model.md), each image fitted alone from its 468 points, "
         "prediction vs ground truth; not the papers' 3DMM, so not comparable with their AED",
         "", false, false},
        {"apd",
         "pose: mean absolute difference of pitch, yaw and roll of the face model fit, "
         "prediction vs ground truth",
         "deg", false, false},
    };
    return metrics;
}

namespace {

// The source's analysis (identity metrics only need its embedding and descriptor), or an empty
// one when no metric needs faces.
FaceAnalysis analyse_source(const std::vector<std::string>& names, const torch::Tensor& source,
                            face::FaceTracker* tracker = nullptr, double time_s = 0.0) {
    auto needs = face_needs(names);
    needs.model = false;
    return needs.any ? analyse_face(source, needs, tracker, time_s) : FaceAnalysis{};
}

// Trackers for the frames of sequences (one per input), or none: every frame fully detected.
struct SequenceTrackers {
    std::optional<face::FaceTracker> prediction, ground_truth, source;
};

// The metrics of a prediction against an analysed ground truth: `pred` and `gt` in the metrics'
// range (unit_range), `source_face` the analysed source (nullptr: none given). The callers
// analyse each image once however many metrics or predictions use it.
std::vector<double> score_analysed(const std::vector<std::string>& names, const torch::Tensor& pred,
                                   const FaceAnalysis& pred_face, const torch::Tensor& gt,
                                   const FaceAnalysis& gt_face, const FaceAnalysis* source_face) {
    // Identity metrics compare with the source when there is one (cross-identity), else gt.
    const FaceAnalysis& identity = source_face != nullptr ? *source_face : gt_face;
    std::vector<double> values;
    for (const auto& name : names) {
        double v = NAN;
        if (name == "psnr") {
            v = metrics::psnr(pred, gt).item<double>();
        } else if (name == "ssim") {
            v = metrics::ssim(pred, gt).item<double>();
        } else if (name == "face_psnr") {
            if (gt_face.found)
                v = metrics::masked_psnr(pred, gt, gt_face.mask).item<double>();
        } else if (name == "face_ssim") {
            if (gt_face.found)
                v = metrics::masked_ssim(pred, gt, gt_face.mask).item<double>();
        } else if (name == "csim") {
            if (pred_face.found && identity.found)
                v = metrics::cosine_similarity(pred_face.embedding, identity.embedding);
        } else if (name == "csim_dlib") {
            if (pred_face.found && identity.found)
                v = metrics::euclidean_distance(pred_face.descriptor, identity.descriptor);
        } else if (name == "akd") {
            if (pred_face.found && gt_face.found)
                v = metrics::keypoint_distance(pred_face.points68, gt_face.points68);
        } else if (name == "akd_iod") {
            if (pred_face.found && gt_face.found)
                v = metrics::keypoint_distance(pred_face.points68, gt_face.points68) /
                    metrics::inter_ocular_distance68(gt_face.points68);
        } else if (name == "aed") {
            if (pred_face.found && gt_face.found)
                v = (pred_face.expression - gt_face.expression).abs().mean().item<double>();
        } else if (name == "apd") {
            if (pred_face.found && gt_face.found)
                v = (pred_face.pose_deg - gt_face.pose_deg).abs().mean().item<double>();
        } else {
            metric_info(name);  // throws for unknown names
        }
        values.push_back(v);
    }
    return values;
}

// The metrics of one frame pair; `source_face` is the analysed source (nullptr: none given),
// analysed by the caller so that a still source is analysed once, not per frame.
std::vector<double> score_frame(const std::vector<std::string>& names,
                                const torch::Tensor& prediction, const torch::Tensor& ground_truth,
                                const FaceAnalysis* source_face,
                                SequenceTrackers* trackers = nullptr, double time_s = 0.0) {
    check(prediction.sizes() == ground_truth.sizes(), "prediction",
          "frame size differs from the ground truth's");
    FaceAnalysis pred_face, gt_face;
    const auto needs = face_needs(names);
    if (needs.any) {
        const auto tracker = [&](std::optional<face::FaceTracker>& t) {
            return trackers != nullptr && t ? &*t : nullptr;
        };
        pred_face = analyse_face(prediction, needs,
                                 trackers ? tracker(trackers->prediction) : nullptr, time_s);
        gt_face = analyse_face(ground_truth, needs,
                               trackers ? tracker(trackers->ground_truth) : nullptr, time_s);
    }
    return score_analysed(names, unit_range(prediction), pred_face, unit_range(ground_truth),
                          gt_face, source_face);
}

}  // namespace

// What FrameScorer keeps between predictions.
struct FrameScorer::State {
    std::vector<std::string> names;
    FaceNeeds needs;
    torch::Tensor source, gt, gt_unit;  // images as given; gt in the metrics' range
    FaceAnalysis source_face, gt_face;
    bool has_source = false;
    int64_t analyses = 0;
};

FrameScorer::FrameScorer(const std::vector<std::string>& names)
    : state_(std::make_shared<State>()) {
    for (const auto& name : names)
        metric_info(name);  // throws for unknown names
    state_->names = names;
    state_->needs = face_needs(names);
}

void FrameScorer::set_source(const torch::Tensor& source) {
    auto& s = *state_;
    s.source = source;
    s.has_source = true;
    // All needs, not only the identity ones: a prediction that is the source itself (the
    // unchanged-source baseline) then reuses this analysis for akd/aed/apd too.
    s.source_face = s.needs.any ? analyse_face(source, s.needs) : FaceAnalysis{};
    s.analyses += s.needs.any ? 1 : 0;
}

void FrameScorer::set_ground_truth(const torch::Tensor& ground_truth) {
    auto& s = *state_;
    s.gt = ground_truth;
    s.gt_unit = unit_range(ground_truth);
    s.gt_face = s.needs.any ? analyse_face(ground_truth, s.needs) : FaceAnalysis{};
    s.analyses += s.needs.any ? 1 : 0;
}

std::vector<double> FrameScorer::score(const torch::Tensor& prediction) {
    auto& s = *state_;
    check(s.gt.defined(), "FrameScorer", "no ground truth (set_ground_truth)");
    check(prediction.sizes() == s.gt.sizes(), "prediction",
          "frame size differs from the ground truth's");
    FaceAnalysis analysed;
    const FaceAnalysis* pred_face = &analysed;
    if (s.has_source && prediction.is_same(s.source)) {
        pred_face = &s.source_face;
    } else if (s.needs.any) {
        analysed = analyse_face(prediction, s.needs);
        ++s.analyses;
    }
    return score_analysed(s.names, unit_range(prediction), *pred_face, s.gt_unit, s.gt_face,
                          s.has_source ? &s.source_face : nullptr);
}

int64_t FrameScorer::analyses() const {
    return state_->analyses;
}

std::vector<double> evaluate_frame(const std::vector<std::string>& names,
                                   const torch::Tensor& prediction,
                                   const torch::Tensor& ground_truth,
                                   const std::optional<torch::Tensor>& source) {
    FrameScorer scorer(names);
    if (source)
        scorer.set_source(*source);
    scorer.set_ground_truth(ground_truth);
    return scorer.score(prediction);
}

EvaluationReport evaluate(const std::filesystem::path& prediction,
                          const std::filesystem::path& ground_truth,
                          const std::optional<std::filesystem::path>& source,
                          const EvaluationOptions& options) {
    EvaluationReport report;
    const auto names = options.metrics.empty() ? kDefaultMetrics : options.metrics;
    for (const auto& name : names) {
        check(std::count(names.begin(), names.end(), name) == 1, "--metrics",
              "metric '" + name + "' given twice");
        report.metrics.push_back(metric_info(name));
        check(!report.metrics.back().needs_source || source.has_value(), "--metrics",
              "metric '" + name + "' compares with the source identity: pass --source");
    }

    media::FrameSource pred_frames(prediction);
    media::FrameSource gt_frames(ground_truth);
    std::optional<media::FrameSource> source_frames;
    std::optional<torch::Tensor> still_source;
    FaceAnalysis source_face;  // the still source, or the current frame of a source video
    if (source) {
        source_frames.emplace(*source);
        if (source_frames->kind() == media::FrameSource::Kind::image) {
            still_source = source_frames->next();
            source_face = analyse_source(names, *still_source);  // once for every frame
        }
    }
    if (!options.resize_prediction) {
        check(
            pred_frames.width() == gt_frames.width() && pred_frames.height() == gt_frames.height(),
            prediction.string(),
            "frames are " + std::to_string(pred_frames.width()) + "x" +
                std::to_string(pred_frames.height()) + " but the ground truth's are " +
                std::to_string(gt_frames.width()) + "x" + std::to_string(gt_frames.height()) +
                " (pass --resize to scale predictions to the ground truth's size)");
    }

    SequenceTrackers trackers;
    const auto needs = face_needs(names);
    if (options.track_faces && needs.any) {
        trackers.prediction.emplace(analysis_tracker_options(needs));
        trackers.ground_truth.emplace(analysis_tracker_options(needs));
        if (source_frames && !still_source)
            trackers.source.emplace(analysis_tracker_options(needs));
    }
    int64_t total =
        std::max(pred_frames.estimated_frame_count(), gt_frames.estimated_frame_count());
    if (options.max_frames > 0)
        total = total > 0 ? std::min(total, options.max_frames) : options.max_frames;
    std::optional<Progress> progress;
    if (options.show_progress)
        progress.emplace("eval", total, "frames");
    while (options.max_frames <= 0 ||
           static_cast<int64_t>(report.values.size()) < options.max_frames) {
        auto pred = pred_frames.next();
        auto gt = gt_frames.next();
        if (!pred || !gt)
            break;
        std::optional<torch::Tensor> src;
        if (source_frames && !still_source) {
            src = source_frames->next();
            check(src.has_value(), source->string(),
                  "has fewer frames than the prediction (" +
                      std::to_string(source_frames->frames_read()) + ")");
        }
        if (pred->sizes() != gt->sizes()) {
            check(options.resize_prediction, pred_frames.current_name(),
                  "frame size differs from the ground truth's (pass --resize)");
            namespace F = torch::nn::functional;
            auto resized = F::interpolate(pred->permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32),
                                          F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{gt->size(0), gt->size(1)})
                                              .mode(torch::kBilinear)
                                              .align_corners(false)
                                              .antialias(true));
            pred = resized[0].permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8);
        }
        // Smoothing is off, so the time stamp only orders the frames.
        const double time_s = static_cast<double>(report.values.size()) / 25.0;
        if (source_frames && !still_source)
            source_face =
                analyse_source(names, *src, trackers.source ? &*trackers.source : nullptr, time_s);
        report.values.push_back(score_frame(
            names, *pred, *gt, source_frames ? &source_face : nullptr, &trackers, time_s));
        report.frame_names.push_back(gt_frames.current_name());
        if (progress)
            progress->advance();
    }
    if (progress)
        progress->finish();
    // Count what is left over so that a length mismatch is reported, not silently cut.
    report.prediction_frames = pred_frames.frames_read();
    report.ground_truth_frames = gt_frames.frames_read();
    if (options.max_frames <= 0) {
        while (pred_frames.next())
            ;
        while (gt_frames.next())
            ;
        report.prediction_frames = pred_frames.frames_read();
        report.ground_truth_frames = gt_frames.frames_read();
        if (report.prediction_frames != report.ground_truth_frames) {
            report.warnings.push_back(
                "the prediction has " + std::to_string(report.prediction_frames) +
                " frames and the ground truth " + std::to_string(report.ground_truth_frames) +
                "; only the first " + std::to_string(report.values.size()) + " were compared");
        }
    }
    check(!report.values.empty(), prediction.string(), "no frames to compare");

    for (size_t m = 0; m < report.metrics.size(); ++m) {
        MetricSummary s;
        s.name = report.metrics[m].name;
        double sum = 0, sum_sq = 0;
        s.min = INFINITY;
        s.max = -INFINITY;
        for (const auto& row : report.values) {
            const double v = row[m];
            if (std::isnan(v))
                continue;
            ++s.frames;
            sum += v;
            sum_sq += v * v;
            s.min = std::min(s.min, v);
            s.max = std::max(s.max, v);
        }
        if (s.frames > 0) {
            s.mean = sum / static_cast<double>(s.frames);
            s.stddev = std::isfinite(s.mean)
                           ? std::sqrt(std::max(
                                 0.0, sum_sq / static_cast<double>(s.frames) - s.mean * s.mean))
                           : NAN;
        } else {
            s.mean = s.stddev = s.min = s.max = NAN;
        }
        report.summaries.push_back(s);
    }
    return report;
}

nlohmann::json EvaluationReport::to_json() const {
    nlohmann::json metrics_json = nlohmann::json::array();
    for (size_t m = 0; m < metrics.size(); ++m) {
        const auto& s = summaries[m];
        // JSON has no infinity: +inf (PSNR of identical frames) is written as the string "inf".
        auto number = [](double v) {
            if (std::isnan(v))
                return nlohmann::json(nullptr);
            if (std::isinf(v))
                return nlohmann::json(v > 0 ? "inf" : "-inf");
            return nlohmann::json(v);
        };
        metrics_json.push_back({{"name", s.name},
                                {"description", metrics[m].description},
                                {"unit", metrics[m].unit},
                                {"higher_is_better", metrics[m].higher_is_better},
                                {"frames", s.frames},
                                {"mean", number(s.mean)},
                                {"std", number(s.stddev)},
                                {"min", number(s.min)},
                                {"max", number(s.max)}});
    }
    return {{"frames_compared", values.size()},
            {"prediction_frames", prediction_frames},
            {"ground_truth_frames", ground_truth_frames},
            {"metrics", metrics_json},
            {"warnings", warnings}};
}

std::string EvaluationReport::summary_table() const {
    std::ostringstream out;
    out << "| metric | mean | std | min | max | frames | better |\n";
    out << "|---|---:|---:|---:|---:|---:|---|\n";
    for (size_t m = 0; m < metrics.size(); ++m) {
        const auto& s = summaries[m];
        out << "| " << s.name << (metrics[m].unit.empty() ? "" : " (" + metrics[m].unit + ")")
            << " | " << format_value(s.mean) << " | " << format_value(s.stddev) << " | "
            << format_value(s.min) << " | " << format_value(s.max) << " | " << s.frames << " | "
            << (metrics[m].higher_is_better ? "higher" : "lower") << " |\n";
    }
    return out.str();
}

std::string EvaluationReport::to_csv() const {
    std::ostringstream out;
    out << "frame,name";
    for (const auto& m : metrics)
        out << "," << m.name;
    out << "\n";
    for (size_t i = 0; i < values.size(); ++i) {
        std::string name = frame_names[i];
        // Names are file names or "frame N"; quote them so commas in file names stay intact.
        std::string quoted = "\"";
        for (char c : name)
            quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        quoted += "\"";
        out << i << "," << quoted;
        for (double v : values[i])
            out << "," << format_value(v);
        out << "\n";
    }
    return out.str();
}

}  // namespace avatar::pipeline
