// avatar eval --pred P --gt G [--source S]: scores predictions against ground truth frame by
// frame (images, folders of images or videos) and prints a summary table; --json, a per-frame
// CSV and PNG plots on request.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "metrics/plot.h"
#include "pipeline/evaluation.h"

namespace avatar::cli {
namespace {

struct EvalOptions {
    std::string prediction;
    std::string ground_truth;
    std::string source;
    std::string metrics;
    std::string csv;
    std::string plots;
    bool resize = false;
    int64_t max_frames = 0;
    bool list = false;
    bool detect_every_frame = false;
};

int run_eval(const EvalOptions& options, const GlobalOptions& global) {
    if (options.list) {
        for (const auto& m : pipeline::evaluation_metrics()) {
            std::printf("%-12s %-6s %s%s\n", m.name.c_str(),
                        m.higher_is_better ? "higher" : "lower", m.description.c_str(),
                        m.needs_source ? " (needs --source)" : "");
        }
        return 0;
    }
    check(!options.prediction.empty(), "--pred", "required");
    check(!options.ground_truth.empty(), "--gt", "required");
    pipeline::EvaluationOptions eval;
    eval.metrics = split_comma_list(options.metrics);
    eval.track_faces = !options.detect_every_frame;
    eval.resize_prediction = options.resize;
    eval.max_frames = options.max_frames;
    eval.show_progress = !global.quiet && !global.json;
    std::optional<std::filesystem::path> source;
    if (!options.source.empty())
        source = options.source;
    const auto report = pipeline::evaluate(options.prediction, options.ground_truth, source, eval);

    if (!options.csv.empty()) {
        const auto csv = report.to_csv();
        write_file_atomic(options.csv, csv.data(), csv.size());
    }
    std::vector<std::string> plot_files;
    if (!options.plots.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(options.plots, ec);
        check(!ec, options.plots, "cannot create the folder: " + ec.message());
        for (size_t m = 0; m < report.metrics.size(); ++m) {
            std::vector<double> series;
            for (const auto& row : report.values)
                series.push_back(row[m]);
            metrics::LinePlotOptions plot;
            const auto& info = report.metrics[m];
            plot.title = info.name + (info.unit.empty() ? "" : " (" + info.unit + ")");
            const auto path = std::filesystem::path(options.plots) / (info.name + ".png");
            metrics::write_line_plot(path, series, plot);
            plot_files.push_back(path.string());
        }
    }
    if (global.json) {
        auto j = report.to_json();
        j["prediction"] = options.prediction;
        j["ground_truth"] = options.ground_truth;
        if (source)
            j["source"] = options.source;
        if (!options.csv.empty())
            j["csv"] = options.csv;
        if (!plot_files.empty())
            j["plots"] = plot_files;
        print_json(j);
    } else {
        std::printf("%s vs %s: %zu frames compared\n\n%s", options.prediction.c_str(),
                    options.ground_truth.c_str(), report.values.size(),
                    report.summary_table().c_str());
        for (const auto& w : report.warnings)
            std::printf("\nwarning: %s\n", w.c_str());
        if (!options.csv.empty())
            std::printf("\nper-frame values: %s\n", options.csv.c_str());
        for (const auto& p : plot_files)
            std::printf("plot: %s\n", p.c_str());
    }
    return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<EvalOptions>();
    auto* cmd = app.add_subcommand(
        "eval",
        "Score predicted frames against ground truth, frame by frame.\n"
        "PRED, GT (and SOURCE) may each be an image, a folder of images (matched in name order) "
        "or a video (matched frame by frame). Prints mean, std, min and max of each metric; "
        "--json for machine-readable output, --csv for per-frame values, --plots for one PNG "
        "chart per metric. See --list for the metrics and what they measure. LPIPS and FID are "
        "not offered: they need ImageNet-trained networks that are not available here.");
    cmd->add_option("--pred", options->prediction, "Predicted frames (image, folder or video)");
    cmd->add_option("--gt", options->ground_truth, "Ground-truth frames (image, folder or video)");
    cmd->add_option("--source", options->source,
                    "Identity source for identity metrics: one image for all frames, or a "
                    "folder/video matched frame by frame");
    cmd->add_option("--metrics", options->metrics,
                    "Comma-separated metric names (default psnr,ssim); see --list");
    cmd->add_option("--csv", options->csv, "Write per-frame values to this CSV file");
    cmd->add_option("--plots", options->plots, "Write one PNG plot per metric into this folder");
    cmd->add_flag("--resize", options->resize,
                  "Resize predictions to the ground truth's size (default: a size mismatch is an "
                  "error)");
    cmd->add_option("--max-frames", options->max_frames, "Compare at most this many frames")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--detect-every-frame", options->detect_every_frame,
                  "Face metrics: run the full face detection on every frame instead of tracking "
                  "the face through a video or folder (several times slower; each frame judged "
                  "alone)");
    cmd->add_flag("--list", options->list, "List the metrics and exit");
    commands.push_back({cmd, [options, &global] { return run_eval(*options, global); }});
}

}  // namespace avatar::cli
