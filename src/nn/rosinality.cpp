#include "nn/rosinality.h"

#include <cmath>

#include "core/error.h"
#include "nn/bias_act.h"
#include "nn/conv_transpose.h"
#include "nn/upfirdn2d.h"

namespace avatar::nn::rosinality {

torch::Tensor blur_kernel(int64_t upsample_factor) {
    return make_resample_filter({1, 3, 3, 1}) *
           static_cast<double>(upsample_factor * upsample_factor);
}

torch::Tensor upfirdn2d_symmetric(const torch::Tensor& x, const torch::Tensor& kernel, int64_t up,
                                  int64_t down, std::array<int64_t, 2> pad) {
    return upfirdn2d(x, kernel, up, down, {pad[0], pad[1], pad[0], pad[1]});
}

EqualConv2dImpl::EqualConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                 int64_t padding, bool with_bias)
    : scale_(1.0 / std::sqrt(static_cast<double>(in * kernel * kernel))),
      stride_(stride),
      padding_(padding) {
    weight = register_parameter("weight", torch::randn({out, in, kernel, kernel}));
    if (with_bias)
        bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor EqualConv2dImpl::forward(const torch::Tensor& x) {
    return torch::conv2d(x, weight * scale_, bias, stride_, padding_);
}

EqualLinearImpl::EqualLinearImpl(int64_t in, int64_t out, double bias_init, double lr_mul)
    : scale_(1.0 / std::sqrt(static_cast<double>(in)) * lr_mul), lr_mul_(lr_mul) {
    weight = register_parameter("weight", torch::randn({out, in}) / lr_mul);
    bias = register_parameter("bias", torch::full({out}, bias_init));
}

torch::Tensor EqualLinearImpl::forward(const torch::Tensor& x) {
    return torch::linear(x, weight * scale_, bias * lr_mul_);
}

FusedLeakyReLUImpl::FusedLeakyReLUImpl(int64_t channels) {
    bias = register_parameter("bias", torch::zeros({1, channels, 1, 1}));
}

torch::Tensor FusedLeakyReLUImpl::forward(const torch::Tensor& x) {
    return bias_act(x, bias.reshape({-1}), Activation::kLeakyReLU);
}

BlurImpl::BlurImpl(std::array<int64_t, 2> pad, int64_t upsample_factor) : pad_(pad) {
    kernel = register_buffer("kernel", blur_kernel(upsample_factor));
}

torch::Tensor BlurImpl::forward(const torch::Tensor& x) {
    return upfirdn2d_symmetric(x, kernel, 1, 1, pad_);
}

UpsampleImpl::UpsampleImpl() {
    kernel = register_buffer("kernel", blur_kernel(2));
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
    // p = kernel size - factor = 2: pad (p + 1) / 2 + factor - 1 = 2 before, p / 2 = 1 after.
    return upfirdn2d_symmetric(x, kernel, 2, 1, {2, 1});
}

ConvLayerImpl::ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, bool downsample, bool bias,
                             bool activate) {
    int index = 0;
    int64_t stride = 1, padding = kernel / 2;
    if (downsample) {
        const int64_t p = 4 - 2 + (kernel - 1);
        blur_ = register_module(std::to_string(index++),
                                Blur(std::array<int64_t, 2>{(p + 1) / 2, p / 2}));
        stride = 2;
        padding = 0;
    }
    conv_ = register_module(std::to_string(index++),
                            EqualConv2d(in, out, kernel, stride, padding, bias && !activate));
    check(!activate || bias, "ConvLayer", "activation without bias is not used by DPE");
    if (activate)
        activation_ = register_module(std::to_string(index++), FusedLeakyReLU(out));
}

torch::Tensor ConvLayerImpl::forward(const torch::Tensor& x) {
    auto y = blur_ ? blur_->forward(x) : x;
    y = conv_->forward(y);
    return activation_ ? activation_->forward(y) : y;
}

ResBlockImpl::ResBlockImpl(int64_t in, int64_t out) {
    conv1_ = register_module("conv1", ConvLayer(in, in, 3));
    conv2_ = register_module("conv2", ConvLayer(in, out, 3, /*downsample=*/true));
    skip_ =
        register_module("skip", ConvLayer(in, out, 1, true, /*bias=*/false, /*activate=*/false));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const Trace& trace) {
    const auto a = conv1_->forward(x);
    trace.record(".conv1", a);
    const auto b = conv2_->forward(a);
    trace.record(".conv2", b);
    const auto s = skip_->forward(x);
    trace.record(".skip", s);
    return (b + s) / std::sqrt(2.0);
}

