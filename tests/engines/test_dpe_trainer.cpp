// DPE training (engines/dpe/trainer.h) on a tiny model: the run writes a model that loads like
// any DPE checkpoint, stopping and resuming gives the same weights as one uninterrupted run, and
// folders are not mixed up.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "engines/dpe/held_out_pairs.h"
#include "engines/dpe/trainer.h"
#include "engines/dpe/widen_motion.h"
#include "nn/state_dict.h"
#include "npm_models.h"
#include "scratch_dir.h"
#include "train/synthetic_clips.h"

namespace {
namespace fs = std::filesystem;
using namespace avatar;
using namespace avatar::engines::dpe;

DpeTrainOptions tiny_run(const fs::path& output) {
    DpeTrainOptions o;
    o.model = compact_config(16, 8, 32);
    o.data.render_size = 64;
    o.data.clip_frames = 10;
    o.batch = 2;
    o.joint_steps = 3;
    o.refine_steps = 2;  // crosses into stage 2
    o.sample_every = 5;
    o.checkpoint_every = 100;
    o.log_every = 1;
    o.validation_pairs = 4;
    o.output = output;
    o.show_progress = false;
    return o;
}

// The rows of a run's validation.csv, as numbers (the header is checked).
std::vector<std::vector<double>> validation_rows(const fs::path& run) {
    std::ifstream in(run / "validation.csv");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line + "\n", HeldOutPairs::csv_header());
    std::vector<std::vector<double>> rows;
    while (std::getline(in, line)) {
        std::vector<double> row;
        std::stringstream cells(line);
        for (std::string cell; std::getline(cells, cell, ',');)
            row.push_back(std::stod(cell));
        rows.push_back(row);
    }
    return rows;
}

// The options a run's last checkpoint saved (state.json).
nlohmann::json saved_options(const fs::path& run) {
    std::ifstream in(run / "checkpoint" / "state.json");
    return nlohmann::json::parse(in)["options"];
}

torch::Tensor flat_weights(const fs::path& model) {
    const auto file = SafetensorsFile::open(model);
    auto g = load_dpe_generator(file);
    std::vector<torch::Tensor> all;
    for (const auto& p : g->parameters())
        all.push_back(p.detach().flatten());
    return torch::cat(all);
}

TEST(DpeTrainer, CompactConfigDoublesChannelsUpToTheCap) {
    const auto c = compact_config(64, 32, 128);
    EXPECT_EQ(c.channels.at(64), 32);
    EXPECT_EQ(c.channels.at(32), 64);
    EXPECT_EQ(c.channels.at(16), 128);
    EXPECT_EQ(c.channels.at(4), 128);
    EXPECT_EQ(c.style_dim, 128);
    EXPECT_THROW(compact_config(48, 8, 32), Error);
    EXPECT_THROW(compact_config(64, 8, 16), Error);  // narrower than the 20 directions
    EXPECT_EQ(compact_config(64, 8, 16, 16).motion_dim, 16);
    EXPECT_EQ(compact_config(64, 8, 128, 40).motion_dim, 40);
    EXPECT_THROW(compact_config(64, 8, 128, 0), Error);
}

