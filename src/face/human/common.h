#pragma once
// Internal helpers shared by the human wrappers.
#include <torch/torch.h>

#include <string>

namespace avatar::face::human::detail {

// Checks an image [H, W, 3] and returns it as float32 [1, H, W, 3] on the models' device.
torch::Tensor image_batch(const torch::Tensor& image, const std::string& what);

// Normalised [y1, x1, y2, x2] boxes as tfjs passes them to cropAndResize: float32 values.
torch::Tensor crop_box_yxyx(double y1, double x1, double y2, double x2, double height,
                            double width);

// JavaScript's Math.trunc and Math.round.
double js_trunc(double v);

}  // namespace avatar::face::human::detail
