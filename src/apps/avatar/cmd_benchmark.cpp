// avatar benchmark synthbench DIR: methods scored on the synthetic world's benchmark pairs
// (pipeline/synthbench.h), a Markdown table (or JSON).
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "pipeline/synthbench.h"

namespace avatar::cli {
namespace {

struct SynthbenchCliOptions {
    std::string dir;
    std::string metrics;
    std::string methods;
    std::string output;
    std::string per_pair;
    std::string dpe_weights;
    std::string dpe_motion = "absolute";
    std::string dpe_paste = "auto";
    std::string dpe_driver_crop = "auto";
    int dpe_fit_steps = 40;
    std::string dpe_fit_space = "latent";
    double dpe_fit_expression = 0.0;
    int64_t max_pairs = 0;
    int ceiling_size = 64;
};

int run_synthbench_command(const SynthbenchCliOptions& options, const GlobalOptions& global) {
    pipeline::SynthbenchOptions run;
    if (!options.metrics.empty())
        run.metrics = split_comma_list(options.metrics);
    if (!options.methods.empty())
        run.methods = split_comma_list(options.methods);
    else if (!options.dpe_weights.empty())
        run.methods.push_back("dpe");  // weights given: score the engine beside the baselines
    run.dpe_weights = options.dpe_weights;
    run.dpe_motion = options.dpe_motion;
    run.dpe_paste = options.dpe_paste;
    run.dpe_driver_crop = options.dpe_driver_crop;
    run.dpe_fit_steps = options.dpe_fit_steps;
    run.dpe_fit_space = options.dpe_fit_space;
    run.dpe_fit_expression = options.dpe_fit_expression;
    run.max_pairs = options.max_pairs;
    run.ceiling_size = options.ceiling_size;
    run.show_progress = !global.quiet && !global.json;
    // Before the long run, not after it: the files' folders must exist.
    for (const auto& file : {options.output, options.per_pair}) {
        const auto folder = std::filesystem::path(file).parent_path();
        check(file.empty() || folder.empty() || std::filesystem::is_directory(folder), file,
              "cannot be written: its folder does not exist");
    }
    const auto report = pipeline::run_synthbench(options.dir, run);
    const std::string text = global.json ? report.to_json().dump(2) + "\n" : report.to_markdown();
    std::fputs(text.c_str(), stdout);
    if (!options.output.empty())
        write_file_atomic(options.output, text.data(), text.size());
    if (!options.per_pair.empty()) {
        const auto csv = report.per_pair_csv();
        write_file_atomic(options.per_pair, csv.data(), csv.size());
    }
    return 0;
}

}  // namespace

void add_benchmark_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto* benchmark = app.add_subcommand(
        "benchmark", "Quality benchmarks with ground truth (speed is `avatar bench`)");
    benchmark->require_subcommand(1);
    auto options = std::make_shared<SynthbenchCliOptions>();
    auto* cmd = benchmark->add_subcommand(
        "synthbench",
        "Score methods on the benchmark pairs of the synthetic world (make them with `avatar "
        "synth -o DIR --preset synthbench-v2`): per task (self_reenact, reenact = cross-identity "
        "reenactment, expression_only, pose_only) and method, the mean of each metric against "
        "the true answer. Methods: source (the unchanged source image) and warp (the "
        "landmark-driven piecewise-affine warp), the baselines every engine must beat, and dpe "
        "(a DPE generator given by --dpe-weights, on crops around the true landmarks, pasted "
        "back into the source frame). ceiling (the true answer itself through the dpe method's "
        "crop "
        "and paste-back at --ceiling-size) is the best any model of that size can score.");
    cmd->add_option("DIR", options->dir, "Data set folder (with pairs/pairs.json)")->required();
    cmd->add_option("--metrics", options->metrics,
                    "Comma-separated metrics of `avatar eval --list` (default "
                    "psnr,ssim,face_psnr,csim,akd_iod,aed,apd)");
    cmd->add_option("--methods", options->methods,
                    "Comma-separated methods: source, warp, warp-relative, warp-fitted, dpe, "
                    "dpe-fitted, dpe-oracle, ceiling (default source,warp, plus dpe when "
                    "--dpe-weights is "
                    "given). warp is handed the answer's true points (an oracle); warp-relative: "
                    "the warp onto the points of relative motion (the source plus the driver's "
                    "change since its first video frame), what a perfect relative-motion engine "
                    "scores; warp-fitted: the warp onto points read from the driving image alone "
                    "(the face model fitted to the points the front end finds there), a landmark "
                    "tool without the oracle; dpe-fitted: the DPE generator with its motion code "
                    "fitted to warp-fitted's points (--dpe-fit-steps), the landmarks steering "
                    "the generator's warps; dpe-oracle: its motion code fitted to the true "
                    "image's face (--dpe-fit-steps), which uses the answer: not a method but the "
                    "bound on how well the generator's decoders render the face with any motion "
                    "code");
    cmd->add_option("--dpe-weights", options->dpe_weights,
                    "DPE generator weights for the dpe, dpe-fitted and dpe-oracle methods "
                    "(.safetensors in the "
                    "official layout, any size: the crops are made at the weights' size)");
    cmd->add_option("--dpe-motion", options->dpe_motion,
                    "DPE motion: absolute (the driving frame's motion; the truths are absolute "
                    "transfers) or relative (the source's own motion plus the driving change "
                    "since the driver's first video frame; warp-relative shows its limit here)")
        ->capture_default_str();
    cmd->add_option("--dpe-paste", options->dpe_paste,
                    "How the dpe and ceiling methods paste back: replace (the rendered pixels), "
                    "difference (the change from the source's reconstruction added to the "
                    "source), auto (difference for expression_only, replace otherwise)")
        ->check(CLI::IsMember({"auto", "replace", "difference"}))
        ->capture_default_str();
    cmd->add_option("--dpe-driver-crop", options->dpe_driver_crop,
                    "How the dpe method crops the driving image: own (around its own face, "
                    "centred and sized as the source's), source (with the source's crop, as the "
                    "frames of one video share one crop, so the driver's position and size in "
                    "the frame reach the engine; absolute motion only) or auto (source for "
                    "self_reenact with absolute motion, own otherwise)")
        ->check(CLI::IsMember({"auto", "own", "source"}))
        ->capture_default_str();
    cmd->add_option("--dpe-fit-steps", options->dpe_fit_steps,
                    "Adam steps of the dpe-fitted and dpe-oracle methods on the motion code (each "
                    "one renders "
                    "and differentiates the task's DPE stage once)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option(
           "--dpe-fit-space", options->dpe_fit_space,
           "What dpe-fitted and dpe-oracle change: latent (the whole direction vector the decoders "
           "get) or directions (only its part along the learnt motion directions, "
           "which leaves the rest of the appearance code alone)")
        ->check(CLI::IsMember({"latent", "directions"}))
        ->capture_default_str();
    cmd->add_option("--dpe-fit-expression", options->dpe_fit_expression,
                    "Weight of dpe-fitted's expression term: the expression edit's warps held to "
                    "the driver's expression alone, each point weighted by how far it moves (an "
                    "expression moves few points, which the plain mean over the points "
                    "ignores); 0 = off")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--ceiling-size", options->ceiling_size,
                    "Crop size of the ceiling method (a model's image size)")
        ->capture_default_str()
        ->check(CLI::Range(16, 1024));
    cmd->add_option("--max-pairs", options->max_pairs, "Score at most this many pairs")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-o,--output", options->output, "Also write the table to this file");
    cmd->add_option("--per-pair", options->per_pair,
                    "Also write every score the means are made of to this CSV file (pair, task, "
                    "method, then the metrics): to compare two methods or checkpoints pair by "
                    "pair, which separates them far better than their means over 100 pairs do");
    commands.push_back(
        {cmd, [options, &global] { return run_synthbench_command(*options, global); }});
}

}  // namespace avatar::cli