TEST(DpeTrainer, WideningTheMotionCodeKeepsTheOutputsAndLearns) {
    const auto root = avatar::testing::fresh_dir("engines", "dpe_widen_motion");
    torch::manual_seed(5);
    Generator narrow(compact_config(16, 8, 32));
    nn::save_state(*narrow, root / "narrow.safetensors");
    const auto file = SafetensorsFile::open(root / "narrow.safetensors");
    Generator wide(compact_config(16, 8, 32, 28));
    load_widening_motion(wide, file);

    // The file's directions keep their basis vectors; the new ones are orthonormal to them.
    EXPECT_TRUE(torch::allclose(wide->basis().narrow(1, 0, 20), narrow->basis(), 1e-5, 1e-6));
    const auto gram = wide->basis().t().matmul(wide->basis());
    EXPECT_TRUE(torch::allclose(gram, torch::eye(28), 1e-5, 1e-5));

    // Same outputs in every stage: alpha is zero along the new directions.
    narrow->eval();
    wide->eval();
    const auto source = torch::rand({2, 3, 16, 16}) * 2 - 1;
    const auto driving = torch::rand({2, 3, 16, 16}) * 2 - 1;
    {
        torch::NoGradGuard no_grad;
        const auto a = wide->alpha(wide->encode(driving).wa);
        EXPECT_EQ(a.size(1), 28);
        EXPECT_EQ(a.narrow(1, 20, 8).abs().max().item<double>(), 0.0);
        for (const auto stage : {Stage::kExpression, Stage::kPose, Stage::kBoth}) {
            const auto expected = narrow->forward(source, driving, stage);
            const auto got = wide->forward(source, driving, stage);
            EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5))
                << static_cast<int>(stage) << ": " << (got - expected).abs().max().item<double>();
        }
    }

    // The silent directions are not dead: a loss on the output reaches their alpha rows.
    wide->train();
    wide->forward(source, driving, Stage::kBoth).square().mean().backward();
    const auto& alpha_weight = wide->named_parameters()["mlp.4.weight"];
    ASSERT_TRUE(alpha_weight.grad().defined());
    EXPECT_GT(alpha_weight.grad().narrow(0, 20, 8).abs().max().item<double>(), 0.0);

    // Only the number of directions may grow, never shrink, and nothing else may change.
    Generator fewer(compact_config(16, 8, 32, 12));
    EXPECT_THROW(load_widening_motion(fewer, file), Error);
    Generator wider_channels(compact_config(16, 16, 32, 28));
    EXPECT_THROW(load_widening_motion(wider_channels, file), Error);
}

