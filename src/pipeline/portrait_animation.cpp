#include "pipeline/portrait_animation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "face/tracker.h"
#include "media/frame_source.h"
#include "media/image.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "pipeline/motion_steering.h"

namespace avatar::pipeline {
namespace dpe = engines::dpe;

// --- motion ------------------------------------------------------------------------------------

MotionMode parse_motion_mode(const std::string& name) {
    if (name == "relative")
        return MotionMode::kRelative;
    if (name == "absolute")
        return MotionMode::kAbsolute;
    throw Error("--motion", "'" + name + "' is not one of relative, absolute");
}

std::string motion_mode_name(MotionMode mode) {
    return mode == MotionMode::kRelative ? "relative" : "absolute";
}

torch::Tensor relative_motion(const torch::Tensor& source_motion,
                              const torch::Tensor& driving_motion,
                              const torch::Tensor& driving_reference) {
    check(source_motion.defined() && driving_motion.defined() && driving_reference.defined(),
          "relative_motion", "undefined motion");
    check(source_motion.sizes() == driving_motion.sizes() &&
              driving_motion.sizes() == driving_reference.sizes(),
          "relative_motion", "source, driving and reference motions differ in shape");
    return source_motion + (driving_motion - driving_reference);
}

DpeAnimator::DpeAnimator(dpe::Generator generator, dpe::Stage stage, MotionMode mode)
    : generator_(std::move(generator)), stage_(stage), mode_(mode) {
    check(static_cast<bool>(generator_), "DpeAnimator", "no generator");
    // Crops come from the CPU front end; they follow the weights to wherever those live.
    device_ = generator_->parameters().front().device();
}

int DpeAnimator::size() const {
    return static_cast<int>(generator_->config().size);
}

void DpeAnimator::set_source(const torch::Tensor& crop) {
    torch::NoGradGuard no_grad;
    reconstruction_ = torch::Tensor();
    source_ = generator_->encode(crop.to(device_));
    // The source's own motion from the code just computed: motion() would run the encoder again.
    source_motion_ = generator_->directions(generator_->alpha(source_.wa));
}

torch::Tensor DpeAnimator::driving_motion(const torch::Tensor& crop) {
    torch::NoGradGuard no_grad;
    return generator_->motion(crop.to(device_));
}

torch::Tensor DpeAnimator::motion_for(const torch::Tensor& driving) {
    if (mode_ == MotionMode::kAbsolute)
        return driving;
    check(has_source(), "DpeAnimator", "relative motion needs the source first (set_source)");
    if (!reference_.defined())
        reference_ = driving;
    return relative_motion(source_motion_, driving, reference_);
}

torch::Tensor DpeAnimator::render(const torch::Tensor& motion) {
    check(has_source(), "DpeAnimator", "no source (set_source)");
    torch::NoGradGuard no_grad;
    return generator_->render(source_, motion, stage_);
}

torch::Tensor DpeAnimator::fit_motion(const torch::Tensor& motion,
                                      const torch::Tensor& source_points,
                                      const torch::Tensor& target_points,
                                      const dpe::MotionFitOptions& options) {
    check(has_source(), "DpeAnimator", "no source (set_source)");
    return dpe::fit_motion_to_points(generator_, source_, motion.to(device_), stage_,
                                     source_points.to(device_), target_points.to(device_), options);
}

torch::Tensor DpeAnimator::animate(const torch::Tensor& driving_crop) {
    return render(motion_for(driving_motion(driving_crop)));
}

const torch::Tensor& DpeAnimator::reconstruction() {
    if (!reconstruction_.defined())
        reconstruction_ = render(source_motion_);
    return reconstruction_;
}

// --- crops -------------------------------------------------------------------------------------

face::CropTransform face_crop(const std::array<double, 4>& box, int size,
                              const CropConvention& convention) {
    return face::box_crop(box[0], box[1], box[2] - box[0], box[3] - box[1], size,
                          {convention.scale, convention.shift_y});
}

CropSmoother::CropSmoother(face::OneEuroParams params) : filter_(params) {}

face::CropTransform CropSmoother::operator()(const face::CropTransform& raw, double time_s) {
    // quad = TL, BL, BR, TR of an axis-aligned square: centre and side describe it fully.
    const auto& q = raw.quad;
    const double cx = 0.5 * (q[0][0] + q[2][0]), cy = 0.5 * (q[0][1] + q[2][1]);
    const double side = std::hypot(q[3][0] - q[0][0], q[3][1] - q[0][1]);
    const auto s = filter_(std::vector<double>{cx, cy, side}, time_s);
    const double h = 0.5 * s[2];
    return face::crop_from_quad(
        {face::Point2{s[0] - h, s[1] - h}, face::Point2{s[0] - h, s[1] + h},
         face::Point2{s[0] + h, s[1] + h}, face::Point2{s[0] + h, s[1] - h}},
        raw.size);
}

torch::Tensor crop_input(const torch::Tensor& frame, const face::CropTransform& transform) {
    // Anti-aliased as the training crops are (train/synthetic_clips.h): a plain bilinear shrink
    // shows the network aliased lids and lips it never saw in training. The k x k-times crop is
    // cut from the uint8 frame with OpenCV and only it goes to float: converting the whole frame
    // for face::warp_crop_antialiased cost 16 ms per 720p frame, twice our 64² model's render.
    const int factor = face::antialias_factor(transform);
    if (factor < 2)
        return media::to_float_nchw(face::warp_crop(frame, transform, face::Border::kReplicate));
    const auto fine =
        face::warp_crop(frame, transform, transform.size * factor, face::Border::kReplicate);
    return torch::avg_pool2d(media::to_float_nchw(fine), factor);
}

torch::Tensor paste_crop(const torch::Tensor& frame, const torch::Tensor& rendered,
                         const face::CropTransform& transform, const PasteOptions& options,
                         const torch::Tensor& region) {
    const auto crop = media::to_uint8_hwc(rendered.detach().cpu());
    const double feather = options.feather * static_cast<double>(crop.size(0));
    return face::paste_back(frame, crop, transform, feather, options.colour_match, region);
}

torch::Tensor face_region_mask(const torch::Tensor& mesh468, const face::CropTransform& transform,
                               double grow, double blur) {
    check(mesh468.defined() && mesh468.dim() == 2 && mesh468.size(1) >= 2, "face_region_mask",
          "expected points [N, 2 or 3]");
    const int size = transform.size;
    const auto points = transform.image_to_crop.apply(
        mesh468.slice(1, 0, 2).to(torch::kFloat64).cpu().contiguous());
    std::vector<cv::Point2f> pts;
    pts.reserve(static_cast<size_t>(points.size(0)));
    const auto p = points.accessor<double, 2>();
    for (int64_t i = 0; i < points.size(0); ++i)
        pts.emplace_back(static_cast<float>(p[i][0]), static_cast<float>(p[i][1]));
    std::vector<cv::Point2f> hull_f;
    cv::convexHull(pts, hull_f);
    std::vector<cv::Point> hull;
    for (const auto& q : hull_f)
        hull.emplace_back(cvRound(q.x), cvRound(q.y));
    cv::Mat mask = cv::Mat::zeros(size, size, CV_32F);
    cv::fillConvexPoly(mask, hull, cv::Scalar(1.0), cv::LINE_AA);
    const int radius = static_cast<int>(std::lround(grow * size));
    if (radius > 0) {
        cv::dilate(
            mask, mask,
            cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * radius + 1, 2 * radius + 1)));
    }
    const double sigma = blur * size;
    if (sigma > 0)
        cv::GaussianBlur(mask, mask, cv::Size(0, 0), sigma, sigma, cv::BORDER_CONSTANT);
    return torch::from_blob(mask.data, {size, size}, torch::kFloat32).clone().clamp(0, 1);
}

