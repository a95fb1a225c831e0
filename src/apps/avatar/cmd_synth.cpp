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
#include "media/image.h"
#include "synth/dataset.h"
#include "synth/photo_texture.h"

namespace avatar::cli {
namespace {

struct SynthOptions {
    std::string output;
    std::string preset;
    std::string contact_sheet;
    std::string unwrap;
    int face = -1;
    synth::DatasetOptions dataset;
};

// avatar synth --unwrap PHOTO -o TEXTURE: one face of a photo in the face model's UV space.
int run_unwrap(const SynthOptions& options, const GlobalOptions& global) {
    check(!options.output.empty(), "-o", "an output image (.png or .jpg) is required");
    synth::PhotoUnwrapOptions unwrap;
    unwrap.unwrap.size = options.dataset.size;
    // Inspecting: show whatever face there is, however little of it is seen or well it fits.
    unwrap.min_observed = 0.0;
    unwrap.max_fit_rms = 1e9;
    const auto faces =
        synth::unwrap_photo(media::read_image(options.unwrap), options.unwrap, unwrap);
    check(!faces.empty(), options.unwrap, "no face of 80 px or more found");
    size_t pick = 0;
    if (options.face < 0) {
        for (size_t i = 1; i < faces.size(); ++i)
            if (faces[i].face_size_px > faces[pick].face_size_px)
                pick = i;
    } else {
        check(static_cast<size_t>(options.face) < faces.size(), "--face",
              "the photo has " + std::to_string(faces.size()) + " usable faces");
        pick = static_cast<size_t>(options.face);
    }
    const auto& f = faces[pick];
    const auto& t = f.unwrapped.texture;
    auto image =
        torch::from_blob(const_cast<float*>(t.rgb.data()), {t.height, t.width, 3}, torch::kFloat32);
    media::write_image(options.output, (image * 255.0f).round().clamp(0, 255).to(torch::kUInt8));
    if (global.json) {
        print_json({{"output", options.output},
                    {"face", f.face},
                    {"faces", faces.size()},
                    {"face_size_px", f.face_size_px},
                    {"fit_rms_px", f.fit_rms_px},
                    {"observed_fraction", f.unwrapped.observed_fraction},
                    {"mirrored_fraction", f.unwrapped.mirrored_fraction},
                    {"skin_rgb", {f.unwrapped.skin[0], f.unwrapped.skin[1], f.unwrapped.skin[2]}}});
    } else if (!global.quiet) {
        std::printf(
            "%s: face %d of %zu (%.0f px, fit rms %.2f px): %.0f %% of the skin observed, %.0f %% "
            "mirrored, the rest filled; skin rgb %.3f %.3f %.3f\n",
            options.output.c_str(), f.face, faces.size(), f.face_size_px, f.fit_rms_px,
            100.0 * f.unwrapped.observed_fraction, 100.0 * f.unwrapped.mirrored_fraction,
            f.unwrapped.skin[0], f.unwrapped.skin[1], f.unwrapped.skin[2]);
    }
    return 0;
}

int run_synth(const SynthOptions& options, const GlobalOptions& global) {
    if (!options.unwrap.empty())
        return run_unwrap(options, global);
    const auto start = std::chrono::steady_clock::now();
    synth::DatasetOptions preset;
    if (!options.preset.empty()) {
        preset = synth::dataset_preset(options.preset);
        // The preset is a fixed, published set: a look from other sources would be another set
        // under its name.
        check(options.dataset.photo_textures.empty() && options.dataset.backgrounds.empty(),
              "--preset", options.preset + " uses the procedural skin and backgrounds only");
    }
    const auto& d = options.preset.empty() ? options.dataset : preset;
    if (!options.contact_sheet.empty()) {
        synth::write_contact_sheet(options.contact_sheet, d.seed, d.identities, d.size,
                                   synth::AppearanceSources::load(options.dataset.photo_textures,
                                                                  options.dataset.backgrounds));
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
    cmd->add_option(
        "--preset", options->preset,
        "A fixed, versioned set whose options override the others: synthbench-v2 "
        "(20 identities x 100 frames at 256x256, 100 pairs, seed 20261121; the pairs' "
        "images are frames of the videos, and a cross-identity truth takes the "
        "driver's head rotation but keeps the source's position and size in the "
        "frame); synthbench-v2-select (v2's design with seed 20261206 and 80 identities, "
        "400 pairs: other people and pairs, to choose checkpoints and settings on, so "
        "that v2 stays a test set); or "
        "synthbench-v1 (v2's set with the older pairs: rows that are not video "
        "frames, and the driver's position and size in the truths)");
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
    cmd->add_option("--photo-textures", d.photo_textures,
                    "Images (files, folders, or faceapi-demo = the face-api demo photos: 22 faces, "
                    "18 usable) whose faces are unwrapped into the face model's UV space; the "
                    "identities wear them in turn, augmented (tone, colour, moles) from their "
                    "seed, instead of the procedural skin")
        ->expected(1, -1);
    cmd->add_option("--backgrounds", d.backgrounds,
                    "Images (files or folders) to use as backgrounds instead of the procedural "
                    "gradient: a random crop of one per identity, drawn from its seed")
        ->expected(1, -1);
    cmd->add_option("--unwrap", options->unwrap,
                    "Instead of the data set, unwrap the largest face (or --face N, from the "
                    "left) of this photo into a --size x --size texture written to -o");
    cmd->add_option("--face", options->face, "With --unwrap: which face, from the photo's left");
    commands.push_back({cmd, [options, &global] { return run_synth(*options, global); }});
}

}  // namespace avatar::cli
