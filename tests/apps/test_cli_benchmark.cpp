// `avatar benchmark synthbench`: the baselines and the dpe method (random small weights) scored on
// a small synthetic pair set, one row per task and method; bad inputs as one-line errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli_runner.h"
#include "core/error.h"
#include "engines/dpe/generator.h"
#include "face/face_fit.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "media/image.h"
#include "nn/state_dict.h"
#include "pipeline/synthbench.h"
#include "pipeline/synthbench_dpe.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::run_cli;

TEST(CliBenchmark, SynthbenchScoresTheBaselinesPerTask) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto dir = testing::fresh_dir("cli_benchmark", "synthbench") / "set";
    const auto made = run_cli("-q synth -o " + dir.string() +
                              " --identities 2 --frames 3 --size 96 --seed 5 --pairs 2");
    ASSERT_EQ(made.exit_status, 0) << made.output;
    const auto per_pair_file = dir.parent_path() / "per_pair.csv";
    const auto r =
        run_cli("--json benchmark synthbench " + dir.string() +
                " --metrics psnr,ssim,face_psnr --methods source,warp,warp-relative,warp-fitted"
                " --per-pair " +
                per_pair_file.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto report = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    const auto& rows = report.at("rows");
    ASSERT_EQ(rows.size(), 16u);  // 4 methods x 4 tasks (self_reenact, reenact, exp, pose)

    // The per-pair file holds every score the means are made of: the mean of its two reenact
    // warp PSNRs is the table's, and their spread gives the row's standard error.
    std::map<std::string, std::vector<double>> psnrs;  // "task/method" -> one per pair
    {
        std::ifstream csv(per_pair_file);
        std::string line;
        ASSERT_TRUE(std::getline(csv, line));
        EXPECT_EQ(line, "pair,task,method,psnr,ssim,face_psnr");
        int lines = 0;
        while (std::getline(csv, line)) {
            ++lines;
            std::vector<std::string> cells;
            std::stringstream row(line);
            for (std::string cell; std::getline(row, cell, ',');)
                cells.push_back(cell);
            ASSERT_EQ(cells.size(), 6u) << line;
            EXPECT_EQ(cells[0].rfind("pair_", 0), 0u) << line;
            psnrs[cells[1] + "/" + cells[2]].push_back(std::stod(cells[3]));
        }
        EXPECT_EQ(lines, 32);  // 2 pairs x 4 tasks x 4 methods
    }
    double source_face_psnr = 0, warp_face_psnr = 0;
    for (const auto& row : rows) {
        EXPECT_EQ(row.at("pairs").get<int>(), 2);
        EXPECT_TRUE(row.at("metrics").at("psnr").is_number()) << row.dump();
        const auto& pair_psnrs =
            psnrs.at(row.at("task").get<std::string>() + "/" + row.at("method").get<std::string>());
        ASSERT_EQ(pair_psnrs.size(), 2u);
        const double a = pair_psnrs[0], b = pair_psnrs[1];
        EXPECT_NEAR(row.at("metrics").at("psnr").get<double>(), (a + b) / 2, 1e-6) << row.dump();
        // Two values: the sample standard deviation is |a - b| / sqrt(2), its mean's error half.
        EXPECT_NEAR(row.at("sem").at("psnr").get<double>(), std::abs(a - b) / 2, 1e-6)
            << row.dump();
        if (row.at("task") == "reenact" &&
            (row.at("method") == "warp" || row.at("method") == "source")) {
            const double psnr = row.at("metrics").at("face_psnr").get<double>();
            (row.at("method") == "warp" ? warp_face_psnr : source_face_psnr) = psnr;
        }
    }
    // With the head turned to B's rotation, warping the source onto the target landmarks brings
    // the face much closer to the truth than leaving it as it was (24.4 vs 21.9 dB). Over the
    // whole frame the source wins here, as on synthbench v2: the head stays where it is, while
    // the warp moves everything outside the face, background included, by one similarity.
    EXPECT_GT(warp_face_psnr, source_face_psnr + 2.0);
    // The notes say which pairs were scored: a set without a preset has no name, only its path.
    EXPECT_NE(report.at("notes").dump().find("pair rule 2"), std::string::npos)
        << report.at("notes").dump();
    // warp-fitted says how many predictions found no face to read the motion from.
    EXPECT_NE(report.at("notes").dump().find("without a face found kept the source"),
              std::string::npos)
        << report.at("notes").dump();

    const auto missing = run_cli("benchmark synthbench " + (dir / "nothing").string());
    EXPECT_NE(missing.exit_status, 0);
    EXPECT_NE(missing.output.find("pairs.json"), std::string::npos) << missing.output;
    const auto bad = run_cli("benchmark synthbench " + dir.string() + " --methods dpe");
    EXPECT_NE(bad.exit_status, 0);
    EXPECT_NE(bad.output.find("--dpe-weights"), std::string::npos) << bad.output;
    // A file that cannot be written is refused before the run, not after it.
    const auto unwritable = run_cli("benchmark synthbench " + dir.string() + " --per-pair " +
                                    (dir / "no_folder" / "scores.csv").string());
    EXPECT_NE(unwritable.exit_status, 0);
    EXPECT_NE(unwritable.output.find("folder does not exist"), std::string::npos)
        << unwritable.output;
}

