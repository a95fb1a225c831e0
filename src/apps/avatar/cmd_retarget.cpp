// avatar retarget --source S --driving D -o OUT: the driving motion put on the source face in the
// face model's coefficients (face/retarget.h), motion files in, motion file out.
#include <cstdio>
#include <filesystem>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "face/face_model.h"
#include "face/retarget.h"
#include "media/motion_file.h"

namespace avatar::cli {
namespace {
namespace fs = std::filesystem;

struct RetargetCliOptions {
    std::string source, driving, output;
    bool absolute = false;
    double strength = 1.0;
    std::string regions = "all";
    bool renormalise = false;
    int64_t reference_frame = 0;
};

// The avatar-face-v1 channels of a motion file written by `avatar track --fit`.
face::FaceCoefficients coefficients_of(const media::Motion& motion, const std::string& path) {
    check(motion.layout == face::kFaceLayoutName, path,
          "layout is '" + motion.layout + "', not " + face::kFaceLayoutName +
              " (make it with: avatar track VIDEO -o FILE --fit)");
    namespace ch = media::channel;
    for (const char* name : {ch::kPose, ch::kIdentity, ch::kExpression})
        check(motion.has(name), path, std::string("has no '") + name + "' channel");
    face::FaceCoefficients c;
    c.pose = motion.channels.at(ch::kPose);
    c.identity = motion.channels.at(ch::kIdentity);
    c.expression = motion.channels.at(ch::kExpression);
    if (motion.has(ch::kGaze))
        c.gaze = motion.channels.at(ch::kGaze);
    return c;
}

// A still source (one frame) or the first frame with a face of a source video when the source
// is shorter than the driving video: the rows retarget_motion accepts.
face::FaceCoefficients source_rows(const face::FaceCoefficients& c, int64_t driving_frames,
                                   const std::string& path) {
    const int64_t n = c.pose.size(0);
    if (n == 1 || n == driving_frames)
        return c;
    throw Error(path, "has " + std::to_string(n) +
                          " frames: a source must be one frame (a portrait) or as many frames as "
                          "the driving motion (" +
                          std::to_string(driving_frames) + ")");
}

int run_retarget(const RetargetCliOptions& options, const GlobalOptions& global) {
    const unsigned regions = face::parse_motion_regions(options.regions);  // before any reading
    const auto source_motion = media::read_motion(options.source);
    const auto driving_motion = media::read_motion(options.driving);
    const auto driving = coefficients_of(driving_motion, options.driving);
    const auto source = source_rows(coefficients_of(source_motion, options.source),
                                    driving_motion.frame_count, options.source);

    face::RetargetOptions retarget;
    retarget.relative = !options.absolute;
    retarget.strength = options.strength;
    retarget.regions = regions;
    retarget.renormalise = options.renormalise;
    retarget.reference_frame = options.reference_frame;
    const auto out = face::retarget_motion(source, driving, retarget);

    media::Motion motion;
    motion.fps = driving_motion.fps;
    motion.frame_count = driving_motion.frame_count;
    motion.image_width = source_motion.image_width;
    motion.image_height = source_motion.image_height;
    motion.layout = face::kFaceLayoutName;
    motion.attributes = {{"source", options.source},
                         {"driving", options.driving},
                         {"retarget", std::string(options.absolute ? "absolute" : "relative") +
                                          " strength=" + std::to_string(options.strength) +
                                          " regions=" + options.regions +
                                          (options.renormalise ? " renormalised" : "")}};
    namespace ch = media::channel;
    // A NaN source row (no face in that source frame) stays NaN; face_found says so.
    const auto found = out.pose.isfinite().all(1) & out.expression.isfinite().all(1);
    const auto nan_rows = [&](const torch::Tensor& t) {
        return t.masked_fill(found.logical_not().unsqueeze(1), NAN).to(torch::kFloat32);
    };
    motion.channels[ch::kFaceFound] = found;
    motion.channels[ch::kPose] = nan_rows(out.pose);
    motion.channels[ch::kIdentity] = nan_rows(out.identity);
    motion.channels[ch::kExpression] = nan_rows(out.expression);
    motion.channels[ch::kGaze] = nan_rows(out.gaze);
    media::write_motion(options.output, motion);
    if (global.json) {
        print_json({{"output", options.output}, {"frames", motion.frame_count}});
        return 0;
    }
    if (!global.quiet)
        std::printf("wrote %s: %lld frames (%s motion, regions %s, strength %g)\n",
                    options.output.c_str(), static_cast<long long>(motion.frame_count),
                    options.absolute ? "absolute" : "relative", options.regions.c_str(),
                    options.strength);
    return 0;
}

}  // namespace

void add_retarget_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<RetargetCliOptions>();
    auto* cmd = app.add_subcommand(
        "retarget",
        "Put the motion of a driving face on a source face, in the face model's coefficients "
        "(docs/face-model.md). Both inputs are motion files of `avatar track --fit` (layout "
        "avatar-face-v1); the source is one frame (a portrait) or a video as long as the "
        "driving one. By default motion is relative: the source keeps its own pose and "
        "expression and the driving face's changes from its first frame are added, so a driver "
        "with another face shape or head position does not distort the source.");
    cmd->add_option("-s,--source", options->source, "Source motion file (the face to move)")
        ->required();
    cmd->add_option("-d,--driving", options->driving, "Driving motion file (the motion)")
        ->required();
    cmd->add_option("-o,--output", options->output, "Output motion file (.json or .safetensors)")
        ->required();
    cmd->add_flag("--absolute", options->absolute,
                  "Copy the driving rotation, expression and gaze as they are (translation and "
                  "scale stay the source's) instead of adding the driving changes");
    cmd->add_option("--strength", options->strength,
                    "Multiplier of the transferred motion: 0 = the source unchanged, 1 = as "
                    "driven, > 1 exaggerated")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--regions", options->regions,
                    "What to transfer: all, pose, expression, eyes (blinks and gaze), brows, "
                    "mouth (or lips), or a comma-separated list such as pose,eyes")
        ->capture_default_str();
    cmd->add_flag("--renormalise", options->renormalise,
                  "Map each driving expression's mean and spread onto the source video's (PVP, "
                  "appendix B); needs a source video");
    cmd->add_option("--reference-frame", options->reference_frame,
                    "Driving frame that counts as 'no motion' for relative motion")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    commands.push_back({cmd, [options, &global] { return run_retarget(*options, global); }});
}

}  // namespace avatar::cli
