// avatar animate / avatar edit-video: DPE portrait animation of a still source by a driving video,
// and video portrait editing (the driving video's expression on every frame of a source video),
// both pasted back into the full source frame with the original audio kept
// (pipeline/portrait_animation.h, docs/animate.md).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/model_registry.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "pipeline/portrait_animation.h"

namespace avatar::cli {
namespace {
namespace fs = std::filesystem;

struct AnimateCliOptions {
    std::string model = "dpe";
    std::string weights = "dpe-own";
    std::string source;
    std::string driving;
    std::string output;
    std::string transfer = "exp";
    std::string motion = "relative";
    std::string driving_crop = "fixed";
    std::string colour_match = "lab";
    std::string paste_region = "auto";
    std::string paste_mode = "auto";
    double crop_scale = 1.7;
    double feather = 0.08;
    bool no_paste = false;
    bool no_audio = false;
    int fit_motion = 0;
    int64_t max_frames = 0;
    int crf = 18;
};

face::ColourMatch parse_colour_match(const std::string& name) {
    if (name == "none")
        return face::ColourMatch::kNone;
    if (name == "rgb")
        return face::ColourMatch::kRgb;
    if (name == "lab")
        return face::ColourMatch::kLab;
    throw Error("--colour-match", "'" + name + "' is not one of none, rgb, lab");
}

bool same_file(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    return fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

int run_animate(const AnimateCliOptions& o, const GlobalOptions& global, bool edit) {
    check(o.model == "dpe", "-m", "'" + o.model + "' is not an engine that animates yet (dpe)");
    const auto extension = fs::path(o.output).extension().string();
    check(extension == ".mp4" || extension == ".mov" || extension == ".mkv", o.output,
          "the output must be a video file ending in .mp4, .mov or .mkv");
    check(!same_file(o.source, o.output) && !same_file(o.driving, o.output), o.output,
          "the output would overwrite an input");
    for (const auto& input : {o.source, o.driving})
        check(fs::exists(input), input, "no such file or folder");

    pipeline::AnimationOptions options;
    options.stage = engines::dpe::parse_stage(o.transfer);
    options.motion = pipeline::parse_motion_mode(o.motion);
    options.driving_crop = pipeline::parse_driving_crop(o.driving_crop);
    options.crop.scale = o.crop_scale;
    options.paste.feather = o.feather;
    options.paste.colour_match = parse_colour_match(o.colour_match);
    options.paste_back = !o.no_paste;
    options.paste_region = pipeline::parse_paste_region(o.paste_region);
    options.paste_mode = pipeline::parse_paste_mode(o.paste_mode);
    options.keep_audio = !o.no_audio;
    options.fit_motion_steps = o.fit_motion;
    options.max_frames = o.max_frames;
    options.crf = o.crf;
    options.threads = global.threads;
    options.show_progress = !global.quiet && !global.json;

    // The weights' size decides the crop size (256 for the official model).
    const auto file = SafetensorsFile::open(ModelRegistry::instance().resolve_weights(o.weights));
    auto generator = engines::dpe::load_dpe_generator(file);
    const auto report =
        edit ? pipeline::edit_video(generator, o.source, o.driving, o.output, options)
             : pipeline::animate_portrait(generator, o.source, o.driving, o.output, options);

    if (global.json) {
        print_json({{"output", report.output},
                    {"frames", report.frames},
                    {"frames_without_face", report.frames_without_face},
                    {"width", report.width},
                    {"height", report.height},
                    {"crop_size", generator->config().size},
                    {"transfer", o.transfer},
                    {"motion", o.motion},
                    {"fit_motion_steps", o.fit_motion},
                    {"audio_from", report.audio ? report.audio_from : ""},
                    {"seconds", report.seconds},
                    {"fps", static_cast<double>(report.frames) / report.seconds},
                    {"warnings", report.warnings}});
        return 0;
    }
    const auto steered = o.fit_motion > 0
                             ? " steered by landmarks (" + std::to_string(o.fit_motion) + " steps)"
                             : "";
    std::printf(
        "wrote %s: %lld frames %dx%d, transfer %s, %s motion%s, %s, %.2f s (%.2f frames/s)\n",
        report.output.c_str(), static_cast<long long>(report.frames), report.width, report.height,
        o.transfer.c_str(), o.motion.c_str(), steered.c_str(),
        report.audio ? ("audio from " + report.audio_from).c_str() : "no audio", report.seconds,
        static_cast<double>(report.frames) / report.seconds);
    return 0;
}

void add_common_options(CLI::App* cmd, AnimateCliOptions& o, bool edit) {
    cmd->add_option("-m,--model", o.model, "Engine (only dpe so far)")->capture_default_str();
    cmd->add_option("--weights", o.weights,
                    "DPE generator weights: a .safetensors file in the official layout (e.g. "
                    "from tools/convert.py dpe.pt dpe.safetensors --key gen) or a model name; "
                    "the default 'dpe-own' is the small model the project trained on its "
                    "synthetic world (models/dpe-synth128). The crop size is the weights' size "
                    "(256 for the official model, 128 for ours)")
        ->capture_default_str();
    if (edit) {
        cmd->add_option("-s,--source", o.source,
                        "Source video to edit (every frame; its audio is kept)")
            ->required();
        cmd->add_option("-d,--driving", o.driving,
                        "Driving video (or folder of images): frame t drives source frame t; the "
                        "output stops at the shorter of the two")
            ->required();
    } else {
        cmd->add_option("-s,--source", o.source,
                        "Source portrait: an image (a video's first frame is used), encoded once")
            ->required();
        cmd->add_option("-d,--driving", o.driving,
                        "Driving video (or folder of images, or one image); its audio is kept")
            ->required();
    }
    cmd->add_option("-o,--output", o.output, "Output video (.mp4, .mov or .mkv; H.264)")
        ->required();
    cmd->add_option("--transfer", o.transfer,
                    "What to take from the driving face: exp = expression only (the head stays "
                    "where the source has it, so paste-back is seamless), pose = head pose only, "
                    "both = pose and expression (the paper's meaning; the official code's "
                    "swapped module names are handled inside)")
        ->check(CLI::IsMember({"exp", "pose", "both"}))
        ->capture_default_str();
    cmd->add_option("--motion", o.motion,
                    "relative (default): the source's own motion plus the driving motion's "
                    "change since the first driving frame with a face (LIA's relative mode), "
                    "so the source keeps its head shape and placement; start the driving video "
                    "on a neutral face. absolute: the driving motion as it is (the official "
                    "DPE demo), which distorts head proportions across identities (DPE issue "
                    "#2). Relative is the default because synthbench cannot compare the two: its "
                    "truths are absolute transfers (docs/animate.md)")
        ->check(CLI::IsMember({"relative", "absolute"}))
        ->capture_default_str();
    cmd->add_option("--driving-crop", o.driving_crop,
                    "fixed: one crop for the whole driving clip, from its first face (as DPE's "
                    "VoxCeleb training crops; head movement is part of the motion). follow: a "
                    "smoothed crop that follows the driving face (head translation removed)")
        ->check(CLI::IsMember({"fixed", "follow"}))
        ->capture_default_str();
    cmd->add_option("--fit-motion", o.fit_motion,
                    "Steer the motion with landmarks: N Adam steps per frame refine the motion "
                    "code the network reads from the driving frame, so that its warps carry the "
                    "source's face points where the driving face's motion puts them (both faces' "
                    "FaceMesh points fitted with the face model; --transfer and --motion decide "
                    "what is carried). The head follows the driver further and more exactly "
                    "(synthbench: AKD 0.089 -> 0.064 at 40 steps on cross-identity pairs), but "
                    "large turns render smeared. Each frame starts from the last frame's "
                    "correction, so 10 steps do most of it; each step costs a render and its "
                    "backward (128x128: about 0.7 s per frame at 10). 0 (default) = off: the "
                    "network's own reading. See docs/animate.md")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--crop-scale", o.crop_scale,
                    "Crop side / the face's extent (FaceMesh box); FOMM-style crops use 1.6-1.8")
        ->check(CLI::Range(1.0, 4.0))
        ->capture_default_str();
    cmd->add_option("--feather", o.feather,
                    "Paste-back feather width as a fraction of the crop side (0 = hard edge)")
        ->check(CLI::Range(0.0, 0.5))
        ->capture_default_str();
    cmd->add_option("--colour-match", o.colour_match,
                    "Match the rendered face's colour statistics to the frame under the paste "
                    "mask: none, rgb or lab")
        ->check(CLI::IsMember({"none", "rgb", "lab"}))
        ->capture_default_str();
    cmd->add_option("--paste-region", o.paste_region,
                    "What is pasted back: face = the face (FaceMesh hull, grown and softened; "
                    "hair, neck and background stay the frame's), crop = the whole square crop. "
                    "auto: face for --transfer exp, crop for pose and both (the head moves)")
        ->check(CLI::IsMember({"auto", "face", "crop"}))
        ->capture_default_str();
    cmd->add_option("--paste-mode", o.paste_mode,
                    "How the rendered face enters the frame: replace = its pixels (colour-"
                    "matched), difference = only its change from the network's rendering of the "
                    "unedited source is added, so the frame keeps its own sharp detail where the "
                    "edit changes little (wrong where the head moves). auto: difference for "
                    "--transfer exp, replace for pose and both")
        ->check(CLI::IsMember({"auto", "replace", "difference"}))
        ->capture_default_str();
    cmd->add_flag("--no-paste", o.no_paste,
                  "Write the rendered crops (the weights' size, e.g. 256x256) instead of pasting "
                  "them back into the full frame");
    cmd->add_flag("--no-audio", o.no_audio, "Leave the audio out");
    cmd->add_option("--max-frames", o.max_frames, "Stop after this many frames (0 = all)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--crf", o.crf, "H.264 quality (x264 CRF, 0 = lossless .. 51)")
        ->check(CLI::Range(0, 51))
        ->capture_default_str();
}

}  // namespace

void add_animate_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<AnimateCliOptions>();
    auto* cmd = app.add_subcommand(
        "animate",
        "Animate a still portrait with a driving video (DPE): the face is found and cropped in "
        "the source and in every driving frame (FOMM-style square crop at the weights' size), the "
        "source is encoded once, each driving frame's motion renders the source face, and the "
        "result is pasted back into the full source image with a feathered, colour-matched mask. "
        "The output has the source's frame size, the driving video's frame rate, one frame per "
        "driving frame, and the driving audio. Driving frames without a face give the source "
        "image unchanged (counted in a warning). See docs/animate.md.");
    add_common_options(cmd, *options, false);
    commands.push_back({cmd, [options, &global] { return run_animate(*options, global, false); }});
}

void add_edit_video_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<AnimateCliOptions>();
    auto* cmd = app.add_subcommand(
        "edit-video",
        "Video portrait editing (DPE): every frame of the source video gets the paired driving "
        "frame's expression (--transfer exp, the default) and is pasted back with a feathered, "
        "colour-matched mask, so the source's head, background and audio stay. Source frame t "
        "goes with driving frame t; the output stops at the shorter video (no looping, which "
        "would make the expression jump). Frames where either face is missing are the source "
        "frame unchanged (counted in a warning). See docs/animate.md.");
    add_common_options(cmd, *options, true);
    commands.push_back({cmd, [options, &global] { return run_animate(*options, global, true); }});
}

}  // namespace avatar::cli