TEST(DpeTrainer, ResumeContinuesExactlyAndTheModelLoads) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    Progress::set_enabled(false);
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer");
    // The initial weights follow the run's seed, not the caller's random state.
    torch::manual_seed(11);
    const auto straight = train_dpe(tiny_run(root / "straight"));
    EXPECT_EQ(straight.last_step, 5);

    torch::manual_seed(12);
    auto first = tiny_run(root / "resumed");
    first.max_steps_this_run = 2;
    EXPECT_EQ(train_dpe(first).last_step, 2);
    // Rows a killed run logged after its last checkpoint: resuming redoes that step.
    std::ofstream(root / "resumed" / "losses.csv", std::ios::app) << "3,1,0,0,0,0,0,0,0,0\n";
    std::ofstream(root / "resumed" / "validation.csv", std::ios::app) << "3,0,0,0,0,0,0,0,0\n";
    auto second = tiny_run(root / "resumed");
    second.resume = true;
    const auto resumed = train_dpe(second);
    EXPECT_EQ(resumed.first_step, 2);
    EXPECT_EQ(resumed.last_step, 5);

    // The exported EMA generator loads as a DPE checkpoint of the tiny size and matches.
    const auto a = flat_weights(straight.model);
    const auto b = flat_weights(resumed.model);
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << (a - b).abs().max().item<double>();
    const auto file = SafetensorsFile::open(straight.model);
    EXPECT_EQ(DPEConfig::detect_from_weights(file).size, 16);
    auto g = load_dpe_generator(file);
    torch::NoGradGuard no_grad;
    const auto out =
        g->forward(torch::zeros({1, 3, 16, 16}), torch::zeros({1, 3, 16, 16}), Stage::kBoth);
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());

    // Logs and samples were written; five steps, one row each (the resumed run too: the stale
    // row of step 3 was dropped and logged anew).
    {
        std::ifstream resumed_csv(root / "resumed" / "losses.csv");
        int rows = 0;
        for (std::string line; std::getline(resumed_csv, line);)
            ++rows;
        EXPECT_EQ(rows, 6);
    }
    std::ifstream csv(root / "straight" / "losses.csv");
    int lines = 0;
    for (std::string line; std::getline(csv, line);)
        ++lines;
    EXPECT_EQ(lines, 6);
    EXPECT_TRUE(fs::is_regular_file(root / "straight" / "samples" / "step_0000005.png"));

    // The held-out pairs were scored at the start and at each checkpoint (the straight run's
    // only one is its last step); the resumed run dropped the stale row and scored the same.
    const auto held_straight = validation_rows(root / "straight");
    const auto held_resumed = validation_rows(root / "resumed");
    ASSERT_EQ(held_straight.size(), 2u);
    ASSERT_EQ(held_resumed.size(), 3u);
    EXPECT_EQ(held_straight[0][0], 0);
    EXPECT_EQ(held_straight[1][0], 5);
    EXPECT_EQ(held_resumed[1][0], 2);
    // step, four scores and each first edit's L1 and PSNR for each half (held_out_pairs.cpp).
    ASSERT_EQ(held_straight[1].size(), 17u);
    for (size_t column = 1; column < held_straight[1].size(); ++column) {
        EXPECT_GT(held_straight[1][column], 0) << column;
        // The PSNR columns are in dB (tens): the same relative agreement as the losses.
        const double scale = std::max(1.0, std::abs(held_straight[1][column]));
        EXPECT_NEAR(held_resumed[0][column], held_straight[0][column], 1e-5 * scale) << column;
        EXPECT_NEAR(held_resumed[2][column], held_straight[1][column], 1e-4 * scale) << column;
    }
    // What no motion scores depends on the pairs only.
    EXPECT_EQ(held_straight[0][3], held_straight[1][3]);
    EXPECT_EQ(held_straight[0][7], held_straight[1][7]);

    // Extending a run with other loss weights: only with --override-losses. (The NoGradGuard
    // above is still in scope: training must turn gradients on by itself.)
    auto extend = tiny_run(root / "resumed");
    extend.resume = true;
    extend.refine_steps = 3;
    extend.lambda_adversarial = 0.5;
    extend.lambda_self_reconstruction = 0.25;
    extend.ema_half_life_images = 8000.0;
    EXPECT_EQ(train_dpe(extend).last_step, 6);
    auto read_lambda = [&] {
        return saved_options(root / "resumed")["lambda_adversarial"].get<double>();
    };
    EXPECT_EQ(read_lambda(), tiny_run("").lambda_adversarial);
    // The world's options are saved with the run (a resumed run keeps its cross rule).
    EXPECT_EQ(saved_options(root / "resumed")["data"]["cross_rule"], "clip");
    EXPECT_EQ(saved_options(root / "resumed")["ema_half_life_images"].get<double>(),
              tiny_run("").ema_half_life_images);
    extend.refine_steps = 4;
    extend.override_losses = true;
    train_dpe(extend);
    EXPECT_EQ(read_lambda(), 0.5);
    EXPECT_EQ(saved_options(root / "resumed")["lambda_self_reconstruction"].get<double>(), 0.25);
    EXPECT_EQ(saved_options(root / "resumed")["ema_half_life_images"].get<double>(), 8000.0);

    // Without the GAN term the discriminator is skipped: its loss and the adversarial term log 0
    // (adv and d_loss, columns 7 and 9 of losses.csv; the gradient norm, column 11, is logged).
    extend.refine_steps = 5;
    extend.lambda_adversarial = 0;
    extend.clip_grad_norm = 0.5;
    train_dpe(extend);
    EXPECT_EQ(saved_options(root / "resumed")["clip_grad_norm"].get<double>(), 0.5);
    {
        std::ifstream in(root / "resumed" / "losses.csv");
        std::string line, last;
        while (std::getline(in, line))
            last = line;
        std::vector<std::string> cells;
        std::stringstream row(last);
        for (std::string cell; std::getline(row, cell, ',');)
            cells.push_back(cell);
        ASSERT_EQ(cells.size(), 19u) << last;  // the header's 19 columns
        EXPECT_EQ(cells[0], "8");
        EXPECT_EQ(std::stod(cells[6]), 0.0) << last;
        EXPECT_EQ(std::stod(cells[8]), 0.0) << last;
        EXPECT_GT(std::stod(cells[7]), 0.0) << last;   // the generator still trains
        EXPECT_GT(std::stod(cells[10]), 0.0) << last;  // its gradient norm
        EXPECT_GT(std::stod(cells[11]), 0.0) << last;  // cycle_l1
        EXPECT_GT(std::stod(cells[12]), 0.0) << last;  // copy_l1
        EXPECT_GT(std::stod(cells[13]), 0.0) << last;  // max_logit: the flows have moved
        EXPECT_GT(std::stod(cells[15]), 0.0) << last;  // edit_l1
        EXPECT_GT(std::stod(cells[16]), 0.0) << last;  // motion_code
        EXPECT_GT(std::stod(cells[18]), 0.0) << last;  // expression_points
    }

    // Resuming without step counts keeps the run's own schedule (8 steps: nothing left to do).
    auto keep = extend;
    keep.joint_steps = -1;
    keep.refine_steps = -1;
    EXPECT_EQ(train_dpe(keep).last_step, 8);
    EXPECT_EQ(saved_options(root / "resumed")["refine_steps"].get<int64_t>(), 5);
    auto unknown = tiny_run(root / "fresh_without_steps");
    unknown.joint_steps = -1;
    EXPECT_THROW(train_dpe(unknown), Error);
    auto odd = tiny_run(root / "odd");
    odd.validation_pairs = 3;  // half within a clip, half across: must be even
    EXPECT_THROW(train_dpe(odd), Error);

    // A fresh run refuses a folder with a run in it; resume refuses one without.
    EXPECT_THROW(train_dpe(tiny_run(root / "straight")), Error);
    auto nothing = tiny_run(root / "empty");
    nothing.resume = true;
    EXPECT_THROW(train_dpe(nothing), Error);
}

