// Head pose: synthetic round trips through the documented convention, differentiability, and a
// plausibility check on FaceMesh and face-api outputs of the face_models fixture.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/safetensors.h"
#include "face/canonical_face.h"
#include "face/head_pose.h"
#include "face_fixtures.h"

namespace avatar::face {
namespace {

const torch::Tensor& vertices64() {
    static const torch::Tensor v = canonical_face().vertices.to(torch::kFloat64);
    return v;
}

// Image coordinates (x, y down, z away from the viewer) of canonical vertices rotated by
// Ry(yaw) Rx(pitch) Rz(roll), scaled and moved: written out here independently of the library.
torch::Tensor pose_points(double yaw, double pitch, double roll, double scale, double tx, double ty,
                          double tz) {
    const double d = M_PI / 180;
    const auto c = [](double a) { return std::cos(a); };
    const auto s = [](double a) { return std::sin(a); };
    const auto ry = torch::tensor(
        {{c(yaw * d), 0.0, s(yaw * d)}, {0.0, 1.0, 0.0}, {-s(yaw * d), 0.0, c(yaw * d)}},
        torch::kFloat64);
    const auto rx = torch::tensor(
        {{1.0, 0.0, 0.0}, {0.0, c(pitch * d), -s(pitch * d)}, {0.0, s(pitch * d), c(pitch * d)}},
        torch::kFloat64);
    const auto rz = torch::tensor(
        {{c(roll * d), -s(roll * d), 0.0}, {s(roll * d), c(roll * d), 0.0}, {0.0, 0.0, 1.0}},
        torch::kFloat64);
    const auto r = ry.matmul(rx).matmul(rz);
    const auto pose_frame = scale * vertices64().matmul(r.t());
    return pose_frame * torch::tensor({1.0, -1.0, -1.0}, torch::kFloat64) +
           torch::tensor({tx, ty, tz}, torch::kFloat64);
}

TEST(HeadPose, ExactRoundTrip) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto points = pose_points(25, -10, 8, 7.5, 320, 240, 3);
    const auto pose = head_pose_from_mesh468(points);
    EXPECT_NEAR(pose.yaw(), 25, 1e-9);
    EXPECT_NEAR(pose.pitch(), -10, 1e-9);
    EXPECT_NEAR(pose.roll(), 8, 1e-9);
    EXPECT_NEAR(pose.scale.item<double>(), 7.5, 1e-9);
    EXPECT_TRUE(torch::allclose(pose.translation,
                                torch::tensor({320.0, 240.0, 3.0}, torch::kFloat64), 0, 1e-9));
    EXPECT_LT(pose.rms_value(), 1e-9);
    EXPECT_TRUE(torch::allclose(posed_canonical_vertices(pose), points, 0, 1e-9));
    // The sign conventions of the header: positive yaw moves the nose (vertex 1) right, positive
    // pitch moves it down, positive roll turns the eye line counter-clockwise on screen.
    const auto nose = [](const torch::Tensor& p) { return p[1]; };
    const auto front = pose_points(0, 0, 0, 7.5, 0, 0, 0);
    EXPECT_GT((nose(pose_points(20, 0, 0, 7.5, 0, 0, 0)) - nose(front))[0].item<double>(), 0);
    EXPECT_GT((nose(pose_points(0, 20, 0, 7.5, 0, 0, 0)) - nose(front))[1].item<double>(), 0);
    const auto rolled = pose_points(0, 0, 20, 7.5, 0, 0, 0);
    // Vertex 263 (left of the subject, image right) rises (smaller y) with positive roll.
    EXPECT_LT(rolled[263][1].item<double>(), front[263][1].item<double>());
}

TEST(HeadPose, NoisyRoundTripsRecoverAnglesWithinATenthOfADegree) {
    SKIP_WITHOUT_MEDIAPIPE();
    torch::manual_seed(3);
    for (int trial = 0; trial < 20; ++trial) {
        const auto u = torch::rand({7}, torch::kFloat64);
        const double yaw = (u[0].item<double>() - 0.5) * 120;   // +-60
        const double pitch = (u[1].item<double>() - 0.5) * 80;  // +-40
        const double roll = (u[2].item<double>() - 0.5) * 80;   // +-40
        const double scale = 4 + 12 * u[3].item<double>();      // 4..16 px/cm
        auto points = pose_points(yaw, pitch, roll, scale, 500 * u[4].item<double>(),
                                  500 * u[5].item<double>(), 20 * u[6].item<double>());
        points = points + 0.03 * torch::randn_like(points);  // 0.03 px noise
        const auto pose = head_pose_from_mesh468(points.to(torch::kFloat32));
        EXPECT_NEAR(pose.yaw(), yaw, 0.1) << trial;
        EXPECT_NEAR(pose.pitch(), pitch, 0.1) << trial;
        EXPECT_NEAR(pose.roll(), roll, 0.1) << trial;
        EXPECT_NEAR(pose.scale.item<double>() / scale, 1, 2e-3) << trial;
        EXPECT_LT(pose.rms_value(), 0.1) << trial;
    }
}

TEST(HeadPose, EulerConversionsAreInverse) {
    torch::manual_seed(4);
    const auto angles = (torch::rand({50, 3}, torch::kFloat64) - 0.5) *
                        torch::tensor({300.0, 170.0, 300.0}, torch::kFloat64);
    const auto r = euler_deg_to_rotation(angles);
    EXPECT_TRUE(torch::allclose(r.matmul(r.transpose(1, 2)),
                                torch::eye(3, torch::kFloat64).expand({50, 3, 3}), 0, 1e-12));
    EXPECT_TRUE(
        torch::allclose(torch::linalg_det(r), torch::ones({50}, torch::kFloat64), 0, 1e-12));
    EXPECT_TRUE(torch::allclose(rotation_to_euler_deg(r), angles, 0, 1e-9));
}

TEST(HeadPose, BatchedEqualsOneByOne) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto a = pose_points(10, 5, -3, 6, 100, 80, 0);
    const auto b = pose_points(-30, 20, 12, 9, 300, 200, 5);
    const auto both = head_pose_from_mesh468(torch::stack({a, b}));
    ASSERT_EQ(both.angles.sizes(), (std::vector<int64_t>{2, 3}));
    ASSERT_EQ(both.rotation.sizes(), (std::vector<int64_t>{2, 3, 3}));
    const auto pa = head_pose_from_mesh468(a), pb = head_pose_from_mesh468(b);
    EXPECT_TRUE(torch::allclose(both.angles, torch::stack({pa.angles, pb.angles}), 0, 1e-9));
    EXPECT_TRUE(
        torch::allclose(both.translation, torch::stack({pa.translation, pb.translation}), 0, 1e-9));
    EXPECT_THROW(both.yaw(), Error);
}

