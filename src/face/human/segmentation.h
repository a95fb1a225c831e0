#pragma once
// Person segmentation with MediaPipe Selfie (256x256, sigmoid mask) and Meet (144x256, two
// logits bg/fg), for any frame size: the frame is resized to the model input (legacy
// resizeBilinear) / 255, the mask is resized back.
//
// human 3.3.6 post-processes Meet with tf.softmax over the foreground channel's last axis, which
// is the image width: a library bug (values stay tiny). MeetMode::kLibraryWidthSoftmax
// reproduces it for parity; MeetMode::kChannelSoftmax is the intended per-pixel softmax over the
// two channels (p(person) = sigmoid(fg - bg)). Never mixed.
#include <torch/torch.h>

namespace avatar::face::human {

enum class Segmenter { kSelfie, kMeet };
enum class MeetMode { kChannelSoftmax, kLibraryWidthSoftmax };

// resizeBilinear(image, model size) / 255: [H, W, 3] -> [1, h, w, 3].
torch::Tensor segmentation_preprocess(const torch::Tensor& image, Segmenter which);
// Raw network output: selfie [N, 256, 256, 1] probabilities, meet [N, 144, 256, 2] logits.
torch::Tensor segmentation_run(const torch::Tensor& input, Segmenter which);

// human's mode 'alpha' output: [H, W, 1] int32 0..255 (truncated), from the raw output of one
// frame. Selfie: resize to [H, W] (legacy) then x255; Meet: the library's width softmax of the
// fg channel, x255, then resize.
torch::Tensor segmentation_alpha_library(const torch::Tensor& raw, Segmenter which, int64_t height,
                                         int64_t width);

// Person probability [H, W] float in [0, 1] from the raw output of one frame, resized with
// pixel-centre (half-pixel) bilinear sampling. Meet uses `mode`.
torch::Tensor person_probability(const torch::Tensor& raw, Segmenter which, int64_t height,
                                 int64_t width, MeetMode mode = MeetMode::kChannelSoftmax);

// The whole thing on a frame [H, W, 3] RGB 0..255: person mask [H, W] float in [0, 1].
torch::Tensor person_mask(const torch::Tensor& image, Segmenter which = Segmenter::kSelfie,
                          MeetMode mode = MeetMode::kChannelSoftmax);

}  // namespace avatar::face::human
