#pragma once
// Loss terms on the DPE decoders' flows, read from a training step's traced renders (ours; the
// paper's losses look only at images). The synthetic world knows where the face's 468 points are
// in every frame and in the truth of every edit (train/synthetic_clips.h), so the warp grids can
// be held to the true motion directly; the flow and mask logits are watched and penalised.
// Used by the trainer (engines/dpe/trainer.h) and its held-out scores (held_out_pairs.h).
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "train/synthetic_clips.h"

namespace avatar::engines::dpe {

// The renders of one training step, whose numbers are their Trace prefixes (trace_prefix): the
// self-reconstructions e(S, S) and p(S, S), then the cycle S' = e(S, D), S'' = p(S', D),
// D' = p(D, S), D'' = e(D', S).
enum class Render { kSelfExp, kSelfPose, kS1, kS2, kD1, kD2 };
std::string trace_prefix(Render render);

// Where a warp grid [B, r, r, 2] sends points [B, N, 2] (both in grid_sample coordinates):
// the source position each point's output pixel is read from, [B, N, 2].
torch::Tensor follow_grid(const torch::Tensor& grid, const torch::Tensor& points);

// Per image [B]: the L1 error (x and y summed) of `reached` (where a render's flows send the
// target's points, [B, N, 2]) against where the points come from, averaged over the points with
// weights proportional to how far each one truly moves (target against from); an image's
// weights sum to 1.
torch::Tensor motion_weighted_errors(const torch::Tensor& reached,
                                     const torch::Tensor& target_points,
                                     const torch::Tensor& from_points);

// Which renders a step has, hence which flows are held: the warm-up has only the
// self-reconstructions, the flow phase also the first edits S' and D', full steps the cycle.
enum class FlowTerms { kSelf, kFirstEdits, kCycle };

// The flow and mask logits ("to_flows.K/raw") of every level of every traced render; the
// penalty is the mean of relu(|logit| - margin)^2 per level, summed over levels and renders.
std::vector<torch::Tensor> flow_logits(const std::map<std::string, torch::Tensor>& traced);
torch::Tensor logit_penalty(const std::vector<torch::Tensor>& logits, double margin);
// The largest |logit| (logged: tanh and sigmoid saturate past ~3 to 5).
double max_abs_logit(const std::vector<torch::Tensor>& logits);

// The flow-point loss: the mean L1, in grid_sample units, between where the flows send
// the target frame's 468 face points and where those points are in the frame the render reads.
// Each decoder block warps the encoder features of its input, so render k's output pixel x comes
// from its input at grid_k(x); through the cycle, S'' at x comes from S at grid_S'(grid_S''(x)),
// and S'' must be its truth (D within a clip): grid_S'(grid_S''(p_S'')) = p_S; likewise
// grid_D'(grid_D''(p_D'')) = p_D, and the self-reconstructions must keep every point
// (grid(p_S) = p_S). The intermediates are held alone too, to the points of their rendered truth:
// grid_S'(p_S') = p_S and grid_D'(p_D') = p_D, which fixes how the motion is split between the
// two edits. Every block's flow is held, coarse and fine.
// `by_block` (optional) receives each block's share, coarse to fine, detached: the sum of its
// terms, whose mean over the blocks is the loss (logged to tell a floor of the coarse blocks,
// which carry the large motion on a few cells, from one of the fine blocks).
torch::Tensor flow_point_loss(const std::map<std::string, torch::Tensor>& traced,
                              const train::ClipPairs& batch, FlowTerms terms,
                              std::vector<torch::Tensor>* by_block = nullptr);

// The expression-point loss (--lambda-expression-points; trainer.h says why): for each
// expression edit, the L1 error of where its flows send the target's points, as in
// flow_point_loss, averaged over the points with weights proportional to how far each one truly
// moves in that edit (an image's weights sum to 1; an image whose expression does not change
// weighs nothing). S' from the flow phase on, D'' with the cycle; NaN in the warm-up. Mean over
// the decoder blocks.
torch::Tensor expression_point_loss(const std::map<std::string, torch::Tensor>& traced,
                                    const train::ClipPairs& batch, FlowTerms terms);
// What S''s term of expression_point_loss is for flows that move nothing (the identity grid):
// the level a model that has not learnt to move the expression stays at.
torch::Tensor still_expression_points(const train::ClipPairs& batch);

}  // namespace avatar::engines::dpe