TEST(HeadPose, GradientsMatchFiniteDifferences) {
    SKIP_WITHOUT_MEDIAPIPE();
    torch::manual_seed(5);
    auto base = pose_points(15, -8, 4, 8, 200, 200, 0);
    base = base + 0.5 * torch::randn_like(base);
    auto points = base.clone().requires_grad_(true);
    const auto pose = head_pose_from_mesh468(points);
    const auto objective = [](const HeadPose& p) {
        return p.angles.sum() + p.scale + p.translation.sum() + p.rms;
    };
    objective(pose).backward();
    const auto grad = points.grad();
    ASSERT_TRUE(torch::isfinite(grad).all().item<bool>());
    // Central differences on a few coordinates of Procrustes landmarks.
    const auto ids = canonical_face().procrustes_ids;
    for (int k : {0, 7, 20}) {
        const int64_t vertex = ids[k].item<int64_t>();
        for (int axis = 0; axis < 3; ++axis) {
            const double h = 1e-5;
            auto plus = base.clone(), minus = base.clone();
            plus[vertex][axis] += h;
            minus[vertex][axis] -= h;
            const double numeric = (objective(head_pose_from_mesh468(plus)).item<double>() -
                                    objective(head_pose_from_mesh468(minus)).item<double>()) /
                                   (2 * h);
            EXPECT_NEAR(grad[vertex][axis].item<double>(), numeric, 1e-5 * (1 + std::abs(numeric)))
                << vertex << " " << axis;
        }
    }
}

TEST(HeadPose, SimilarityFitNeverReturnsAReflection) {
    torch::manual_seed(6);
    const auto src = torch::randn({30, 3}, torch::kFloat64);
    const auto mirrored = src * torch::tensor({-1.0, 1.0, 1.0}, torch::kFloat64);
    const auto fit = fit_similarity(src, mirrored);
    EXPECT_NEAR(torch::linalg_det(fit.rotation).item<double>(), 1.0, 1e-12);
    EXPECT_GT(fit.rms.item<double>(), 0.1);  // a mirror cannot be fitted by a rotation
    // 2-D with weights: exact recovery.
    const auto src2 = torch::randn({10, 2}, torch::kFloat64);
    const double a = 0.7;
    const auto r2 =
        torch::tensor({{std::cos(a), -std::sin(a)}, {std::sin(a), std::cos(a)}}, torch::kFloat64);
    const auto dst2 = 3.0 * src2.matmul(r2.t()) + torch::tensor({1.0, -2.0}, torch::kFloat64);
    const auto fit2 = fit_similarity(src2, dst2, torch::rand({10}, torch::kFloat64) + 0.1);
    EXPECT_TRUE(torch::allclose(fit2.rotation, r2, 0, 1e-12));
    EXPECT_NEAR(fit2.scale.item<double>(), 3.0, 1e-12);
    EXPECT_THROW(fit_similarity(torch::zeros({5, 4}), torch::zeros({5, 4})), Error);
    EXPECT_THROW(head_pose_from_mesh468(torch::zeros({68, 2})), Error);
}

