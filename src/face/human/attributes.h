#pragma once
// Emotion (oarriaga mini-Xception, 64x64 grey) and FaceRes (HSE MobileNet: 1024-d identity
// embedding, age, gender) on the FaceMesh crop, as human 3.3.6 runs them: both reuse the
// 192x192 FaceMesh input (crop / 255) rather than cutting a new crop.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "face/human/blazeface.h"

namespace avatar::face::human {

// Model output order: angry, disgust, fear, happy, sad, surprise, neutral.
const std::vector<std::string>& emotion_labels();

// resizeBilinear(face192, 64) (legacy) -> grey = sum(rgb * [0.2989, 0.587, 0.114]) -> (g - 0.5) 2.
// face192: [N, 192, 192, 3] in [0, 1] -> [N, 64, 64, 1].
torch::Tensor emotion_preprocess(const torch::Tensor& face192);
// Probabilities [N, 7] (softmax applied by the graph).
torch::Tensor emotion_run(const torch::Tensor& input);

struct EmotionScore {
    std::string emotion;
    double score = 0;
};
// human's list: entries with p > min_confidence, score = min(0.99, trunc(100 p) / 100), sorted by
// descending score.
std::vector<EmotionScore> emotion_list(const torch::Tensor& probs, double min_confidence = 0.1);

// resizeBilinear(face192, 224) (legacy) * 255: FaceRes takes RGB 0..255 with no mean.
torch::Tensor faceres_preprocess(const torch::Tensor& face192);

struct FaceResOutput {
    torch::Tensor embedding;  // [N, 1024] global_pooling/Mean (not normalised)
    torch::Tensor gender;     // [N, 1] sigmoid, > 0.5 = male
    torch::Tensor age;        // [N, 100] softmax over age bins
};
// Differentiable: gradients flow from the outputs to `input` (an identity loss).
FaceResOutput faceres_run(const torch::Tensor& input);

struct FaceAttributes {
    double age = 0;  // human's interpolated argmax, rounded to 0.1; NaN where it is undefined
    std::string gender = "unknown";
    double gender_score = 0;  // 0 when below min_confidence (the label stays "unknown")
};
// human's decoding of one face's gender [1] and age [100] probabilities.
FaceAttributes faceres_attributes(const torch::Tensor& gender, const torch::Tensor& age,
                                  double min_confidence = 0.1);

// The embedding [1024] of a face ROI of an image (FaceMesh crop, resized to 224).
torch::Tensor faceres_embedding(const torch::Tensor& image, const Box& roi);

}  // namespace avatar::face::human
