#include "pipeline/synthbench.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/progress.h"
#include "face/face_fit.h"
#include "face/face_model.h"
#include "media/image.h"
#include "pipeline/evaluation.h"
#include "pipeline/landmark_warp.h"

namespace avatar::pipeline {
namespace {
namespace fs = std::filesystem;

const std::vector<std::string> kTasks = {"reenact", "expression_only", "pose_only"};

// The model's 468 points of one avatar-face-v1 row, in the image's pixels.
torch::Tensor points_of(const nlohmann::json& row, const std::string& subject) {
    const auto values = row.get<std::vector<double>>();
    check(static_cast<int64_t>(values.size()) == face::face_layout_size(), subject,
          "a row must have " + std::to_string(face::face_layout_size()) + " numbers");
    const auto c = face::unpack_face_coefficients(torch::tensor(values, torch::kFloat64));
    return face::project_face(c.pose.unsqueeze(0), c.identity, c.expression.unsqueeze(0))[0];
}

}  // namespace

SynthbenchReport run_synthbench(const fs::path& dir, const SynthbenchOptions& options) {
    const fs::path pairs_dir = fs::exists(dir / "pairs" / "pairs.json") ? dir / "pairs" : dir;
    const fs::path index = pairs_dir / "pairs.json";
    std::ifstream in(index);
    check(in.good(), index.string(),
          "not found (make the pairs with: avatar synth -o DIR --pairs N, or --preset "
          "synthbench-v1)");
    nlohmann::json manifest;
    try {
        in >> manifest;
    } catch (const nlohmann::json::exception& e) {
        throw Error(index.string(), std::string("not valid JSON: ") + e.what());
    }
    check(manifest.value("layout", std::string()) == face::kFaceLayoutName &&
              manifest.contains("pairs"),
          index.string(), "not a synthbench pairs file (layout avatar-face-v1 with a pairs list)");
    for (const auto& m : options.methods)
        check(m == "source" || m == "warp", "--methods",
              "unknown method '" + m + "' (source, warp)");
    for (const auto& m : options.metrics) {
        const auto& known = evaluation_metrics();
        check(std::any_of(known.begin(), known.end(),
                          [&](const MetricInfo& i) { return i.name == m; }),
              "--metrics", "unknown metric '" + m + "' (see avatar eval --list)");
    }

    const auto& pairs = manifest.at("pairs");
    int64_t count = static_cast<int64_t>(pairs.size());
    if (options.max_pairs > 0)
        count = std::min(count, options.max_pairs);
    check(count > 0, index.string(), "holds no pairs");
    // sums[method][task][metric], counts likewise
    const size_t nm = options.methods.size(), nt = kTasks.size(), nk = options.metrics.size();
    std::vector<double> sums(nm * nt * nk, 0.0), counts(nm * nt * nk, 0.0);
    std::optional<Progress> progress;
    if (options.show_progress)
        progress.emplace("synthbench", count, "pairs");
    for (int64_t p = 0; p < count; ++p) {
        const auto& pair = pairs[static_cast<size_t>(p)];
        const fs::path folder = pairs_dir / pair.at("folder").get<std::string>();
        const auto source = media::read_image(folder / "source.png");
        const auto& rows = pair.at("rows");
        const auto source_points = points_of(rows.at("source"), (folder / "source").string());
        for (size_t t = 0; t < nt; ++t) {
            const auto truth = media::read_image(folder / (kTasks[t] + ".png"));
            for (size_t m = 0; m < nm; ++m) {
                torch::Tensor prediction = source;
                if (options.methods[m] == "warp")
                    prediction = piecewise_affine_warp(
                        source, source_points, points_of(rows.at(kTasks[t]), folder.string()),
                        truth.size(0), truth.size(1));
                const auto values = evaluate_frame(options.metrics, prediction, truth, source);
                for (size_t k = 0; k < nk; ++k) {
                    if (std::isnan(values[k]))
                        continue;
                    sums[(m * nt + t) * nk + k] += values[k];
                    counts[(m * nt + t) * nk + k] += 1;
                }
            }
        }
        if (progress)
            progress->advance();
    }
    if (progress)
        progress->finish();

    SynthbenchReport report;
    report.metrics = options.metrics;
    for (size_t m = 0; m < nm; ++m)
        for (size_t t = 0; t < nt; ++t) {
            SynthbenchRow row{options.methods[m], kTasks[t], count, {}};
            for (size_t k = 0; k < nk; ++k) {
                const size_t i = (m * nt + t) * nk + k;
                row.mean.push_back(counts[i] > 0 ? sums[i] / counts[i] : NAN);
            }
            report.rows.push_back(row);
        }
    return report;
}

std::string SynthbenchReport::to_markdown() const {
    std::ostringstream out;
    out << "| task | method | pairs";
    for (const auto& m : metrics)
        out << " | " << m;
    out << " |\n|---|---|---:";
    for (size_t k = 0; k < metrics.size(); ++k)
        out << "|---:";
    out << "|\n";
    for (const auto& row : rows) {
        out << "| " << row.task << " | " << row.method << " | " << row.pairs;
        for (double v : row.mean) {
            char text[32];
            if (std::isnan(v))
                std::snprintf(text, sizeof text, "-");
            else if (std::isinf(v))
                std::snprintf(text, sizeof text, "inf");
            else
                std::snprintf(text, sizeof text, "%.4g", v);
            out << " | " << text;
        }
        out << " |\n";
    }
    return out.str();
}

nlohmann::json SynthbenchReport::to_json() const {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& row : rows) {
        nlohmann::json values;
        for (size_t k = 0; k < metrics.size(); ++k) {
            const double v = row.mean[k];
            values[metrics[k]] = std::isnan(v)   ? nlohmann::json(nullptr)
                                 : std::isinf(v) ? nlohmann::json("inf")
                                                 : nlohmann::json(v);
        }
        list.push_back({{"task", row.task},
                        {"method", row.method},
                        {"pairs", row.pairs},
                        {"metrics", values}});
    }
    return {{"benchmark", "synthbench"}, {"rows", list}};
}

}  // namespace avatar::pipeline
