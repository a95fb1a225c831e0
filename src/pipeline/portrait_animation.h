#pragma once
// Portrait animation and video portrait editing with DPE, the pipeline of DESIGN.md section 3:
// track the face -> crop it (FOMM-style box crop at the weights' size) -> encode the source ->
// driving motion per frame -> render -> paste back into the full source frame -> encode the video
// with the original audio. The choices (crop convention, relative motion, paste-back) are
// explained in docs/animate.md.
//
// Two jobs:
//   animate_portrait: one still source (an image, or the first frame of a video), encoded once,
//     driven by every frame of a driving video; the driving audio is kept.
//   edit_video: every frame of a source video edited with the paired driving frame (source
//     frame t with driving frame t; the output stops at the shorter of the two); the source
//     audio is kept.
// Frames where the face is not found (in the driving frame, or in the source frame of
// edit_video) are written as the source frame unchanged and counted in the report.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engines/dpe/generator.h"
#include "engines/dpe/motion_fit.h"
#include "face/alignment.h"
#include "face/one_euro.h"

namespace avatar::pipeline {

// --- motion ------------------------------------------------------------------------------------

// kAbsolute: the driving frame's motion is used as it is (the official DPE demo). kRelative:
// the source's own motion plus the driving motion's change since the reference driving frame
// (LIA's relative mode), so the source keeps its own head shape and placement and only the
// driving *change* is transferred.
enum class MotionMode { kRelative, kAbsolute };
MotionMode parse_motion_mode(const std::string& name);  // "relative" | "absolute"
std::string motion_mode_name(MotionMode mode);

// source_motion + (driving_motion - driving_reference), elementwise on DPE directions
// [B, style_dim]. With driving_motion == driving_reference the result is source_motion.
torch::Tensor relative_motion(const torch::Tensor& source_motion,
                              const torch::Tensor& driving_motion,
                              const torch::Tensor& driving_reference);

// The engine-facing core: one DPE generator, the current source and the motion rule. Images
// are float32 NCHW RGB in [-1, 1] at the weights' size (size() x size()); crops are moved to the
// generator's device, and results stay there.
class DpeAnimator {
public:
    DpeAnimator(engines::dpe::Generator generator, engines::dpe::Stage stage, MotionMode mode);

    int size() const;
    engines::dpe::Stage stage() const { return stage_; }
    MotionMode mode() const { return mode_; }

    // Encodes a source crop (once per source image) and its own motion (for relative mode).
    void set_source(const torch::Tensor& crop);
    bool has_source() const { return source_.wa.defined(); }
    const torch::Tensor& source_motion() const { return source_motion_; }

    // The motion of a driving crop (DPE's directions, [1, style_dim]).
    torch::Tensor driving_motion(const torch::Tensor& crop);
    // The motion to render for a driving motion. Absolute: the driving motion itself. Relative:
    // relative_motion(source, driving, reference), where the first call after construction or
    // reset_reference() makes its driving motion the reference.
    torch::Tensor motion_for(const torch::Tensor& driving_motion);
    bool has_reference() const { return reference_.defined(); }
    void reset_reference() { reference_ = torch::Tensor(); }

