#pragma once
// TensorFlow(.js) image ops with the reference's exact sampling, on NHWC float tensors.
//
// The face nets were trained and their goldens computed with these ops; torch's interpolate
// samples differently (pixel centres), which moves landmarks by a fraction of a pixel. All ops
// are plain torch ops (gathers and lerps), so gradients flow to the image values. Arithmetic is
// done in float64 like tfjs-cpu (JS numbers) and the result is cast to the input's dtype.
#include <torch/torch.h>

namespace avatar::nn::tfjs {

// tf.image.resizeBilinear(x, [out_h, out_w], alignCorners=false, halfPixelCenters=false): the
// legacy TF1 sampling src = dst * in / out, i0 = floor(src), i1 = min(i0 + 1, in - 1), lerp along
// x first, then y. x: [N, H, W, C].
torch::Tensor resize_bilinear_legacy(const torch::Tensor& x, int64_t out_h, int64_t out_w);

// tf.image.resizeBilinear(..., halfPixelCenters=true): the same as torch's bilinear interpolate
// with align_corners=false, kept NHWC. x: [N, H, W, C].
torch::Tensor resize_bilinear_half_pixel(const torch::Tensor& x, int64_t out_h, int64_t out_w);

// tf.image.cropAndResize(image, boxes, boxInd=0..K-1 all 0, [crop_h, crop_w], 'bilinear',
// extrapolation). image: [1, H, W, C]; boxes: [K, 4] normalised [y1, x1, y2, x2]. Samples lie at
// y = y1 (H - 1) + i (y2 - y1) (H - 1) / (crop_h - 1) (note the H - 1); samples outside the image
// take `extrapolation`. Returns [K, crop_h, crop_w, C].
torch::Tensor crop_and_resize(const torch::Tensor& image, const torch::Tensor& boxes,
                              int64_t crop_h, int64_t crop_w, double extrapolation = 0.0);

// face-api's padToSquare: zero-pads the short side of [N, H, W, C] to max(H, W). Not centred:
// all padding at the bottom/right. Centred: round(d / 2) after and d - round(d / 2) before, with
// JavaScript's half-up rounding (an odd pixel goes bottom/right).
torch::Tensor pad_to_square(const torch::Tensor& x, bool centred);

// JavaScript's Math.round (half up, also for negatives: -2.5 -> -2).
double js_round(double value);

}  // namespace avatar::nn::tfjs