// Reads one column of a run's losses.csv, by header name, as text.
std::vector<std::string> loss_cells(const fs::path& run, const std::string& column) {
    std::ifstream in(run / "losses.csv");
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header;
    std::stringstream head(line);
    for (std::string cell; std::getline(head, cell, ',');)
        header.push_back(cell);
    const auto at = std::find(header.begin(), header.end(), column);
    EXPECT_NE(at, header.end()) << column << " not in " << line;
    const auto index = static_cast<size_t>(at - header.begin());
    std::vector<std::string> cells;
    while (std::getline(in, line)) {
        std::stringstream row(line);
        std::string cell;
        for (size_t i = 0; i <= index && std::getline(row, cell, ','); ++i) {
        }
        cells.push_back(cell);
    }
    return cells;
}

// Reads one column of a run's losses.csv, by header name.
std::vector<double> loss_column(const fs::path& run, const std::string& column) {
    std::vector<double> values;
    for (const auto& cell : loss_cells(run, column))
        values.push_back(std::stod(cell));
    return values;
}

TEST(DpeTrainer, RepeatedBatchesTheLogitPenaltyAndMomentum) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    Progress::set_enabled(false);
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_logits");

    // --repeat-batches 1: every step sees the same pairs, so copy_l1 (|S - D|) never changes;
    // the endless stream changes it from step to step.
    auto stream = tiny_run(root / "stream");
    stream.refine_steps = 0;
    train_dpe(stream);
    const auto copy_stream = loss_column(root / "stream", "copy_l1");
    auto repeated = stream;
    repeated.output = root / "repeated";
    repeated.repeat_batches = 1;
    train_dpe(repeated);
    const auto copy_repeated = loss_column(root / "repeated", "copy_l1");
    ASSERT_EQ(copy_repeated.size(), 3u);
    EXPECT_EQ(copy_repeated[0], copy_repeated[1]);
    EXPECT_EQ(copy_repeated[0], copy_repeated[2]);
    EXPECT_EQ(copy_repeated[0], copy_stream[0]);  // batch 0 of the stream
    EXPECT_NE(copy_stream[0], copy_stream[1]);

    // Every run here starts from the same weights (those of its seed). A fresh generator's flow
    // logits are all 0 (identity flows), so the penalty and its gradient are 0 at the first step
    // and both runs take the same first step. At the next,
    // with a margin below every moved logit, only the total differs, by the penalty.
    auto penalised = stream;
    penalised.output = root / "penalised";
    penalised.lambda_logits = 10;
    penalised.logit_margin = 1e-9;
    train_dpe(penalised);
    const auto rec_plain = loss_column(root / "stream", "rec");
    const auto rec_penalised = loss_column(root / "penalised", "rec");
    const auto total_plain = loss_column(root / "stream", "g_total");
    const auto total_penalised = loss_column(root / "penalised", "g_total");
    EXPECT_EQ(total_plain[0], total_penalised[0]);
    EXPECT_EQ(rec_plain[1], rec_penalised[1]);
    EXPECT_GT(total_penalised[1], total_plain[1]);
    const auto options = saved_options(root / "penalised");
    EXPECT_EQ(options["lambda_logits"].get<double>(), 10.0);
    EXPECT_EQ(options["logit_margin"].get<double>(), 1e-9);

    // Adam's first step is the same whatever beta1 (the bias correction undoes it); from the
    // second on, momentum changes the path.
    auto momentum = stream;
    momentum.output = root / "momentum";
    momentum.adam_beta1 = 0.9;
    train_dpe(momentum);
    const auto rec_momentum = loss_column(root / "momentum", "rec");
    EXPECT_EQ(rec_plain[1], rec_momentum[1]);
    EXPECT_NE(rec_plain[2], rec_momentum[2]);
    EXPECT_EQ(saved_options(root / "momentum")["adam_beta1"].get<double>(), 0.9);
}

