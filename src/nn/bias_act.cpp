#include "nn/bias_act.h"

#include <cmath>

#include "core/error.h"

namespace avatar::nn {

Activation parse_activation(const std::string& name) {
    if (name == "linear")
        return Activation::kLinear;
    if (name == "lrelu")
        return Activation::kLeakyReLU;
    throw Error("activation '" + name + "'", "unknown (expected linear or lrelu)");
}

double default_gain(Activation act) {
    return act == Activation::kLeakyReLU ? std::sqrt(2.0) : 1.0;
}

torch::Tensor bias_act(const torch::Tensor& x, const torch::Tensor& bias, Activation act,
                       std::optional<double> gain, std::optional<double> clamp, int64_t dim) {
    auto y = x;
    if (bias.defined()) {
        check(bias.dim() == 1 && bias.size(0) == x.size(dim), "bias_act",
              "bias must be 1-D with x.size(dim) elements");
        std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
        shape[static_cast<size_t>(dim)] = -1;
        y = y.add(bias.reshape(shape));
    }
    if (act == Activation::kLeakyReLU)
        y = torch::leaky_relu(y, 0.2);
    const double g = gain.value_or(default_gain(act));
    if (g != 1.0)
        y = y * g;
    if (clamp && *clamp >= 0)
        y = y.clamp(-*clamp, *clamp);
    return y;
}

}  // namespace avatar::nn
