// The face-api cases of the face_models fixture (shared/reference/face_models, README §4): every
// case whose model is one of the six face-api nets, driven entirely by the case specs (inputs,
// outputs, params, tolerances) and the per-image JSON they point to, so that a twin fixture with
// other images runs unchanged.
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "core/error.h"
#include "core/reference_check.h"
#include "face/faceapi/faceapi.h"
#include "face/registration.h"
#include "metrics/benchmark.h"

namespace avatar::face {
namespace {
using nlohmann::json;
using namespace faceapi;

const char* const kFixture = "face_models";

std::string case_name(const json& spec) {
    return spec.value("name", std::string("(unnamed case)"));
}

// The nets of the parity runs: the shared CPU instance, so each is loaded once per process.
FaceApi& nets() {
    return default_faceapi();
}

// ---- inputs that are not tensors --------------------------------------------------------------

// "dir/file.json faces[0].detection.box" -> that JSON value (files cached per fixture folder).
const json& json_reference(const ReferenceFixture& fixture, const std::string& reference) {
    static std::mutex mutex;
    static std::map<std::string, json> files;
    const auto space = reference.find(' ');
    check(space != std::string::npos, reference, "expected '<file>.json <path>'");
    const auto path = fixture.dir() / reference.substr(0, space);
    const std::lock_guard<std::mutex> lock(mutex);
    auto it = files.find(path.string());
    if (it == files.end()) {
        std::ifstream in(path);
        check(static_cast<bool>(in), path.string(), "cannot open the per-image JSON");
        json parsed = json::parse(in, nullptr, /*allow_exceptions=*/false);
        check(!parsed.is_discarded(), path.string(), "not valid JSON");
        it = files.emplace(path.string(), std::move(parsed)).first;
    }
    // Walk "a.b[2].c": names separated by dots, each optionally followed by [index]s.
    const json* node = &it->second;
    const std::string walk = reference.substr(space + 1);
    size_t pos = 0;
    while (pos < walk.size()) {
        const size_t end = std::min(walk.find('.', pos), walk.size());
        const std::string token = walk.substr(pos, end - pos);
        const size_t bracket = std::min(token.find('['), token.size());
        const std::string key = token.substr(0, bracket);
        if (!key.empty()) {
            check(node->is_object() && node->contains(key), reference, "no member '" + key + "'");
            node = &(*node)[key];
        }
        for (size_t b = bracket; b < token.size();) {
            const size_t close = token.find(']', b);
            check(token[b] == '[' && close != std::string::npos, reference, "bad index in path");
            const size_t index = std::stoul(token.substr(b + 1, close - b - 1));
            check(node->is_array() && index < node->size(), reference, "index out of range");
            node = &(*node)[index];
            b = close + 1;
        }
        pos = end + 1;
    }
    return *node;
}

Box json_box(const json& value, const std::string& subject) {
    check(value.is_object() && value.contains("x") && value.contains("y") &&
              value.contains("width") && value.contains("height"),
          subject, "expected a box {x, y, width, height}");
    return {value["x"].get<double>(), value["y"].get<double>(), value["width"].get<double>(),
            value["height"].get<double>()};
}

std::string input_reference(const json& spec, const std::string& name) {
    const auto& inputs = spec.at("inputs");
    check(inputs.contains(name) && inputs[name].is_string(), case_name(spec),
          "the case has no input '" + name + "'");
    return inputs[name].get<std::string>();
}

CropRect crop_input(const CaseChecker& io, const std::string& name) {
    const auto t = io.input(name).to(torch::kInt64).flatten();
    check(t.numel() == 4, name, "expected a crop [x, y, width, height]");
    return {t[0].item<int64_t>(), t[1].item<int64_t>(), t[2].item<int64_t>(), t[3].item<int64_t>()};
}

// A stored image [H, W, 3]; the detectors need its size only.
torch::Tensor image_input(const CaseChecker& io) {
    auto image = io.input("image");
    check_image(image, "fixture image");
    return image;
}

double param(const json& spec, const std::string& name) {
    const auto& params = spec.at("params");
    check(params.contains(name) && params[name].is_number(), case_name(spec),
          "the case has no numeric param '" + name + "'");
    return params[name].get<double>();
}

// ---- detections -------------------------------------------------------------------------------

// The detection cases' tolerance {"count": "exact", "boxes_atol_px", "scores_atol"}: a different
// number of detections fails (the shapes differ); boxes and scores elementwise; indices exactly.
void check_detections(CaseChecker& io, const json& spec, const std::vector<Detection>& detections,
                      const std::vector<int64_t>* indices) {
    const auto& tolerance = spec.at("tolerance");
    check(tolerance.value("count", std::string()) == "exact", case_name(spec),
          "unsupported detection tolerance: only {\"count\": \"exact\", ...} is known");
    const double boxes_atol = tolerance.at("boxes_atol_px").get<double>();
    const double scores_atol = tolerance.at("scores_atol").get<double>();
    const auto n = static_cast<int64_t>(detections.size());
    auto boxes = torch::empty({n, 4}, torch::kFloat64);
    auto scores = torch::empty({n}, torch::kFloat64);
    for (int64_t i = 0; i < n; ++i) {
        const auto& d = detections[static_cast<size_t>(i)];
        boxes[i] =
            torch::tensor({d.x, d.y, d.width, d.height}, torch::kFloat32).to(torch::kFloat64);
        scores[i] = static_cast<double>(d.score);
    }
    const auto& outputs = spec.at("outputs");
    io.check(outputs.at("boxes_xywh_px").get<std::string>(), boxes, {boxes_atol, 0.0});
    io.check(outputs.at("scores").get<std::string>(), scores, {scores_atol, 0.0});
    if (indices != nullptr) {
        io.check(outputs.at("nms_indices").get<std::string>(),
                 torch::tensor(*indices, torch::kInt64), {0.0, 0.0});
    }
}

// ---- runners ------------------------------------------------------------------------------------

// The NHWC input size a preprocessing case produces, read from its reference output: the size is
// the case's parameter (416 for "tiny416"), the values are what is checked.
int64_t reference_input_size(const CaseChecker& io, const json& spec) {
    const auto ref = io.reference(spec.at("outputs").at("x").get<std::string>());
    check(ref.dim() == 4 && ref.size(1) == ref.size(2), case_name(spec),
          "expected an NHWC square input as the reference");
    return ref.size(1);
}

std::vector<OutputCheck> run_tiny_preprocess(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("x", tiny_detector_input(image_input(io), reference_input_size(io, spec)));
    return io.results();
}

std::vector<OutputCheck> run_tiny_net(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("raw", to_nhwc(nets().tiny_face_detector()->forward(to_nchw(io.input("x")))));
    return io.results();
}

std::vector<OutputCheck> run_tiny_detect(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto image = image_input(io);
    TinyDetectorParams params;
    params.input_size = static_cast<int64_t>(param(spec, "inputSize"));
    params.score_threshold = param(spec, "scoreThreshold");
    params.iou_threshold = param(spec, "iouThreshold");
    const auto detections =
        decode_tiny_detector(io.input("raw"), image.size(1), image.size(0), params);
    check_detections(io, spec, detections, nullptr);
    return io.results();
}

std::vector<OutputCheck> run_ssd_preprocess(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("x", ssd_input(image_input(io)));
    return io.results();
}

std::vector<OutputCheck> run_ssd_net(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto out = nets().ssd_mobilenetv1()->forward(to_nchw(io.input("x")));
    const auto& outputs = spec.at("outputs");
    // The library's box encodings carry an extra unit axis: [N, K, 1, 4].
    const auto box_ref = io.reference(outputs.at("box_encodings").get<std::string>());
    io.output("box_encodings", out.box_encodings.reshape(box_ref.sizes()));
    io.output("class_logits", out.class_logits);
    return io.results();
}

std::vector<OutputCheck> run_ssd_decode(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    // Our anchors are the weight Output/extra_dim; where the fixture also stores a copy
    // ("file.safetensors:key (note)"), it must be identical.
    const auto& anchors = nets().ssd_mobilenetv1()->anchors();
    const auto anchors_ref = input_reference(spec, "anchors");
    const auto stored = anchors_ref.substr(0, anchors_ref.find(' '));
    if (stored.find(".safetensors:") != std::string::npos)
        io.check(stored, anchors, {0.0, 0.0});
    const auto encodings = io.input("box_encodings");
    const auto logits = io.input("class_logits");
    const auto decoded = decode_ssd(encodings.reshape({-1, 4}), logits.reshape({-1, 3}), anchors);
    io.output("decoded_boxes_yxyx", decoded.boxes_yxyx);
    io.output("scores", decoded.scores);
    return io.results();
}

std::vector<OutputCheck> run_ssd_detect(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto image = image_input(io);
    SsdParams params;
    params.min_confidence = param(spec, "minConfidence");
    params.max_results = static_cast<int64_t>(param(spec, "maxResults"));
    params.iou_threshold = param(spec, "iouThreshold");
    const SsdDecoded decoded{io.input("decoded_boxes_yxyx"), io.input("scores")};
    const auto selection = select_ssd_detections(decoded, image.size(1), image.size(0), params);
    check_detections(io, spec, selection.detections, &selection.indices);
    return io.results();
}

// The face nets' preprocessing: slice the stored crop, toBatchTensor(size, centred), normalise.
CaseRunner face_preprocess(int64_t size) {
    return [size](const ReferenceFixture& fixture, const json& spec) {
        CaseChecker io(fixture, spec);
        io.output("x", face_net_input(image_input(io), {crop_input(io, "crop_xywh")}, size));
        return io.results();
    };
}

CaseRunner processor_net(bool tiny_landmarks, bool expression, const std::string& output) {
    return [=](const ReferenceFixture& fixture, const json& spec) {
        CaseChecker io(fixture, spec);
        auto net = expression ? nets().expression_net() : nets().landmark_net(tiny_landmarks);
        io.output(output, net->forward(to_nchw(io.input("x"))));
        return io.results();
    };
}

std::vector<OutputCheck> run_landmark_points(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const auto crop = crop_input(io, "crop_xywh");
    const auto reference = input_reference(spec, "detection_box");
    const Box box = json_box(json_reference(fixture, reference), reference);
    const auto relative = landmarks_relative(io.input("raw").reshape({1, -1}), {crop});
    io.output("relative", relative);
    io.output("points_px", landmarks_to_image(relative[0], crop, box.x, box.y));
    return io.results();
}

std::vector<OutputCheck> run_expression_softmax(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("probs", torch::softmax(io.input("logits"), -1));
    return io.results();
}

std::vector<OutputCheck> run_recognition_net(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    io.output("descriptor", nets().recognition_net()->forward(to_nchw(io.input("x"))));
    return io.results();
}

// ---- matching -----------------------------------------------------------------------------------

// A case of `model` and `kind` whose outputs include `output` (the kind alone does not tell the
// landmark points apart from the other postprocessing cases of the same net).
std::function<bool(const json&)> case_of(std::string model, std::string kind,
                                         std::string output = {}) {
    return [model, kind, output](const json& spec) {
        if (spec.value("model", std::string()) != model ||
            spec.value("kind", std::string()) != kind)
            return false;
        return output.empty() || (spec.contains("outputs") && spec["outputs"].is_object() &&
                                  spec["outputs"].contains(output));
    };
}

void add(const std::string& description, std::function<bool(const json&)> matches, CaseRunner run) {
    ReferenceRegistry::instance().add({kFixture, description, std::move(matches),
                                       [run](const ReferenceFixture& f, const json& s) {
                                           torch::NoGradGuard no_grad;
                                           return run(f, s);
                                       }});
}

// `avatar bench faceapi`: one forward of each net on one preprocessed input, with the real
// weights of the npm package (loaded by the setup, not timed). A random input costs what a face
// costs.
void add_benchmark(const std::string& name, const std::string& description, int64_t size,
                   std::function<std::function<torch::Tensor(const torch::Tensor&)>()> load) {
    metrics::BenchmarkRegistry::instance().add(
        {name, description, "image",
         [size, load] {
             auto forward = load();
             torch::manual_seed(0);
             const auto x = torch::rand({1, 3, size, size}) * 2 - 1;
             return std::function<void()>([forward, x] {
                 torch::NoGradGuard no_grad;
                 forward(x);
             });
         },
         std::nullopt});
}

void register_benchmarks() {
    add_benchmark("faceapi.tiny_face_detector", "TinyFaceDetector at 416x416 (raw grid)", 416, [] {
        auto net = nets().tiny_face_detector();
        return [net](const torch::Tensor& x) mutable { return net->forward(x); };
    });
    add_benchmark("faceapi.ssd_mobilenetv1", "SsdMobilenetV1 at 512x512 (raw heads)", 512, [] {
        auto net = nets().ssd_mobilenetv1();
        return [net](const torch::Tensor& x) mutable { return net->forward(x).class_logits; };
    });
    add_benchmark("faceapi.face_landmark_68", "FaceLandmark68Net on one 112x112 face", 112, [] {
        auto net = nets().landmark_net(false);
        return [net](const torch::Tensor& x) mutable { return net->forward(x); };
    });
    add_benchmark("faceapi.face_landmark_68_tiny", "FaceLandmark68TinyNet on one 112x112 face", 112,
                  [] {
                      auto net = nets().landmark_net(true);
                      return [net](const torch::Tensor& x) mutable { return net->forward(x); };
                  });
    add_benchmark("faceapi.face_expression", "FaceExpressionNet on one 112x112 face", 112, [] {
        auto net = nets().expression_net();
        return [net](const torch::Tensor& x) mutable { return net->forward(x); };
    });
    add_benchmark("faceapi.face_recognition", "FaceRecognitionNet on one 150x150 face", 150, [] {
        auto net = nets().recognition_net();
        return [net](const torch::Tensor& x) mutable { return net->forward(x); };
    });
}

}  // namespace

void register_faceapi() {
    const std::string tiny = "faceapi.tiny_face_detector";
    const std::string ssd = "faceapi.ssd_mobilenetv1";
    const std::string lm68 = "faceapi.face_landmark_68";
    const std::string lm68_tiny = "faceapi.face_landmark_68_tiny";
    const std::string expr = "faceapi.face_expression";
    const std::string rec = "faceapi.face_recognition";

    add("face::faceapi::tiny_detector_input", case_of(tiny, "preprocess"), run_tiny_preprocess);
    add("face::faceapi::TinyFaceDetector", case_of(tiny, "net"), run_tiny_net);
    add("face::faceapi::decode_tiny_detector", case_of(tiny, "pipeline"), run_tiny_detect);

    add("face::faceapi::ssd_input", case_of(ssd, "preprocess"), run_ssd_preprocess);
    add("face::faceapi::SsdMobilenetV1", case_of(ssd, "net"), run_ssd_net);
    add("face::faceapi::decode_ssd", case_of(ssd, "postprocess"), run_ssd_decode);
    add("face::faceapi::select_ssd_detections", case_of(ssd, "pipeline"), run_ssd_detect);

    add("face::faceapi::face_net_input (112)", case_of(lm68, "preprocess"),
        face_preprocess(kFaceNetInputSize));
    add("face::faceapi::FaceProcessorNet (landmark 68)", case_of(lm68, "net"),
        processor_net(false, false, "raw"));
    add("face::faceapi::FaceProcessorNet (landmark 68 tiny)", case_of(lm68_tiny, "net"),
        processor_net(true, false, "raw"));
    add("face::faceapi::landmarks_relative + landmarks_to_image",
        case_of(lm68, "postprocess", "points_px"), run_landmark_points);
    add("face::faceapi::landmarks_relative + landmarks_to_image (tiny)",
        case_of(lm68_tiny, "postprocess", "points_px"), run_landmark_points);

    add("face::faceapi::face_net_input (112)", case_of(expr, "preprocess"),
        face_preprocess(kFaceNetInputSize));
    add("face::faceapi::FaceProcessorNet (expression)", case_of(expr, "net"),
        processor_net(false, true, "logits"));
    add("face::faceapi expression softmax", case_of(expr, "postprocess", "probs"),
        run_expression_softmax);

    add("face::faceapi::face_net_input (150)", case_of(rec, "preprocess"),
        face_preprocess(kRecognitionInputSize));
    add("face::faceapi::FaceRecognitionNet", case_of(rec, "net"), run_recognition_net);

    register_benchmarks();
}

}  // namespace avatar::face