// Twelve steps on one fixed batch of 32² crops, fast enough to see a loss term take hold.
DpeTrainOptions fixed_batch_run(const fs::path& output) {
    auto o = tiny_run(output);
    o.model = compact_config(32, 8, 32);
    o.data.render_size = 96;
    o.repeat_batches = 1;
    o.joint_steps = 12;
    o.refine_steps = 0;
    o.joint_lr = 0.002;
    o.adam_beta1 = 0.9;
    return o;
}

// Trains the fixed batch twice, in root/plain and, with `hold` applied to the options, in
// root/held; returns the plain options.
DpeTrainOptions train_plain_and_held(const fs::path& root,
                                     const std::function<void(DpeTrainOptions&)>& hold) {
    Progress::set_enabled(false);
    const auto plain = fixed_batch_run(root / "plain");
    train_dpe(plain);
    auto held = plain;
    held.output = root / "held";
    hold(held);
    train_dpe(held);
    return plain;
}

// The logged column of a loss term whose weight train_plain_and_held's held run turned on, in
// both runs. The term is logged whatever its weight; the first step starts from the same weights,
// so both runs log the same value there and their totals differ by exactly the weighted term (to
// the log's rounding).
struct PlainAndHeld {
    std::vector<double> plain, held;
};
PlainAndHeld expect_logged_and_added(const fs::path& root, const std::string& column, double weight,
                                     double first_at_least) {
    PlainAndHeld logged{loss_column(root / "plain", column), loss_column(root / "held", column)};
    const auto total_plain = loss_column(root / "plain", "g_total");
    const auto total_held = loss_column(root / "held", "g_total");
    EXPECT_EQ(logged.plain.size(), 12u);
    EXPECT_EQ(logged.held.size(), 12u);
    if (logged.plain.empty() || logged.held.empty() || total_plain.empty() || total_held.empty())
        return logged;
    EXPECT_GT(logged.plain[0], first_at_least);
    EXPECT_NEAR(logged.held[0], logged.plain[0], 1e-5);
    EXPECT_NEAR(total_held[0] - total_plain[0], weight * logged.plain[0], 1e-3);
    return logged;
}

TEST(DpeTrainer, FlowPointLossHoldsTheFlowsToTheTrueMotion) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_flow_points");
    const auto plain =
        train_plain_and_held(root, [](DpeTrainOptions& o) { o.lambda_flow_points = 10; });
    const auto [points_plain, points_held] = expect_logged_and_added(root, "flow_points", 10, 0.01);
    ASSERT_EQ(points_held.size(), 12u);
    ASSERT_EQ(points_plain.size(), 12u);
    // Held to the points, the flows move toward the true motion; without, they do not get there.
    EXPECT_LT(points_held.back(), 0.7 * points_held[0]);
    EXPECT_LT(points_held.back(), 0.8 * points_plain.back());
    EXPECT_EQ(saved_options(root / "held")["lambda_flow_points"].get<double>(), 10.0);
    // Each block's share, coarse to fine (8, 16 and 32 here): their mean is the logged loss.
    const auto by_block = loss_cells(root / "held", "flow_points_by_block");
    ASSERT_EQ(by_block.size(), points_held.size());
    for (size_t i = 0; i < by_block.size(); ++i) {
        std::vector<double> shares;
        std::stringstream cells(by_block[i]);
        for (std::string cell; std::getline(cells, cell, ';');)
            shares.push_back(std::stod(cell));
        ASSERT_EQ(shares.size(), 3u) << by_block[i];
        double mean = 0;
        for (const double share : shares) {
            EXPECT_GT(share, 0) << by_block[i];
            mean += share / 3;
        }
        EXPECT_NEAR(mean, points_held[i], 2e-5) << by_block[i];
    }
    auto negative = plain;
    negative.output = root / "negative";
    negative.lambda_flow_points = -1;
    EXPECT_THROW(train_dpe(negative), Error);
}