torch::Tensor paste_difference(const torch::Tensor& frame, const torch::Tensor& rendered,
                               const torch::Tensor& reconstruction,
                               const face::CropTransform& transform, const PasteOptions& options,
                               const torch::Tensor& region) {
    check(rendered.defined() && reconstruction.defined() &&
              rendered.sizes() == reconstruction.sizes() && rendered.dim() == 4 &&
              rendered.size(0) == 1,
          "paste_difference",
          "expected a rendered crop and a reconstruction of one shape [1, 3, S, S]");
    // [-1, 1] -> the frame's 0-255 units.
    const auto difference =
        ((rendered - reconstruction).detach().cpu()[0].permute({1, 2, 0}) * 127.5).contiguous();
    const double feather = options.feather * static_cast<double>(difference.size(0));
    return face::add_crop_difference(frame, difference, transform, feather, region);
}

PasteMode parse_paste_mode(const std::string& name) {
    if (name == "auto")
        return PasteMode::kAuto;
    if (name == "replace")
        return PasteMode::kReplace;
    if (name == "difference")
        return PasteMode::kDifference;
    throw Error("--paste-mode", "'" + name + "' is not one of auto, replace, difference");
}

PasteMode resolve_paste_mode(PasteMode mode, dpe::Stage stage) {
    if (mode != PasteMode::kAuto)
        return mode;
    return stage == dpe::Stage::kExpression ? PasteMode::kDifference : PasteMode::kReplace;
}

