#include "pipeline/synthbench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/progress.h"
#include "face/face_fit.h"
#include "face/face_model.h"
#include "face/retarget.h"
#include "face/tracker.h"
#include "media/image.h"
#include "media/motion_file.h"
#include "pipeline/evaluation.h"
#include "pipeline/landmark_warp.h"
#include "pipeline/motion_steering.h"
#include "pipeline/synthbench_dpe.h"
#include "synth/dataset.h"

namespace avatar::pipeline {
namespace {
namespace fs = std::filesystem;

// In the order: self-reenactment, cross-identity, expression only, pose only.
const std::vector<std::string> kTasks = {"self_reenact", "reenact", "expression_only", "pose_only"};

std::vector<double> row_values(const nlohmann::json& row, const std::string& subject) {
    auto values = row.get<std::vector<double>>();
    check(static_cast<int64_t>(values.size()) == face::face_layout_size(), subject,
          "a row must have " + std::to_string(face::face_layout_size()) + " numbers");
    return values;
}

torch::Tensor points_of(const std::vector<double>& values) {
    const auto c = face::unpack_face_coefficients(torch::tensor(values, torch::kFloat64));
    return face::project_face(c.pose.unsqueeze(0), c.identity, c.expression.unsqueeze(0))[0];
}

// The first row of each identity's video (the reference frame of relative motion, as the dpe
// method takes it), read from its motion file once.
class ReferenceRows {
public:
    explicit ReferenceRows(const fs::path& root) : root_(root) {}
    const std::vector<double>& of(int64_t identity) {
        const auto known = rows_.find(identity);
        if (known != rows_.end())
            return known->second;
        if (!dataset_)
            dataset_.emplace(root_);
        check(identity >= 0 && identity < dataset_->size(), (root_ / "synth.json").string(),
              "has no identity " + std::to_string(identity));
        const auto motion = dataset_->motion(identity);
        const auto channel = motion.channels.find(media::channel::kCoefficients);
        check(channel != motion.channels.end() && channel->second.dim() == 2 &&
                  channel->second.size(0) > 0 &&
                  channel->second.size(1) == face::face_layout_size(),
              (root_ / "synth.json").string(),
              "identity " + std::to_string(identity) +
                  "'s motion file has no avatar-face-v1 coefficients");
        const auto first = channel->second[0].to(torch::kFloat64).contiguous();
        std::vector<double> row(first.data_ptr<double>(), first.data_ptr<double>() + first.numel());
        return rows_.emplace(identity, std::move(row)).first->second;
    }

private:
    fs::path root_;
    std::optional<synth::SyntheticDataset> dataset_;  // opened on first use
    std::map<int64_t, std::vector<double>> rows_;
};

// The 468 points of the largest face the front end finds in an image (detection only, no
// tracking), or an empty tensor when it finds none.
torch::Tensor largest_face_mesh(const torch::Tensor& image) {
    face::TrackerOptions detection;
    detection.landmarks68 = false;
    detection.iris = false;
    const auto faces = face::detect_faces(image, detection);
    const auto* largest = face::largest_face(faces);
    return largest != nullptr ? largest->mesh468 : torch::empty({0});
}

// Which pairs were scored: the set's name and pair rule from its synth.json (a pairs folder on
// its own, without the manifest, is named by its path). The rule changes what the truths mean
// (docs/synthetic-world.md), so a table must say which it is.
std::string describe_pair_set(const fs::path& root) {
    if (!fs::exists(root / "synth.json"))
        return "pairs: " + root.string() + " (no synth.json: pair rule unknown)";
    const synth::SyntheticDataset set(root);
    return "pairs: " + (set.name().empty() ? root.string() : set.name()) + ", pair rule " +
           std::to_string(set.pair_rule());
}

// The mean of `values` and its standard error (the sample deviation over sqrt(n)); NaN where
// undefined (no values; one value for the error).
std::pair<double, double> mean_and_error(const std::vector<double>& values) {
    if (values.empty())
        return {NAN, NAN};
    const double n = static_cast<double>(values.size());
    double sum = 0;
    for (double v : values)
        sum += v;
    const double mean = sum / n;
    if (values.size() < 2)
        return {mean, NAN};
    double squares = 0;
    for (double v : values)
        squares += (v - mean) * (v - mean);
    return {mean, std::sqrt(squares / (n - 1) / n)};
}

}  // namespace

std::vector<double> synthbench_relative_row(const std::string& task,
                                            const std::vector<double>& source,
                                            const std::vector<double>& driving,
                                            const std::vector<double>& reference) {
    const auto width = static_cast<size_t>(face::face_layout_size());
    check(source.size() == width && driving.size() == width && reference.size() == width,
          "synthbench_relative_row", "rows must have " + std::to_string(width) + " numbers");
    std::vector<double> row = source;
    const bool pose = task != "expression_only", expression = task != "pose_only";
    if (pose) {
        const double scale = source[6] / reference[6];
        for (int c = 0; c < 3; ++c)
            row[c] = source[c] + (driving[c] - reference[c]);
        for (int c = 3; c < 6; ++c)
            row[c] = source[c] + (driving[c] - reference[c]) * scale;
        row[6] = source[6] * driving[6] / reference[6];
    }
    if (expression) {
        const size_t first = face::kPoseSize + face::face_model().identity_count();
        for (size_t c = first; c < row.size(); ++c)
            row[c] = source[c] + (driving[c] - reference[c]);
    }
    return row;
}

FittedWarpPoints synthbench_fitted_points(const std::string& task, const torch::Tensor& source_mesh,
                                          const torch::Tensor& driving_mesh) {
    check(std::find(kTasks.begin(), kTasks.end(), task) != kTasks.end(), "synthbench_fitted_points",
          "unknown task '" + task + "'");
    for (const auto* mesh : {&source_mesh, &driving_mesh})
        check(mesh->dim() == 2 && mesh->size(0) == 468 && mesh->size(1) == 3,
              "synthbench_fitted_points", "a mesh must be [468, 3]");
    // Each image fitted alone, as `avatar eval` fits them: a portrait tool has one image of each.
    const auto own = face::fit_face_mesh468(source_mesh.to(torch::kFloat64));
    const auto fit = face::fit_face_mesh468(driving_mesh.to(torch::kFloat64));
    FittedWarpPoints points;
    points.source = face::project_face(own.pose, own.identity, own.expression)[0];
    if (task == "self_reenact") {
        // The same camera: where the head is in the driving frame is where it is in the truth.
        points.target = face::project_face(fit.pose, own.identity, fit.expression)[0];
        return points;
    }
    face::RetargetOptions options;
    options.relative = false;
    options.regions = stage_regions(synthbench_dpe_stage(task));
    points.target = landmark_motion(own, fit, options).target;
    return points;
}

SynthbenchReport run_synthbench(const fs::path& dir, const SynthbenchOptions& options) {
    const fs::path pairs_dir = fs::exists(dir / "pairs" / "pairs.json") ? dir / "pairs" : dir;
    const fs::path index = pairs_dir / "pairs.json";
    std::ifstream in(index);
    check(in.good(), index.string(),
          "not found (make the pairs with: avatar synth -o DIR --pairs N, or --preset "
          "synthbench-v2)");
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
        check(m == "source" || m == "warp" || m == "warp-relative" || m == "warp-fitted" ||
                  m == "dpe" || m == "dpe-fitted" || m == "dpe-oracle" || m == "ceiling",
              "--methods",
              "unknown method '" + m +
                  "' (source, warp, warp-relative, warp-fitted, dpe, dpe-fitted, dpe-oracle, "
                  "ceiling)");
    check(options.dpe_fit_steps >= 0, "--dpe-fit-steps", "must be >= 0");
    check(options.dpe_fit_expression >= 0, "--dpe-fit-expression", "must be >= 0");
    const auto dpe_fit_space = engines::dpe::parse_motion_fit_space(options.dpe_fit_space);
    check(options.ceiling_size >= 16 && options.ceiling_size <= 1024, "--ceiling-size",
          "must be between 16 and 1024");
    const auto has_method = [&](const std::string& name) {
        return std::find(options.methods.begin(), options.methods.end(), name) !=
               options.methods.end();
    };
    const bool run_dpe = has_method("dpe") || has_method("dpe-fitted") || has_method("dpe-oracle");
    check(!run_dpe || !options.dpe_weights.empty(), "--methods",
          "the dpe, dpe-fitted and dpe-oracle methods need a DPE generator: pass --dpe-weights "
          "W.safetensors");
    check(options.dpe_motion == "relative" || options.dpe_motion == "absolute", "--dpe-motion",
          "'" + options.dpe_motion + "' is not one of relative, absolute");
    const auto dpe_motion = parse_motion_mode(options.dpe_motion);
    const auto dpe_paste = parse_paste_mode(options.dpe_paste);
    const auto dpe_driver_crop = parse_driver_crop(options.dpe_driver_crop);
    const FrameScorer validated(options.metrics);  // throws for unknown metrics

    const auto& pairs = manifest.at("pairs");
    int64_t count = static_cast<int64_t>(pairs.size());
    if (options.max_pairs > 0)
        count = std::min(count, options.max_pairs);
    check(count > 0, index.string(), "holds no pairs");
    // Self-reenactment needs the self_reenact image of newer pair sets (docs/synthetic-world.md);
    // an older set is scored on the other tasks.
    std::vector<std::string> tasks;
    for (const auto& task : kTasks) {
        bool present = true;
        for (int64_t p = 0; p < count; ++p)
            present = present && pairs[static_cast<size_t>(p)].at("rows").contains(task);
        if (present)
            tasks.push_back(task);
    }
    ReferenceRows references(pairs_dir.parent_path());
    std::optional<SynthbenchDpe> dpe;
    if (run_dpe)
        // The data set's root holds the drivers' videos (the reference frames of relative mode).
        dpe.emplace(options.dpe_weights, dpe_motion, dpe_paste, pairs_dir.parent_path(),
                    dpe_driver_crop);

    const size_t nm = options.methods.size(), nt = tasks.size(), nk = options.metrics.size();
    // Every score, pair-major, then task, then method; the rows' means are made from it.
    SynthbenchReport report;
    int64_t analyses = 0;
    // warp-fitted and dpe-fitted predictions without a face in the source or driver
    int64_t fitted_misses = 0;
    engines::dpe::MotionFitOptions motion_fit;
    motion_fit.steps = options.dpe_fit_steps;
    motion_fit.space = dpe_fit_space;
    motion_fit.expression_weight = options.dpe_fit_expression;
    engines::dpe::MotionFitOptions motion_oracle;  // dpe-oracle: the same steps and space
    motion_oracle.steps = options.dpe_fit_steps;
    motion_oracle.space = dpe_fit_space;
    std::optional<Progress> progress;
    if (options.show_progress)
        progress.emplace("synthbench", count, "pairs");
    for (int64_t p = 0; p < count; ++p) {
        const auto& pair = pairs[static_cast<size_t>(p)];
        const fs::path folder = pairs_dir / pair.at("folder").get<std::string>();
        const auto source = media::read_image(folder / "source.png");
        const auto& rows = pair.at("rows");
        // The rows of A at i and B at j, parsed once per pair for every task and method.
        const auto source_row = row_values(rows.at("source"), (folder / "source").string());
        const auto driving_row = row_values(rows.at("driving"), (folder / "driving").string());
        const auto source_points = points_of(source_row);
        const auto driving_points = points_of(driving_row);
        // One scorer per pair: the source is analysed once for every task and method, each
        // task's truth once for every method.
        FrameScorer scorer(options.metrics);
        scorer.set_source(source);
        if (dpe)
            dpe->set_source(source, source_points, (folder / "source.png").string());
        torch::Tensor driving;  // B at j, read when a method needs it
        // warp-fitted: the largest face the front end finds in A's and in B's frame, detected
        // once per pair for every task they drive (undefined: not looked for yet; empty: none).
        torch::Tensor source_mesh, driving_mesh;
        for (size_t t = 0; t < nt; ++t) {
            const auto& task = tasks[t];
            const fs::path truth_path = folder / (task + ".png");
            const auto truth = media::read_image(truth_path);
            scorer.set_ground_truth(truth);
            const auto target_row = row_values(rows.at(task), (folder / task).string());
            const auto target_points = points_of(target_row);
            // The task's fitted points, made once for warp-fitted and dpe-fitted (nullopt: not
            // yet; a miss: no face in the source or the driver).
            std::optional<std::optional<FittedWarpPoints>> fitted;
            torch::Tensor task_mesh;  // the driver's mesh for this task, found by fitted_points
            const auto fitted_points = [&]() -> const std::optional<FittedWarpPoints>& {
                if (fitted)
                    return *fitted;
                const bool self = task == "self_reenact";
                if (!source_mesh.defined())
                    source_mesh = largest_face_mesh(source);
                if (!self && !driving.defined())
                    driving = media::read_image(folder / "driving.png");
                if (!self && !driving_mesh.defined())
                    driving_mesh = largest_face_mesh(driving);
                task_mesh = self ? largest_face_mesh(truth) : driving_mesh;
                fitted.emplace();
                if (source_mesh.numel() > 0 && task_mesh.numel() > 0)
                    fitted->emplace(synthbench_fitted_points(task, source_mesh, task_mesh));
                return *fitted;
            };
            for (size_t m = 0; m < nm; ++m) {
                const auto& method = options.methods[m];
                torch::Tensor prediction = source;
                if (method == "warp") {
                    prediction = piecewise_affine_warp(source, source_points, target_points,
                                                       truth.size(0), truth.size(1));
                } else if (method == "warp-relative") {
                    const bool self = task == "self_reenact";
                    const auto relative = synthbench_relative_row(
                        task, source_row, self ? target_row : driving_row,
                        references.of(pair.at(self ? "identity_a" : "identity_b").get<int64_t>()));
                    prediction = piecewise_affine_warp(source, source_points, points_of(relative),
                                                       truth.size(0), truth.size(1));
                } else if (method == "warp-fitted") {
                    if (const auto& points = fitted_points()) {
                        prediction = piecewise_affine_warp(source, points->source, points->target,
                                                           truth.size(0), truth.size(1));
                    } else {
                        ++fitted_misses;  // no face to read the motion from: the source stays
                    }
                } else if (method == "ceiling") {
                    prediction = synthbench_ceiling(task, dpe_paste, source, source_points, truth,
                                                    options.ceiling_size);
                } else if (method == "dpe" || method == "dpe-fitted" || method == "dpe-oracle") {
                    // Self-reenactment is driven by A's own other frame, which is its truth;
                    // every other task by B's frame.
                    const bool self = task == "self_reenact";
                    if (!self && !driving.defined())
                        driving = media::read_image(folder / "driving.png");
                    const auto& driver = self ? truth : driving;
                    const auto& driver_points = self ? target_points : driving_points;
                    const auto driver_identity =
                        pair.at(self ? "identity_a" : "identity_b").get<int64_t>();
                    const auto driver_name =
                        self ? truth_path.string() : (folder / "driving.png").string();
                    if (method == "dpe-oracle") {
                        prediction =
                            dpe->predict_oracle(task, driver, driver_points, driver_identity,
                                                driver_name, truth, target_points, motion_oracle);
                    } else {
                        // dpe-fitted: the motion code then fitted to warp-fitted's points;
                        // without them (no face found) it is the dpe method's prediction.
                        torch::Tensor fit_source, fit_target, fit_expression;
                        if (method == "dpe-fitted") {
                            if (const auto& points = fitted_points()) {
                                fit_source = points->source;
                                fit_target = points->target;
                                // The expression term's points on 'both': the driver's
                                // expression alone on the source's fit.
                                if (motion_fit.expression_weight > 0 &&
                                    synthbench_dpe_stage(task) == engines::dpe::Stage::kBoth)
                                    fit_expression = synthbench_fitted_points(
                                                         "expression_only", source_mesh, task_mesh)
                                                         .target;
                            } else {
                                ++fitted_misses;
                            }
                        }
                        prediction =
                            dpe->predict(task, driver, driver_points, driver_identity, driver_name,
                                         fit_source, fit_target, motion_fit, fit_expression);
                    }
                }
                report.per_pair.push_back(
                    {folder.filename().string(), task, method, scorer.score(prediction)});
            }
        }
        analyses += scorer.analyses();
        if (progress)
            progress->advance();
    }
    if (progress)
        progress->finish();

    report.metrics = options.metrics;
    report.face_analyses = analyses;
    report.notes.push_back(describe_pair_set(pairs_dir.parent_path()));
    if (dpe)
        report.notes.push_back("dpe: " + options.dpe_weights.string() + " (" +
                               std::to_string(dpe->size()) + "x" + std::to_string(dpe->size()) +
                               "), " + options.dpe_motion + " motion, " + options.dpe_paste +
                               " paste, driver crop " + options.dpe_driver_crop);
    if (has_method("dpe-fitted")) {
        std::ostringstream note;
        note << "dpe-fitted: the dpe method with its motion code fitted to warp-fitted's points, "
             << options.dpe_fit_steps << " steps in the " << options.dpe_fit_space
             << " space, expression weight " << options.dpe_fit_expression;
        report.notes.push_back(note.str());
    }
    if (has_method("dpe-oracle")) {
        std::ostringstream note;
        note << "dpe-oracle: the dpe method with its motion code fitted to each true image's "
                "face (L1 over the hull of its true points in the source's crop), "
             << options.dpe_fit_steps << " steps in the " << options.dpe_fit_space
             << " space: uses the answer, a bound on what these decoders render, not a method";
        report.notes.push_back(note.str());
    }
    if (has_method("warp-fitted") || has_method("dpe-fitted"))
        report.notes.push_back(
            "warp-fitted, dpe-fitted: the face model fitted to the points found in the source and "
            "each driving image; " +
            std::to_string(fitted_misses) +
            " prediction(s) without a face found kept the source (dpe-fitted: the dpe method's)");
    if (std::find(options.methods.begin(), options.methods.end(), "ceiling") !=
        options.methods.end())
        report.notes.push_back("ceiling: the truth through a " +
                               std::to_string(options.ceiling_size) + "x" +
                               std::to_string(options.ceiling_size) +
                               " crop and the dpe method's paste-back (" + options.dpe_paste + ")");
    for (size_t m = 0; m < nm; ++m)
        for (size_t t = 0; t < nt; ++t) {
            SynthbenchRow row{options.methods[m], tasks[t], count, {}, {}};
            for (size_t k = 0; k < nk; ++k) {
                std::vector<double> values;  // the pairs with a value
                for (int64_t p = 0; p < count; ++p) {
                    const double v =
                        report.per_pair[(static_cast<size_t>(p) * nt + t) * nm + m].values[k];
                    if (!std::isnan(v))
                        values.push_back(v);
                }
                const auto [mean, sem] = mean_and_error(values);
                row.mean.push_back(mean);
                row.sem.push_back(sem);
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
    for (const auto& note : notes)
        out << "\n" << note << "\n";
    return out.str();
}

namespace {
nlohmann::json json_number(double v) {
    return std::isnan(v)   ? nlohmann::json(nullptr)
           : std::isinf(v) ? nlohmann::json("inf")
                           : nlohmann::json(v);
}
}  // namespace

nlohmann::json SynthbenchReport::to_json() const {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& row : rows) {
        nlohmann::json values, errors;
        for (size_t k = 0; k < metrics.size(); ++k) {
            values[metrics[k]] = json_number(row.mean[k]);
            errors[metrics[k]] = json_number(row.sem[k]);
        }
        list.push_back({{"task", row.task},
                        {"method", row.method},
                        {"pairs", row.pairs},
                        {"metrics", values},
                        {"sem", errors}});
    }
    return {{"benchmark", "synthbench"},
            {"rows", list},
            {"notes", notes},
            {"face_analyses", face_analyses}};
}

std::string SynthbenchReport::per_pair_csv() const {
    std::ostringstream out;
    out << "pair,task,method";
    for (const auto& m : metrics)
        out << "," << m;
    out << "\n";
    for (const auto& score : per_pair) {
        out << score.pair << "," << score.task << "," << score.method;
        for (double v : score.values) {
            char text[32] = "";
            if (std::isinf(v))
                std::snprintf(text, sizeof text, "inf");
            else if (!std::isnan(v))
                std::snprintf(text, sizeof text, "%.9g", v);
            out << "," << text;
        }
        out << "\n";
    }
    return out.str();
}

}  // namespace avatar::pipeline
