#pragma once
// Fitting a DPE motion code to where the face's points must go (ours; not in the paper). DPE
// reads a driving frame's motion from its image alone (encoder -> mlp -> directions). When the
// caller also knows where the source's face points are and where the edit must put them (from
// landmarks: a face model fitted to the detected points of the source and the driver), the
// direction vector d the decoders get can be refined so that their warps carry exactly that
// motion: a few Adam steps on the flow-point error of the render (every decoder resolution's warp
// grid followed from the target points back into the source must land on the source points). No
// image is compared, so nothing is needed beyond the two point sets. The decoders still render:
// the flows, masks and RGB are the generator's own; only d changes. docs/training.md (session
// 18) measures what it gives on the synthetic world.
#include <torch/torch.h>

#include <map>
#include <string>

#include "engines/dpe/generator.h"

namespace avatar::engines::dpe {

// What the fit may change.
enum class MotionFitSpace {
    kLatent,      // all of d (style_dim numbers)
    kDirections,  // only along the learnt directions: d + delta . Q^T (motion_dim numbers), the
                  // space the driving image's motion lives in
};

struct MotionFitOptions {
    int steps = 40;               // Adam steps; 0 returns the code unchanged
    double learning_rate = 0.03;  // Adam's, on what is fitted
    MotionFitSpace space = MotionFitSpace::kLatent;
    // Weight of expression_point_error beside render_point_error (0 = off). An expression
    // moves few points, and those little, so in the plain mean over the points a fit that
    // leaves it out scores within a rounding of one that has it (the training's
    // --lambda-expression-points term, docs/training.md, for the same reason).
    double expression_weight = 0.0;
};
// "latent" | "directions"; throws Error naming --dpe-fit-space otherwise.
MotionFitSpace parse_motion_fit_space(const std::string& name);

// Per image [B]: the mean over decoder resolutions of the L1 (x and y summed, then the mean over
// the points) between the target points followed back through the render's warps and the source
// points, in grid_sample units. `traced` holds one render of `stage` traced with an empty prefix
// (dec_pose's grids for kExpression, dec_exp's for kPose, both for kBoth, followed through the
// second warp and then the first). Points are [B, N, 2] in the crop's grid_sample coordinates.
torch::Tensor render_point_error(const std::map<std::string, torch::Tensor>& traced, Stage stage,
                                 const torch::Tensor& target_points,
                                 const torch::Tensor& source_points);

// Per image [B]: how far the expression edit's warps (dec_pose: the whole render for
// kExpression, the first of kBoth's two) are from carrying the source points to
// `expression_points` (where they are with the source's pose and the target's expression; for
// kExpression the target itself), as render_point_error but averaged over the points with
// weights proportional to how far each one moves (an image's weights sum to 1), so the few
// points an expression moves decide it. kPose has no expression edit: zeros.
torch::Tensor expression_point_error(const std::map<std::string, torch::Tensor>& traced,
                                     Stage stage, const torch::Tensor& expression_points,
                                     const torch::Tensor& source_points);

// `d` [B, style_dim] refined by options.steps Adam steps on the batch's sum of
// render_point_error plus options.expression_weight times expression_point_error (which needs
// `expression_points` for kBoth; kExpression uses the target), the generator frozen (its
// parameters get no gradients; their requires_grad flags are restored). Runs with autograd on
// whatever the caller's mode. Throws Error for points that are not [B, N, 2] with the batch of
// `d`, a negative step count, or an expression weight on kBoth without expression points.
torch::Tensor fit_motion_to_points(Generator& generator, const SourceCode& source,
                                   const torch::Tensor& d, Stage stage,
                                   const torch::Tensor& source_points,
                                   const torch::Tensor& target_points,
                                   const MotionFitOptions& options = {},
                                   const torch::Tensor& expression_points = {});

// `d` refined as fit_motion_to_points does, but on the L1 between the render and `target`
// ([B, 3, S, S] in the generator's image form), weighted per pixel by `weight` ([B, 1, S, S];
// undefined = the whole image) and averaged over the weight: the code that renders a known
// answer (or the weighted part of it) best. Only
// a benchmark has the answer, so this is a diagnostic, not a way to drive: the `dpe-oracle`
// method of `avatar benchmark synthbench` scores it, the bound on what the frozen decoders can
// render with any motion code. Throws Error for a target or weight of another batch or size,
// or negative steps.
torch::Tensor fit_motion_to_image(Generator& generator, const SourceCode& source,
                                  const torch::Tensor& d, Stage stage, const torch::Tensor& target,
                                  const MotionFitOptions& options = {},
                                  const torch::Tensor& weight = {});

}  // namespace avatar::engines::dpe
