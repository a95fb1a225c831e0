// The face_models fixture cases of the human / MediaPipe models and the identity pairs case.
// Everything is driven by the case specs and the per-image JSON files: image names, face counts
// and face indices come from the fixture, never from this file.
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/reference_check.h"
#include "face/human/attributes.h"
#include "face/human/blazeface.h"
#include "face/human/facemesh.h"
#include "face/human/match.h"
#include "face/human/models.h"
#include "face/human/pipeline.h"
#include "face/human/segmentation.h"
#include "face/registration.h"
#include "metrics/benchmark.h"

namespace avatar::face {
namespace {
using nlohmann::json;
using namespace avatar::face::human;

constexpr const char* kFixture = "face_models";

std::string spec_name(const json& spec) {
    return spec.value("name", std::string("(unnamed case)"));
}

// "integer outputs may differ by 1 in at most the given fraction of entries".
OutputCheck compare_integers(const std::string& name, const torch::Tensor& actual,
                             const torch::Tensor& expected, double atol, double fraction) {
    OutputCheck c = compare(name, actual, expected, Tolerance{atol, 0.0});
    if (!actual.defined() || actual.sizes() != expected.sizes() || expected.numel() == 0)
        return c;
    const auto diff =
        (actual.to(torch::kCPU, torch::kFloat64) - expected.to(torch::kCPU, torch::kFloat64)).abs();
    const int64_t off = diff.gt(0).sum().item<int64_t>();
    const double allowed = fraction * static_cast<double>(expected.numel());
    const bool fraction_ok = static_cast<double>(off) <= allowed;
    c.note = std::to_string(off) + " of " + std::to_string(expected.numel()) +
             " entries differ (at most " + std::to_string(static_cast<int64_t>(allowed)) +
             " may differ by <= " + std::to_string(static_cast<int64_t>(atol)) + ")";
    if (!fraction_ok) {
        c.passed = false;
        c.elements_failing = std::max<int64_t>(c.elements_failing, off);
    }
    return c;
}

// CaseChecker plus the fixture's non-standard rules ("exact", integer off-by-one fractions).
class Checks {
public:
    Checks(const ReferenceFixture& fixture, const json& spec) : spec_(spec), io_(fixture, spec) {}

    torch::Tensor input(const std::string& name) const { return io_.input(name); }
    torch::Tensor reference(const std::string& key) const { return io_.reference(key); }
    const json& spec() const { return spec_; }

    // The tolerance entry of an output: the flat object, or the per-output one.
    const json* tolerance_entry(const std::string& label) const {
        const auto& t = spec_.at("tolerance");
        if (t.is_object() && t.contains(label))
            return &t[label];
        if (t.is_object() && (t.contains("atol") || t.contains("rtol")))
            return &t;
        return nullptr;
    }

    void output(const std::string& label, const torch::Tensor& actual) {
        const auto& outputs = spec_.at("outputs");
        check(outputs.contains(label), spec_name(spec_), "the case has no output '" + label + "'");
        const auto expected = reference(outputs[label].get<std::string>());
        check_against(label, actual, expected, tolerance_entry(label));
    }

    void check_against(const std::string& label, const torch::Tensor& actual,
                       const torch::Tensor& expected, const json* tol) {
        if (tol != nullptr && tol->is_string() && tol->get<std::string>() == "exact") {
            checks_.push_back(compare(label, actual, expected, Tolerance{0.0, 0.0}));
        } else if (tol != nullptr && tol->is_object() && tol->contains("max_fraction_off_by_one")) {
            checks_.push_back(compare_integers(label, actual, expected, tol->value("atol", 1.0),
                                               (*tol)["max_fraction_off_by_one"].get<double>()));
        } else {
            checks_.push_back(compare(label, actual, expected, tolerance_for(spec_, label)));
        }
    }

