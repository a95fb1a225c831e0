#pragma once
// bias_act: bias, activation, gain and clamp fused in the official op; here the composite of
// ATen ops with the reference path's exact order (shared/reference/stylegan2_ada/SPEC.md §2).
#include <torch/torch.h>

#include <optional>
#include <string>

namespace avatar::nn {

enum class Activation { kLinear, kLeakyReLU };

// Parses "linear" / "lrelu"; throws Error naming the value otherwise.
Activation parse_activation(const std::string& name);

// The activation's default gain: 1 for linear, sqrt(2) for lrelu.
double default_gain(Activation act);

// x + b (broadcast along `dim`), activation (leaky ReLU slope 0.2), times `gain` (default:
// the activation's), clamped to [-clamp, clamp] when clamp is given.
torch::Tensor bias_act(const torch::Tensor& x, const torch::Tensor& bias, Activation act,
                       std::optional<double> gain = std::nullopt,
                       std::optional<double> clamp = std::nullopt, int64_t dim = 1);

}  // namespace avatar::nn
