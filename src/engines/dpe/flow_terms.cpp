#include "engines/dpe/flow_terms.h"

#include <limits>

#include "core/error.h"

namespace avatar::engines::dpe {
namespace {

bool ends_with(const std::string& name, const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The warp grids of one render by resolution: [B, r, r, 2] in grid_sample coordinates.
std::map<int64_t, torch::Tensor> flow_grids(const std::map<std::string, torch::Tensor>& traced,
                                            Render render) {
    const std::string prefix = trace_prefix(render);
    std::map<int64_t, torch::Tensor> grids;
    for (const auto& [name, grid] : traced) {
        if (name.compare(0, prefix.size(), prefix) == 0 && ends_with(name, "/flow_grid"))
            grids[grid.size(1)] = grid;
    }
    return grids;
}

}  // namespace

torch::Tensor follow_grid(const torch::Tensor& grid, const torch::Tensor& points) {
    return torch::grid_sampler(grid.permute({0, 3, 1, 2}), points.unsqueeze(1), /*bilinear*/ 0,
                               /*border*/ 1, /*align_corners=*/false)
        .squeeze(2)
        .permute({0, 2, 1});
}

torch::Tensor motion_weighted_errors(const torch::Tensor& reached,
                                     const torch::Tensor& target_points,
                                     const torch::Tensor& from_points) {
    const auto moved = (target_points - from_points).norm(2, {2});  // [B, N]
    const auto weights = moved / (moved.sum(1, /*keepdim=*/true) + 1e-12);
    const auto error = (reached - from_points).abs().sum(2);
    return (weights * error).sum(1);
}

std::string trace_prefix(Render render) {
    return std::to_string(static_cast<int>(render)) + "/";
}

std::vector<torch::Tensor> flow_logits(const std::map<std::string, torch::Tensor>& traced) {
    std::vector<torch::Tensor> logits;
    for (const auto& [name, raw] : traced) {
        if (ends_with(name, "/raw"))
            logits.push_back(raw);
    }
    check(!logits.empty(), "train dpe", "no flow logits were traced");
    return logits;
}

torch::Tensor logit_penalty(const std::vector<torch::Tensor>& logits, double margin) {
    torch::Tensor sum = torch::zeros({}, logits.front().options());
    for (const auto& raw : logits)
        sum = sum + torch::relu(raw.abs() - margin).square().mean();
    return sum;
}

// The largest |logit| (logged: tanh and sigmoid saturate past ~3 to 5).
double max_abs_logit(const std::vector<torch::Tensor>& logits) {
    torch::NoGradGuard no_grad;
    double m = 0;
    for (const auto& raw : logits)
        m = std::max(m, raw.abs().max().item<double>());
    return m;
}

torch::Tensor flow_point_loss(const std::map<std::string, torch::Tensor>& traced,
                              const train::ClipPairs& batch, FlowTerms terms,
                              std::vector<torch::Tensor>* by_block) {
    const auto self_exp = flow_grids(traced, Render::kSelfExp);
    const auto self_pose = flow_grids(traced, Render::kSelfPose);
    check(!self_exp.empty() && self_exp.size() == self_pose.size(), "train dpe",
          "the self-reconstructions' flow grids were not traced");
    const auto& pS = batch.source_points;
    const auto& pD = batch.driving_points;
    // The cycle's grids, gathered once (each lookup scans every traced tensor).
    std::map<int64_t, torch::Tensor> s1, s2, d1, d2;
    if (terms != FlowTerms::kSelf) {
        s1 = flow_grids(traced, Render::kS1);
        d1 = flow_grids(traced, Render::kD1);
    }
    if (terms == FlowTerms::kCycle) {
        s2 = flow_grids(traced, Render::kS2);
        d2 = flow_grids(traced, Render::kD2);
    }
    auto sum = torch::zeros({}, pS.options());
    for (const auto& [r, grid] : self_exp) {  // std::map: coarse to fine
        auto block = (follow_grid(grid, pS) - pS).abs().mean() +
                     (follow_grid(self_pose.at(r), pS) - pS).abs().mean();
        if (terms != FlowTerms::kSelf) {
            const auto& s1_at = s1.at(r);
            const auto& d1_at = d1.at(r);
            block = block + (follow_grid(s1_at, batch.source_edit_points) - pS).abs().mean() +
                    (follow_grid(d1_at, batch.driving_edit_points) - pD).abs().mean();
            if (terms == FlowTerms::kCycle) {
                block = block +
                        (follow_grid(s1_at, follow_grid(s2.at(r), batch.source_cycle_points)) - pS)
                            .abs()
                            .mean() +
                        (follow_grid(d1_at, follow_grid(d2.at(r), batch.driving_cycle_points)) - pD)
                            .abs()
                            .mean();
            }
        }
        if (by_block)
            by_block->push_back(block.detach());
        sum = sum + block;
    }
    return sum / static_cast<double>(self_exp.size());
}

torch::Tensor expression_point_loss(const std::map<std::string, torch::Tensor>& traced,
                                    const train::ClipPairs& batch, FlowTerms terms) {
    if (terms == FlowTerms::kSelf)
        return torch::full({}, std::numeric_limits<double>::quiet_NaN(),
                           batch.source_points.options());
    const auto s1 = flow_grids(traced, Render::kS1);
    std::map<int64_t, torch::Tensor> d2;
    if (terms == FlowTerms::kCycle)
        d2 = flow_grids(traced, Render::kD2);
    check(!s1.empty(), "train dpe", "the expression edit's flow grids were not traced");
    auto sum = torch::zeros({}, batch.source_points.options());
    for (const auto& [r, grid] : s1) {
        sum = sum + motion_weighted_errors(follow_grid(grid, batch.source_edit_points),
                                           batch.source_edit_points, batch.source_points)
                        .mean();
        if (terms == FlowTerms::kCycle)
            sum =
                sum + motion_weighted_errors(follow_grid(d2.at(r), batch.driving_cycle_points),
                                             batch.driving_cycle_points, batch.driving_edit_points)
                          .mean();
    }
    return sum / static_cast<double>(s1.size());
}

torch::Tensor still_expression_points(const train::ClipPairs& batch) {
    // Flows that move nothing send each point to itself.
    return motion_weighted_errors(batch.source_edit_points, batch.source_edit_points,
                                  batch.source_points)
        .mean();
}

}  // namespace avatar::engines::dpe
