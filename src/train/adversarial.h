#pragma once
// The adversarial part of training: a StyleGAN2-style residual discriminator (rosinality's
// layout, built from nn/rosinality blocks) and the non-saturating GAN loss of Goodfellow et al.
// (generator: softplus(-D(fake)); discriminator: softplus(D(fake)) + softplus(-D(real))), with
// the R1 penalty of Mescheder et al. on real images.
#include <torch/torch.h>

#include <map>

#include "nn/rosinality.h"

namespace avatar::train {

class DiscriminatorImpl : public torch::nn::Module {
public:
    // `channels`: resolution -> channels for every power of two from 4 to `size`.
    DiscriminatorImpl(int64_t size, const std::map<int64_t, int64_t>& channels);
    // images [N, 3, size, size] in [-1, 1] -> realness logits [N].
    torch::Tensor forward(const torch::Tensor& images);

private:
    nn::rosinality::ConvLayer stem_{nullptr}, final_conv_{nullptr};
    std::vector<nn::rosinality::ResBlock> blocks_;
    nn::rosinality::EqualLinear hidden_{nullptr}, output_{nullptr};
    int64_t size_;
};
TORCH_MODULE(Discriminator);

// Mean of softplus(-logits): the generator's non-saturating loss.
torch::Tensor generator_adversarial_loss(const torch::Tensor& fake_logits);
// Mean of softplus(fake) + mean of softplus(-real): the discriminator's loss.
torch::Tensor discriminator_loss(const torch::Tensor& real_logits,
                                 const torch::Tensor& fake_logits);
// R1: mean over the batch of |d D(real) / d real|^2 (real must require grad).
torch::Tensor r1_penalty(const torch::Tensor& real_logits, const torch::Tensor& real);

}  // namespace avatar::train
