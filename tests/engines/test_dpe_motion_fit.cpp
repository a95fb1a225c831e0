// Fitting a DPE motion code to where the face's points must go (engines/dpe/motion_fit.h): which
// warps the point error follows for each stage, and that the fit lowers it with the generator
// left as it was; and the benchmark's oracle fit to a known image.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"
#include "engines/dpe/motion_fit.h"

namespace avatar::engines::dpe {
namespace {

// A warp grid [1, r, r, 2] that reads every output pixel from the one place (x, y).
torch::Tensor constant_grid(int64_t r, double x, double y) {
    return torch::tensor({static_cast<float>(x), static_cast<float>(y)}).expand({1, r, r, 2});
}

TEST(DPEMotionFit, PointErrorFollowsTheStagesWarps) {
    // Two resolutions; dec_pose (the first decoder of kBoth) reads from (0.3, -0.2) at 4x4 and
    // (0.1, 0.1) at 8x8, dec_exp (the second) from (-0.5, 0.4) everywhere.
    std::map<std::string, torch::Tensor> traced = {
        {"dec_pose/to_flows.0/flow_grid", constant_grid(4, 0.3, -0.2)},
        {"dec_pose/to_flows.1/flow_grid", constant_grid(8, 0.1, 0.1)},
        {"dec_exp/to_flows.0/flow_grid", constant_grid(4, -0.5, 0.4)},
        {"dec_exp/to_flows.1/flow_grid", constant_grid(8, -0.5, 0.4)},
    };
    const auto target = torch::tensor({0.2f, -0.1f, -0.4f, 0.5f}).view({1, 2, 2});
    const auto source = torch::zeros({1, 2, 2});
    // Each point's |x| + |y| of where it is read from, averaged over the points and the blocks.
    const auto error = [&](Stage stage) {
        return render_point_error(traced, stage, target, source).item<double>();
    };
    EXPECT_NEAR(error(Stage::kExpression), (0.5 + 0.2) / 2, 1e-6);  // dec_pose alone
    EXPECT_NEAR(error(Stage::kPose), 0.9, 1e-6);                    // dec_exp alone
    // kBoth: the output reads the first render through dec_exp, which reads the source through
    // dec_pose: the points end wherever dec_pose reads from.
    EXPECT_NEAR(error(Stage::kBoth), (0.5 + 0.2) / 2, 1e-6);
    // The expression term reads dec_pose's warps (the whole of kExpression, the first of kBoth),
    // each point weighted by how far it moves: only the first point moves here.
    const auto expression = torch::tensor({0.2f, -0.1f, 0.0f, 0.0f}).view({1, 2, 2});
    for (const auto stage : {Stage::kExpression, Stage::kBoth})
        EXPECT_NEAR(expression_point_error(traced, stage, expression, source).item<double>(),
                    (0.5 + 0.2) / 2, 1e-6);
    EXPECT_EQ(expression_point_error(traced, Stage::kPose, expression, source).item<double>(), 0);
    traced.erase("dec_pose/to_flows.1/flow_grid");
    EXPECT_THROW(error(Stage::kBoth), Error);
    EXPECT_THROW(render_point_error({}, Stage::kPose, target, source), Error);
}

DPEConfig small_config() {
    DPEConfig config;
    config.size = 16;
    config.channels = {{4, 12}, {8, 10}, {16, 8}};
    return config;
}

TEST(DPEMotionFit, FittingLowersThePointErrorAndLeavesTheGenerator) {
    torch::manual_seed(3);
    Generator generator(small_config());
    generator->eval();
    torch::NoGradGuard no_grad;  // the fit turns autograd on for itself
    const auto image = torch::rand({2, 3, 16, 16}) * 2 - 1;
    const auto code = generator->encode(image);
    const auto d = generator->motion(torch::rand({2, 3, 16, 16}) * 2 - 1);
    const auto source = torch::rand({2, 30, 2}) * 1.2 - 0.6;
    const auto target = source + torch::tensor({0.15f, -0.1f});
    const auto error_of = [&](const torch::Tensor& motion, Stage stage) {
        std::map<std::string, torch::Tensor> traced;
        generator->render(code, motion, stage, Trace(&traced, ""));
        return render_point_error(traced, stage, target, source);
    };
    for (const auto space : {MotionFitSpace::kLatent, MotionFitSpace::kDirections})
        for (const auto stage : {Stage::kExpression, Stage::kPose, Stage::kBoth}) {
            const auto fitted = fit_motion_to_points(generator, code, d, stage, source, target,
                                                     MotionFitOptions{30, 0.03, space});
            EXPECT_EQ(fitted.sizes(), d.sizes());
            EXPECT_FALSE(fitted.requires_grad());
            const auto before = error_of(d, stage), after = error_of(fitted, stage);
            for (int64_t i = 0; i < 2; ++i)
                EXPECT_LT(after[i].item<double>(), 0.8 * before[i].item<double>())
                    << "space " << static_cast<int>(space) << ", stage " << static_cast<int>(stage)
                    << ", image " << i;
            if (space == MotionFitSpace::kDirections) {
                // Only along the directions: the change lies in the span of the basis Q.
                const auto& q = generator->basis();
                const auto change = fitted - d;
                EXPECT_TRUE(torch::allclose(change.matmul(q).matmul(q.t()), change, 1e-4, 1e-5));
                EXPECT_GT(change.abs().max().item<double>(), 1e-3);
            }
        }
    // The expression term lowers its own error too (kBoth: with the expression points).
    const auto expression = source + torch::tensor({0.0f, 0.08f});
    const auto expression_error_of = [&](const torch::Tensor& motion) {
        std::map<std::string, torch::Tensor> traced;
        generator->render(code, motion, Stage::kBoth, Trace(&traced, ""));
        return expression_point_error(traced, Stage::kBoth, expression, source).sum();
    };
    const auto with_expression =
        fit_motion_to_points(generator, code, d, Stage::kBoth, source, target,
                             MotionFitOptions{30, 0.03, MotionFitSpace::kLatent, 5.0}, expression);
    EXPECT_LT(expression_error_of(with_expression).item<double>(),
              0.8 * expression_error_of(d).item<double>());
    EXPECT_THROW(fit_motion_to_points(generator, code, d, Stage::kBoth, source, target,
                                      MotionFitOptions{30, 0.03, MotionFitSpace::kLatent, 5.0}),
                 Error);
    EXPECT_EQ(parse_motion_fit_space("directions"), MotionFitSpace::kDirections);
    EXPECT_THROW(parse_motion_fit_space("alpha"), Error);
    for (const auto& p : generator->parameters()) {
        EXPECT_TRUE(p.requires_grad());  // restored
        EXPECT_FALSE(p.grad().defined());
    }
    EXPECT_TRUE(torch::equal(
        fit_motion_to_points(generator, code, d, Stage::kBoth, source, target, {0, 0.03}), d));
    EXPECT_THROW(fit_motion_to_points(generator, code, d, Stage::kBoth, source, target, {-1, 0.03}),
                 Error);
    EXPECT_THROW(fit_motion_to_points(generator, code, d, Stage::kBoth, source[0], target[0]),
                 Error);
    EXPECT_THROW(
        fit_motion_to_points(generator, code, d, Stage::kBoth, source, target.narrow(1, 0, 10)),
        Error);
}

TEST(DPEMotionFit, FittingToAnImageLowersItsWeightedErrorOnly) {
    torch::manual_seed(5);
    Generator generator(small_config());
    generator->eval();
    torch::NoGradGuard no_grad;
    const auto code = generator->encode(torch::rand({2, 3, 16, 16}) * 2 - 1);
    const auto d = generator->motion(torch::rand({2, 3, 16, 16}) * 2 - 1);
    // A target the generator can reach: its own render with another motion code (about 0.08 away
    // per number, so Adam's steps are kept smaller than that).
    const auto target = generator->render(
        code, generator->motion(torch::rand({2, 3, 16, 16}) * 2 - 1), Stage::kBoth);
    // Only the left half counts.
    auto weight = torch::zeros({2, 1, 16, 16});
    weight.narrow(3, 0, 8).fill_(1);
    const auto error_of = [&](const torch::Tensor& motion, const torch::Tensor& region) {
        const auto rendered = generator->render(code, motion, Stage::kBoth);
        return ((rendered - target).abs() * region).sum({1, 2, 3}) / region.sum({1, 2, 3});
    };
    const auto fitted = fit_motion_to_image(generator, code, d, Stage::kBoth, target,
                                            MotionFitOptions{40, 0.003}, weight);
    EXPECT_EQ(fitted.sizes(), d.sizes());
    EXPECT_FALSE(fitted.requires_grad());
    const auto before = error_of(d, weight), after = error_of(fitted, weight);
    for (int64_t i = 0; i < 2; ++i)
        EXPECT_LT(after[i].item<double>(), 0.8 * before[i].item<double>()) << "image " << i;
    // The weight decides what is fitted: a fit to the right half ends elsewhere.
    const auto right = 1 - weight;
    const auto fitted_right = fit_motion_to_image(generator, code, d, Stage::kBoth, target,
                                                  MotionFitOptions{40, 0.003}, right);
    EXPECT_GT((fitted_right - fitted).abs().max().item<double>(), 1e-3);
    // Without a weight the whole image counts.
    const auto fitted_whole =
        fit_motion_to_image(generator, code, d, Stage::kBoth, target, MotionFitOptions{40, 0.003});
    EXPECT_LT(error_of(fitted_whole, torch::ones_like(weight)).sum().item<double>(),
              0.8 * error_of(d, torch::ones_like(weight)).sum().item<double>());
    for (const auto& p : generator->parameters())
        EXPECT_FALSE(p.grad().defined());
    EXPECT_TRUE(
        torch::equal(fit_motion_to_image(generator, code, d, Stage::kBoth, target, {0, 0.03}), d));
    EXPECT_THROW(fit_motion_to_image(generator, code, d, Stage::kBoth, target, {-1, 0.03}), Error);
    EXPECT_THROW(fit_motion_to_image(generator, code, d, Stage::kBoth, target[0]), Error);
    EXPECT_THROW(fit_motion_to_image(generator, code, d, Stage::kBoth, target, {2, 0.03},
                                     weight.narrow(3, 0, 8)),
                 Error);
    EXPECT_THROW(fit_motion_to_image(generator, code, d, Stage::kBoth, torch::zeros({2, 3, 8, 8}),
                                     {2, 0.03}),
                 Error);
}

}  // namespace
}  // namespace avatar::engines::dpe
