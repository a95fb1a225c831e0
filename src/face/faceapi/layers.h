#pragma once
// The building blocks of the face-api nets, as torch modules whose parameter names mirror the
// TFJS weight names ("dense0/conv1/depthwise_filter" -> dense0.conv1.depthwise_filter), so that
// a printed state dict reads like the weights manifest.
//
// Weights are converted to torch layouts once, at construction: conv filters [out, in, kh, kw],
// depthwise filters [in, 1, kh, kw]. Activations are NCHW. Every parameter is registered with
// requires_grad = false (the nets are frozen pretrained models), but they are plain parameters:
// `.to(device)` moves them, and gradients flow through the forward pass to the input.
#include <torch/torch.h>

#include <string>

#include "nn/tfjs/weights.h"

namespace avatar::face::faceapi {

// TensorFlow's two padding modes. SAME pads asymmetrically (the odd pixel after), see
// nn/tfjs/same_padding.h; VALID does not pad.
enum class Padding { kSame, kValid };

// "a/b/c" joined from a prefix and a name; an empty prefix gives the name alone.
std::string weight_name(const std::string& prefix, const std::string& name);

// A child module holding nothing but other modules: gives nested parameter names
// ("MobilenetV1.Conv2d_0_pointwise.weights") without a class per level.
std::shared_ptr<torch::nn::Module> register_group(torch::nn::Module& parent,
                                                  const std::string& name);

// tf.conv2d(x, filter, stride, padding) (+ bias). The filter and bias leaf names differ between
// the nets ("filters"/"bias" in most, "weights"/"convolution_bn_offset" in the SSD, "weights"/
// "biases" in its box predictors); an empty bias name means no bias.
class TFConv2dImpl : public torch::nn::Module {
public:
    TFConv2dImpl(const nn::tfjs::Weights& weights, const std::string& prefix, int64_t stride,
                 Padding padding, const std::string& filter_leaf = "filters",
                 const std::string& bias_leaf = "bias");
    torch::Tensor forward(const torch::Tensor& x);

private:
    torch::Tensor filter_;  // [out, in, kh, kw]
    torch::Tensor bias_;    // [out] or undefined
    int64_t stride_;
    Padding padding_;
};
TORCH_MODULE(TFConv2d);

// face-api's depthwiseSeparableConv: tf.separableConv2d(x, depthwise, pointwise, stride, 'same')
// + bias, with no activation between the depthwise and the pointwise convolution.
class SeparableConvImpl : public torch::nn::Module {
public:
    SeparableConvImpl(const nn::tfjs::Weights& weights, const std::string& prefix, int64_t stride,
                      Padding padding = Padding::kSame);
    torch::Tensor forward(const torch::Tensor& x);

private:
    torch::Tensor depthwise_;  // [in, 1, 3, 3]
    torch::Tensor pointwise_;  // [out, in, 1, 1]
    torch::Tensor bias_;       // [out]
    int64_t stride_;
    Padding padding_;
};
TORCH_MODULE(SeparableConv);

// Shared functional pieces.

// A depthwise conv (groups = channels) with TF padding; filter [C, 1, kh, kw].
torch::Tensor depthwise_conv(const torch::Tensor& x, const torch::Tensor& filter, int64_t stride,
                             Padding padding);
// A conv with TF padding; filter [out, in, kh, kw]; bias may be undefined.
torch::Tensor tf_conv2d(const torch::Tensor& x, const torch::Tensor& filter,
                        const torch::Tensor& bias, int64_t stride, Padding padding);
// tf.maxPool / tf.avgPool with TF padding (SAME max pools pad with -inf).
torch::Tensor tf_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride, Padding padding);
torch::Tensor tf_avg_pool_valid(const torch::Tensor& x, int64_t kernel, int64_t stride);

// x [N, C, H, W] -> NHWC [N, H, W, C] and back: the goldens and TF layouts are NHWC.
torch::Tensor to_nhwc(const torch::Tensor& nchw);
torch::Tensor to_nchw(const torch::Tensor& nhwc);

}  // namespace avatar::face::faceapi