// Relative motion as the warp-relative method renders it: the driver's change since its reference
// lands on the source in the parts the task transfers, and nowhere else.
TEST(SynthbenchRelativeRow, AddsTheDriversChangeToTheTransferredPartsOnly) {
    const auto width = static_cast<size_t>(face::face_layout_size());
    const auto first_motion = static_cast<size_t>(face::kPoseSize) +
                              static_cast<size_t>(face::face_model().identity_count());
    std::vector<double> source(width), driving(width), reference(width);
    for (size_t c = 0; c < width; ++c) {
        source[c] = 0.1 * static_cast<double>(c);
        driving[c] = -0.3 + 0.02 * static_cast<double>(c);
        reference[c] = 0.05 - 0.01 * static_cast<double>(c);
    }
    source[6] = 5.0;  // scales: pixels per cm
    driving[6] = 6.0;
    reference[6] = 4.0;
    const auto both = pipeline::synthbench_relative_row("reenact", source, driving, reference);
    const auto expression =
        pipeline::synthbench_relative_row("expression_only", source, driving, reference);
    const auto pose = pipeline::synthbench_relative_row("pose_only", source, driving, reference);
    for (size_t c = 0; c < width; ++c) {
        const bool is_pose = c < static_cast<size_t>(face::kPoseSize);
        const bool is_motion = c >= first_motion;
        double moved = source[c] + (driving[c] - reference[c]);  // angles, expression, gaze
        if (c >= 3 && c < 6)
            moved = source[c] + (driving[c] - reference[c]) * source[6] / reference[6];
        if (c == 6)
            moved = 5.0 * 6.0 / 4.0;
        EXPECT_DOUBLE_EQ(both[c], is_pose || is_motion ? moved : source[c]) << c;
        EXPECT_DOUBLE_EQ(expression[c], is_motion ? moved : source[c]) << c;
        EXPECT_DOUBLE_EQ(pose[c], is_pose ? moved : source[c]) << c;
    }
    // A driver that has not moved since its reference leaves the source as it is.
    EXPECT_EQ(pipeline::synthbench_relative_row("reenact", source, reference, reference), source);
    EXPECT_THROW(pipeline::synthbench_relative_row("reenact", source, {1.0}, reference),
                 avatar::Error);
}

