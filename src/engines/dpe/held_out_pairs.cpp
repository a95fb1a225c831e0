#include "engines/dpe/held_out_pairs.h"

#include <cstdio>
#include <map>

#include "core/error.h"
#include "engines/dpe/flow_terms.h"

namespace avatar::engines::dpe {
namespace {

// Far from the training batches (numbered by step) and the sample grids' pairs.
constexpr int64_t kHeldOutIndex = 2000000011;
// Pairs rendered at once: the generator's activations stay small whatever the pair count.
constexpr int64_t kChunk = 8;

// The fields the first edits are scored on, pairs [from, from + count); the cycle's truth is
// left out (the held-out pairs keep only these, to save memory).
train::ClipPairs slice(const train::ClipPairs& all, int64_t from, int64_t count) {
    train::ClipPairs part;
    part.source = all.source.narrow(0, from, count);
    part.driving = all.driving.narrow(0, from, count);
    part.source_points = all.source_points.narrow(0, from, count);
    part.driving_points = all.driving_points.narrow(0, from, count);
    part.source_edit = all.source_edit.narrow(0, from, count);
    part.driving_edit = all.driving_edit.narrow(0, from, count);
    part.source_edit_points = all.source_edit_points.narrow(0, from, count);
    part.driving_edit_points = all.driving_edit_points.narrow(0, from, count);
    return part;
}

struct Scores {
    double flow_points = 0, expression_points = 0, expression_points_still = 0;
    // Each first edit alone: across people the expression edit S' and the pose edit D' answer
    // different tasks (synthbench's expression_only and pose_only), and edit_l1, the mean of the
    // two, can improve while one of them gets worse.
    double expression_edit_l1 = 0, pose_edit_l1 = 0, expression_edit_psnr = 0, pose_edit_psnr = 0;
    double edit_l1() const { return 0.5 * (expression_edit_l1 + pose_edit_l1); }
};

// The mean over the batch of each image's PSNR (images in [-1, 1], so on [0, 1] the squared
// error is a quarter), as synthbench averages its pairs' PSNR.
double mean_psnr(const torch::Tensor& image, const torch::Tensor& truth) {
    const auto mse = (image - truth).pow(2).mean({1, 2, 3}) / 4.0;
    return (-10.0 * torch::log10(mse.clamp_min(1e-10))).mean().item<double>();
}

// The means over all pairs of one half (chunks weighted by their size).
Scores score_half(Generator& g, const train::ClipPairs& pairs) {
    Scores sum;
    const int64_t n = pairs.source.size(0);
    for (int64_t from = 0; from < n; from += kChunk) {
        const int64_t count = std::min(kChunk, n - from);
        const auto part = slice(pairs, from, count);
        std::map<std::string, torch::Tensor> traced;
        const auto trace = [&](Render render) { return Trace(&traced, trace_prefix(render)); };
        const auto cS = g->encode(part.source);
        const auto cD = g->encode(part.driving);
        const auto dS = g->directions(g->alpha(cS.wa));
        const auto dD = g->directions(g->alpha(cD.wa));
        // The renders of a flow-phase step (trainer.cpp), in its trace numbering.
        g->render(cS, dS, Stage::kExpression, trace(Render::kSelfExp));
        g->render(cS, dS, Stage::kPose, trace(Render::kSelfPose));
        const auto S1 = g->render(cS, dD, Stage::kExpression, trace(Render::kS1));
        const auto D1 = g->render(cD, dS, Stage::kPose, trace(Render::kD1));
        const double weight = static_cast<double>(count) / static_cast<double>(n);
        sum.flow_points +=
            weight * flow_point_loss(traced, part, FlowTerms::kFirstEdits).item<double>();
        sum.expression_points +=
            weight * expression_point_loss(traced, part, FlowTerms::kFirstEdits).item<double>();
        sum.expression_points_still += weight * still_expression_points(part).item<double>();
        sum.expression_edit_l1 += weight * (S1 - part.source_edit).abs().mean().item<double>();
        sum.pose_edit_l1 += weight * (D1 - part.driving_edit).abs().mean().item<double>();
        sum.expression_edit_psnr += weight * mean_psnr(S1, part.source_edit);
        sum.pose_edit_psnr += weight * mean_psnr(D1, part.driving_edit);
    }
    return sum;
}

}  // namespace

HeldOutPairs::HeldOutPairs(train::SyntheticClipSampler& sampler, int64_t pairs) {
    check(pairs >= 2 && pairs % 2 == 0, "--validation-pairs",
          "must be an even number >= 2 (half within a clip, half across people), or 0 for none; "
          "got " +
              std::to_string(pairs));
    within_ = slice(sampler.mixed(kHeldOutIndex, pairs / 2, 0.0), 0, pairs / 2);
    across_ = slice(sampler.mixed(kHeldOutIndex, pairs / 2, 1.0), 0, pairs / 2);
}

const char* HeldOutPairs::csv_header() {
    return "step,within_flow_points,within_expression_points,within_expression_points_still,"
           "within_edit_l1,across_flow_points,across_expression_points,"
           "across_expression_points_still,across_edit_l1,within_expression_edit_l1,"
           "within_pose_edit_l1,within_expression_edit_psnr,within_pose_edit_psnr,"
           "across_expression_edit_l1,across_pose_edit_l1,across_expression_edit_psnr,"
           "across_pose_edit_psnr\n";
}

std::string HeldOutPairs::score(Generator& generator, int64_t step) const {
    torch::NoGradGuard no_grad;
    generator->eval();
    generator->refresh_basis();
    const auto within = score_half(generator, within_);
    const auto across = score_half(generator, across_);
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%lld,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.4f,%.4f,%.5f,%.5f,%.4f,"
                  "%.4f\n",
                  static_cast<long long>(step), within.flow_points, within.expression_points,
                  within.expression_points_still, within.edit_l1(), across.flow_points,
                  across.expression_points, across.expression_points_still, across.edit_l1(),
                  within.expression_edit_l1, within.pose_edit_l1, within.expression_edit_psnr,
                  within.pose_edit_psnr, across.expression_edit_l1, across.pose_edit_l1,
                  across.expression_edit_psnr, across.pose_edit_psnr);
    return line;
}

}  // namespace avatar::engines::dpe
