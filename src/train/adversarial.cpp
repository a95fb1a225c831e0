#include "train/adversarial.h"

#include <cmath>

#include "core/error.h"

namespace avatar::train {
namespace ros = nn::rosinality;

DiscriminatorImpl::DiscriminatorImpl(int64_t size, const std::map<int64_t, int64_t>& channels)
    : size_(size) {
    check(size >= 8 && (size & (size - 1)) == 0, "discriminator",
          "the size must be a power of two >= 8");
    for (int64_t r = 4; r <= size; r *= 2)
        check(channels.count(r) == 1, "discriminator",
              "no channel count for resolution " + std::to_string(r));
    auto convs = register_module("convs", torch::nn::ModuleList());
    stem_ = ros::ConvLayer(3, channels.at(size), 1);
    convs->push_back(stem_);
    for (int64_t r = size; r > 4; r /= 2) {
        blocks_.emplace_back(channels.at(r), channels.at(r / 2));
        convs->push_back(blocks_.back());
    }
    const int64_t c = channels.at(4);
    // +1: the minibatch standard deviation channel.
    final_conv_ = register_module("final_conv", ros::ConvLayer(c + 1, c, 3));
    hidden_ = register_module("final_linear_0", ros::EqualLinear(c * 16, c));
    output_ = register_module("final_linear_1", ros::EqualLinear(c, 1));
}

torch::Tensor DiscriminatorImpl::forward(const torch::Tensor& images) {
    check(images.dim() == 4 && images.size(2) == size_ && images.size(3) == size_, "discriminator",
          "expected [N, 3, " + std::to_string(size_) + ", " + std::to_string(size_) + "] images");
    auto x = stem_->forward(images);
    for (auto& block : blocks_)
        x = block->forward(x);
    // Minibatch standard deviation (groups of up to 4): lets the discriminator see a lack of
    // variety across samples.
    const int64_t n = x.size(0);
    int64_t group = std::min<int64_t>(4, n);
    while (n % group != 0)
        --group;
    const auto grouped = x.view({group, n / group, x.size(1), x.size(2), x.size(3)});
    const auto stddev = torch::sqrt(grouped.var(0, /*unbiased=*/false) + 1e-8)
                            .mean({1, 2, 3}, /*keepdim=*/true)  // [n / group, 1, 1, 1]
                            .repeat({group, 1, x.size(2), x.size(3)});
    x = final_conv_->forward(torch::cat({x, stddev}, 1));
    x = torch::leaky_relu(hidden_->forward(x.flatten(1)), 0.2) * std::sqrt(2.0);
    return output_->forward(x).squeeze(1);
}

torch::Tensor generator_adversarial_loss(const torch::Tensor& fake_logits) {
    return torch::softplus(-fake_logits).mean();
}

torch::Tensor discriminator_loss(const torch::Tensor& real_logits,
                                 const torch::Tensor& fake_logits) {
    return torch::softplus(fake_logits).mean() + torch::softplus(-real_logits).mean();
}

torch::Tensor r1_penalty(const torch::Tensor& real_logits, const torch::Tensor& real) {
    const auto grad = torch::autograd::grad({real_logits.sum()}, {real}, {},
                                            /*retain_graph=*/true, /*create_graph=*/true)[0];
    return grad.pow(2).flatten(1).sum(1).mean();
}

}  // namespace avatar::train