// The warp-fitted method's points, from meshes that are exactly the face model's: the fits find
// the rows again, so the target is the task's truth (pair rule 2) up to the fits' precision,
// the source is the source's own points, and each task carries only its part of the motion.
TEST(SynthbenchFittedPoints, FromExactMeshesAreTheTruthsOfEachTask) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto& m = face::face_model();
    auto gen = at::detail::createCPUGenerator(17);
    const auto identity = [&] {
        return torch::rand({m.identity_count()}, gen, torch::kFloat64) * 1.6 - 0.8;
    };
    const auto expression = [&](double most) {
        return torch::rand({1, m.expression_count()}, gen, torch::kFloat64) * most;
    };
    const auto pose = [](double pitch, double yaw, double roll, double x, double y, double s) {
        const double deg = M_PI / 180;
        return torch::tensor({{pitch * deg, yaw * deg, roll * deg, x, y, 0.0, s}}, torch::kFloat64);
    };
    const auto id_a = identity(), id_b = identity();
    const auto ex_a = expression(0.1), ex_b = expression(0.9);  // near rest; far from it
    const auto pose_a = pose(5, -10, 3, 300, 240, 8), pose_b = pose(-8, 20, -6, 340, 210, 6);
    const auto points = [](const torch::Tensor& p, const torch::Tensor& id,
                           const torch::Tensor& ex) { return face::project_face(p, id, ex)[0]; };
    const auto source_mesh = points(pose_a, id_a, ex_a);
    const auto driving_mesh = points(pose_b, id_b, ex_b);
    // B's rotation with A's place and size.
    auto rotated = pose_a.clone();
    rotated.narrow(1, 0, 3).copy_(pose_b.narrow(1, 0, 3));
    const std::map<std::string, torch::Tensor> truths = {
        {"self_reenact", points(pose_b, id_a, ex_b)},  // the driver's whole pose
        {"reenact", points(rotated, id_a, ex_b)},
        {"expression_only", points(pose_a, id_a, ex_b)},
        {"pose_only", points(rotated, id_a, ex_a)},
    };
    // The largest distance between two sets of points (an expression moves few of them).
    const auto distance = [](const torch::Tensor& a, const torch::Tensor& b) {
        return (a.narrow(1, 0, 2) - b.narrow(1, 0, 2)).norm(2, 1).max().item<double>();
    };
    for (const auto& [task, truth] : truths) {
        const auto fitted = pipeline::synthbench_fitted_points(
            task, source_mesh.to(torch::kFloat32), driving_mesh.to(torch::kFloat32));
        ASSERT_EQ(fitted.target.sizes(), torch::IntArrayRef({468, 3})) << task;
        const double motion = distance(source_mesh, truth);
        const double error = distance(fitted.target, truth);
        std::printf("%s: points move by up to %.2f px, the fitted target is off by up to %.4f px\n",
                    task.c_str(), motion, error);
        EXPECT_GT(motion, 2.0) << task;  // every task moves the points
        EXPECT_LT(distance(fitted.source, source_mesh), 0.1) << task;
        EXPECT_LT(error, 0.05 * motion) << task;
    }
    EXPECT_THROW(pipeline::synthbench_fitted_points("turn", source_mesh, driving_mesh),
                 avatar::Error);
    EXPECT_THROW(
        pipeline::synthbench_fitted_points("reenact", source_mesh.narrow(0, 0, 68), driving_mesh),
        avatar::Error);
}

// A DPE generator small enough to run in a test, at 32x32, saved as a checkpoint.
std::filesystem::path tiny_dpe_weights(const std::filesystem::path& dir) {
    engines::dpe::DPEConfig config;
    config.size = 32;
    config.channels = {{4, 12}, {8, 10}, {16, 8}, {32, 8}};
    torch::manual_seed(3);
    engines::dpe::Generator generator(config);
    const auto path = dir / "tiny_dpe.safetensors";
    nn::save_state(*generator, path);
    return path;
}

size_t count_lines(const std::string& text) {
    size_t lines = 0;
    for (size_t i = 0; i < text.size(); ++i)
        lines += text[i] == '\n' || (i + 1 == text.size()) ? 1 : 0;
    return lines;
}