// FaceMesh's raw output for face 0 of faceapi_sample1 (192-px crop coordinates).
TEST(HeadPose, FixtureFaceMeshGivesAPlausiblePose) {
    SKIP_WITHOUT_MEDIAPIPE();
    const std::string file = "human/faceapi_sample1.safetensors";
    if (!testing::have_face_fixture(file))
        GTEST_SKIP() << "no fixture " << testing::face_fixture(file);
    const auto fixture = SafetensorsFile::open(testing::face_fixture(file));
    const auto points = fixture.get("face0.facemesh.raw.output_mesh").reshape({468, 3});
    const auto pose = head_pose_from_mesh468(points);
    const auto xy = points.slice(1, 0, 2);
    const double face_size = (std::get<0>(xy.max(0)) - std::get<0>(xy.min(0))).max().item<double>();
    std::printf(
        "faceapi_sample1 face0 (FaceMesh): yaw %.2f pitch %.2f roll %.2f, %.3f px/cm, "
        "rms %.3f px of a %.1f px face\n",
        pose.yaw(), pose.pitch(), pose.roll(), pose.scale.item<double>(), pose.rms_value(),
        face_size);
    // The neutral canonical face fits real FaceMesh output to 2.5-4 % of the face size on the
    // fixture faces (expression, identity and the missing perspective); 3.1 % here.
    EXPECT_LT(pose.rms_value(), 0.05 * face_size);
    for (const double angle : {pose.yaw(), pose.pitch(), pose.roll()})
        EXPECT_LT(std::abs(angle), 60);
    EXPECT_GT(pose.scale.item<double>(), 0);
}

TEST(HeadPose68, CorrespondenceTableMatchesTheFixture) {
    const std::string file = "geometry/landmarks68_to_mesh468.safetensors";
    if (!testing::have_face_fixture(file))
        GTEST_SKIP() << "no fixture " << testing::face_fixture(file);
    const auto table = SafetensorsFile::open(testing::face_fixture(file)).get("vtx68_human_lib");
    for (int k = 0; k < 68; ++k)
        EXPECT_EQ(table[k].item<int>(), kMesh468Of68[size_t(k)]) << k;
}

TEST(HeadPose68, OrthographicRoundTrip) {
    SKIP_WITHOUT_MEDIAPIPE();
    torch::manual_seed(7);
    std::vector<int64_t> ids(kMesh468Of68.begin(), kMesh468Of68.end());
    const auto index = torch::tensor(ids, torch::kLong);
    for (int trial = 0; trial < 10; ++trial) {
        const auto u = torch::rand({4}, torch::kFloat64);
        const double yaw = (u[0].item<double>() - 0.5) * 80;
        const double pitch = (u[1].item<double>() - 0.5) * 60;
        const double roll = (u[2].item<double>() - 0.5) * 60;
        const double scale = 3 + 10 * u[3].item<double>();
        auto points =
            pose_points(yaw, pitch, roll, scale, 300, 200, 0).index_select(0, index).slice(1, 0, 2);
        points = points + 0.02 * torch::randn_like(points);
        const auto pose = head_pose_from_landmarks68(points.to(torch::kFloat32));
        EXPECT_NEAR(pose.yaw(), yaw, 0.1) << trial;
        EXPECT_NEAR(pose.pitch(), pitch, 0.1) << trial;
        EXPECT_NEAR(pose.roll(), roll, 0.1) << trial;
        EXPECT_NEAR(pose.scale.item<double>() / scale, 1, 1e-3) << trial;
        EXPECT_NEAR(pose.translation[0].item<double>(), 300, 0.5) << trial;
        EXPECT_NEAR(pose.translation[1].item<double>(), 200, 0.5) << trial;
    }
    EXPECT_THROW(head_pose_from_landmarks68(torch::zeros({68, 3})), Error);
    EXPECT_THROW(head_pose_from_landmarks68(torch::zeros({68, 2})), Error);  // no spread
}