ModulatedConv2dImpl::ModulatedConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                                         bool demodulate, bool upsample)
    : in_(in),
      out_(out),
      kernel_(kernel),
      scale_(1.0 / std::sqrt(static_cast<double>(in * kernel * kernel))),
      demodulate_(demodulate),
      upsample_(upsample) {
    weight = register_parameter("weight", torch::randn({1, out, in, kernel, kernel}));
    modulation = register_module("modulation", EqualLinear(style_dim, in, /*bias_init=*/1.0));
    if (upsample) {
        // p = (4 - 2) - (k - 1); pads (p + 1) / 2 + 1 and p / 2 + 1: (1, 1) for k = 3.
        const int64_t p = 2 - (kernel - 1);
        blur_ =
            register_module("blur", Blur(std::array<int64_t, 2>{(p + 1) / 2 + 1, p / 2 + 1}, 2));
    }
}

torch::Tensor ModulatedConv2dImpl::forward(const torch::Tensor& x, const torch::Tensor& style) {
    const int64_t batch = x.size(0), height = x.size(2), width = x.size(3);
    if (is_training() && batch > 1 && torch::GradMode::is_enabled())
        return forward_modulating_activations(x, style);
    const auto s = modulation->forward(style).view({batch, 1, in_, 1, 1});
    auto w = scale_ * weight * s;  // [B, out, in, k, k]
    if (demodulate_) {
        const auto demod = torch::rsqrt(w.pow(2).sum({2, 3, 4}) + 1e-8);
        w = w * demod.view({batch, out_, 1, 1, 1});
    }
    const auto input = x.reshape({1, batch * in_, height, width});
    if (upsample_) {
        const auto wt = w.view({batch, out_, in_, kernel_, kernel_})
                            .transpose(1, 2)
                            .reshape({batch * in_, out_, kernel_, kernel_});
        // The phase-decomposed form: LibTorch's CPU conv_transpose2d is ~20x slower (see
        // nn/conv_transpose.h); equal up to summation order.
        auto y = conv_transpose2d_stride2(input, wt, batch);
        y = y.view({batch, out_, y.size(2), y.size(3)});
        return blur_->forward(y);
    }
    auto y = torch::conv2d(input, w.view({batch * out_, in_, kernel_, kernel_}), {}, 1, kernel_ / 2,
                           1, batch);
    return y.view({batch, out_, y.size(2), y.size(3)});
}

torch::Tensor ModulatedConv2dImpl::forward_modulating_activations(const torch::Tensor& x,
                                                                  const torch::Tensor& style) {
    // conv(x, w * s) = conv(x * s, w) per sample, and demodulation is a per-sample, per-output
    // scale of the result: one convolution with the shared weight for the whole batch, instead
    // of a grouped convolution with a weight per sample (slow to run and to differentiate on
    // CPUs). StyleGAN2's non-fused path; equal up to rounding.
    const int64_t batch = x.size(0);
    const auto s = modulation->forward(style);  // [B, in]
    const auto w = weight.squeeze(0) * scale_;  // [out, in, k, k]
    auto y = x * s.view({batch, in_, 1, 1});
    if (upsample_) {
        y = conv_transpose2d_stride2(y, w.transpose(0, 1).contiguous());
        y = blur_->forward(y);
    } else {
        y = torch::conv2d(y, w, {}, 1, kernel_ / 2);
    }
    if (demodulate_) {
        // sum over (in, kh, kw) of (w * s)^2 = s^2 . sum over (kh, kw) of w^2
        const auto demod = torch::rsqrt(torch::matmul(s.pow(2), w.pow(2).sum({2, 3}).t()) + 1e-8);
        y = y * demod.view({batch, out_, 1, 1});
    }
    return y;
}

StyledConvImpl::StyledConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                               bool upsample) {
    conv_ = register_module("conv", ModulatedConv2d(in, out, kernel, style_dim, true, upsample));
    // NoiseInjection's weight: part of the checkpoint, never used (noise is never drawn).
    auto noise = std::make_shared<torch::nn::Module>();
    noise->register_parameter("weight", torch::zeros({1}));
    register_module("noise", noise);
    activate_ = register_module("activate", FusedLeakyReLU(out));
}

torch::Tensor StyledConvImpl::forward(const torch::Tensor& x, const torch::Tensor& style) {
    return activate_->forward(conv_->forward(x, style));
}

}  // namespace avatar::nn::rosinality