TEST(CliBenchmark, SynthbenchRunsDpeOnEveryTask) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("cli_benchmark", "synthbench_dpe");
    const auto dir = root / "set";
    const auto made = run_cli("-q synth -o " + dir.string() +
                              " --identities 2 --frames 4 --size 96 --seed 7 --pairs 2");
    ASSERT_EQ(made.exit_status, 0) << made.output;
    const auto weights = tiny_dpe_weights(root);
    for (const std::string motion : {"relative", "absolute"}) {
        const auto r = run_cli("--json benchmark synthbench " + dir.string() +
                               " --methods source,warp,dpe --metrics psnr,ssim --dpe-weights " +
                               weights.string() + " --dpe-motion " + motion);
        ASSERT_EQ(r.exit_status, 0) << r.output;
        const auto report = nlohmann::json::parse(r.output.substr(r.output.find('{')));
        const auto& rows = report.at("rows");
        ASSERT_EQ(rows.size(), 12u);  // 3 methods x 4 tasks
        std::set<std::string> dpe_tasks;
        for (const auto& row : rows) {
            EXPECT_EQ(row.at("pairs").get<int>(), 2);
            if (row.at("method") != "dpe")
                continue;
            dpe_tasks.insert(row.at("task").get<std::string>());
            for (const char* metric : {"psnr", "ssim"}) {
                const auto& v = row.at("metrics").at(metric);
                ASSERT_TRUE(v.is_number()) << row.dump();
                EXPECT_TRUE(std::isfinite(v.get<double>())) << row.dump();
            }
            // Random weights render noise into the crop: not the source, not the truth.
            EXPECT_LT(row.at("metrics").at("ssim").get<double>(), 0.999) << row.dump();
        }
        EXPECT_EQ(dpe_tasks, (std::set<std::string>{"self_reenact", "reenact", "expression_only",
                                                    "pose_only"}));
        EXPECT_NE(report.at("notes").dump().find(motion), std::string::npos);
    }

    // dpe-fitted: the same engine with its motion code fitted to warp-fitted's points; the notes
    // say with how many steps and how many predictions found no face.
    const auto fitted = run_cli(
        "--json benchmark synthbench " + dir.string() +
        " --methods dpe,dpe-fitted --metrics psnr --dpe-fit-steps 2 --dpe-fit-space directions"
        " --dpe-weights " +
        weights.string());
    ASSERT_EQ(fitted.exit_status, 0) << fitted.output;
    const auto fitted_report = nlohmann::json::parse(fitted.output.substr(fitted.output.find('{')));
    ASSERT_EQ(fitted_report.at("rows").size(), 8u);  // 2 methods x 4 tasks
    for (const auto& row : fitted_report.at("rows")) {
        const auto& v = row.at("metrics").at("psnr");
        ASSERT_TRUE(v.is_number()) << row.dump();
        EXPECT_TRUE(std::isfinite(v.get<double>())) << row.dump();
    }
    const auto fitted_notes = fitted_report.at("notes").dump();
    EXPECT_NE(fitted_notes.find("fitted to warp-fitted's points, 2 steps in the directions space"),
              std::string::npos)
        << fitted_notes;
    EXPECT_NE(fitted_notes.find("without a face found"), std::string::npos) << fitted_notes;
    // dpe-oracle: the motion code fitted to each truth's face, which uses the answer: its note
    // says so. Every task is scored.
    const auto oracle = run_cli("--json benchmark synthbench " + dir.string() +
                                " --methods dpe-oracle --metrics psnr --dpe-fit-steps 2"
                                " --dpe-weights " +
                                weights.string());
    ASSERT_EQ(oracle.exit_status, 0) << oracle.output;
    const auto oracle_report = nlohmann::json::parse(oracle.output.substr(oracle.output.find('{')));
    ASSERT_EQ(oracle_report.at("rows").size(), 4u);
    for (const auto& row : oracle_report.at("rows")) {
        const auto& v = row.at("metrics").at("psnr");
        ASSERT_TRUE(v.is_number()) << row.dump();
        EXPECT_TRUE(std::isfinite(v.get<double>())) << row.dump();
    }
    const auto oracle_notes = oracle_report.at("notes").dump();
    EXPECT_NE(oracle_notes.find("fitted to each true image's face"), std::string::npos)
        << oracle_notes;
    EXPECT_NE(oracle_notes.find("not a method"), std::string::npos) << oracle_notes;
    const auto oracle_without_weights =
        run_cli("benchmark synthbench " + dir.string() + " --methods dpe-oracle");
    EXPECT_NE(oracle_without_weights.exit_status, 0);
    EXPECT_NE(oracle_without_weights.output.find("--dpe-weights"), std::string::npos)
        << oracle_without_weights.output;
    const auto negative_steps =
        run_cli("benchmark synthbench " + dir.string() +
                " --methods dpe-fitted --dpe-fit-steps -1 --dpe-weights " + weights.string());
    EXPECT_NE(negative_steps.exit_status, 0);
    EXPECT_NE(negative_steps.output.find("--dpe-fit-steps"), std::string::npos)
        << negative_steps.output;

    // Errors are one line naming what is at fault.
    const auto no_weights = run_cli("benchmark synthbench " + dir.string() + " --methods dpe");
    EXPECT_NE(no_weights.exit_status, 0);
    EXPECT_NE(no_weights.output.find("--dpe-weights"), std::string::npos) << no_weights.output;
    EXPECT_EQ(count_lines(no_weights.output), 1u) << no_weights.output;
    const auto missing_path = (root / "no_such.safetensors").string();
    const auto missing = run_cli("benchmark synthbench " + dir.string() +
                                 " --methods dpe --dpe-weights " + missing_path);
    EXPECT_NE(missing.exit_status, 0);
    EXPECT_NE(missing.output.find(missing_path), std::string::npos) << missing.output;
    EXPECT_EQ(count_lines(missing.output), 1u) << missing.output;
    const auto not_dpe = (dir / "pairs" / "pair_0000" / "source.png").string();
    const auto wrong =
        run_cli("benchmark synthbench " + dir.string() + " --methods dpe --dpe-weights " + not_dpe);
    EXPECT_NE(wrong.exit_status, 0);
    EXPECT_NE(wrong.output.find(not_dpe), std::string::npos) << wrong.output;
    EXPECT_EQ(count_lines(wrong.output), 1u) << wrong.output;
    const auto bad_motion =
        run_cli("benchmark synthbench " + dir.string() +
                " --methods dpe --dpe-motion sideways --dpe-weights " + weights.string());
    EXPECT_NE(bad_motion.exit_status, 0);
    EXPECT_NE(bad_motion.output.find("--dpe-motion"), std::string::npos) << bad_motion.output;
}