    void add(OutputCheck c) { checks_.push_back(std::move(c)); }
    std::vector<OutputCheck> results() const { return checks_; }

private:
    const json& spec_;
    CaseChecker io_;
    std::vector<OutputCheck> checks_;
};

std::optional<Model> model_of(const std::string& model) {
    static const std::map<std::string, Model> kModels{{"human.blazeface", Model::kBlazeFace},
                                                      {"human.facemesh", Model::kFaceMesh},
                                                      {"human.iris", Model::kIris},
                                                      {"human.emotion", Model::kEmotion},
                                                      {"human.faceres", Model::kFaceRes},
                                                      {"human.selfie", Model::kSelfie},
                                                      {"human.meet", Model::kMeet}};
    const auto it = kModels.find(model);
    if (it == kModels.end())
        return std::nullopt;
    return it->second;
}

Segmenter segmenter_of(const json& spec) {
    return spec.at("model").get<std::string>() == "human.selfie" ? Segmenter::kSelfie
                                                                 : Segmenter::kMeet;
}

// The per-image JSON beside the case's safetensors file (human/<img>.json).
const json& image_json(const ReferenceFixture& fixture, const json& spec) {
    static std::mutex mutex;
    static std::map<std::string, json> cache;
    auto file = spec.at("file").get<std::string>();
    const auto dot = file.rfind(".safetensors");
    check(dot != std::string::npos, spec_name(spec), "case file is not a .safetensors file");
    const auto path = (fixture.dir() / (file.substr(0, dot) + ".json")).string();
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(path);
    if (it == cache.end()) {
        json parsed;
        try {
            parsed = json::parse(read_text_file(path));
        } catch (const json::exception& e) {
            throw Error(path, std::string("invalid JSON: ") + e.what());
        }
        it = cache.emplace(path, std::move(parsed)).first;
    }
    return it->second;
}

std::pair<int64_t, int64_t> image_hw(const ReferenceFixture& fixture, const json& spec) {
    const auto& inputs = spec.at("inputs");
    if (inputs.contains("image_hw") && inputs["image_hw"].is_array())
        return {inputs["image_hw"][0].get<int64_t>(), inputs["image_hw"][1].get<int64_t>()};
    const auto& shape = image_json(fixture, spec).at("image_shape");
    return {shape[0].get<int64_t>(), shape[1].get<int64_t>()};
}

// A normalised [y1, x1, y2, x2] box back to the integer box (round(v * size)).
Box box_from_norm(const torch::Tensor& yxyx, double height, double width) {
    const auto v = yxyx.to(torch::kFloat64).reshape({-1});
    return {std::round(v[1].item<double>() * width), std::round(v[0].item<double>() * height),
            std::round(v[3].item<double>() * width), std::round(v[2].item<double>() * height)};
}

torch::Tensor norm_yxyx(const Box& b, double height, double width) {
    return torch::tensor({static_cast<float>(b.y1 / height), static_cast<float>(b.x1 / width),
                          static_cast<float>(b.y2 / height), static_cast<float>(b.x2 / width)});
}

// ---- runners -------------------------------------------------------------------------------

std::vector<OutputCheck> run_net(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto& net = model(*model_of(spec.at("model").get<std::string>()));
    std::vector<torch::Tensor> inputs;
    for (const auto& name : net.input_names())
        inputs.push_back(io.input(name));
    const auto outputs = net.run(inputs);
    for (const auto& [label, key] : spec.at("outputs").items()) {
        (void)key;
        size_t index = 0;
        if (outputs.size() > 1)
            index = net.output_index(label);
        io.output(label, outputs[index]);
    }
    return io.results();
}

std::vector<OutputCheck> run_blazeface_preprocess(const ReferenceFixture& fixture,
                                                  const json& spec) {
    Checks io(fixture, spec);
    io.output("x", blazeface_preprocess(io.input("image")));
    return io.results();
}

std::vector<OutputCheck> run_blazeface_decode(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto d = blazeface_decode(io.input("Identity"), io.input("Identity_1"),
                                    io.input("Identity_2"), io.input("Identity_3"));
    io.output("batch", d.batch);
    io.output("anchors", d.anchors);
    io.output("boxes_x1y1x2y2_256px", d.boxes);
    io.output("scores", d.scores);
    return io.results();
}

BlazeFaceOptions detector_options(const json& params) {
    BlazeFaceOptions o;
    o.max_detected = params.value("maxDetected", o.max_detected);
    o.iou_threshold = params.value("iouThreshold", o.iou_threshold);
    o.min_confidence = params.value("minConfidence", o.min_confidence);
    o.scale = params.value("scale", o.scale);
    return o;
}

std::vector<OutputCheck> run_blazeface_detect(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto image = io.input("image");
    const int64_t h = image.size(0), w = image.size(1);
    const auto detections =
        detect_blazeface(image, detector_options(spec.value("params", json::object())));
    const auto n = static_cast<int64_t>(detections.size());
    auto indices = torch::empty({n}, torch::kInt32);
    auto rois = torch::empty({n, 4}, torch::kFloat32);
    auto keypoints = torch::empty({n, 6, 2}, torch::kFloat64);
    auto boxes = torch::empty({n, 4}, torch::kInt32);
    for (int64_t i = 0; i < n; ++i) {
        const auto& d = detections[static_cast<size_t>(i)];
        indices[i] = d.anchor;
        rois[i] = norm_yxyx(d.roi, static_cast<double>(h), static_cast<double>(w));
        for (int64_t k = 0; k < 6; ++k) {
            keypoints[i][k][0] = d.keypoints[static_cast<size_t>(k)][0];
            keypoints[i][k][1] = d.keypoints[static_cast<size_t>(k)][1];
        }
        for (int64_t j = 0; j < 4; ++j)
            boxes[i][j] = d.box_xywh[static_cast<size_t>(j)];
    }
    io.output("nms_indices", indices);
    io.output("roi_crop_norm_yxyx", rois);
    io.output("keypoints6_px", keypoints);
    io.output("box_xywh_int", boxes);
    return io.results();
}

std::vector<OutputCheck> run_facemesh_preprocess(const ReferenceFixture& fixture,
                                                 const json& spec) {
    Checks io(fixture, spec);
    io.output("x", facemesh_preprocess_norm(io.input("image"), io.input("crop_norm_yxyx")));
    return io.results();
}

std::vector<OutputCheck> run_facemesh_to_image(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto [h, w] = image_hw(fixture, spec);
    const auto roi =
        box_from_norm(io.input("crop_norm_yxyx"), static_cast<double>(h), static_cast<double>(w));
    const auto raw = io.input("output_mesh").reshape({-1, 3});
    const auto ints = facemesh_to_image(raw, roi, true);
    io.output("mesh468_px_int", ints);
    io.output("mesh468_raw",
              ints / torch::tensor({static_cast<double>(w), static_cast<double>(h), 192.0},
                                   torch::kFloat64));
    return io.results();
}

std::vector<OutputCheck> run_iris_preprocess(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto boxes_norm = io.input("crop_norm_yxyx");
    std::array<Box, 2> boxes;
    for (int64_t eye = 0; eye < 2; ++eye)
        boxes[static_cast<size_t>(eye)] = box_from_norm(boxes_norm[eye], 192, 192);
    // human 3.3.6 flips both eye crops (the fixture's iris_crop_flipped).
    io.output("x", iris_preprocess(io.input("face192"), boxes, {true, true}));
    return io.results();
}

std::vector<OutputCheck> run_mesh478_to_image(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto [h, w] = image_hw(fixture, spec);
    const auto roi =
        box_from_norm(io.input("crop_norm_yxyx"), static_cast<double>(h), static_cast<double>(w));
    const auto raw = io.input("output_mesh").reshape({-1, 3});
    const auto eye_boxes = iris_eye_boxes(raw);
    // Our eye boxes against the library's (an input of the case).
    const auto expected_boxes = io.input("iris_crop_norm_yxyx");
    auto ours =
        torch::stack({norm_yxyx(eye_boxes[0], 192, 192), norm_yxyx(eye_boxes[1], 192, 192)});
    io.add(compare("eye boxes (iris_crop_norm_yxyx)", ours, expected_boxes, Tolerance{1e-6, 0}));
    const std::array<EyeCrop, 2> eyes{EyeCrop{eye_boxes[0], true}, EyeCrop{eye_boxes[1], true}};
    const auto r = iris_augment(raw, io.input("iris_raw"), eyes, IrisMode::kLibrary);
    io.output("mesh478_px_int", facemesh_to_image(r.raw478, roi, true));
    return io.results();
}

std::vector<OutputCheck> run_segmentation_preprocess(const ReferenceFixture& fixture,
                                                     const json& spec) {
    Checks io(fixture, spec);
    io.output("x", segmentation_preprocess(io.input("image"), segmenter_of(spec)));
    return io.results();
}

std::vector<OutputCheck> run_segmentation_alpha(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto [h, w] = image_hw(fixture, spec);
    io.output("alpha_u8", segmentation_alpha_library(io.input("raw"), segmenter_of(spec), h, w));
    return io.results();
}

// ---- the human pipeline (run C) -------------------------------------------------------------

HumanOptions pipeline_options(const json& image_json_doc) {
    HumanOptions o;
    o.iris_mode = IrisMode::kLibrary;
    if (!image_json_doc.contains("full") || !image_json_doc["full"].contains("config"))
        return o;
    const auto& c = image_json_doc["full"]["config"];
    if (c.contains("detector"))
        o.detector = detector_options(c["detector"]);
    auto enabled = [&](const char* key, bool fallback) {
        return c.contains(key) ? c[key].value("enabled", fallback) : fallback;
    };
    o.mesh = enabled("mesh", o.mesh);
    o.iris = enabled("iris", o.iris);
    o.emotion = enabled("emotion", o.emotion);
    o.description = enabled("description", o.description);
    if (c.contains("emotion"))
        o.emotion_min_confidence = c["emotion"].value("minConfidence", o.emotion_min_confidence);
    if (c.contains("description"))
        o.description_min_confidence =
            c["description"].value("minConfidence", o.description_min_confidence);
    return o;
}

const std::vector<HumanFace>& pipeline_result(const ReferenceFixture& fixture, const json& spec,
                                              const torch::Tensor& image) {
    static std::mutex mutex;
    static std::map<std::string, std::vector<HumanFace>> cache;
    const auto key = (fixture.dir() / spec.at("inputs").at("image").get<std::string>()).string();
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it == cache.end())
        it = cache.emplace(key, human_detect(image, pipeline_options(image_json(fixture, spec))))
                 .first;
    return it->second;
}

OutputCheck equal_check(const std::string& name, bool equal, const std::string& note) {
    OutputCheck c;
    c.name = name;
    c.passed = equal;
    c.elements_failing = equal ? 0 : 1;
    c.max_abs_error = equal ? 0.0 : std::numeric_limits<double>::infinity();
    c.worst_ratio = equal ? 0.0 : std::numeric_limits<double>::infinity();
    c.note = note;
    return c;
}

torch::Tensor doubles(const std::vector<double>& v) {
    return torch::tensor(v, torch::kFloat64);
}

std::vector<OutputCheck> run_pipeline(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto image = io.input("image");
    const auto& faces = pipeline_result(fixture, spec, image);
    const auto json_ref = spec.at("outputs").at("json").get<std::string>();
    // "human/<img>.json faces[K].runC (field, field, ...)"
    static const std::regex pattern(R"(faces\[(\d+)\]\.(\w+)\s*\(([^)]*)\))");
    std::smatch m;
    check(std::regex_search(json_ref, m, pattern), spec_name(spec),
          "cannot parse the json output reference '" + json_ref + "'");
    const auto k = static_cast<size_t>(std::stoul(m[1].str()));
    const auto run = m[2].str();
    std::vector<std::string> fields;
    {
        std::stringstream ss(m[3].str());
        std::string f;
        while (std::getline(ss, f, ',')) {
            f.erase(0, f.find_first_not_of(' '));
            f.erase(f.find_last_not_of(' ') + 1);
            if (!f.empty())
                fields.push_back(f);
        }
    }
    const auto& doc = image_json(fixture, spec);
    check(doc.contains("faces") && k < doc["faces"].size(), spec_name(spec),
          "the image's json has no faces[" + std::to_string(k) + "]");
    const auto& ref = doc["faces"][k].at(run);
    io.add(equal_check("face count", faces.size() == doc["faces"].size(),
                       "ours " + std::to_string(faces.size()) + ", reference " +
                           std::to_string(doc["faces"].size())));
    if (k >= faces.size())
        return io.results();
    const auto& f = faces[k];
    const Tolerance rounded{1e-9, 0.0};  // values the library rounds: compared after the same
    for (const auto& field : fields) {
        const std::string label = "json." + field;
        if (field == "box") {
            std::vector<double> ours(f.box.begin(), f.box.end());
            io.add(compare_integers(label, doubles(ours),
                                    doubles(ref.at("box").get<std::vector<double>>()), 1.0, 0.01));
        } else if (field == "score") {
            io.add(compare(label, doubles({f.score}), doubles({ref.at("score").get<double>()}),
                           rounded));
        } else if (field == "age") {
            const bool ours_present =
                f.attributes && !std::isnan(f.attributes->age) && f.attributes->age != 0;
            if (!ref.contains("age") || !ours_present) {
                io.add(equal_check(label, ref.contains("age") == ours_present,
                                   "age present: ours " + std::to_string(ours_present) +
                                       ", reference " + std::to_string(ref.contains("age"))));
            } else {
                io.add(compare(label, doubles({f.attributes->age}),
                               doubles({ref["age"].get<double>()}), rounded));
            }
        } else if (field == "gender") {
            const std::string ours = f.attributes ? f.attributes->gender : "unknown";
            const std::string theirs = ref.value("gender", "unknown");
            io.add(equal_check(label, ours == theirs, "ours " + ours + ", reference " + theirs));
        } else if (field == "genderScore") {
            const double ours = f.attributes ? f.attributes->gender_score : 0.0;
            io.add(
                compare(label, doubles({ours}), doubles({ref.value("genderScore", 0.0)}), rounded));
        } else if (field == "emotion") {
            const auto& theirs = ref.value("emotion", json::array());
            bool labels_equal = theirs.size() == f.emotion.size();
            std::vector<double> ours_scores, their_scores;
            std::string ours_text, their_text;
            for (size_t i = 0; i < f.emotion.size(); ++i) {
                ours_text += f.emotion[i].emotion + " ";
                ours_scores.push_back(f.emotion[i].score);
            }
            for (size_t i = 0; i < theirs.size(); ++i) {
                their_text += theirs[i].at("emotion").get<std::string>() + " ";
                their_scores.push_back(theirs[i].at("score").get<double>());
                if (labels_equal)
                    labels_equal = theirs[i]["emotion"].get<std::string>() == f.emotion[i].emotion;
            }
            io.add(equal_check(label + " labels", labels_equal,
                               "ours [" + ours_text + "], reference [" + their_text + "]"));
            if (labels_equal)
                io.add(compare(label + " scores", doubles(ours_scores), doubles(their_scores),
                               rounded));
        } else if (field == "rotation") {
            check(f.rotation.has_value() && ref.contains("rotation"), spec_name(spec),
                  "rotation missing");
            const auto& r = *f.rotation;
            const auto& rr = ref["rotation"];
            std::vector<double> ours{r.pitch, r.yaw, r.roll, r.gaze_bearing, r.gaze_strength};
            std::vector<double> theirs{
                rr["angle"]["pitch"].get<double>(), rr["angle"]["yaw"].get<double>(),
                rr["angle"]["roll"].get<double>(), rr["gaze"]["bearing"].get<double>(),
                rr["gaze"]["strength"].get<double>()};
            ours.insert(ours.end(), r.matrix.begin(), r.matrix.end());
            for (const auto& v : rr["matrix"])
                theirs.push_back(v.get<double>());
            // Derived in float64 from the integer mesh: equal up to rounding.
            io.add(compare(label + " (pitch, yaw, roll, gaze, matrix)", doubles(ours),
                           doubles(theirs), Tolerance{1e-9, 0.0}));
        } else if (field == "distance") {
            io.add(compare(label, doubles({f.distance}), doubles({ref.value("distance", 0.0)}),
                           rounded));
        } else {
            io.add(equal_check(label, false, "field not implemented by our runner"));
        }
    }
    if (spec.at("outputs").contains("embedding")) {
        check(f.faceres.has_value(), spec_name(spec), "no FaceRes output");
        io.output("embedding", f.faceres->embedding);
    }
    if (spec.at("outputs").contains("mesh478_px_int")) {
        // Same kind of output as the mesh478.to_image cases: truncated integers.
        const json tol{{"atol", 1}, {"max_fraction_off_by_one", 0.01}};
        io.check_against("mesh478_px_int", f.mesh_int,
                         io.reference(spec["outputs"]["mesh478_px_int"].get<std::string>()), &tol);
    }
    return io.results();
}

// ---- identity pairs ---------------------------------------------------------------------------

std::vector<OutputCheck> run_identity_pairs(const ReferenceFixture& fixture, const json& spec) {
    Checks io(fixture, spec);
    const auto faceapi = io.input("faceapi_descriptors");
    const auto faceres = io.input("faceres_embeddings");
    const auto& outputs = spec.at("outputs");
    auto pairwise = [](const torch::Tensor& d,
                       const std::function<double(const torch::Tensor&, const torch::Tensor&)>& f) {
        const int64_t n = d.size(0);
        auto out = torch::empty({n, n}, torch::kFloat64);
        for (int64_t i = 0; i < n; ++i) {
            for (int64_t j = 0; j < n; ++j)
                out[i][j] = f(d[i], d[j]);
        }
        return out;
    };
    for (const auto& [label, key] : outputs.items()) {
        (void)key;
        torch::Tensor actual;
        if (label == "faceapi_cosine")
            actual = cosine_matrix(faceapi);
        else if (label == "faceapi_euclidean")
            actual = euclidean_matrix(faceapi);
        else if (label == "faceres_cosine")
            actual = cosine_matrix(faceres);
        else if (label == "faceres_euclidean")
            actual = euclidean_matrix(faceres);
        else if (label == "faceres_cosine_meancentred")
            actual = cosine_meancentred_matrix(faceres);
        else if (label == "faceapi_lib_euclideanDistance")
            actual = pairwise(faceapi, [](const torch::Tensor& a, const torch::Tensor& b) {
                return faceapi_euclidean_distance(a, b);
            });
        else if (label == "human_lib_match_distance")
            actual = pairwise(faceres, [](const torch::Tensor& a, const torch::Tensor& b) {
                return human_match_distance(a, b);
            });
        else if (label == "human_lib_match_similarity")
            actual = pairwise(faceres, [](const torch::Tensor& a, const torch::Tensor& b) {
                return human_match_similarity(a, b);
            });
        // The fixture stores every matrix as float32 (computed in float64): compare our float64
        // values after the same conversion (distances reach thousands, where a float32 step is
        // larger than the tolerance).
        io.output(label, actual.to(torch::kFloat32));
    }
    return io.results();
}

// ---- matching -------------------------------------------------------------------------------

std::function<bool(const json&)> case_of(std::string model, std::string kind,
                                         std::string output = "") {
    return [model = std::move(model), kind = std::move(kind),
            output = std::move(output)](const json& spec) {
        if (spec.value("model", "") != model || spec.value("kind", "") != kind)
            return false;
        return output.empty() || (spec.contains("outputs") && spec["outputs"].is_object() &&
                                  spec["outputs"].contains(output));
    };
}

void register_benchmarks() {
    auto& benches = metrics::BenchmarkRegistry::instance();
    struct NetBench {
        const char* name;
        Model model;
        std::vector<int64_t> shape;
        const char* what;
    };
    for (const auto& b : std::vector<NetBench>{
             {"human.blazeface", Model::kBlazeFace, {1, 256, 256, 3}, "BlazeFace net, one frame"},
             {"human.facemesh", Model::kFaceMesh, {1, 192, 192, 3}, "FaceMesh net, one face"},
             {"human.iris", Model::kIris, {2, 64, 64, 3}, "Iris net, both eyes of one face"},
             {"human.emotion", Model::kEmotion, {1, 64, 64, 1}, "Emotion net, one face"},
             {"human.faceres", Model::kFaceRes, {1, 224, 224, 3}, "FaceRes net, one face"},
             {"human.selfie", Model::kSelfie, {1, 256, 256, 3}, "Selfie segmentation net"},
             {"human.meet", Model::kMeet, {1, 144, 256, 3}, "Meet segmentation net"}}) {
        const auto which = b.model;
        const auto shape = b.shape;
        benches.add({b.name, b.what, "frame",
                     [which, shape] {
                         const auto& net = model(which);
                         const auto x = torch::rand(shape);
                         return std::function<void()>([&net, x] {
                             torch::NoGradGuard no_grad;
                             net.run(x);
                         });
                     },
                     std::nullopt});
    }
    benches.add({"human.track",
                 "FaceMesh + Iris on one face of a 640x480 frame, ROI given (crop, "
                 "both nets, mapping): a tracker's per-frame step",
                 "frame",
                 [] {
                     const auto frame = (torch::rand({480, 640, 3}) * 255).to(torch::kUInt8);
                     const Box roi{200, 100, 392, 292};
                     return std::function<void()>([frame, roi] { iris(facemesh(frame, roi)); });
                 },
                 std::nullopt});
}

}  // namespace