PasteRegion parse_paste_region(const std::string& name) {
    if (name == "auto")
        return PasteRegion::kAuto;
    if (name == "face")
        return PasteRegion::kFace;
    if (name == "crop")
        return PasteRegion::kCrop;
    throw Error("--paste-region", "'" + name + "' is not one of auto, face, crop");
}

// --- jobs --------------------------------------------------------------------------------------

DrivingCrop parse_driving_crop(const std::string& name) {
    if (name == "fixed")
        return DrivingCrop::kFixed;
    if (name == "follow")
        return DrivingCrop::kFollow;
    throw Error("--driving-crop", "'" + name + "' is not one of fixed, follow");
}

namespace {
namespace fs = std::filesystem;

// Only the face box is needed: the 68-point net and the iris model are skipped.
face::TrackerOptions tracker_options() {
    face::TrackerOptions options;
    options.landmarks68 = false;
    options.iris = false;
    return options;
}

bool paste_face_only(const AnimationOptions& options) {
    return options.paste_region == PasteRegion::kFace ||
           (options.paste_region == PasteRegion::kAuto && options.stage == dpe::Stage::kExpression);
}

// The paste region of a source face (undefined = the whole crop).
torch::Tensor paste_region(const AnimationOptions& options, const face::TrackedFace& face,
                           const face::CropTransform& crop) {
    return paste_face_only(options) ? face_region_mask(face.mesh468, crop) : torch::Tensor();
}

double frame_time(int64_t index, const media::FrameRate& fps) {
    return static_cast<double>(index) * static_cast<double>(fps.den) / static_cast<double>(fps.num);
}

bool file_has_audio(const fs::path& path, int threads) {
    if (media::FrameSource(path, 1).kind() != media::FrameSource::Kind::video)
        return false;
    return media::VideoReader(path, threads).has_audio();
}

int64_t expected_frames(int64_t estimate, int64_t max_frames) {
    if (max_frames > 0)
        return estimate > 0 ? std::min(estimate, max_frames) : max_frames;
    return estimate;
}

// The driving side: tracks each frame and gives the crop the network sees (or none).
class DrivingCropper {
public:
    DrivingCropper(const AnimationOptions& options, int size)
        : options_(options), size_(size), tracker_(tracker_options()) {}

