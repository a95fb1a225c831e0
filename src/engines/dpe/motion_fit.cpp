#include "engines/dpe/motion_fit.h"

#include <functional>
#include <vector>

#include "core/error.h"
#include "engines/dpe/flow_terms.h"

namespace avatar::engines::dpe {
namespace {

const torch::Tensor* find(const std::map<std::string, torch::Tensor>& traced,
                          const std::string& name) {
    const auto it = traced.find(name);
    return it == traced.end() ? nullptr : &it->second;
}

// Restores the parameters' requires_grad flags, which fit_motion_to_points turns off.
class FrozenParameters {
public:
    explicit FrozenParameters(torch::nn::Module& module) : parameters_(module.parameters()) {
        for (auto& p : parameters_) {
            flags_.push_back(p.requires_grad());
            p.set_requires_grad(false);
        }
    }
    ~FrozenParameters() {
        for (size_t i = 0; i < parameters_.size(); ++i)
            parameters_[i].set_requires_grad(flags_[i]);
    }
    FrozenParameters(const FrozenParameters&) = delete;
    FrozenParameters& operator=(const FrozenParameters&) = delete;

private:
    std::vector<torch::Tensor> parameters_;
    std::vector<bool> flags_;
};

// options.steps Adam steps from `d` on loss(motion) (a scalar: the batch's sum, so each image's
// code follows its own gradient), the generator frozen; in options.space.
torch::Tensor fit_code(Generator& generator, const torch::Tensor& d,
                       const MotionFitOptions& options,
                       const std::function<torch::Tensor(const torch::Tensor&)>& loss) {
    if (options.steps == 0)
        return d;
    torch::AutoGradMode autograd(true);
    FrozenParameters frozen(*generator);
    const auto start = d.detach();
    const bool directions = options.space == MotionFitSpace::kDirections;
    const auto basis_t = generator->basis().t().to(d.device(), d.scalar_type());
    // What Adam moves: d itself, or its offset along the directions (from zero).
    auto fitted =
        directions ? torch::zeros({d.size(0), basis_t.size(0)}, d.options()) : start.clone();
    fitted.set_requires_grad(true);
    const auto motion = [&] { return directions ? start + fitted.matmul(basis_t) : fitted; };
    torch::optim::Adam adam({fitted}, torch::optim::AdamOptions(options.learning_rate));
    for (int step = 0; step < options.steps; ++step) {
        adam.zero_grad();
        loss(motion()).backward();
        adam.step();
    }
    torch::NoGradGuard no_grad;
    return motion().detach();
}

}  // namespace

MotionFitSpace parse_motion_fit_space(const std::string& name) {
    if (name == "latent")
        return MotionFitSpace::kLatent;
    check(name == "directions", "--dpe-fit-space",
          "'" + name + "' is not one of latent, directions");
    return MotionFitSpace::kDirections;
}

torch::Tensor render_point_error(const std::map<std::string, torch::Tensor>& traced, Stage stage,
                                 const torch::Tensor& target_points,
                                 const torch::Tensor& source_points) {
    // The decoder whose output is the render (read last) and, for kBoth, the one before it.
    const std::string last = stage == Stage::kExpression ? "dec_pose/" : "dec_exp/";
    torch::Tensor sum;
    int blocks = 0;
    for (int k = 0;; ++k) {
        const std::string flows = "to_flows." + std::to_string(k) + "/flow_grid";
        const auto* grid = find(traced, last + flows);
        if (!grid)
            break;
        auto reached = follow_grid(*grid, target_points);
        if (stage == Stage::kBoth) {
            const auto* first = find(traced, "dec_pose/" + flows);
            check(first != nullptr, "render_point_error", "the first decoder's grids are missing");
            reached = follow_grid(*first, reached);
        }
        const auto error = (reached - source_points).abs().sum(2).mean(1);
        sum = sum.defined() ? sum + error : error;
        ++blocks;
    }
    check(blocks > 0, "render_point_error", "no flow grids were traced");
    return sum / blocks;
}

torch::Tensor expression_point_error(const std::map<std::string, torch::Tensor>& traced,
                                     Stage stage, const torch::Tensor& expression_points,
                                     const torch::Tensor& source_points) {
    if (stage == Stage::kPose)
        return torch::zeros({source_points.size(0)}, source_points.options());
    torch::Tensor sum;
    int blocks = 0;
    for (int k = 0;; ++k) {
        const auto* grid = find(traced, "dec_pose/to_flows." + std::to_string(k) + "/flow_grid");
        if (!grid)
            break;
        const auto weighted = motion_weighted_errors(follow_grid(*grid, expression_points),
                                                     expression_points, source_points);
        sum = sum.defined() ? sum + weighted : weighted;
        ++blocks;
    }
    check(blocks > 0, "expression_point_error", "no expression edit's flow grids were traced");
    return sum / blocks;
}

torch::Tensor fit_motion_to_points(Generator& generator, const SourceCode& source,
                                   const torch::Tensor& d, Stage stage,
                                   const torch::Tensor& source_points,
                                   const torch::Tensor& target_points,
                                   const MotionFitOptions& options,
                                   const torch::Tensor& expression_points) {
    check(options.steps >= 0, "fit_motion_to_points", "steps must be >= 0");
    const bool expression_term = options.expression_weight > 0 && stage != Stage::kPose;
    check(!expression_term || stage != Stage::kBoth || expression_points.defined(),
          "fit_motion_to_points", "an expression weight on 'both' needs the expression points");
    const auto& expression_at_points = stage == Stage::kExpression || !expression_points.defined()
                                           ? target_points
                                           : expression_points;
    for (const auto* points : {&source_points, &target_points, &expression_at_points})
        check(points->dim() == 3 && points->size(0) == d.size(0) && points->size(2) == 2,
              "fit_motion_to_points", "points must be [B, N, 2] with the motion's batch");
    check(source_points.size(1) == target_points.size(1) &&
              source_points.size(1) == expression_at_points.size(1),
          "fit_motion_to_points", "source, target and expression must have the same points");
    const auto source_at = source_points.to(d.device(), d.scalar_type());
    const auto target_at = target_points.to(d.device(), d.scalar_type());
    const auto expression_at = expression_at_points.to(d.device(), d.scalar_type());
    return fit_code(generator, d, options, [&](const torch::Tensor& motion) {
        std::map<std::string, torch::Tensor> traced;
        generator->render(source, motion, stage, Trace(&traced, ""));
        auto loss = render_point_error(traced, stage, target_at, source_at).sum();
        if (expression_term)
            loss = loss + options.expression_weight *
                              expression_point_error(traced, stage, expression_at, source_at).sum();
        return loss;
    });
}

torch::Tensor fit_motion_to_image(Generator& generator, const SourceCode& source,
                                  const torch::Tensor& d, Stage stage, const torch::Tensor& target,
                                  const MotionFitOptions& options, const torch::Tensor& weight) {
    check(options.steps >= 0, "fit_motion_to_image", "steps must be >= 0");
    check(target.dim() == 4 && target.size(0) == d.size(0) && target.size(1) == 3,
          "fit_motion_to_image", "the target must be [B, 3, H, W] with the motion's batch");
    check(!weight.defined() ||
              (weight.dim() == 4 && weight.size(0) == d.size(0) && weight.size(1) == 1 &&
               weight.size(2) == target.size(2) && weight.size(3) == target.size(3)),
          "fit_motion_to_image",
          "the weight must be [B, 1, H, W] with the target's batch and size");
    const auto target_at = target.to(d.device(), d.scalar_type());
    const auto weight_at =
        weight.defined()
            ? weight.to(d.device(), d.scalar_type())
            : torch::ones({target.size(0), 1, target.size(2), target.size(3)}, d.options());
    // Per image, the weighted mean (over the weight's mass) of the L1 over the channels.
    const auto mass = weight_at.sum({1, 2, 3}).clamp_min(1e-6) * target.size(1);
    return fit_code(generator, d, options, [&](const torch::Tensor& motion) {
        const auto rendered = generator->render(source, motion, stage);
        check(rendered.sizes() == target_at.sizes(), "fit_motion_to_image",
              "the target's size is not the generator's output size");
        return ((rendered - target_at).abs() * weight_at).sum({1, 2, 3}).div(mass).sum();
    });
}

}  // namespace avatar::engines::dpe