    // Renders the current source with `motion` at the chosen stage.
    torch::Tensor render(const torch::Tensor& motion);
    // `motion` refined so that the chosen stage's warps carry `source_points` of the source
    // crop to `target_points` (grid_sample coordinates, [1, N, 2]): engines::dpe::
    // fit_motion_to_points on the current source, the generator left as it was.
    torch::Tensor fit_motion(const torch::Tensor& motion, const torch::Tensor& source_points,
                             const torch::Tensor& target_points,
                             const engines::dpe::MotionFitOptions& options);
    // driving crop -> rendered crop: render(motion_for(driving_motion(crop))).
    torch::Tensor animate(const torch::Tensor& driving_crop);
    // The network's own rendering of the unedited source (its own motion at the chosen stage),
    // computed once per source: the base of PasteMode::kDifference.
    const torch::Tensor& reconstruction();

private:
    engines::dpe::Generator generator_;
    engines::dpe::Stage stage_;
    MotionMode mode_;
    engines::dpe::SourceCode source_;
    torch::Tensor source_motion_, reference_, reconstruction_;
    torch::Device device_{torch::kCPU};
};

// --- crops -------------------------------------------------------------------------------------

// The crop convention for DPE's input: an axis-aligned square centred on the extent of
// FaceMesh's 468 points, `scale` times its larger side (FOMM/VoxCeleb-style: the whole head
// with some background, not an eye-aligned FFHQ crop; DPE was trained on such crops).
struct CropConvention {
    double scale = 1.7;
    double shift_y = 0.0;  // fraction of the crop side; positive moves the square down
};

// The crop of a face box (x0, y0, x1, y1 in image pixels) at `size` x `size`.
face::CropTransform face_crop(const std::array<double, 4>& box, int size,
                              const CropConvention& convention = {});

// Temporal smoothing of crops: a One-Euro filter on the square's centre and side (pixels), on
// top of the tracker's smoothed points, so the network sees a steady window (a jittering crop
// makes the rendered face jitter even where the face is still).
class CropSmoother {
public:
    explicit CropSmoother(face::OneEuroParams params = {0.5, 0.02, 1.0});
    face::CropTransform operator()(const face::CropTransform& raw, double time_s);
    void reset() { filter_.reset(); }

private:
    face::OneEuroFilter filter_;
};

// A crop of a uint8 [H, W, 3] frame as the network's input: float32 [1, 3, S, S] in [-1, 1]
// (edge pixels replicated where the crop leaves the frame; anti-aliased when it shrinks).
torch::Tensor crop_input(const torch::Tensor& frame, const face::CropTransform& transform);

struct PasteOptions {
    double feather = 0.08;  // feather width as a fraction of the crop side
    face::ColourMatch colour_match = face::ColourMatch::kLab;
};

// Pastes a rendered crop (float [1, 3, S, S] in [-1, 1]) back into a copy of the uint8 frame
// through the exact inverse of `transform`, with the soft feathered mask and colour matching of
// face::paste_back, times `region` ([S, S] in [0, 1]) if given. Pixels where the mask is 0 keep
// the frame's values exactly.
torch::Tensor paste_crop(const torch::Tensor& frame, const torch::Tensor& rendered,
                         const face::CropTransform& transform, const PasteOptions& options = {},
                         const torch::Tensor& region = {});

// The face region in crop space for pasting an expression edit, float32 [S, S] in [0, 1]: the
// convex hull of FaceMesh's 468 points (image pixels, [468, 2+]) mapped into the crop, grown by
// `grow` and softened by a Gaussian of sigma `blur` (both fractions of the crop side), so an
// opening jaw stays inside. Like the face-parsing mask of DPE's paste demo: hair, neck and
// background are kept from the frame.
torch::Tensor face_region_mask(const torch::Tensor& mesh468, const face::CropTransform& transform,
                               double grow = 0.06, double blur = 0.03);

// Which part of the rendered crop is pasted back. kFace: face_region_mask (the head does not move
// under an expression edit, so only the face needs replacing). kCrop: the whole crop (pose edits
// move the head). kAuto: kFace for --transfer exp, kCrop otherwise.
enum class PasteRegion { kAuto, kFace, kCrop };
PasteRegion parse_paste_region(const std::string& name);  // "auto" | "face" | "crop"

// How the rendered crop enters the frame. kReplace: its pixels replace the frame's (paste_crop).
// kDifference: only its change from the network's rendering of the unedited source is added
// (paste_difference), so a network working below the frame's resolution keeps the frame's own
// detail wherever the edit changes little; right for expression edits, where the head stays put,
// wrong for pose, where pixels move (the old detail would stay behind as a ghost). kAuto:
// kDifference for --transfer exp, kReplace otherwise.
enum class PasteMode { kAuto, kReplace, kDifference };
PasteMode parse_paste_mode(const std::string& name);  // "auto" | "replace" | "difference"
PasteMode resolve_paste_mode(PasteMode mode, engines::dpe::Stage stage);  // kAuto resolved

// The frame plus (rendered - reconstruction), both network outputs [1, 3, S, S] in [-1, 1], warped
// back through the crop's exact inverse under the feathered mask times `region`
// (face::add_crop_difference). No colour matching: a difference carries no colour drift of its own.
torch::Tensor paste_difference(const torch::Tensor& frame, const torch::Tensor& rendered,
                               const torch::Tensor& reconstruction,
                               const face::CropTransform& transform,
                               const PasteOptions& options = {}, const torch::Tensor& region = {});

// --- jobs --------------------------------------------------------------------------------------

// How the driving video is cropped. kFixed: one square for the whole clip, from the first frame
// with a face (the face moves inside a fixed window, as in DPE's VoxCeleb training crops, so head
// translation is part of the motion). kFollow: a smoothed crop that follows the face.
enum class DrivingCrop { kFixed, kFollow };
DrivingCrop parse_driving_crop(const std::string& name);  // "fixed" | "follow"

struct AnimationOptions {
    engines::dpe::Stage stage = engines::dpe::Stage::kExpression;
    MotionMode motion = MotionMode::kRelative;
    DrivingCrop driving_crop = DrivingCrop::kFixed;
    CropConvention crop;
    PasteOptions paste;
    bool paste_back = true;  // false: write the rendered crops (size x size) instead
    PasteRegion paste_region = PasteRegion::kAuto;
    PasteMode paste_mode = PasteMode::kAuto;
    bool keep_audio = true;
    // Landmark steering (pipeline/motion_steering.h): Adam steps per frame that refine the
    // motion code so the generator's warps carry the source's points where the driving face's
    // fitted motion puts them; 0 = off (the network's own reading of the driving frame).
    int fit_motion_steps = 0;
    int64_t max_frames = 0;  // 0 = all
    int crf = 18;
    int threads = 0;  // video decoder/encoder threads; 0 = all
    bool show_progress = true;
};

// A rendered crop of `animator`'s current source in `frame`, by options.paste_mode resolved for
// options.stage (kDifference: against animator.reconstruction()), with options.paste, times
// `region` if given.
torch::Tensor paste_rendered(DpeAnimator& animator, const torch::Tensor& frame,
                             const torch::Tensor& rendered, const face::CropTransform& crop,
                             const AnimationOptions& options, const torch::Tensor& region = {});

struct AnimationReport {
    std::string output;
    int64_t frames = 0;               // frames written
    int64_t frames_without_face = 0;  // written as the source frame unchanged
    int width = 0, height = 0;        // of the written frames
    bool audio = false;
    std::string audio_from;
    double seconds = 0;
    std::vector<std::string> warnings;
};

// A still source driven by a video. Throws Error naming the source if it has no face.
AnimationReport animate_portrait(engines::dpe::Generator generator,
                                 const std::filesystem::path& source,
                                 const std::filesystem::path& driving,
                                 const std::filesystem::path& output,
                                 const AnimationOptions& options);

// Every frame of a source video edited with the paired driving frame.
AnimationReport edit_video(engines::dpe::Generator generator, const std::filesystem::path& source,
                           const std::filesystem::path& driving,
                           const std::filesystem::path& output, const AnimationOptions& options);

}  // namespace avatar::pipeline