    std::optional<face::CropTransform> next(const torch::Tensor& frame, double time_s) {
        tracked_ = tracker_.track(frame, time_s);
        const auto& tracked = tracked_;
        if (!tracked.found) {
            smoother_.reset();
            return std::nullopt;
        }
        const auto raw = face_crop(tracked.box, size_, options_.crop);
        if (options_.driving_crop == DrivingCrop::kFollow)
            return smoother_(raw, time_s);
        if (!fixed_)
            fixed_ = raw;
        return fixed_;
    }
    // The last frame's FaceMesh points ([468, 3], image px; undefined without a face).
    const torch::Tensor& mesh() const { return tracked_.mesh468; }

private:
    const AnimationOptions& options_;
    int size_;
    face::FaceTracker tracker_;
    CropSmoother smoother_;
    std::optional<face::CropTransform> fixed_;
    face::TrackedFace tracked_;
};

// Landmark steering when options ask for it (fit_motion_steps > 0).
std::optional<MotionSteering> make_steering(const AnimationOptions& options) {
    if (options.fit_motion_steps == 0)
        return std::nullopt;
    SteeringOptions steering;
    steering.fit.steps = options.fit_motion_steps;
    return MotionSteering(options.motion, options.stage, steering);
}

// One driving crop rendered on the animator's source: the network's own reading of the
// driving frame, refined to its landmarks (`driving_mesh`) when steering.
torch::Tensor animate_frame(DpeAnimator& animator, std::optional<MotionSteering>& steering,
                            const torch::Tensor& driving_crop, const torch::Tensor& driving_mesh) {
    if (!steering)
        return animator.animate(driving_crop);
    const auto motion = animator.motion_for(animator.driving_motion(driving_crop));
    return animator.render(steering->steer(animator, motion, driving_mesh));
}

struct Output {
    std::unique_ptr<media::VideoWriter> writer;
    AnimationReport report;
};

Output open_output(const fs::path& output, int width, int height, const media::FrameRate& fps,
                   const fs::path& audio_source, const AnimationOptions& options) {
    Output out;
    media::VideoWriterOptions writer_options;
    writer_options.frame_rate = fps;
    writer_options.crf = options.crf;
    writer_options.threads = options.threads;
    // The output may stop before the audio's video does (--max-frames, the shorter input).
    writer_options.trim_audio_to_video = true;
    if (options.keep_audio && file_has_audio(audio_source, options.threads)) {
        writer_options.audio_from = audio_source;
        out.report.audio = true;
        out.report.audio_from = audio_source.string();
    }
    out.writer = std::make_unique<media::VideoWriter>(output, width, height, writer_options);
    out.report.output = output.string();
    out.report.width = width;
    out.report.height = height;
    return out;
}

// The job's output: the full source frame when pasting back, else the network's crop.
Output open_job_output(const fs::path& output, const media::FrameSource& source_frames, int size,
                       const media::FrameRate& fps, const fs::path& audio_source,
                       const AnimationOptions& options) {
    return options.paste_back ? open_output(output, source_frames.width(), source_frames.height(),
                                            fps, audio_source, options)
                              : open_output(output, size, size, fps, audio_source, options);
}

// A Progress can be neither copied nor moved: it is made in the caller's optional.
void start_job_progress(std::optional<Progress>& progress, const AnimationOptions& options,
                        const std::string& name, int64_t estimated_frames) {
    if (options.show_progress)
        progress.emplace(name, expected_frames(estimated_frames, options.max_frames), "frames");
}

void finish_output(Output& out, const std::string& what, std::chrono::steady_clock::time_point t0) {
    check(out.report.frames > 0, out.report.output, "no frames to write");
    out.writer->finish();
    out.report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (out.report.frames_without_face > 0) {
        out.report.warnings.push_back(std::to_string(out.report.frames_without_face) + " of " +
                                      std::to_string(out.report.frames) + " frames had no face " +
                                      what + "; they are the source frame unchanged");
        spdlog::warn("{}", out.report.warnings.back());
    }
}

}  // namespace

torch::Tensor paste_rendered(DpeAnimator& animator, const torch::Tensor& frame,
                             const torch::Tensor& rendered, const face::CropTransform& crop,
                             const AnimationOptions& options, const torch::Tensor& region) {
    if (resolve_paste_mode(options.paste_mode, options.stage) == PasteMode::kDifference)
        return paste_difference(frame, rendered, animator.reconstruction(), crop, options.paste,
                                region);
    return paste_crop(frame, rendered, crop, options.paste, region);
}

AnimationReport animate_portrait(dpe::Generator generator, const fs::path& source,
                                 const fs::path& driving, const fs::path& output,
                                 const AnimationOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    DpeAnimator animator(std::move(generator), options.stage, options.motion);
    const int size = animator.size();

    // The still source: found, cropped and encoded once.
    media::FrameSource source_frames(source, options.threads);
    const auto source_frame = source_frames.next();
    check(source_frame.has_value(), source.string(), "no frames");
    face::FaceTracker source_tracker(tracker_options());
    const auto source_face = source_tracker.track(*source_frame, 0.0);
    check(source_face.found, source.string(), "no face found in the source");
    const auto source_crop = face_crop(source_face.box, size, options.crop);
    animator.set_source(crop_input(*source_frame, source_crop));
    auto steering = make_steering(options);
    if (steering)
        steering->set_source(source_face.mesh468, source_crop);
    const auto region = paste_region(options, source_face, source_crop);
    const auto unchanged =
        options.paste_back ? *source_frame
                           : face::warp_crop(*source_frame, source_crop, face::Border::kReplicate);

    media::FrameSource driving_frames(driving, options.threads);
    const auto fps = driving_frames.frame_rate();
    auto out = open_job_output(output, source_frames, size, fps, driving, options);
    DrivingCropper cropper(options, size);
    {
        std::optional<Progress> progress;
        start_job_progress(progress, options, "animate", driving_frames.estimated_frame_count());
        while (options.max_frames <= 0 || out.report.frames < options.max_frames) {
            const auto frame = driving_frames.next();
            if (!frame)
                break;
            const auto crop = cropper.next(*frame, frame_time(out.report.frames, fps));
            if (!crop) {
                out.writer->write(unchanged);
                ++out.report.frames_without_face;
            } else {
                const auto rendered =
                    animate_frame(animator, steering, crop_input(*frame, *crop), cropper.mesh());
                out.writer->write(options.paste_back
                                      ? paste_rendered(animator, *source_frame, rendered,
                                                       source_crop, options, region)
                                      : media::to_uint8_hwc(rendered));
            }
            ++out.report.frames;
            if (progress)
                progress->advance();
        }
    }
    finish_output(out, "in the driving video", t0);
    return out.report;
}

