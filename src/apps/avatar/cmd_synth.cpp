// avatar synth -o DIR --identities N --frames F --size S --seed K: the synthetic talking-head
// data set (synth/dataset.h, docs/synthetic-world.md).
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "synth/dataset.h"

namespace avatar::cli {
namespace {

struct SynthOptions {
    std::string output;
    std::string preset;
    std::string contact_sheet;
    synth::DatasetOptions dataset;
};

int run_synth(const SynthOptions& options, const GlobalOptions& global) {
    const auto start = std::chrono::steady_clock::now();
    synth::DatasetOptions preset;
    if (!options.preset.empty()) {
        check(options.preset == "synthbench-v1", "--preset",
              "'" + options.preset + "' is not a known preset (synthbench-v1)");
        preset = synth::synthbench_v1();
    }
    const auto& d = options.preset.empty() ? options.dataset : preset;
    if (!options.contact_sheet.empty()) {
        synth::write_contact_sheet(options.contact_sheet, d.seed, d.identities, d.size);
        if (!global.quiet)
            std::printf("%s: %d identities x 4 expressions x 3 poses\n",
                        options.contact_sheet.c_str(), d.identities);
        return 0;
    }
    check(!options.output.empty(), "-o", "an output folder is required");
    {
        std::optional<Progress> progress;
        if (!global.quiet && !global.json)
            progress.emplace("synth", static_cast<int64_t>(d.identities) * d.frames, "frames");
        synth::write_dataset(options.output, d, [&progress] {
            if (progress)
                progress->advance();
        });
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double frames = static_cast<double>(d.identities) * static_cast<double>(d.frames);
    if (global.json) {
        print_json({{"output", options.output},
                    {"identities", d.identities},
                    {"frames_per_identity", d.frames},
                    {"size", d.size},
                    {"seed", std::to_string(d.seed)},
                    {"seconds", seconds},
                    {"fps", frames / seconds}});
    } else {
        std::printf("%s: %d identities x %lld frames at %dx%d in %.1f s (%.1f frames/s)\n",
                    options.output.c_str(), d.identities, static_cast<long long>(d.frames), d.size,
                    d.size, seconds, frames / seconds);
    }
    return 0;
}

}  // namespace

void add_synth_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<SynthOptions>();
    auto* cmd = app.add_subcommand(
        "synth",
        "Render the synthetic talking-head data set: per identity a video, its avatar-face-v1 "
        "coefficients, 468 and 68 landmarks, boxes, masks and face-part labels "
        "(docs/synthetic-world.md). The same seed gives the same files.");
    auto& d = options->dataset;
    cmd->add_option("-o,--output", options->output,
                    "Output folder (must not exist or be empty; written as OUTPUT.partial and "
                    "renamed when complete)");
    cmd->add_option("--preset", options->preset,
                    "A fixed, versioned set whose options override the others: synthbench-v1 "
                    "(20 identities x 100 frames at 256x256, 100 pairs, seed 20261121)");
    cmd->add_option("--contact-sheet", options->contact_sheet,
                    "Instead of the data set, write a contact sheet (PNG or JPEG by extension): "
                    "--identities rows x 4 "
                    "expressions x 3 poses, tiles of --size pixels");
    cmd->add_option("--identities", d.identities, "Number of identities")->capture_default_str();
    cmd->add_option("--frames", d.frames, "Frames per identity")->capture_default_str();
    cmd->add_option("--size", d.size, "Frame width and height in pixels (even)")
        ->capture_default_str();
    cmd->add_option("--seed", d.seed, "Seed of everything (appearance and motion)")
        ->capture_default_str();
    cmd->add_option("--fps", d.fps, "Frame rate of the motion and the videos")
        ->capture_default_str();
    cmd->add_option("--camera-distance", d.camera_distance_cm,
                    "0 = the layout's weak perspective; else a pinhole camera this many cm from "
                    "the head, focal = scale x distance")
        ->capture_default_str();
    cmd->add_option("--supersample", d.supersample, "Anti-aliasing: S x S samples per pixel")
        ->capture_default_str();
    cmd->add_option("--pairs", d.pairs,
                    "Also render this many benchmark pairs with ground truth (reenactment, "
                    "expression only, pose only) into OUTPUT/pairs")
        ->capture_default_str();
    cmd->add_flag("--raw-frames", d.raw_frames,
                  "Also store the frames uncompressed in each motion file (channel rgb), for "
                  "training without video decoding");
    cmd->add_option("--crf", d.crf, "x264 quality (0 lossless .. 51)")->capture_default_str();
    commands.push_back({cmd, [options, &global] { return run_synth(*options, global); }});
}

}  // namespace avatar::cli