// The expression-point loss: logged whatever its weight (NaN only in the warm-up); the weighted
// term reaches the total; with it the expression edits' flows move toward the true motion of the
// points that move.
TEST(DpeTrainer, ExpressionPointLossHoldsTheExpressionFlowsToTheMovingPoints) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_expression_points");
    const auto plain =
        train_plain_and_held(root, [](DpeTrainOptions& o) { o.lambda_expression_points = 50; });
    const auto [points_plain, points_held] =
        expect_logged_and_added(root, "expression_points", 50, 0.005);
    ASSERT_EQ(points_held.size(), 12u);
    ASSERT_EQ(points_plain.size(), 12u);
    // Measured: 0.0426 -> 0.0325 with the term, 0.0426 -> 0.0575 without.
    EXPECT_LT(points_held.back(), 0.85 * points_held[0]);
    EXPECT_LT(points_held.back(), 0.7 * points_plain.back());
    EXPECT_EQ(saved_options(root / "held")["lambda_expression_points"].get<double>(), 50.0);
    auto negative = plain;
    negative.output = root / "negative";
    negative.lambda_expression_points = -1;
    EXPECT_THROW(train_dpe(negative), Error);
}

// The rendered truth of the cycle's first edits: edit_l1 is logged whatever the weight, the
// weighted term is added to rec (twice the mean, one per edit), and with it the edits move
// toward their truth faster.
TEST(DpeTrainer, RenderedTruthLossPullsTheFirstEditsToTheirTruth) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_rendered");
    const auto plain =
        train_plain_and_held(root, [](DpeTrainOptions& o) { o.lambda_rendered = 5; });
    const auto edit_plain = loss_column(root / "plain", "edit_l1");
    const auto edit_held = loss_column(root / "held", "edit_l1");
    const auto rec_plain = loss_column(root / "plain", "rec");
    const auto rec_held = loss_column(root / "held", "rec");
    ASSERT_EQ(edit_plain.size(), 12u);
    ASSERT_EQ(edit_held.size(), 12u);
    EXPECT_GT(edit_plain[0], 0.01);
    EXPECT_NEAR(edit_held[0], edit_plain[0], 1e-5);
    EXPECT_NEAR(rec_held[0] - rec_plain[0], 2 * 5 * edit_plain[0], 1e-3);
    // From a random generator the edits fit their truth twice as fast with the term (measured:
    // 0.489 -> 0.352 against 0.489 -> 0.423 without).
    EXPECT_GT(edit_held[0] - edit_held.back(), 1.5 * (edit_plain[0] - edit_plain.back()));
    EXPECT_EQ(saved_options(root / "held")["lambda_rendered"].get<double>(), 5.0);
    auto negative = plain;
    negative.output = root / "negative";
    negative.lambda_rendered = -1;
    EXPECT_THROW(train_dpe(negative), Error);
}

// The motion-code read-out: empty at first, so its first error is the mean change of the points;
// on a repeated batch the ridge fit then reads the change from the codes; the weighted term
// reaches the total; the fit is part of the checkpoint, and a checkpoint without it (an older
// run) resumes with an empty one.
TEST(DpeTrainer, MotionCodeReadoutIsFittedLoggedAndCheckpointed) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_motion_code");
    const auto plain =
        train_plain_and_held(root, [](DpeTrainOptions& o) { o.lambda_motion_code = 10; });
    const auto code_plain = loss_column(root / "plain", "motion_code");
    const auto code_held = loss_column(root / "held", "motion_code");
    const auto total_plain = loss_column(root / "plain", "g_total");
    const auto total_held = loss_column(root / "held", "g_total");
    ASSERT_EQ(code_plain.size(), 12u);
    ASSERT_EQ(code_held.size(), 12u);

    auto data = plain.data;
    data.image_size = static_cast<int>(plain.model.size);
    train::SyntheticClipSampler sampler(data);
    const auto batch = sampler.same_identity(0, plain.batch);
    const double mean_change =
        (batch.driving_points - batch.source_points).abs().mean().item<double>();
    EXPECT_GT(mean_change, 0.002);
    EXPECT_NEAR(code_plain[0], mean_change, 1e-4);
    EXPECT_NEAR(code_held[0], mean_change, 1e-4);
    EXPECT_NEAR(total_held[0] - total_plain[0], 10 * code_plain[0], 1e-3);
    // The fit has seen the batch from the second step on.
    EXPECT_LT(code_plain[1], 0.2 * code_plain[0]);
    EXPECT_LT(code_held[1], 0.2 * code_held[0]);
    EXPECT_EQ(saved_options(root / "held")["lambda_motion_code"].get<double>(), 10.0);
    EXPECT_TRUE(fs::exists(root / "held" / "checkpoint" / "motion_readout_fit.safetensors"));

    // A checkpoint without the read-out resumes with an empty fit, and the next one has it.
    fs::remove(root / "plain" / "checkpoint" / "motion_readout_fit.safetensors");
    auto resumed = plain;
    resumed.resume = true;
    resumed.joint_steps = 14;
    EXPECT_EQ(train_dpe(resumed).last_step, 14);
    EXPECT_NEAR(loss_column(root / "plain", "motion_code")[12], code_plain[0], 1e-4);
    EXPECT_TRUE(fs::exists(root / "plain" / "checkpoint" / "motion_readout_fit.safetensors"));

    auto negative = plain;
    negative.output = root / "negative";
    negative.lambda_motion_code = -1;
    EXPECT_THROW(train_dpe(negative), Error);
}