AnimationReport edit_video(dpe::Generator generator, const fs::path& source,
                           const fs::path& driving, const fs::path& output,
                           const AnimationOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    DpeAnimator animator(std::move(generator), options.stage, options.motion);
    const int size = animator.size();

    media::FrameSource source_frames(source, options.threads);
    media::FrameSource driving_frames(driving, options.threads);
    const auto fps = source_frames.frame_rate();
    auto out = open_job_output(output, source_frames, size, fps, source, options);
    face::FaceTracker source_tracker(tracker_options());
    CropSmoother source_smoother;
    DrivingCropper cropper(options, size);
    auto steering = make_steering(options);
    // Where a source frame has no face, --no-paste writes the last crop (or a centred square).
    std::optional<face::CropTransform> last_source_crop;
    {
        const auto a = source_frames.estimated_frame_count();
        const auto b = driving_frames.estimated_frame_count();
        std::optional<Progress> progress;
        start_job_progress(progress, options, "edit-video", a > 0 && b > 0 ? std::min(a, b) : 0);
        while (options.max_frames <= 0 || out.report.frames < options.max_frames) {
            const auto frame = source_frames.next();
            const auto drive = frame ? driving_frames.next() : std::nullopt;
            if (!frame || !drive)
                break;  // the shorter input ends the output
            check(
                frame->size(0) == source_frames.height() && frame->size(1) == source_frames.width(),
                source.string() + " (" + source_frames.current_name() + ")",
                "frame size differs from the first frame's");
            const double t = frame_time(out.report.frames, fps);
            const auto tracked = source_tracker.track(*frame, t);
            std::optional<face::CropTransform> source_crop;
            if (tracked.found) {
                source_crop = source_smoother(face_crop(tracked.box, size, options.crop), t);
                last_source_crop = source_crop;
            } else {
                source_smoother.reset();
            }
            // The driving frame is tracked even when the source has no face, so its track and
            // smoothing stay continuous.
            const auto driving_crop = cropper.next(*drive, t);
            if (!source_crop || !driving_crop) {
                ++out.report.frames_without_face;
                if (options.paste_back) {
                    out.writer->write(*frame);
                } else {
                    const int side = std::min(source_frames.width(), source_frames.height());
                    const auto fallback =
                        last_source_crop ? *last_source_crop
                                         : face::box_crop(0.5 * (source_frames.width() - side),
                                                          0.5 * (source_frames.height() - side),
                                                          side, side, size, {1.0, 0.0});
                    out.writer->write(face::warp_crop(*frame, fallback, face::Border::kReplicate));
                }
            } else {
                animator.set_source(crop_input(*frame, *source_crop));
                if (steering)
                    steering->set_source(tracked.mesh468, *source_crop);
                const auto rendered = animate_frame(
                    animator, steering, crop_input(*drive, *driving_crop), cropper.mesh());
                out.writer->write(options.paste_back
                                      ? paste_rendered(animator, *frame, rendered, *source_crop,
                                                       options,
                                                       paste_region(options, tracked, *source_crop))
                                      : media::to_uint8_hwc(rendered));
            }
            ++out.report.frames;
            if (progress)
                progress->advance();
        }
    }
    finish_output(out, "in the source or the driving frame", t0);
    return out.report;
}

}  // namespace avatar::pipeline