// A one-pair synthbench set (two identities, 128 px) under `root`, and the true points of its
// rows; nullopt (after a test failure) if `avatar synth` failed.
struct OnePairSet {
    fs::path dir, folder;
    nlohmann::json pair;
    torch::Tensor points(const char* row) const {
        const auto c = face::unpack_face_coefficients(
            torch::tensor(pair.at("rows").at(row).get<std::vector<double>>(), torch::kFloat64));
        return face::project_face(c.pose.unsqueeze(0), c.identity, c.expression.unsqueeze(0))[0];
    }
};

std::optional<OnePairSet> one_pair_set(const fs::path& root) {
    OnePairSet set;
    set.dir = root / "set";
    const auto made = run_cli("-q synth -o " + set.dir.string() +
                              " --identities 2 --frames 3 --size 128 --seed 11 --pairs 1");
    EXPECT_EQ(made.exit_status, 0) << made.output;
    if (made.exit_status != 0)
        return std::nullopt;
    std::ifstream in(set.dir / "pairs" / "pairs.json");
    nlohmann::json manifest;
    in >> manifest;
    set.pair = manifest.at("pairs").at(0);
    set.folder = set.dir / "pairs" / set.pair.at("folder").get<std::string>();
    return set;
}

// The paste-back of the dpe method: an expression edit replaces only the face region, so the
// source is untouched away from the face; a pose or full edit replaces the whole crop.
TEST(SynthbenchDpe, ExpressionEditsPasteOnlyTheFace) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("cli_benchmark", "synthbench_dpe_paste");
    const auto set = one_pair_set(root);
    ASSERT_TRUE(set.has_value());
    const auto& dir = set->dir;
    const auto& pair = set->pair;
    const auto& folder = set->folder;
    const auto points = [&](const char* name) { return set->points(name); };
    const auto source = media::read_image(folder / "source.png");
    const auto driving = media::read_image(folder / "driving.png");
    pipeline::SynthbenchDpe dpe(tiny_dpe_weights(root), pipeline::MotionMode::kAbsolute,
                                pipeline::PasteMode::kReplace, dir);
    EXPECT_EQ(dpe.size(), 32);
    dpe.set_source(source, points("source"), "source.png");
    const int64_t b = pair.at("identity_b").get<int64_t>();
    const auto exp = dpe.predict("expression_only", driving, points("driving"), b, "driving.png");
    const auto pose = dpe.predict("pose_only", driving, points("driving"), b, "driving.png");
    ASSERT_EQ(exp.sizes(), source.sizes());
    ASSERT_EQ(pose.sizes(), source.sizes());

    // Outside the face's box grown by the region's growth and blur (6 % + 3 x 3 % of the crop
    // side, the crop 1.7 x the face), the expression edit leaves the source exactly.
    const auto xy = points("source").slice(1, 0, 2);
    const auto lo = std::get<0>(xy.min(0)), hi = std::get<0>(xy.max(0));
    const double side = 1.7 * (hi - lo).max().item<double>();
    const double margin = 0.15 * side + 2;
    auto outside = torch::ones({source.size(0), source.size(1)}, torch::kBool);
    const auto clampi = [&](double v) {
        return std::max<int64_t>(0, std::min<int64_t>(source.size(0), std::lround(v)));
    };
    const int64_t x0 = clampi(lo[0].item<double>() - margin),
                  x1 = clampi(hi[0].item<double>() + margin);
    const int64_t y0 = clampi(lo[1].item<double>() - margin),
                  y1 = clampi(hi[1].item<double>() + margin);
    outside.slice(0, y0, y1).slice(1, x0, x1).fill_(false);
    ASSERT_GT(outside.sum().item<int64_t>(), 0);
    const auto changed = [&](const torch::Tensor& image) {
        return (image.to(torch::kInt32) - source.to(torch::kInt32)).abs().amax(2) > 0;
    };
    EXPECT_EQ((changed(exp) & outside).sum().item<int64_t>(), 0);
    EXPECT_GT(changed(exp).sum().item<int64_t>(), 0);  // the face itself was replaced
    // The pose edit pastes the whole crop, beyond the face region.
    EXPECT_GT((changed(pose) & outside).sum().item<int64_t>(), 0);

    EXPECT_THROW(dpe.predict("sideways", driving, points("driving"), b, "driving.png"), Error);

    // The difference paste (the default for expression edits) adds the rendered change from the
    // source's own reconstruction: driven by the source itself (absolute motion, the same crop),
    // the change is zero and the source comes back bit for bit, though the random weights
    // render noise.
    pipeline::SynthbenchDpe difference(tiny_dpe_weights(root), pipeline::MotionMode::kAbsolute,
                                       pipeline::PasteMode::kAuto, dir);
    difference.set_source(source, points("source"), "source.png");
    const int64_t a = pair.at("identity_a").get<int64_t>();
    EXPECT_TRUE(torch::equal(
        difference.predict("expression_only", source, points("source"), a, "source.png"), source));
    const auto edited =
        difference.predict("expression_only", driving, points("driving"), b, "driving.png");
    EXPECT_GT(changed(edited).sum().item<int64_t>(), 0);
    EXPECT_EQ((changed(edited) & outside).sum().item<int64_t>(), 0);
    // A pose edit is not a difference under auto: the same as replace.
    EXPECT_TRUE(torch::equal(
        difference.predict("pose_only", driving, points("driving"), b, "driving.png"), pose));
}