// The 68-point fit against the 468-point fit on the fixture faces. Fed FaceMesh's own points at
// the 68 vertices, it must agree with the 468 fit; fed face-api's points, it must follow them. On
// the two tilted faces of this photo face-api's eye line is 14 and 25 degrees steeper than
// FaceMesh's (human runs FaceMesh on axis-aligned crops, without rotation correction, and it
// underestimates strong tilts; FFHQ crops from face-api's points come out upright), so there the
// libraries disagree, not the fits.
TEST(HeadPose68, AgreesWithTheMeshFitOnFixtureFaces) {
    SKIP_WITHOUT_MEDIAPIPE();
    const std::string human_file = "human/faceapi_sample1.safetensors";
    const std::string faceapi_file = "faceapi/faceapi_sample1.safetensors";
    if (!testing::have_face_fixture(human_file) || !testing::have_face_fixture(faceapi_file))
        GTEST_SKIP() << "no face_models fixture";
    const auto human = SafetensorsFile::open(testing::face_fixture(human_file));
    const auto faceapi = SafetensorsFile::open(testing::face_fixture(faceapi_file));
    const auto index =
        torch::tensor(std::vector<int64_t>(kMesh468Of68.begin(), kMesh468Of68.end()), torch::kLong);
    for (int f = 0; f < 3; ++f) {
        const auto lm68 = faceapi.get("face" + std::to_string(f) + ".lm68.points");
        // The FaceMesh face with the nearest centre (the two libraries order faces differently).
        int best = -1;
        double best_distance = 1e9;
        for (int h = 0; h < 3; ++h) {
            const auto mesh = human.get("face" + std::to_string(h) + ".facemesh.mesh468_image");
            const double d = (mesh.slice(1, 0, 2).mean(0) - lm68.mean(0)).norm().item<double>();
            if (d < best_distance) {
                best = h;
                best_distance = d;
            }
        }
        // Raw crop coordinates: z in the same units as x and y.
        const auto raw = human.get("face" + std::to_string(best) + ".facemesh.raw.output_mesh")
                             .reshape({468, 3});
        const auto p468 = head_pose_from_mesh468(raw);
        const auto from_mesh =
            head_pose_from_landmarks68(raw.index_select(0, index).slice(1, 0, 2));
        const auto from_faceapi = head_pose_from_landmarks68(lm68);
        std::printf(
            "faceapi_sample1 face-api face %d / FaceMesh face %d: (yaw, pitch, roll) 468 "
            "(%.1f, %.1f, %.1f), 68 of the mesh (%.1f, %.1f, %.1f), face-api 68 (%.1f, "
            "%.1f, %.1f), rms %.2f px\n",
            f, best, p468.yaw(), p468.pitch(), p468.roll(), from_mesh.yaw(), from_mesh.pitch(),
            from_mesh.roll(), from_faceapi.yaw(), from_faceapi.pitch(), from_faceapi.roll(),
            from_faceapi.rms_value());
        EXPECT_NEAR(from_mesh.yaw(), p468.yaw(), 10) << f;
        EXPECT_NEAR(from_mesh.pitch(), p468.pitch(), 10) << f;
        EXPECT_NEAR(from_mesh.roll(), p468.roll(), 3) << f;
        // face-api's eye line sets the roll of its own fit.
        const auto eye_l = lm68.slice(0, 36, 42).mean(0), eye_r = lm68.slice(0, 42, 48).mean(0);
        const double eye_line =
            std::atan2(-(eye_r - eye_l)[1].item<double>(), (eye_r - eye_l)[0].item<double>()) *
            180 / M_PI;
        EXPECT_NEAR(from_faceapi.roll(), eye_line, 5) << f;
        const double size =
            (std::get<0>(lm68.max(0)) - std::get<0>(lm68.min(0))).max().item<double>();
        EXPECT_LT(from_faceapi.rms_value(), 0.05 * size) << f;
    }
}

TEST(HeadPose, FitTimeAtOneThread) {
    SKIP_WITHOUT_MEDIAPIPE();
    const int threads = torch::get_num_threads();
    torch::set_num_threads(1);
    const auto points = pose_points(10, 5, -3, 6, 100, 80, 0).to(torch::kFloat32);
    torch::NoGradGuard no_grad;
    head_pose_from_mesh468(points);  // warm-up (loads the canonical face)
    const int n = 200;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
        head_pose_from_mesh468(points);
    const double us468 =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        n;
    const auto lm =
        points
            .index_select(
                0, torch::tensor(std::vector<int64_t>(kMesh468Of68.begin(), kMesh468Of68.end())))
            .slice(1, 0, 2)
            .contiguous();
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
        head_pose_from_landmarks68(lm);
    const double us68 =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        n;
    torch::set_num_threads(threads);
    std::printf("head pose per frame at 1 thread: 468 points %.1f us, 68 points %.1f us\n", us468,
                us68);
    EXPECT_LT(us468, 20000);
}

}  // namespace
}  // namespace avatar::face