// Cross-identity pairs train: the option reaches the checkpoint, the cycle's targets are the
// rendered truth (copy_l1 is the source against S''s truth, not against the driving frame), and a
// fraction outside [0, 1] is refused.
TEST(DpeTrainer, CrossIdentityPairsTrainOnTheirRenderedTruth) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    Progress::set_enabled(false);
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_cross");
    auto half = fixed_batch_run(root / "half");
    half.joint_steps = 3;
    half.cross_identity_fraction = 0.5;
    half.lambda_rendered = 1;
    half.lambda_flow_points = 1;
    train_dpe(half);
    const auto rec = loss_column(root / "half", "rec");
    const auto flow_points = loss_column(root / "half", "flow_points");
    ASSERT_EQ(rec.size(), 3u);
    for (size_t i = 0; i < rec.size(); ++i) {
        EXPECT_TRUE(std::isfinite(rec[i]) && rec[i] > 0) << i;
        EXPECT_TRUE(std::isfinite(flow_points[i]) && flow_points[i] > 0) << i;
    }
    EXPECT_EQ(saved_options(root / "half")["cross_identity_fraction"].get<double>(), 0.5);
    auto bad = half;
    bad.output = root / "bad";
    bad.cross_identity_fraction = 1.5;
    EXPECT_THROW(train_dpe(bad), Error);
}

TEST(DpeTrainer, StartAsCopyGivesTheSourceBack) {
    torch::manual_seed(3);
    Generator g(compact_config(64, 8, 32));
    start_as_copy(g);
    g->eval();
    torch::NoGradGuard no_grad;
    // A smooth image in [-1, 1] with every value reached: the copy must hold at both ends.
    const auto axis = torch::linspace(-1, 1, 64);
    const auto source =
        torch::stack({axis.view({1, 64}).expand({64, 64}), axis.view({64, 1}).expand({64, 64}),
                      (axis.view({1, 64}) * axis.view({64, 1}))})
            .unsqueeze(0);
    const auto driving = torch::rand({1, 3, 64, 64}) * 2 - 1;
    const auto code = g->encode(source);
    // The official identity grid resamples by up to half a pixel and reads zeros past the
    // border: away from the border the copy is exact to that resampling. The image changes by at
    // most 2/63 per pixel along each axis, so a half-pixel shift on both axes moves a value by at
    // most 2/63 per pass; kBoth renders twice.
    const auto inner = [](const torch::Tensor& x) { return x.narrow(2, 2, 60).narrow(3, 2, 60); };
    const double per_pass = 2.0 / 63.0 + 1e-4;
    for (const auto stage : {Stage::kExpression, Stage::kPose, Stage::kBoth}) {
        const auto out = g->render(code, g->motion(driving), stage);
        const double error = (inner(out) - inner(source)).abs().max().item<double>();
        EXPECT_LT(error, stage == Stage::kBoth ? 2 * per_pass : per_pass)
            << static_cast<int>(stage);
    }
    // A random generator is nowhere near the copy.
    torch::manual_seed(3);
    Generator random(compact_config(64, 8, 32));
    random->eval();
    const auto out = random->render(random->encode(source), random->motion(driving), Stage::kPose);
    EXPECT_GT((inner(out) - inner(source)).abs().mean().item<double>(), 0.1);
}