void register_human() {
    register_benchmarks();
    auto& r = ReferenceRegistry::instance();
    auto add = [&](std::string description, std::function<bool(const json&)> matches,
                   CaseRunner run) {
        r.add({kFixture, std::move(description), std::move(matches), std::move(run)});
    };
    for (const char* m : {"human.blazeface", "human.facemesh", "human.iris", "human.emotion",
                          "human.faceres", "human.selfie", "human.meet"}) {
        add(std::string("nn::tfjs::GraphModel(") + m + ")", case_of(m, "net"), run_net);
    }
    add("face::human::blazeface_preprocess", case_of("human.blazeface", "preprocess"),
        run_blazeface_preprocess);
    add("face::human::blazeface_decode", case_of("human.blazeface", "postprocess"),
        run_blazeface_decode);
    add("face::human::detect_blazeface", case_of("human.blazeface", "pipeline"),
        run_blazeface_detect);
    add("face::human::facemesh_preprocess", case_of("human.facemesh", "preprocess"),
        run_facemesh_preprocess);
    add("face::human::facemesh_to_image", case_of("human.facemesh", "postprocess"),
        run_facemesh_to_image);
    add("face::human::iris_preprocess (library flips)", case_of("human.iris", "preprocess"),
        run_iris_preprocess);
    add("face::human::iris_augment (IrisMode::kLibrary)",
        case_of("human.facemesh+iris", "postprocess"), run_mesh478_to_image);
    for (const char* m : {"human.selfie", "human.meet"}) {
        add("face::human::segmentation_preprocess", case_of(m, "preprocess"),
            run_segmentation_preprocess);
        add("face::human::segmentation_alpha_library", case_of(m, "postprocess"),
            run_segmentation_alpha);
    }
    add("face::human::human_detect (run C)", case_of("human.pipeline", "pipeline"), run_pipeline);
    add("face::human identity metrics", case_of("faceapi.face_recognition+human.faceres", "metric"),
        run_identity_pairs);
}

}  // namespace avatar::face
