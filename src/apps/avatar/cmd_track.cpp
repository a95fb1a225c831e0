// avatar track INPUT -o motion.json: face tracking of an image, a folder of images or a video
// into a motion file (docs/motion-format.md): per frame the box, 468 and 68 points, iris, head
// pose and optionally FaceRes embeddings; frames without a face are flagged, not fatal.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "face/draw.h"
#include "face/face_fit.h"
#include "face/face_model.h"
#include "face/tracker.h"
#include "media/frame_source.h"
#include "media/image.h"
#include "media/motion_file.h"

namespace avatar::cli {
namespace {
namespace fs = std::filesystem;

struct TrackOptions {
    std::string input;
    std::string output;
    std::string face = "largest";
    std::string debug_dir;
    bool embeddings = false;
    bool no_iris = false;
    bool no_landmarks68 = false;
    bool no_smooth = false;
    bool fit = false;
    double fit_smoothness = 0.0;
    double fit_expression_prior = face::FaceFitOptions{}.expression_prior;
    double fit_identity_prior = face::FaceFitOptions{}.identity_prior;
    double fit_z_weight = face::FaceFitOptions{}.z_weight;
    double min_cutoff = 1.0;
    double beta = 0.05;
    double detection_confidence = 0.5;
    double tracking_confidence = 0.5;
    int64_t max_frames = 0;
};

int parse_face(const std::string& text) {
    if (text == "largest")
        return -1;
    try {
        size_t used = 0;
        const int n = std::stoi(text, &used);
        if (used == text.size() && n >= 0)
            return n;
    } catch (const std::logic_error&) {
    }
    throw Error("--face", "'" + text + "' is neither 'largest' nor a face number (0 = leftmost)");
}

// Per-frame rows collected while tracking, stacked into channels at the end.
struct Rows {
    std::vector<torch::Tensor> box, mesh, landmarks, iris, pose, embedding;
    std::vector<uint8_t> found, detected;
    std::vector<float> confidence;
};

int64_t with_face_count(const torch::Tensor& found) {
    return found.sum().item<int64_t>();
}

torch::Tensor nan_like(std::vector<int64_t> shape) {
    return torch::full(shape, std::nanf(""), torch::kFloat32);
}

void add_row(Rows& rows, const face::TrackedFace& f, const face::TrackerOptions& options) {
    rows.found.push_back(f.found ? 1 : 0);
    rows.detected.push_back(f.detected ? 1 : 0);
    rows.confidence.push_back(f.found ? static_cast<float>(f.confidence) : std::nanf(""));
    if (!f.found) {
        rows.box.push_back(nan_like({4}));
        rows.mesh.push_back(nan_like({468, 3}));
        rows.landmarks.push_back(nan_like({68, 2}));
        rows.iris.push_back(nan_like({10, 3}));
        rows.pose.push_back(nan_like({7}));
        rows.embedding.push_back(nan_like({1024}));
        return;
    }
    rows.box.push_back(torch::tensor({f.box[0], f.box[1], f.box[2], f.box[3]}, torch::kFloat32));
    rows.mesh.push_back(f.mesh468);
    rows.landmarks.push_back(options.landmarks68 ? f.landmarks68 : nan_like({68, 2}));
    rows.iris.push_back(options.iris ? f.iris : nan_like({10, 3}));
    // Motion files hold (pitch, yaw, roll) in radians, translation, scale (docs/motion-format.md).
    const auto& p = *f.pose;
    const double deg = M_PI / 180.0;
    const auto t = p.translation.to(torch::kFloat64);
    rows.pose.push_back(
        torch::tensor({p.pitch() * deg, p.yaw() * deg, p.roll() * deg, t[0].item<double>(),
                       t[1].item<double>(), t[2].item<double>(), p.scale.item<double>()},
                      torch::kFloat32));
    rows.embedding.push_back(options.embeddings ? f.embedding : nan_like({1024}));
}

void draw_debug(const fs::path& path, torch::Tensor frame, const face::TrackedFace& f) {
    frame = frame.contiguous().clone();
    if (f.found) {
        face::draw_mesh468(frame, f.mesh468, {90, 200, 255}, 1);
        if (f.landmarks68.defined())
            face::draw_landmarks68(frame, f.landmarks68, 1);
        if (f.iris.defined())
            face::draw_points(frame, f.iris, {255, 60, 60}, 2);
        face::draw_box(frame, f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1],
                       f.detected ? face::Rgb{255, 200, 0} : face::Rgb{0, 220, 0}, 1);
        if (f.pose)
            face::draw_pose_axes(frame, *f.pose);
    }
    media::write_image(path, frame);
}

int run_track(const TrackOptions& options, const GlobalOptions& global) {
    const auto start = std::chrono::steady_clock::now();
    const auto extension = fs::path(options.output).extension().string();
    check(extension == ".json" || extension == ".safetensors", options.output,
          "the motion file must end in .json or .safetensors");
    face::TrackerOptions tracker_options;
    tracker_options.face_index = parse_face(options.face);
    tracker_options.embeddings = options.embeddings;
    tracker_options.iris = !options.no_iris;
    tracker_options.landmarks68 = !options.no_landmarks68;
    tracker_options.smooth = !options.no_smooth;
    tracker_options.smoothing.min_cutoff = options.min_cutoff;
    tracker_options.smoothing.beta = options.beta;
    tracker_options.detection_confidence = options.detection_confidence;
    tracker_options.tracking_confidence = options.tracking_confidence;
    face::FaceTracker tracker(tracker_options);

    media::FrameSource source(options.input, global.threads);
    if (!options.debug_dir.empty()) {
        std::error_code ec;
        fs::create_directories(options.debug_dir, ec);
        check(!ec, options.debug_dir, "cannot create the folder: " + ec.message());
    }
    const auto fps = source.frame_rate();
    Rows rows;
    int64_t total = source.estimated_frame_count();
    if (options.max_frames > 0)
        total = total > 0 ? std::min(total, options.max_frames) : options.max_frames;
    {
        std::optional<Progress> progress;
        if (!global.quiet && !global.json)
            progress.emplace("track", total, "frames");
        while (options.max_frames <= 0 ||
               static_cast<int64_t>(rows.found.size()) < options.max_frames) {
            auto frame = source.next();
            if (!frame)
                break;
            check(frame->size(0) == source.height() && frame->size(1) == source.width(),
                  source.current_name(), "frame size differs from the first frame's");
            const int64_t index = static_cast<int64_t>(rows.found.size());
            const double time_s = static_cast<double>(index) * static_cast<double>(fps.den) /
                                  static_cast<double>(fps.num);
            const auto tracked = tracker.track(*frame, time_s);
            add_row(rows, tracked, tracker_options);
            if (!options.debug_dir.empty()) {
                char name[32];
                std::snprintf(name, sizeof(name), "frame_%06lld.png",
                              static_cast<long long>(index));
                draw_debug(fs::path(options.debug_dir) / name, *frame, tracked);
            }
            if (progress)
                progress->advance();
        }
    }
    const int64_t n = static_cast<int64_t>(rows.found.size());
    check(n > 0, options.input, "no frames");

    media::Motion motion;
    motion.fps = fps;
    motion.frame_count = n;
    motion.image_width = source.width();
    motion.image_height = source.height();
    motion.layout = "raw";
    motion.attributes = {
        {"source", options.input},
        {"tracker", "avatar track: BlazeFace, FaceMesh, Iris, face-api 68"},
        {"smoothing", tracker_options.smooth
                          ? "one-euro min_cutoff=" + std::to_string(options.min_cutoff) +
                                " beta=" + std::to_string(options.beta)
                          : "none"},
        {"pose", "MediaPipe canonical face, weighted Procrustes (face/head_pose.h)"}};
    namespace ch = media::channel;
    auto found =
        torch::tensor(std::vector<int64_t>(rows.found.begin(), rows.found.end())).to(torch::kBool);
    motion.channels[ch::kFaceFound] = found;
    motion.channels[ch::kBox] = torch::stack(rows.box);
    motion.channels[ch::kLandmarks468] = torch::stack(rows.mesh);
    if (tracker_options.landmarks68)
        motion.channels[ch::kLandmarks68] = torch::stack(rows.landmarks);
    if (tracker_options.iris)
        motion.channels[ch::kIris] = torch::stack(rows.iris);
    motion.channels[ch::kPose] = torch::stack(rows.pose);
    motion.channels["face_confidence"] = torch::tensor(rows.confidence);
    motion.channels["full_detection"] =
        torch::tensor(std::vector<int64_t>(rows.detected.begin(), rows.detected.end()))
            .to(torch::kBool);
    if (options.embeddings)
        motion.channels["embedding_faceres"] = torch::stack(rows.embedding);
    double fit_rms = std::nan("");
    if (options.fit && with_face_count(found) == 0)
        spdlog::warn("{}: --fit: no frame has a face, so no coefficients were written",
                     options.input);
    if (options.fit && with_face_count(found) > 0) {
        // The face model's coefficients (docs/face-model.md): they replace the Procrustes pose,
        // so that pose, identity, expression and gaze are one consistent avatar-face-v1 row.
        face::SequenceFitOptions fit_options;
        fit_options.fit.smoothness = options.fit_smoothness;
        fit_options.fit.expression_prior = options.fit_expression_prior;
        fit_options.fit.identity_prior = options.fit_identity_prior;
        fit_options.fit.z_weight = options.fit_z_weight;
        const auto fit = face::fit_face_sequence(
            motion.channels[ch::kLandmarks468], found,
            tracker_options.iris ? motion.channels[ch::kIris] : torch::Tensor(), fit_options);
        const auto rows_n = fit.pose.size(0);
        const auto identity = fit.identity.unsqueeze(0).repeat({rows_n, 1});
        const auto missing = found.logical_not().unsqueeze(1);
        motion.layout = face::kFaceLayoutName;
        motion.channels[ch::kPose] = fit.pose.to(torch::kFloat32);
        motion.channels[ch::kIdentity] =
            identity.masked_fill(missing, std::nan("")).to(torch::kFloat32);
        motion.channels[ch::kExpression] = fit.expression.to(torch::kFloat32);
        if (tracker_options.iris)
            motion.channels[ch::kGaze] = fit.gaze.to(torch::kFloat32);
        motion.channels["fit_rms"] = fit.rms.to(torch::kFloat32);
        motion.attributes["pose"] = "face model fit, weak perspective (face/face_fit.h)";
        motion.attributes["fit"] = std::string(face::kFaceLayoutName) +
                                   ": identity shared by the video, smoothness " +
                                   std::to_string(options.fit_smoothness);
        fit_rms = fit.rms.nanmean().item<double>();
    }
    media::write_motion(options.output, motion);

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int64_t with_face = with_face_count(found);
    const auto& t = tracker.stage_times();
    const auto per_frame = [&](double ms) {
        return ms / static_cast<double>(std::max<int64_t>(n, 1));
    };
    if (global.json) {
        print_json({{"input", options.input},
                    {"output", options.output},
                    {"frames", n},
                    {"frames_with_face", with_face},
                    {"full_detections", t.detections},
                    {"fit_rms_px", options.fit ? nlohmann::json(fit_rms) : nlohmann::json()},
                    {"seconds", seconds},
                    {"fps", static_cast<double>(n) / seconds},
                    {"ms_per_frame",
                     {{"detect", per_frame(t.detect_ms)},
                      {"mesh", per_frame(t.mesh_ms)},
                      {"iris", per_frame(t.iris_ms)},
                      {"landmarks68", per_frame(t.landmarks68_ms)},
                      {"pose", per_frame(t.pose_ms)},
                      {"embedding", per_frame(t.embedding_ms)}}}});
        return 0;
    }
    std::printf(
        "wrote %s: %lld frames, face found in %lld, %lld full detections, %.2f s "
        "(%.1f frames/s)\n",
        options.output.c_str(), static_cast<long long>(n), static_cast<long long>(with_face),
        static_cast<long long>(t.detections), seconds, static_cast<double>(n) / seconds);
    std::printf(
        "ms per frame: detect %.1f, mesh %.1f, iris %.1f, 68 points %.1f, pose %.2f, "
        "embedding %.1f\n",
        per_frame(t.detect_ms), per_frame(t.mesh_ms), per_frame(t.iris_ms),
        per_frame(t.landmarks68_ms), per_frame(t.pose_ms), per_frame(t.embedding_ms));
    if (options.fit && std::isfinite(fit_rms))
        std::printf("face model fit (%s): mean reprojection rms %.2f px\n", face::kFaceLayoutName,
                    fit_rms);
    if (!options.debug_dir.empty())
        std::printf("debug frames: %s\n", options.debug_dir.c_str());
    return 0;
}

}  // namespace

