// The eyes of the face model (face/eye_model.h) and the gaze fit (face_fit.h's fit_gaze): the
// meaning of gaze 0, the sign convention, and a round trip gaze -> projected iris centres -> gaze
// under random head poses and identities.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "face/eye_model.h"
#include "face/face_fit.h"
#include "face/face_model.h"
#include "face_fixtures.h"

namespace avatar::face {
namespace {

// The model iris centres [N, 2, 2] in the image, as the tracker would see them.
torch::Tensor project_iris(const torch::Tensor& pose, const torch::Tensor& identity,
                           const torch::Tensor& gaze) {
    const int64_t n = pose.size(0);
    const auto c = iris_centres(identity, gaze);  // [N, 2, 3]
    const auto r = euler_rad_to_rotation(pose.narrow(1, 0, 3));
    const auto s = pose.select(1, 6).view({n, 1, 1});
    const auto flip = torch::tensor({1.0, -1.0}, torch::kFloat64);
    return s * c.matmul(r.transpose(1, 2)).narrow(2, 0, 2) * flip +
           pose.narrow(1, 3, 2).unsqueeze(1);
}

TEST(EyeModel, GazeZeroLooksAheadFromTheEyeOpening) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto& m = face_model();
    const auto c = iris_centres(torch::zeros({m.identity_count()}, torch::kFloat64),
                                torch::zeros({4}, torch::kFloat64));
    // Gaze 0: the iris centre is (1 - depth) radii straight in front of the opening's centroid.
    const auto ahead =
        torch::tensor({0.0, 0.0, (1 - kEyeballDepth) * kEyeballRadius}, torch::kFloat64);
    for (int eye = 0; eye < 2; ++eye) {
        const auto ids = torch::tensor(m.eye_contours[static_cast<size_t>(eye)]);
        const auto opening = m.mean.index_select(0, ids).mean(0);
        EXPECT_LT((c[eye] - opening - ahead).abs().max().item<double>(), 1e-12) << eye;
    }
    // Bigger eyes (identity eye_size) have bigger eyeballs.
    auto big = torch::zeros({m.identity_count()}, torch::kFloat64);
    big[std::find(m.identity_names.begin(), m.identity_names.end(), "eye_size") -
        m.identity_names.begin()] = 1.0;
    EXPECT_NEAR(eyeball_radii(big).item<double>(), kEyeballRadius * (1 + kEyeballSizePerUnit),
                1e-12);
    EXPECT_GT(c[0][0].item<double>(), 0);  // the subject's left eye is at x > 0
    EXPECT_NEAR(c[0][0].item<double>(), -c[1][0].item<double>(), 1e-3);
    // yaw > 0 moves the iris toward +x, pitch > 0 moves it down (-y), as the head's angles.
    const auto d = gaze_directions(torch::tensor({0.0, 0.3, 0.2, 0.0}, torch::kFloat64));
    EXPECT_GT(d[0][0].item<double>(), 0);
    EXPECT_LT(d[1][1].item<double>(), 0);
    EXPECT_NEAR(d.norm(2, 1).sub(1).abs().max().item<double>(), 0, 1e-12);
    EXPECT_THROW(gaze_directions(torch::zeros({3})), Error);
}

TEST(EyeModel, GazeRoundTrip) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto& m = face_model();
    auto gen = at::detail::createCPUGenerator(11);
    const int64_t n = 50;
    const double deg = M_PI / 180;
    const auto u = [&](double lo, double hi, int64_t k = 1) {
        return lo + (hi - lo) * torch::rand({n, k}, gen, torch::kFloat64);
    };
    const auto identity = torch::rand({m.identity_count()}, gen, torch::kFloat64) * 1.6 - 0.8;
    const auto pose =
        torch::cat({u(-20 * deg, 20 * deg), u(-40 * deg, 40 * deg), u(-15 * deg, 15 * deg),
                    u(200, 400), u(150, 300), u(-5, 5), u(5, 12)},
                   1);
    const auto gaze = u(-30 * deg, 30 * deg, 4);
    const auto iris = project_iris(pose, identity, gaze);

    // Exact data, no prior: the angles come back to rounding.
    const auto exact = fit_gaze(iris, pose, identity, 0.0);
    EXPECT_LT((exact - gaze).abs().max().item<double>(), 1e-6);
    // 0.3 px of noise on the iris centres at 5-12 px/cm and the default prior.
    const auto noisy = iris + 0.3 * torch::randn(iris.sizes(), gen, torch::kFloat64);
    const auto fitted = fit_gaze(noisy, pose, identity);
    const double mean_error = (fitted - gaze).abs().mean().item<double>() / deg;
    std::printf("gaze round trip (%lld frames, 0.3 px noise): mean abs error %.2f deg, max %.2f\n",
                static_cast<long long>(n), mean_error,
                (fitted - gaze).abs().max().item<double>() / deg);
    EXPECT_LT(mean_error, 3.0);

    // A row without iris points gives NaN, the others are unaffected.
    auto partial = iris.clone();
    partial[3].fill_(std::numeric_limits<double>::quiet_NaN());
    const auto with_nan = fit_gaze(partial, pose, identity, 0.0);
    EXPECT_TRUE(with_nan[3].isnan().all().item<bool>());
    EXPECT_LT((with_nan[4] - gaze[4]).abs().max().item<double>(), 1e-6);
    EXPECT_THROW(fit_gaze(iris.narrow(0, 0, 2), pose, identity), Error);
}

}  // namespace
}  // namespace avatar::face