TEST(DpeTrainer, WarmupFitsOnlyTheSelfReconstructions) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    Progress::set_enabled(false);
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_warmup");
    auto o = tiny_run(root / "run");
    o.warmup_steps = 2;
    o.lambda_adversarial = 0.1;  // not run while warming up
    train_dpe(o);
    // Warm-up rows: no cycle (cycle_l1 is not a number), no expression or GAN term.
    const auto cycle = loss_column(root / "run", "cycle_l1");
    const auto exp = loss_column(root / "run", "exp");
    const auto adv = loss_column(root / "run", "adv");
    const auto d_loss = loss_column(root / "run", "d_loss");
    ASSERT_EQ(cycle.size(), 5u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_TRUE(std::isnan(cycle[i])) << i;
        EXPECT_EQ(exp[i], 0.0) << i;
        EXPECT_EQ(adv[i], 0.0) << i;
        EXPECT_EQ(d_loss[i], 0.0) << i;
    }
    for (size_t i = 2; i < 5; ++i) {
        EXPECT_GT(cycle[i], 0.0) << i;
        EXPECT_GT(exp[i], 0.0) << i;
        EXPECT_NE(d_loss[i], 0.0) << i;
    }
    EXPECT_EQ(saved_options(root / "run")["warmup_steps"].get<int64_t>(), 2);
}

// The flow phase: after the warm-up, rows with no cycle, no perceptual, expression or GAN term,
// but the first edits' flow points and their rendered truth; then the full cycle. On a fixed
// batch it brings the flows toward the true motion.
TEST(DpeTrainer, FlowPhaseFitsOnlyTheMotion) {
    if (!avatar::testing::faceapi_models_installed())
        GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed";
    Progress::set_enabled(false);
    const auto root = avatar::testing::fresh_dir("engines", "dpe_trainer_flow_phase");
    auto o = tiny_run(root / "run");
    o.joint_steps = 4;
    o.warmup_steps = 1;
    o.flow_phase_steps = 2;
    o.lambda_flow_points = 1;
    o.lambda_adversarial = 0.1;  // not run in the flow phase
    train_dpe(o);
    const auto cycle = loss_column(root / "run", "cycle_l1");
    const auto per = loss_column(root / "run", "per");
    const auto exp = loss_column(root / "run", "exp");
    const auto d_loss = loss_column(root / "run", "d_loss");
    const auto edit = loss_column(root / "run", "edit_l1");
    const auto points = loss_column(root / "run", "flow_points");
    ASSERT_EQ(cycle.size(), 6u);
    EXPECT_TRUE(std::isnan(edit[0]));  // the warm-up has no edits
    for (size_t i = 1; i < 3; ++i) {
        EXPECT_TRUE(std::isnan(cycle[i])) << i;
        EXPECT_EQ(per[i], 0.0) << i;
        EXPECT_EQ(exp[i], 0.0) << i;
        EXPECT_EQ(d_loss[i], 0.0) << i;
        EXPECT_GT(edit[i], 0.0) << i;
        EXPECT_GT(points[i], 0.0) << i;
    }
    for (size_t i = 3; i < 6; ++i) {
        EXPECT_GT(cycle[i], 0.0) << i;
        EXPECT_GT(per[i], 0.0) << i;
        EXPECT_NE(d_loss[i], 0.0) << i;
    }
    EXPECT_EQ(saved_options(root / "run")["flow_phase_steps"].get<int64_t>(), 2);

    auto fixed = fixed_batch_run(root / "fixed");
    fixed.lambda_flow_points = 10;
    fixed.flow_phase_steps = fixed.joint_steps;
    train_dpe(fixed);
    const auto fixed_points = loss_column(root / "fixed", "flow_points");
    ASSERT_EQ(fixed_points.size(), 12u);
    EXPECT_LT(fixed_points.back(), 0.7 * fixed_points[0]);

    auto unweighted = o;
    unweighted.output = root / "unweighted";
    unweighted.lambda_flow_points = 0;
    EXPECT_THROW(train_dpe(unweighted), Error);
}

}  // namespace
