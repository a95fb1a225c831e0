#pragma once
// An exponential moving average of a module's parameters (and a copy of its buffers), the
// "G_ema" of StyleGAN-family training: samples and exported models use the average, which is
// much steadier than the weights of any single step.
#include <torch/torch.h>

namespace avatar::train {

// beta for a half-life of `half_life_images` images at `batch` images per step (StyleGAN2's
// ema_kimg rule: beta = 0.5 ^ (batch / half_life_images)). With `images_seen` > 0 the half-life
// ramps up as in StyleGAN2-ADA (ema_rampup 0.05): at most 5 % of the images seen so far, so early
// in training the average follows the weights instead of remembering their random start.
double ema_beta(int64_t batch, double half_life_images, double images_seen = 0.0);

// average <- beta * average + (1 - beta) * model, parameter by parameter (names must match);
// buffers are copied. Runs without gradients.
void update_ema(torch::nn::Module& average, const torch::nn::Module& model, double beta);

// average <- model (all parameters and buffers).
void copy_parameters(torch::nn::Module& average, const torch::nn::Module& model);

}  // namespace avatar::train
