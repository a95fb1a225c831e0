// face-api nets: parity with every face-api case of the face_models fixture, the library's crop
// rules on every face of the fixture's per-image JSON, the whole chain (detect -> landmarks ->
// expression -> descriptor) on one fixture image, gradients, and bad inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/reference_check.h"
#include "core/safetensors.h"
#include "face/faceapi/faceapi.h"
#include "face/model_files.h"
#include "pipeline/builtin_modules.h"
#include "shared_fixture.h"

namespace avatar::face::faceapi {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture_dir() {
    return testing::shared_fixture_dir("face_models");
}

bool have_fixture() {
    return fs::is_regular_file(fixture_dir() / "config.json");
}

bool have_models() {
    const auto dir = npm_packages_dir() / "@vladmandic/face-api/model";
    for (const char* name :
         {"tiny_face_detector_model", "ssd_mobilenetv1_model", "face_landmark_68_model",
          "face_landmark_68_tiny_model", "face_expression_model", "face_recognition_model"}) {
        if (!fs::is_regular_file(dir / (std::string(name) + "-weights_manifest.json")))
            return false;
    }
    return true;
}

#define SKIP_WITHOUT_MODELS()                                                              \
    do {                                                                                   \
        if (!have_models())                                                                \
            GTEST_SKIP() << "the @vladmandic/face-api npm package is not installed under " \
                         << npm_packages_dir();                                            \
    } while (0)

#define SKIP_WITHOUT_FIXTURE()                                     \
    do {                                                           \
        if (!have_fixture())                                       \
            GTEST_SKIP() << "no shared fixture " << fixture_dir(); \
    } while (0)

json read_json(const fs::path& path) {
    std::ifstream in(path);
    return json::parse(in);
}

Box box_of(const json& j) {
    return {j.at("x").get<double>(), j.at("y").get<double>(), j.at("width").get<double>(),
            j.at("height").get<double>()};
}

std::vector<int64_t> as_vector(const CropRect& c) {
    return {c.x, c.y, c.width, c.height};
}

torch::Tensor points_of(const json& points) {
    std::vector<double> flat;
    for (const auto& p : points) {
        flat.push_back(p.at(0).get<double>());
        flat.push_back(p.at(1).get<double>());
    }
    return torch::tensor(flat, torch::kFloat64).view({-1, 2});
}

torch::Tensor fixture_image(const std::string& name) {
    return SafetensorsFile::open(fixture_dir() / "images" / (name + ".safetensors")).get("image");
}

TEST(FaceApi, FixtureCasesMatch) {
    SKIP_WITHOUT_FIXTURE();
    SKIP_WITHOUT_MODELS();
    // The face-api cases are those of the six nets; the identity-pairs metric is not ours.
    const std::set<std::string> models{
        "faceapi.tiny_face_detector",    "faceapi.ssd_mobilenetv1", "faceapi.face_landmark_68",
        "faceapi.face_landmark_68_tiny", "faceapi.face_expression", "faceapi.face_recognition"};
    size_t expected = 0;
    const auto config = read_json(fixture_dir() / "config.json");
    for (const auto& c : config.at("cases"))
        expected += models.count(c.value("model", std::string())) ? 1 : 0;
    ASSERT_GT(expected, 0u);

    register_builtin_modules();
    ReferenceRunOptions options;
    options.show_progress = false;
    options.case_filter = "/faceapi/";
    const auto report = run_reference_checks(fixture_dir(), options);
    testing::expect_all_cases_pass(report, expected);
}

// Box.clipAtImageBorders, alignedRect and the dlib rect on every face the library recorded.
TEST(FaceApi, CropRulesMatchTheLibrary) {
    SKIP_WITHOUT_FIXTURE();
    const auto config = read_json(fixture_dir() / "config.json");
    int faces = 0;
    for (const auto& image_name : config.at("images")) {
        const auto name = image_name.get<std::string>();
        const auto path = fixture_dir() / "faceapi" / (name + ".json");
        if (!fs::is_regular_file(path))
            continue;
        const auto record = read_json(path);
        const auto shape = record.at("image_shape");  // [H, W, 3]
        const int64_t height = shape.at(0).get<int64_t>(), width = shape.at(1).get<int64_t>();
        for (const auto& face : record.at("faces")) {
            SCOPED_TRACE(name + " face " + std::to_string(face.at("index").get<int>()));
            const auto detection =
                clip_at_image_borders(box_of(face.at("detection").at("box")), width, height);
            EXPECT_EQ(as_vector(detection),
                      face.at("lm68").at("crop_xywh").get<std::vector<int64_t>>());

            const auto points = points_of(face.at("lm68").at("points"));
            const Box aligned = aligned_rect(points);
            const Box aligned_ref = box_of(face.at("alignedRect"));
            EXPECT_NEAR(aligned.x, aligned_ref.x, 1e-9);
            EXPECT_NEAR(aligned.y, aligned_ref.y, 1e-9);
            EXPECT_NEAR(aligned.width, aligned_ref.width, 1e-9);
            EXPECT_NEAR(aligned.height, aligned_ref.height, 1e-9);
            EXPECT_EQ(as_vector(clip_at_image_borders(aligned, width, height)),
                      face.at("expr").at("crop_xywh").get<std::vector<int64_t>>());

            const Box dlib = dlib_aligned_rect(points);
            const Box dlib_ref = box_of(face.at("dlibAlignedRect"));
            EXPECT_EQ(dlib.x, dlib_ref.x);
            EXPECT_EQ(dlib.y, dlib_ref.y);
            EXPECT_EQ(dlib.width, dlib_ref.width);
            EXPECT_EQ(dlib.height, dlib_ref.height);
            EXPECT_EQ(as_vector(clip_at_image_borders(dlib, width, height)),
                      face.at("rec").at("crop_xywh").get<std::vector<int64_t>>());
            ++faces;
        }
    }
    EXPECT_GT(faces, 0);
}

// The whole chain from the stored pixels, as faceapi.detectAllFaces(...).withFaceLandmarks()
// .withFaceExpressions().withFaceDescriptors() runs it, on the first image of the fixture.
TEST(FaceApi, ChainReproducesTheLibraryOnAFixtureImage) {
    SKIP_WITHOUT_FIXTURE();
    SKIP_WITHOUT_MODELS();
    const auto config = read_json(fixture_dir() / "config.json");
    const auto name = config.at("images").at(0).get<std::string>();
    const auto record = read_json(fixture_dir() / "faceapi" / (name + ".json"));
    const auto image = fixture_image(name);

    FaceApi api;
    const auto detections = api.detect_ssd(image);
    const auto& faces = record.at("faces");
    ASSERT_EQ(detections.size(), faces.size());
    const auto landmarks = api.landmarks68(image, detections);
    for (size_t k = 0; k < detections.size(); ++k) {
        SCOPED_TRACE(name + " face " + std::to_string(k));
        const auto& face = faces[k];
        const Box ref = box_of(face.at("detection").at("box"));
        EXPECT_NEAR(detections[k].x, ref.x, 0.05);
        EXPECT_NEAR(detections[k].y, ref.y, 0.05);
        EXPECT_NEAR(detections[k].width, ref.width, 0.05);
        EXPECT_NEAR(detections[k].height, ref.height, 0.05);
        EXPECT_NEAR(detections[k].score, face.at("detection").at("score").get<double>(), 1e-4);

        const auto points = landmarks[static_cast<int64_t>(k)];
        const auto points_ref = points_of(face.at("lm68").at("points"));
        EXPECT_LT((points - points_ref).abs().max().item<double>(), 0.05);

        const auto expression_result = api.expression(image, points);
        ASSERT_EQ(expression_result.probabilities.sizes(), torch::IntArrayRef({7}));
        ASSERT_EQ(expression_result.features.sizes(), torch::IntArrayRef({256}));
        for (size_t e = 0; e < kExpressionLabels.size(); ++e) {
            EXPECT_NEAR(expression_result.probabilities[static_cast<int64_t>(e)].item<double>(),
                        face.at("expr").at("expressions").at(kExpressionLabels[e]).get<double>(),
                        1e-4)
                << kExpressionLabels[e];
        }

        const auto descriptor_ref = torch::tensor(
            face.at("rec").at("descriptor").get<std::vector<double>>(), torch::kFloat64);
        const auto d = api.descriptor(image, points).to(torch::kFloat64);
        EXPECT_TRUE(torch::allclose(d, descriptor_ref, 1e-4, 1e-4))
            << "max |diff| " << (d - descriptor_ref).abs().max().item<double>();
    }
    // The batched forms give the per-face results.
    const auto batched = api.descriptor(image, landmarks);
    ASSERT_EQ(batched.size(0), static_cast<int64_t>(detections.size()));
    EXPECT_TRUE(torch::allclose(batched[0], api.descriptor(image, landmarks[0]), 1e-5, 1e-5));
}

TEST(FaceApi, TinyDetectorTakesAnyMultipleOf32) {
    SKIP_WITHOUT_MODELS();
    FaceApi api;
    torch::NoGradGuard no_grad;
    const auto x = torch::zeros({1, 3, 320, 320});
    EXPECT_EQ(api.tiny_face_detector()->forward(x).sizes(), torch::IntArrayRef({1, 25, 10, 10}));
    const auto image = torch::full({100, 160, 3}, 128, torch::kUInt8);
    EXPECT_NO_THROW(api.detect_tiny(image, 128));
    EXPECT_THROW(api.detect_tiny(image, 100), Error);
    EXPECT_EQ(api.landmark_net(true)->config().blocks, 3);
    EXPECT_EQ(api.landmark_net(true)->config().channels, 128);
    EXPECT_EQ(api.landmark_net(false)->config().convs_per_block, 4);
}

// The descriptor and the expression feature are meant as training losses: gradients must reach
// the image pixels, and the frozen weights must not collect any.
TEST(FaceApi, GradientsReachThePixels) {
    SKIP_WITHOUT_MODELS();
    FaceApi api;
    torch::manual_seed(3);
    auto image = (torch::rand({180, 160, 3}) * 255).requires_grad_(true);
    // The points only place the crops: eyes at y 70, the mouth at y 120, the rest in between.
    auto points = torch::full({68, 2}, 80.0, torch::kFloat64);
    points.slice(0, 36, 42).select(1, 0).fill_(60.0);
    points.slice(0, 42, 48).select(1, 0).fill_(100.0);
    points.slice(0, 36, 48).select(1, 1).fill_(70.0);
    points.slice(0, 48, 68).select(1, 1).fill_(120.0);

    const auto descriptor = api.descriptor(image, points);
    const auto expression_result = api.expression(image, points);
    const auto landmarks = api.landmarks68(image, Detection{20.5f, 10.25f, 120.f, 150.f, 1.f});
    const auto loss = descriptor.pow(2).sum() + expression_result.features.sum() +
                      landmarks.sum().to(torch::kFloat32);
    loss.backward();
    ASSERT_TRUE(image.grad().defined());
    EXPECT_TRUE(torch::isfinite(image.grad()).all().item<bool>());
    EXPECT_GT(image.grad().abs().sum().item<double>(), 0.0);
    for (const auto& p : api.recognition_net()->parameters()) {
        EXPECT_FALSE(p.requires_grad());
        EXPECT_FALSE(p.grad().defined());
    }
}

TEST(FaceApi, BadInputsAreErrors) {
    FaceApi api;
    const auto grey = torch::zeros({64, 64}, torch::kUInt8);
    const auto rgba = torch::zeros({64, 64, 4}, torch::kUInt8);
    const auto empty = torch::zeros({0, 64, 3}, torch::kUInt8);
    EXPECT_THROW(api.detect_tiny(grey), Error);
    EXPECT_THROW(api.detect_ssd(rgba), Error);
    EXPECT_THROW(api.detect_tiny(empty), Error);
    const auto image = torch::zeros({64, 64, 3}, torch::kUInt8);
    EXPECT_THROW(api.detect_tiny(image, 0), Error);
    // A box with no pixel inside the image.
    EXPECT_THROW(api.landmarks68(image, Detection{100, 100, 20, 20, 1}), Error);
    EXPECT_THROW(api.descriptor(image, torch::zeros({5, 2})), Error);
    EXPECT_THROW(api.expression(image, torch::zeros({68})), Error);
    EXPECT_THROW(to_batch_tensor(torch::zeros({3, 64, 64}), 112, true), Error);
    if (have_models()) {
        EXPECT_THROW(api.recognition_net()->forward(torch::zeros({1, 3, 112, 112})), Error);
        EXPECT_THROW(api.ssd_mobilenetv1()->forward(torch::zeros({3, 512, 512})), Error);
    }
}

TEST(FaceApi, NonMaxSuppressionKeepsTheBestOfOverlappingBoxes) {
    const std::vector<std::array<double, 4>> boxes{
        {0, 0, 10, 10}, {1, 1, 11, 11}, {20, 20, 30, 30}, {0, 0, 10, 10.5}};
    const std::vector<double> scores{0.8, 0.9, 0.7, 0.6};
    EXPECT_EQ(non_max_suppression(boxes, scores, 0.4), (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(non_max_suppression(boxes, scores, 0.4, 1), (std::vector<int64_t>{1}));
    EXPECT_EQ(non_max_suppression(boxes, scores, 0.99), (std::vector<int64_t>{1, 0, 2, 3}));
    EXPECT_EQ(reshaped_dimensions(675, 960, 416), (std::pair<int64_t, int64_t>{293, 416}));
}

}  // namespace
}  // namespace avatar::face::faceapi