// The driving crop: auto cuts self_reenact's driver (a frame of the source's own video) with
// the source's crop, as own would not, and every cross-identity driver with a crop of its own;
// source needs absolute motion.
TEST(SynthbenchDpe, DriverCropAutoSharesTheSourceCropForSelfReenactmentOnly) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("cli_benchmark", "synthbench_dpe_driver_crop");
    const auto set = one_pair_set(root);
    ASSERT_TRUE(set.has_value());
    const auto source = media::read_image(set->folder / "source.png");
    const auto self = media::read_image(set->folder / "self_reenact.png");
    const auto driving = media::read_image(set->folder / "driving.png");
    const auto weights = tiny_dpe_weights(root);
    const int64_t a = set->pair.at("identity_a").get<int64_t>();
    const int64_t b = set->pair.at("identity_b").get<int64_t>();
    std::map<pipeline::DriverCrop, std::pair<torch::Tensor, torch::Tensor>> out;
    for (const auto crop :
         {pipeline::DriverCrop::kAuto, pipeline::DriverCrop::kOwn, pipeline::DriverCrop::kSource}) {
        pipeline::SynthbenchDpe dpe(weights, pipeline::MotionMode::kAbsolute,
                                    pipeline::PasteMode::kAuto, set->dir, crop);
        dpe.set_source(source, set->points("source"), "source.png");
        out[crop] = {dpe.predict("self_reenact", self, set->points("self_reenact"), a, "self"),
                     dpe.predict("reenact", driving, set->points("driving"), b, "driving")};
    }
    using pipeline::DriverCrop;
    EXPECT_TRUE(torch::equal(out[DriverCrop::kAuto].first, out[DriverCrop::kSource].first));
    EXPECT_FALSE(torch::equal(out[DriverCrop::kAuto].first, out[DriverCrop::kOwn].first));
    EXPECT_TRUE(torch::equal(out[DriverCrop::kAuto].second, out[DriverCrop::kOwn].second));
    EXPECT_FALSE(torch::equal(out[DriverCrop::kAuto].second, out[DriverCrop::kSource].second));

    EXPECT_EQ(pipeline::parse_driver_crop("own"), DriverCrop::kOwn);
    EXPECT_THROW(pipeline::parse_driver_crop("centre"), Error);
    EXPECT_THROW(pipeline::SynthbenchDpe(weights, pipeline::MotionMode::kRelative,
                                         pipeline::PasteMode::kAuto, set->dir, DriverCrop::kSource),
                 Error);
    const auto bad = run_cli("benchmark synthbench " + set->dir.string() +
                             " --methods dpe --dpe-motion relative --dpe-driver-crop source "
                             "--dpe-weights " +
                             weights.string());
    EXPECT_NE(bad.exit_status, 0);
    EXPECT_NE(bad.output.find("--dpe-driver-crop"), std::string::npos) << bad.output;
    EXPECT_EQ(count_lines(bad.output), 1u) << bad.output;
}

