#include "face/faceapi/layers.h"

#include <limits>

#include "core/error.h"
#include "nn/tfjs/same_padding.h"

namespace avatar::face::faceapi {
namespace {
using nn::tfjs::Weights;

// TF padding of a conv/pool as either torch's symmetric `padding` argument (cheap: no copy) or,
// when SAME is asymmetric (strided layers), an explicit pad of the input.
struct PaddedInput {
    torch::Tensor x;
    std::vector<int64_t> symmetric;  // {pad_h, pad_w} for the torch op
};

PaddedInput apply_padding(const torch::Tensor& x, int64_t kernel_h, int64_t kernel_w,
                          int64_t stride, Padding padding, double value) {
    if (padding == Padding::kValid)
        return {x, {0, 0}};
    const auto [top, bottom] = nn::tfjs::same_padding(x.size(2), kernel_h, stride);
    const auto [left, right] = nn::tfjs::same_padding(x.size(3), kernel_w, stride);
    if (top == bottom && left == right)
        return {x, {top, left}};
    return {nn::tfjs::pad_same(x, kernel_h, kernel_w, stride, stride, value), {0, 0}};
}

// torch::conv2d, but on CPU float32 always through oneDNN (MKL-DNN). LibTorch's own choice sends
// 1x1 convolutions at one thread, and any convolution of a small input, to its im2col + BLAS path,
// which with Debian's reference BLAS is 5-15x slower; the results agree to float32 rounding and
// oneDNN's convolution has its own backward, so gradients are unaffected.
torch::Tensor fast_conv2d(const torch::Tensor& x, const torch::Tensor& filter,
                          const torch::Tensor& bias, int64_t stride,
                          const std::vector<int64_t>& padding, int64_t groups) {
    const std::vector<int64_t> strides{stride, stride}, dilation{1, 1};
    if (at::hasMKLDNN() && x.is_cpu() && x.scalar_type() == torch::kFloat32 &&
        filter.scalar_type() == torch::kFloat32) {
        return torch::mkldnn_convolution(x.contiguous(), filter, bias, padding, strides, dilation,
                                         groups);
    }
    return torch::conv2d(x, filter, bias, strides, padding, dilation, groups);
}

torch::Tensor frozen(torch::nn::Module& module, const std::string& name, torch::Tensor value) {
    return module.register_parameter(name, std::move(value), /*requires_grad=*/false);
}

}  // namespace

std::string weight_name(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "/" + name;
}

std::shared_ptr<torch::nn::Module> register_group(torch::nn::Module& parent,
                                                  const std::string& name) {
    return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::Tensor tf_conv2d(const torch::Tensor& x, const torch::Tensor& filter,
                        const torch::Tensor& bias, int64_t stride, Padding padding) {
    const auto in = apply_padding(x, filter.size(2), filter.size(3), stride, padding, 0.0);
    return fast_conv2d(in.x, filter, bias, stride, in.symmetric, 1);
}

torch::Tensor depthwise_conv(const torch::Tensor& x, const torch::Tensor& filter, int64_t stride,
                             Padding padding) {
    const auto in = apply_padding(x, filter.size(2), filter.size(3), stride, padding, 0.0);
    return fast_conv2d(in.x, filter, {}, stride, in.symmetric, x.size(1));
}

torch::Tensor tf_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride, Padding padding) {
    // Explicit -inf padding: torch's own max-pool padding is symmetric and limited to k/2.
    const auto padded = padding == Padding::kSame
                            ? nn::tfjs::pad_same(x, kernel, kernel, stride, stride,
                                                 -std::numeric_limits<double>::infinity())
                            : x;
    return torch::max_pool2d(padded, {kernel, kernel}, {stride, stride});
}

torch::Tensor tf_avg_pool_valid(const torch::Tensor& x, int64_t kernel, int64_t stride) {
    return torch::avg_pool2d(x, {kernel, kernel}, {stride, stride});
}

torch::Tensor to_nhwc(const torch::Tensor& nchw) {
    return nchw.permute({0, 2, 3, 1}).contiguous();
}

torch::Tensor to_nchw(const torch::Tensor& nhwc) {
    return nhwc.permute({0, 3, 1, 2}).contiguous();
}

TFConv2dImpl::TFConv2dImpl(const Weights& weights, const std::string& prefix, int64_t stride,
                           Padding padding, const std::string& filter_leaf,
                           const std::string& bias_leaf)
    : stride_(stride), padding_(padding) {
    filter_ = frozen(*this, filter_leaf,
                     nn::tfjs::conv_filter_to_torch(weights.get(weight_name(prefix, filter_leaf))));
    if (!bias_leaf.empty())
        bias_ = frozen(*this, bias_leaf, weights.get(weight_name(prefix, bias_leaf)).clone());
}

torch::Tensor TFConv2dImpl::forward(const torch::Tensor& x) {
    return tf_conv2d(x, filter_, bias_, stride_, padding_);
}

SeparableConvImpl::SeparableConvImpl(const Weights& weights, const std::string& prefix,
                                     int64_t stride, Padding padding)
    : stride_(stride), padding_(padding) {
    depthwise_ = frozen(
        *this, "depthwise_filter",
        nn::tfjs::depthwise_filter_to_torch(weights.get(weight_name(prefix, "depthwise_filter"))));
    pointwise_ = frozen(
        *this, "pointwise_filter",
        nn::tfjs::conv_filter_to_torch(weights.get(weight_name(prefix, "pointwise_filter"))));
    bias_ = frozen(*this, "bias", weights.get(weight_name(prefix, "bias")).clone());
    check(depthwise_.size(0) == pointwise_.size(1), weights.subject(),
          prefix + ": depthwise and pointwise channel counts differ");
}

torch::Tensor SeparableConvImpl::forward(const torch::Tensor& x) {
    return fast_conv2d(depthwise_conv(x, depthwise_, stride_, padding_), pointwise_, bias_, 1,
                       {0, 0}, 1);
}

}  // namespace avatar::face::faceapi