void add_track_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<TrackOptions>();
    auto* cmd = app.add_subcommand(
        "track",
        "Track one face through a video (or an image, or a folder of images) into a motion file.\n"
        "Per frame: face box, MediaPipe FaceMesh 468 points, face-api 68 points, 10 iris points, "
        "head pose (MediaPipe canonical face) and, with --embeddings, the FaceRes 1024-d identity "
        "embedding. Detection runs only when the track is lost; frames without a face are "
        "flagged (face_found false, values NaN) and tracking goes on. Points are smoothed with a "
        "One-Euro filter. Output format: docs/motion-format.md (.safetensors is far smaller than "
        ".json for long videos).");
    cmd->add_option("INPUT", options->input, "Video, image or folder of images")->required();
    cmd->add_option("-o,--output", options->output, "Motion file (.json or .safetensors)")
        ->required();
    cmd->add_option("--face", options->face,
                    "Which face to follow when several are visible: 'largest', or N = the N-th "
                    "from the left (0 = leftmost) when first seen; kept across frames by identity")
        ->capture_default_str();
    cmd->add_flag("--embeddings", options->embeddings,
                  "Also store the FaceRes embedding of every frame (channel embedding_faceres)");
    cmd->add_flag("--no-iris", options->no_iris, "Skip the iris model (faster)");
    cmd->add_flag("--no-landmarks68", options->no_landmarks68,
                  "Skip face-api's 68-point net (faster)");
    cmd->add_flag("--no-smooth", options->no_smooth, "No temporal smoothing");
    cmd->add_flag("--fit", options->fit,
                  "Also fit the project's face model (docs/face-model.md): writes layout "
                  "avatar-face-v1 with channels identity (one per video), expression, gaze (from "
                  "the iris) and the model's pose in place of the Procrustes pose, plus fit_rms "
                  "(px)");
    cmd->add_option("--fit-smoothness", options->fit_smoothness,
                    "With --fit: weight of |expression_t - expression_t-1|^2 (0 = frames fitted "
                    "independently; the points are already One-Euro smoothed)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--min-cutoff", options->min_cutoff,
                    "One-Euro minimum cutoff in Hz: lower = steadier when still")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--beta", options->beta,
                    "One-Euro speed coefficient (per pixel/s): higher = less lag when moving")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--fit-expression-prior", options->fit_expression_prior,
                    "With --fit: weight of |expression|^2 (cm^2 per unit^2; higher = expressions "
                    "stay nearer neutral, the points are followed less closely)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--fit-z-weight", options->fit_z_weight,
                    "With --fit: weight of FaceMesh's depth against x and y (0 = 2D only)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--fit-identity-prior", options->fit_identity_prior,
                    "With --fit: weight of |identity|^2 (higher = nearer the canonical face)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--detection-confidence", options->detection_confidence,
                    "BlazeFace score needed to start a track")
        ->check(CLI::Range(0.01, 0.99))
        ->capture_default_str();
    cmd->add_option("--tracking-confidence", options->tracking_confidence,
                    "FaceMesh face probability needed to keep the track")
        ->check(CLI::Range(0.01, 0.99))
        ->capture_default_str();
    cmd->add_option("--debug", options->debug_dir,
                    "Write every frame with the mesh, 68 points, iris, box and pose axes drawn "
                    "into this folder (frame_NNNNNN.png)");
    cmd->add_option("--max-frames", options->max_frames, "Stop after this many frames")
        ->check(CLI::NonNegativeNumber);
    commands.push_back({cmd, [options, &global] { return run_track(*options, global); }});
}

}  // namespace avatar::cli