// The ceiling method: the truth through the crop and paste-back. Through a difference paste the
// source's own crop is its reconstruction, so where the truth is the source nothing is lost; a
// bigger crop scores at least as well.
TEST(SynthbenchCeiling, IsTheTruthThroughTheCrop) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("cli_benchmark", "synthbench_ceiling");
    const auto set = one_pair_set(root);
    ASSERT_TRUE(set.has_value());
    const auto& dir = set->dir;
    const auto& folder = set->folder;
    const auto points = set->points("source");
    const auto source = media::read_image(folder / "source.png");
    const auto truth = media::read_image(folder / "reenact.png");
    EXPECT_TRUE(
        torch::equal(pipeline::synthbench_ceiling("expression_only", pipeline::PasteMode::kAuto,
                                                  source, points, source, 32),
                     source));
    const auto error = [&](int size) {
        const auto out = pipeline::synthbench_ceiling("reenact", pipeline::PasteMode::kAuto, source,
                                                      points, truth, size);
        return (out.to(torch::kFloat32) - truth.to(torch::kFloat32)).abs().mean().item<double>();
    };
    const double unchanged =
        (source.to(torch::kFloat32) - truth.to(torch::kFloat32)).abs().mean().item<double>();
    EXPECT_LT(error(128), error(32));
    EXPECT_LT(error(32), unchanged);

    const auto r = run_cli("--json benchmark synthbench " + dir.string() +
                           " --methods source,ceiling --metrics psnr --ceiling-size 48");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto report = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(report.at("rows").size(), 8u);
    EXPECT_NE(report.at("notes").dump().find("48x48"), std::string::npos) << report.dump();
    const auto bad =
        run_cli("benchmark synthbench " + dir.string() + " --methods ceiling --dpe-paste sideways");
    EXPECT_NE(bad.exit_status, 0);
    EXPECT_NE(bad.output.find("--dpe-paste"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace avatar
