#include "train/face_feature_losses.h"

#include "core/error.h"
#include "face/faceapi/nets.h"

namespace avatar::train {

namespace {
constexpr int64_t kNetInput = 112;

// [-1, 1] RGB -> face-api's face normalisation ((x * 255 - mean) / 255), at 112 px unless
// `resize` is false.
torch::Tensor to_faceapi(const torch::Tensor& image, bool resize = true) {
    namespace F = torch::nn::functional;
    auto x = image;
    if (resize && (x.size(2) != kNetInput || x.size(3) != kNetInput))
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{kNetInput, kNetInput})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
    // face-api's mean RGB of its face nets (processing.cpp kFaceMean), divided by 255.
    const auto mean =
        torch::tensor({122.782f / 255.0f, 117.001f / 255.0f, 104.298f / 255.0f}, x.options())
            .view({1, 3, 1, 1});
    return (x + 1.0f) * 0.5f - mean;
}

void check_images(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
    check(a.defined() && b.defined() && a.dim() == 4 && a.size(1) == 3 && a.sizes() == b.sizes(),
          what, "expected two float [N, 3, H, W] images of the same shape");
}

// Runs `features` (batch -> list of per-image feature maps, batch-major) once over the distinct
// images of `pairs`, and gives each pair's features: (features of a, features of b) per pair.
// Images with gradients go in one batch, the others in one batch under NoGradGuard.
using FeatureList = std::vector<torch::Tensor>;
template <typename Features>
std::vector<std::pair<FeatureList, FeatureList>> pair_features(
    const FaceFeatureLosses::ImagePairs& pairs, const char* what, Features&& features) {
    check(!pairs.empty(), what, "no image pairs");
    std::vector<torch::Tensor> images;  // distinct, in first-seen order
    auto index_of = [&](const torch::Tensor& t) {
        for (size_t i = 0; i < images.size(); ++i)
            if (images[i].unsafeGetTensorImpl() == t.unsafeGetTensorImpl())
                return i;
        images.push_back(t);
        return images.size() - 1;
    };
    std::vector<std::pair<size_t, size_t>> which;
    for (const auto& [a, b] : pairs) {
        check_images(a, b, what);
        check(a.sizes() == pairs.front().first.sizes(), what, "all images must have one shape");
        which.emplace_back(index_of(a), index_of(b));
    }
    const int64_t n = pairs.front().first.size(0);
    // Per distinct image: its slot in the grad or no-grad batch.
    std::vector<std::pair<bool, int64_t>> slot(images.size());
    std::vector<torch::Tensor> with_grad, without_grad;
    for (size_t i = 0; i < images.size(); ++i) {
        auto& list = images[i].requires_grad() ? with_grad : without_grad;
        slot[i] = {images[i].requires_grad(), static_cast<int64_t>(list.size())};
        list.push_back(images[i]);
    }
    FeatureList grad_features, plain_features;
    if (!with_grad.empty())
        grad_features = features(torch::cat(with_grad, 0));
    if (!without_grad.empty()) {
        torch::NoGradGuard no_grad;
        plain_features = features(torch::cat(without_grad, 0));
    }
    auto of = [&](size_t image) {
        const auto& all = slot[image].first ? grad_features : plain_features;
        FeatureList out;
        for (const auto& f : all)
            out.push_back(f.narrow(0, slot[image].second * n, n));
        return out;
    };
    std::vector<std::pair<FeatureList, FeatureList>> out;
    for (const auto& [a, b] : which)
        out.emplace_back(of(a), of(b));
    return out;
}
}  // namespace

struct FaceFeatureLosses::Nets {
    face::faceapi::FaceProcessorNet landmarks = face::faceapi::load_face_landmark_68();
    face::faceapi::FaceProcessorNet expression = face::faceapi::load_face_expression();
};

FaceFeatureLosses::FaceFeatureLosses(double face_fraction)
    : nets_(std::make_shared<Nets>()), face_fraction_(face_fraction) {
    check(face_fraction > 0.1 && face_fraction <= 1.0, "FaceFeatureLosses",
          "the face fraction must be in (0.1, 1]");
    for (auto* net : {&nets_->landmarks, &nets_->expression}) {
        (*net)->eval();
        for (auto& p : (*net)->parameters())
            p.set_requires_grad(false);
    }
}

torch::Tensor FaceFeatureLosses::landmark_input(const torch::Tensor& image) const {
    // At the image's own size: the extractor is fully convolutional, and upsampling a 64-px
    // crop to 112 would triple the cost of the loss that dominates a training step.
    return to_faceapi(image, /*resize=*/false);
}

torch::Tensor FaceFeatureLosses::expression_input(const torch::Tensor& image) const {
    const int64_t side = image.size(3);
    const auto inner = std::max<int64_t>(8, static_cast<int64_t>(face_fraction_ * side + 0.5));
    const int64_t start = (side - inner) / 2;
    return to_faceapi(image.narrow(2, start, inner).narrow(3, start, inner));
}

torch::Tensor FaceFeatureLosses::perceptual(const torch::Tensor& a, const torch::Tensor& b) {
    check_images(a, b, "perceptual loss");
    auto extractor = nets_->landmarks->extractor();
    // One pass for both images: the batch is twice as large, the net runs once.
    const auto features =
        extractor->block_features(torch::cat({landmark_input(a), landmark_input(b)}, 0));
    const int64_t n = a.size(0);
    torch::Tensor loss = torch::zeros({}, a.options());
    for (const auto& f : features)
        loss = loss + (f.narrow(0, 0, n) - f.narrow(0, n, n)).abs().mean();
    return loss;
}

torch::Tensor FaceFeatureLosses::expression(const torch::Tensor& a, const torch::Tensor& b) {
    check_images(a, b, "expression loss");
    const auto features =
        nets_->expression
            ->forward_with_features(torch::cat({expression_input(a), expression_input(b)}, 0))
            .features;
    const int64_t n = a.size(0);
    return (features.narrow(0, 0, n) - features.narrow(0, n, n)).pow(2).mean();
}

torch::Tensor FaceFeatureLosses::perceptual_sum(const ImagePairs& pairs) {
    auto extractor = nets_->landmarks->extractor();
    const auto features = pair_features(pairs, "perceptual loss", [&](const torch::Tensor& x) {
        return extractor->block_features(landmark_input(x));
    });
    torch::Tensor loss = torch::zeros({}, pairs.front().first.options());
    for (const auto& [fa, fb] : features)
        for (size_t k = 0; k < fa.size(); ++k)
            loss = loss + (fa[k] - fb[k]).abs().mean();
    return loss;
}

torch::Tensor FaceFeatureLosses::expression_sum(const ImagePairs& pairs) {
    const auto features = pair_features(pairs, "expression loss", [&](const torch::Tensor& x) {
        return FeatureList{nets_->expression->forward_with_features(expression_input(x)).features};
    });
    torch::Tensor loss = torch::zeros({}, pairs.front().first.options());
    for (const auto& [fa, fb] : features)
        loss = loss + (fa[0] - fb[0]).pow(2).mean();
    return loss;
}

}  // namespace avatar::train
