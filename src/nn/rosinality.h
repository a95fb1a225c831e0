#pragma once
// StyleGAN2 building blocks in the rosinality/stylegan2-pytorch layout, as DPE (and LIA) use
// them: equalised-learning-rate conv/linear layers, fused leaky ReLU, blur, modulated
// convolution. Same mathematics as the NVlabs layout (nn/stylegan2.h), different parameter
// names and shapes. Described in shared/reference/dpe/SPEC.md §2. Modules are registered under
// the official names so checkpoints load by name lookup (nn/state_dict.h).
#include <torch/torch.h>

#include <array>

namespace avatar::nn::rosinality {

// Records intermediate tensors under "<prefix><name>" when a map is given (parity checks).
class Trace {
public:
    Trace() = default;
    Trace(std::map<std::string, torch::Tensor>* tensors, std::string prefix)
        : tensors_(tensors), prefix_(std::move(prefix)) {}
    void record(const std::string& name, const torch::Tensor& t) const {
        if (tensors_ != nullptr)
            (*tensors_)[prefix_ + name] = t;
    }
    Trace sub(const std::string& name) const { return Trace(tensors_, prefix_ + name); }

private:
    std::map<std::string, torch::Tensor>* tensors_ = nullptr;
    std::string prefix_;
};

// The 4x4 blur kernel outer([1,3,3,1]) / 64, times factor^2 for upsampling blurs.
torch::Tensor blur_kernel(int64_t upsample_factor = 1);

// upfirdn2d with the same padding on both axes, as rosinality's op takes it.
torch::Tensor upfirdn2d_symmetric(const torch::Tensor& x, const torch::Tensor& kernel, int64_t up,
                                  int64_t down, std::array<int64_t, 2> pad);

class EqualConv2dImpl : public torch::nn::Module {
public:
    EqualConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                    int64_t padding = 0, bool bias = true);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;

private:
    double scale_;
    int64_t stride_, padding_;
};
TORCH_MODULE(EqualConv2d);

class EqualLinearImpl : public torch::nn::Module {
public:
    EqualLinearImpl(int64_t in, int64_t out, double bias_init = 0.0, double lr_mul = 1.0);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;

private:
    double scale_, lr_mul_;
};
TORCH_MODULE(EqualLinear);

// lrelu(x + b) * sqrt(2) with b [1, C, 1, 1].
class FusedLeakyReLUImpl : public torch::nn::Module {
public:
    explicit FusedLeakyReLUImpl(int64_t channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor bias;
};
TORCH_MODULE(FusedLeakyReLU);

class BlurImpl : public torch::nn::Module {
public:
    BlurImpl(std::array<int64_t, 2> pad, int64_t upsample_factor = 1);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor kernel;

private:
    std::array<int64_t, 2> pad_;
};
TORCH_MODULE(Blur);

// 2x upsampling by zero insertion and the 4*K blur, padding (2, 1).
class UpsampleImpl : public torch::nn::Module {
public:
    UpsampleImpl();
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor kernel;
};
TORCH_MODULE(Upsample);

// ConvLayer: [Blur] EqualConv2d [FusedLeakyReLU], children named "0", "1", "2" in that order.
class ConvLayerImpl : public torch::nn::Module {
public:
    ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, bool downsample = false,
                  bool bias = true, bool activate = true);
    torch::Tensor forward(const torch::Tensor& x);

private:
    Blur blur_{nullptr};
    EqualConv2d conv_{nullptr};
    FusedLeakyReLU activation_{nullptr};
};
TORCH_MODULE(ConvLayer);

// (conv2(conv1(x)) + skip(x)) / sqrt(2), halving the resolution.
class ResBlockImpl : public torch::nn::Module {
public:
    ResBlockImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x, const Trace& trace = {});

private:
    ConvLayer conv1_{nullptr}, conv2_{nullptr}, skip_{nullptr};
};
TORCH_MODULE(ResBlock);

// Weight [1, out, in, k, k] modulated per sample by modulation(style) [B, in]; grouped
// convolution (groups = batch), or a transposed convolution + 4*K blur when upsampling.
class ModulatedConv2dImpl : public torch::nn::Module {
public:
    ModulatedConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                        bool demodulate = true, bool upsample = false);
    // Batches of more than one sample in training mode with gradients on take the non-fused
    // path below (fast to differentiate); inference takes the grouped form of the official code.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& style);
    torch::Tensor forward_modulating_activations(const torch::Tensor& x,
                                                 const torch::Tensor& style);
    torch::Tensor weight;
    EqualLinear modulation{nullptr};

private:
    int64_t in_, out_, kernel_;
    double scale_;
    bool demodulate_, upsample_;
    Blur blur_{nullptr};
};
TORCH_MODULE(ModulatedConv2d);

// ModulatedConv2d (demodulated) -> noise injection -> FusedLeakyReLU. DPE never passes noise,
// and its NoiseInjection returns the input then: the `noise.weight` parameter is loaded and unused.
class StyledConvImpl : public torch::nn::Module {
public:
    StyledConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                   bool upsample = false);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& style);

private:
    ModulatedConv2d conv_{nullptr};
    FusedLeakyReLU activate_{nullptr};
};
TORCH_MODULE(StyledConv);

}  // namespace avatar::nn::rosinality
