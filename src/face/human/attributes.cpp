#include "face/human/attributes.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "face/human/facemesh.h"
#include "face/human/models.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {

const std::vector<std::string>& emotion_labels() {
    static const std::vector<std::string> labels{"angry", "disgust",  "fear",   "happy",
                                                 "sad",   "surprise", "neutral"};
    return labels;
}

torch::Tensor emotion_preprocess(const torch::Tensor& face192) {
    check(face192.dim() == 4 && face192.size(3) == 3, "emotion input",
          "expected face crops [N, H, W, 3]");
    const auto resized = nn::tfjs::resize_bilinear_legacy(face192, 64, 64);
    const auto weights = torch::tensor({0.2989f, 0.587f, 0.114f}, resized.options());
    // float32 products, summed in double and rounded once (as tfjs-cpu's sum).
    const auto grey = (resized * weights).to(torch::kFloat64).sum(3, true).to(torch::kFloat32);
    return (grey - 0.5f) * 2.0f;
}

torch::Tensor emotion_run(const torch::Tensor& input) {
    return model(Model::kEmotion).run(input.to(models_device()))[0];
}

std::vector<EmotionScore> emotion_list(const torch::Tensor& probs, double min_confidence) {
    const auto p = probs.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
    check(p.numel() == 7, "emotion", "expected 7 probabilities");
    std::vector<EmotionScore> list;
    for (int64_t i = 0; i < 7; ++i) {
        const double v = p[i].item<double>();
        if (v > min_confidence)
            list.push_back({emotion_labels()[static_cast<size_t>(i)],
                            std::min(0.99, std::trunc(100 * v) / 100)});
    }
    std::stable_sort(list.begin(), list.end(), [](const EmotionScore& a, const EmotionScore& b) {
        return a.score > b.score;
    });
    return list;
}

torch::Tensor faceres_preprocess(const torch::Tensor& face192) {
    check(face192.dim() == 4 && face192.size(3) == 3, "faceres input",
          "expected face crops [N, H, W, 3]");
    return nn::tfjs::resize_bilinear_legacy(face192, 224, 224) * 255.0f;
}

FaceResOutput faceres_run(const torch::Tensor& input) {
    const auto& net = model(Model::kFaceRes);
    // Output positions resolved once (the model is loaded once per process).
    static const std::array<size_t, 3> index{net.output_index("global_pooling/Mean"),
                                             net.output_index("gender_pred/Sigmoid"),
                                             net.output_index("age_pred/Softmax")};
    const auto out = net.run(input.to(models_device()));
    return {out[index[0]], out[index[1]], out[index[2]]};
}

FaceAttributes faceres_attributes(const torch::Tensor& gender, const torch::Tensor& age,
                                  double min_confidence) {
    FaceAttributes a;
    const double g =
        gender.detach().to(torch::kCPU, torch::kFloat64).reshape({-1})[0].item<double>();
    const double confidence = std::trunc(200 * std::abs(g - 0.5)) / 100;
    if (confidence > min_confidence) {
        a.gender = g <= 0.5 ? "female" : "male";
        a.gender_score = std::min(0.99, confidence);
    }
    const auto p = age.detach().to(torch::kCPU, torch::kFloat64).reshape({-1}).contiguous();
    const double* v = p.data_ptr<double>();
    const int64_t n = p.numel();
    int64_t i = 0;
    for (int64_t k = 1; k < n; ++k) {
        if (v[k] > v[i])
            i = k;
    }
    // JavaScript reads p[-1] and p[n] as undefined: a comparison with it is false and
    // arithmetic with it is NaN.
    const bool has_prev = i > 0, has_next = i + 1 < n;
    const double ten_i = 10.0 * static_cast<double>(i);
    if (has_prev && has_next && v[i - 1] > v[i + 1])
        a.age = nn::tfjs::js_round(ten_i - 100 * v[i - 1]) / 10;
    else if (has_next)
        a.age = nn::tfjs::js_round(ten_i + 100 * v[i + 1]) / 10;
    else
        a.age = std::numeric_limits<double>::quiet_NaN();
    return a;
}

torch::Tensor faceres_embedding(const torch::Tensor& image, const Box& roi) {
    const auto face = facemesh_preprocess(image, roi);
    return faceres_run(faceres_preprocess(face)).embedding[0];
}

}  // namespace avatar::face::human
