#include "train/ema.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace avatar::train {

double ema_beta(int64_t batch, double half_life_images, double images_seen) {
    check(batch >= 1 && half_life_images > 0, "EMA", "batch and half-life must be positive");
    constexpr double kRampup = 0.05;
    const double half_life =
        images_seen > 0 ? std::min(half_life_images, kRampup * images_seen) : half_life_images;
    return half_life > 0 ? std::pow(0.5, static_cast<double>(batch) / half_life) : 0.0;
}

namespace {
void blend(torch::nn::Module& average, const torch::nn::Module& model, double beta) {
    torch::NoGradGuard no_grad;
    const auto source = model.named_parameters(/*recurse=*/true);
    for (auto& item : average.named_parameters(/*recurse=*/true)) {
        const auto* from = source.find(item.key());
        check(from != nullptr, "EMA", "parameter '" + item.key() + "' is missing in the model");
        item.value().mul_(beta).add_(*from, 1.0 - beta);
    }
    const auto buffers = model.named_buffers(/*recurse=*/true);
    for (auto& item : average.named_buffers(/*recurse=*/true)) {
        const auto* from = buffers.find(item.key());
        check(from != nullptr, "EMA", "buffer '" + item.key() + "' is missing in the model");
        item.value().copy_(*from);
    }
}
}  // namespace

void update_ema(torch::nn::Module& average, const torch::nn::Module& model, double beta) {
    check(beta >= 0 && beta <= 1, "EMA", "beta must be in [0, 1]");
    blend(average, model, beta);
}

void copy_parameters(torch::nn::Module& average, const torch::nn::Module& model) {
    blend(average, model, 0.0);
}

}  // namespace avatar::train
