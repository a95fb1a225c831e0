#include "face/human/segmentation.h"

#include "core/error.h"
#include "face/human/common.h"
#include "face/human/models.h"
#include "nn/tfjs/image_ops.h"

namespace avatar::face::human {
namespace {

Model model_of(Segmenter which) {
    return which == Segmenter::kSelfie ? Model::kSelfie : Model::kMeet;
}

std::pair<int64_t, int64_t> input_size(Segmenter which) {
    return which == Segmenter::kSelfie ? std::pair<int64_t, int64_t>{256, 256}
                                       : std::pair<int64_t, int64_t>{144, 256};
}

// The raw output of one frame as [h, w, C].
torch::Tensor frame(const torch::Tensor& raw, Segmenter which) {
    auto r = raw.dim() == 4 ? raw[0] : raw;
    check(r.dim() == 3 && r.size(2) == (which == Segmenter::kSelfie ? 1 : 2), "segmentation",
          "unexpected raw output shape " + c10::str(raw.sizes()));
    return r.to(torch::kFloat32);
}

}  // namespace

torch::Tensor segmentation_preprocess(const torch::Tensor& image, Segmenter which) {
    const auto x = detail::image_batch(image, "segmentation input");
    const auto [h, w] = input_size(which);
    return nn::tfjs::resize_bilinear_legacy(x, h, w) / 255.0f;
}

torch::Tensor segmentation_run(const torch::Tensor& input, Segmenter which) {
    return model(model_of(which)).run(input.to(models_device()))[0];
}

torch::Tensor segmentation_alpha_library(const torch::Tensor& raw, Segmenter which, int64_t height,
                                         int64_t width) {
    const auto r = frame(raw, which);
    torch::Tensor alpha;
    if (which == Segmenter::kSelfie) {
        alpha = nn::tfjs::resize_bilinear_legacy(r.unsqueeze(0), height, width)[0] * 255.0f;
    } else {
        const auto fg = torch::softmax(r.select(2, 1), 1);  // over the width: the library's bug
        alpha = nn::tfjs::resize_bilinear_legacy((fg * 255.0f).unsqueeze(0).unsqueeze(3), height,
                                                 width)[0];
    }
    return alpha.to(torch::kInt32);  // tf.cast truncates
}

torch::Tensor person_probability(const torch::Tensor& raw, Segmenter which, int64_t height,
                                 int64_t width, MeetMode mode) {
    const auto r = frame(raw, which);
    torch::Tensor p;
    if (which == Segmenter::kSelfie) {
        p = r.select(2, 0);
    } else if (mode == MeetMode::kChannelSoftmax) {
        p = torch::softmax(r, 2).select(2, 1);
    } else {
        p = torch::softmax(r.select(2, 1), 1);
    }
    return nn::tfjs::resize_bilinear_half_pixel(p.unsqueeze(0).unsqueeze(3), height, width)[0]
        .squeeze(2);
}

torch::Tensor person_mask(const torch::Tensor& image, Segmenter which, MeetMode mode) {
    torch::NoGradGuard no_grad;
    const auto raw = segmentation_run(segmentation_preprocess(image, which), which);
    return person_probability(raw, which, image.size(0), image.size(1), mode).to(image.device());
}

}  // namespace avatar::face::human
