#include "face/faceapi/nets.h"

#include "core/error.h"
#include "face/model_files.h"

namespace avatar::face::faceapi {
namespace {
using nn::tfjs::Weights;

torch::Tensor frozen(torch::nn::Module& module, const std::string& name, torch::Tensor value) {
    return module.register_parameter(name, std::move(value), /*requires_grad=*/false);
}

// face-api's leaky ReLU, written as the library writes it (relu(x - 0.1x) + 0.1x) so that the
// float32 rounding is the same.
torch::Tensor leaky_relu_tenth(const torch::Tensor& x) {
    const auto tenth = x * 0.1f;
    return torch::relu(x - tenth) + tenth;
}

torch::Tensor clamp_relu6(const torch::Tensor& x) {
    return torch::clamp(x, 0.0, 6.0);
}

void require_input(const torch::Tensor& x, const char* net, int64_t size_or_zero) {
    check(x.dim() == 4 && x.size(1) == 3, net,
          "expected a normalised NCHW input [N, 3, H, W], got " + std::to_string(x.dim()) +
              " dimensions" +
              (x.dim() >= 2 ? " with " + std::to_string(x.size(1)) + " channels" : std::string()));
    check(x.is_floating_point(), net, "expected a floating-point input");
    if (size_or_zero > 0) {
        check(x.size(2) == size_or_zero && x.size(3) == size_or_zero, net,
              "expected a " + std::to_string(size_or_zero) + "x" + std::to_string(size_or_zero) +
                  " input, got " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    }
}

Weights load(const std::filesystem::path& manifest, const std::string& default_file) {
    return Weights::load_manifest(manifest.empty() ? faceapi_model_file(default_file) : manifest);
}

}  // namespace

// ---- TinyFaceDetector ---------------------------------------------------------------------------

TinyFaceDetectorImpl::TinyFaceDetectorImpl(const Weights& weights) {
    // conv0 is VALID (416 -> 414); the separable convs are preceded by an explicit 1-pixel pad,
    // which for a 3x3 stride-1 conv is SAME.
    conv0_ = register_module("conv0", TFConv2d(weights, "conv0", 1, Padding::kValid));
    for (int i = 1; i <= 5; ++i) {
        const std::string name = "conv" + std::to_string(i);
        separable_.push_back(
            register_module(name, SeparableConv(weights, name, 1, Padding::kSame)));
    }
    conv8_ = register_module("conv8", TFConv2d(weights, "conv8", 1, Padding::kValid));
}

torch::Tensor TinyFaceDetectorImpl::forward(const torch::Tensor& input) {
    require_input(input, "TinyFaceDetector", 0);
    check(input.size(2) == input.size(3) && input.size(2) % 32 == 0 && input.size(2) >= 32,
          "TinyFaceDetector",
          "the input must be square with a side that is a multiple of 32, got " +
              std::to_string(input.size(2)) + "x" + std::to_string(input.size(3)));
    auto x = leaky_relu_tenth(conv0_(input));
    x = tf_max_pool(x, 2, 2, Padding::kSame);
    for (size_t i = 0; i < separable_.size(); ++i) {
        x = leaky_relu_tenth(separable_[i](x));
        // The last pool keeps the grid (stride 1): 13 -> 13 at 416.
        x = tf_max_pool(x, 2, i + 1 < separable_.size() ? 2 : 1, Padding::kSame);
    }
    return conv8_(x);
}

// ---- SsdMobilenetV1 -----------------------------------------------------------------------------

namespace {
constexpr double kBatchNormEpsilon = 0.0010000000474974513;  // float32(1e-3), as stored in TF
constexpr int kMobilenetLayers = 13;
constexpr int kExtraLayers = 8;
constexpr int kSources = 6;

int64_t mobilenet_depthwise_stride(int layer) {
    return (layer == 2 || layer == 4 || layer == 6 || layer == 12) ? 2 : 1;
}
}  // namespace

SsdMobilenetV1Impl::SsdMobilenetV1Impl(const Weights& weights) {
    auto mobilenet = register_group(*this, "MobilenetV1");
    conv0_ = mobilenet->register_module(
        "Conv2d_0_pointwise", TFConv2d(weights, "MobilenetV1/Conv2d_0_pointwise", 2, Padding::kSame,
                                       "weights", "convolution_bn_offset"));
    for (int i = 1; i <= kMobilenetLayers; ++i) {
        const std::string dw_name = "Conv2d_" + std::to_string(i) + "_depthwise";
        const std::string dw_prefix = "MobilenetV1/" + dw_name;
        auto dw = register_group(*mobilenet, dw_name);
        auto bn = register_group(*dw, "BatchNorm");
        DepthwiseBlock block;
        block.filter = frozen(
            *dw, "depthwise_weights",
            nn::tfjs::depthwise_filter_to_torch(weights.get(dw_prefix + "/depthwise_weights")));
        block.gamma = frozen(*bn, "gamma", weights.get(dw_prefix + "/BatchNorm/gamma").clone());
        block.beta = frozen(*bn, "beta", weights.get(dw_prefix + "/BatchNorm/beta").clone());
        block.mean =
            frozen(*bn, "moving_mean", weights.get(dw_prefix + "/BatchNorm/moving_mean").clone());
        block.variance = frozen(*bn, "moving_variance",
                                weights.get(dw_prefix + "/BatchNorm/moving_variance").clone());
        block.stride = mobilenet_depthwise_stride(i);
        depthwise_.push_back(block);

        const std::string pw_name = "Conv2d_" + std::to_string(i) + "_pointwise";
        pointwise_.push_back(mobilenet->register_module(
            pw_name, TFConv2d(weights, "MobilenetV1/" + pw_name, 1, Padding::kSame, "weights",
                              "convolution_bn_offset")));
    }

    auto prediction = register_group(*this, "Prediction");
    for (int k = 0; k < kExtraLayers; ++k) {
        // 1x1 stride 1 (even k) and 3x3 stride 2 SAME (odd k), alternating.
        const std::string name = "Conv2d_" + std::to_string(k) + "_pointwise";
        extra_.push_back(prediction->register_module(
            name, TFConv2d(weights, "Prediction/" + name, k % 2 == 1 ? 2 : 1, Padding::kSame,
                           "weights", "convolution_bn_offset")));
    }
    for (int i = 0; i < kSources; ++i) {
        const std::string name = "BoxPredictor_" + std::to_string(i);
        auto predictor = register_group(*prediction, name);
        box_heads_.push_back(predictor->register_module(
            "BoxEncodingPredictor",
            TFConv2d(weights, "Prediction/" + name + "/BoxEncodingPredictor", 1, Padding::kSame,
                     "weights", "biases")));
        class_heads_.push_back(predictor->register_module(
            "ClassPredictor", TFConv2d(weights, "Prediction/" + name + "/ClassPredictor", 1,
                                       Padding::kSame, "weights", "biases")));
    }

    const auto& extra_dim = weights.get("Output/extra_dim");
    check(extra_dim.dim() == 3 && extra_dim.size(2) == 4, weights.subject(),
          "Output/extra_dim: expected anchors [1, K, 4]");
    anchors_ = register_group(*this, "Output")
                   ->register_buffer("extra_dim", extra_dim.reshape({-1, 4}).clone());
}

SsdOutputs SsdMobilenetV1Impl::forward(const torch::Tensor& input) {
    require_input(input, "SsdMobilenetV1", 512);
    auto x = clamp_relu6(conv0_(input));
    torch::Tensor conv11;
    for (size_t i = 0; i < depthwise_.size(); ++i) {
        const auto& dw = depthwise_[i];
        auto y = depthwise_conv(x, dw.filter, dw.stride, Padding::kSame);
        auto channel = [](const torch::Tensor& t) { return t.view({1, -1, 1, 1}); };
        y = (y - channel(dw.mean)) *
                channel(dw.gamma * torch::rsqrt(dw.variance + kBatchNormEpsilon)) +
            channel(dw.beta);
        x = clamp_relu6(pointwise_[i](clamp_relu6(y)));
        if (i + 1 == 11)
            conv11 = x;  // 32x32x512: the first SSD source
    }
    std::vector<torch::Tensor> sources{conv11, x};
    auto y = x;
    for (size_t k = 0; k < extra_.size(); ++k) {
        y = clamp_relu6(extra_[k](y));
        if (k % 2 == 1)
            sources.push_back(y);
    }
    const int64_t batch = input.size(0);
    std::vector<torch::Tensor> boxes, classes;
    for (size_t i = 0; i < sources.size(); ++i) {
        // Heads are flattened in NHWC order (y, x, anchor), as TF reshapes them.
        boxes.push_back(to_nhwc(box_heads_[i](sources[i])).reshape({batch, -1, 4}));
        classes.push_back(to_nhwc(class_heads_[i](sources[i])).reshape({batch, -1, 3}));
    }
    return {torch::cat(boxes, 1), torch::cat(classes, 1)};
}

// ---- FaceFeatureExtractor / FaceProcessorNet ----------------------------------------------------

FeatureExtractorConfig FeatureExtractorConfig::detect_from_weights(const Weights& weights) {
    FeatureExtractorConfig config;
    config.blocks = 0;
    while (weights.contains("dense" + std::to_string(config.blocks) + "/conv0/bias"))
        ++config.blocks;
    check(config.blocks >= 1, weights.subject(),
          "not a face-api feature extractor: no dense0/conv0 weights");
    config.convs_per_block = weights.contains("dense0/conv3/bias") ? 4 : 3;
    config.channels =
        weights.get("dense" + std::to_string(config.blocks - 1) + "/conv0/bias").size(0);
    return config;
}

FaceFeatureExtractorImpl::FaceFeatureExtractorImpl(const Weights& weights)
    : config_(FeatureExtractorConfig::detect_from_weights(weights)) {
    convs_.resize(static_cast<size_t>(config_.blocks));
    for (int b = 0; b < config_.blocks; ++b) {
        const std::string block = "dense" + std::to_string(b);
        auto group = register_group(*this, block);
        for (int c = 0; c < config_.convs_per_block; ++c) {
            const std::string name = "conv" + std::to_string(c);
            const int64_t stride = c == 0 ? 2 : 1;  // each block halves the resolution
            if (b == 0 && c == 0) {
                first_conv_ = group->register_module(
                    name, TFConv2d(weights, block + "/" + name, stride, Padding::kSame));
                convs_[0].push_back(nullptr);
            } else {
                convs_[static_cast<size_t>(b)].push_back(group->register_module(
                    name, SeparableConv(weights, block + "/" + name, stride, Padding::kSame)));
            }
        }
    }
}

torch::Tensor FaceFeatureExtractorImpl::dense_block(size_t block, const torch::Tensor& x) {
    auto& convs = convs_[block];
    const auto out1 = torch::relu(block == 0 ? first_conv_(x) : convs[0](x));
    const auto out2 = convs[1](out1);
    const auto in3 = torch::relu(out1 + out2);
    const auto out3 = convs[2](in3);
    if (config_.convs_per_block == 3)
        return torch::relu(out1 + (out2 + out3));
    const auto in4 = torch::relu(out1 + (out2 + out3));
    const auto out4 = convs[3](in4);
    return torch::relu(out1 + (out2 + (out3 + out4)));
}

torch::Tensor FaceFeatureExtractorImpl::forward(const torch::Tensor& input) {
    require_input(input, "FaceFeatureExtractor", 112);
    auto x = input;
    for (size_t b = 0; b < convs_.size(); ++b)
        x = dense_block(b, x);
    // avgPool(k, stride 2, VALID) with k the final grid (7 or 14): one global average.
    return tf_avg_pool_valid(x, x.size(2), 2).flatten(1);
}

std::vector<torch::Tensor> FaceFeatureExtractorImpl::block_features(const torch::Tensor& input) {
    // Fully convolutional up to here, so any size works (features of a 64-px image are those of
    // a face seen smaller).
    require_input(input, "FaceFeatureExtractor", 0);
    check(input.size(2) >= 16 && input.size(3) >= 16, "FaceFeatureExtractor",
          "block features need an input of at least 16x16");
    std::vector<torch::Tensor> features;
    auto x = input;
    for (size_t b = 0; b < convs_.size(); ++b) {
        x = dense_block(b, x);
        features.push_back(x);
    }
    return features;
}

FaceProcessorNetImpl::FaceProcessorNetImpl(const Weights& weights) {
    extractor_ = register_module("extractor", FaceFeatureExtractor(weights));
    auto fc = register_group(*this, "fc");
    fc_weights_ = frozen(*fc, "weights", weights.get("fc/weights").clone());
    fc_bias_ = frozen(*fc, "bias", weights.get("fc/bias").clone());
    check(fc_weights_.dim() == 2 && fc_weights_.size(0) == extractor_->config().channels,
          weights.subject(), "fc/weights does not match the feature extractor's channels");
}

FaceProcessorOutputs FaceProcessorNetImpl::forward_with_features(const torch::Tensor& x) {
    auto features = extractor_(x);
    auto output = torch::matmul(features, fc_weights_) + fc_bias_;
    return {features, output};
}

// ---- FaceRecognitionNet -------------------------------------------------------------------------

namespace {
// The residual blocks in order; "_down" blocks halve the resolution (35 -> 17 -> 8 -> 4 -> 2).
const std::vector<std::string>& recognition_blocks() {
    static const std::vector<std::string> blocks{
        "conv32_1",     "conv32_2",  "conv32_3",     "conv64_down",     "conv64_1",
        "conv64_2",     "conv64_3",  "conv128_down", "conv128_1",       "conv128_2",
        "conv256_down", "conv256_1", "conv256_2",    "conv256_down_out"};
    return blocks;
}
}  // namespace

FaceRecognitionNetImpl::ConvScale FaceRecognitionNetImpl::load_conv_scale(
    const Weights& weights, const std::string& prefix, torch::nn::Module& parent) {
    auto conv = register_group(parent, "conv");
    auto scale = register_group(parent, "scale");
    ConvScale p;
    p.filter = frozen(*conv, "filters",
                      nn::tfjs::conv_filter_to_torch(weights.get(prefix + "/conv/filters")));
    p.bias = frozen(*conv, "bias", weights.get(prefix + "/conv/bias").clone());
    p.scale = frozen(*scale, "weights", weights.get(prefix + "/scale/weights").clone());
    p.shift = frozen(*scale, "biases", weights.get(prefix + "/scale/biases").clone());
    return p;
}

FaceRecognitionNetImpl::FaceRecognitionNetImpl(const Weights& weights) {
    conv32_down_ = load_conv_scale(weights, "conv32_down", *register_group(*this, "conv32_down"));
    for (const auto& name : recognition_blocks()) {
        auto group = register_group(*this, name);
        Block block;
        block.conv1 = load_conv_scale(weights, name + "/conv1", *register_group(*group, "conv1"));
        block.conv2 = load_conv_scale(weights, name + "/conv2", *register_group(*group, "conv2"));
        block.down = name.find("_down") != std::string::npos;
        blocks_.push_back(block);
    }
    fc_ = frozen(*this, "fc", weights.get("fc").clone());
}

torch::Tensor FaceRecognitionNetImpl::conv_scale(const ConvScale& p, const torch::Tensor& x,
                                                 int64_t stride, Padding padding, bool relu) const {
    auto channel = [](const torch::Tensor& t) { return t.view({1, -1, 1, 1}); };
    auto y = tf_conv2d(x, p.filter, p.bias, stride, padding) * channel(p.scale) + channel(p.shift);
    return relu ? torch::relu(y) : y;
}

torch::Tensor FaceRecognitionNetImpl::residual(const Block& block, const torch::Tensor& x) const {
    auto y = block.down ? conv_scale(block.conv1, x, 2, Padding::kValid, true)
                        : conv_scale(block.conv1, x, 1, Padding::kSame, true);
    y = conv_scale(block.conv2, y, 1, Padding::kSame, false);
    auto shortcut = x;
    if (block.down) {
        shortcut = tf_avg_pool_valid(x, 2, 2);
        // A VALID stride-2 conv can give one row/column fewer than the 2x2 pool (8 -> 3 vs 4):
        // the library appends a zero row at the bottom and a zero column at the right.
        if (shortcut.size(2) != y.size(2) || shortcut.size(3) != y.size(3)) {
            namespace F = torch::nn::functional;
            y = F::pad(y, F::PadFuncOptions(
                              {0, shortcut.size(3) - y.size(3), 0, shortcut.size(2) - y.size(2)}));
        }
        // Doubling the channels: the shortcut is padded with zero channels.
        if (shortcut.size(1) != y.size(1))
            shortcut = torch::cat({shortcut, torch::zeros_like(shortcut)}, 1);
    }
    return torch::relu(shortcut + y);
}

torch::Tensor FaceRecognitionNetImpl::forward(const torch::Tensor& input) {
    require_input(input, "FaceRecognitionNet", 150);
    auto x = conv_scale(conv32_down_, input, 2, Padding::kValid, true);  // 7x7: 150 -> 72
    x = tf_max_pool(x, 3, 2, Padding::kValid);                           // -> 35
    for (const auto& block : blocks_)
        x = residual(block, x);
    return torch::matmul(x.mean({2, 3}), fc_);
}

// ---- loading ------------------------------------------------------------------------------------

TinyFaceDetector load_tiny_face_detector(const std::filesystem::path& manifest) {
    TinyFaceDetector net(load(manifest, "tiny_face_detector_model-weights_manifest.json"));
    net->eval();
    return net;
}

SsdMobilenetV1 load_ssd_mobilenetv1(const std::filesystem::path& manifest) {
    SsdMobilenetV1 net(load(manifest, "ssd_mobilenetv1_model-weights_manifest.json"));
    net->eval();
    return net;
}

FaceProcessorNet load_face_landmark_68(const std::filesystem::path& manifest) {
    FaceProcessorNet net(load(manifest, "face_landmark_68_model-weights_manifest.json"));
    net->eval();
    return net;
}

FaceProcessorNet load_face_landmark_68_tiny(const std::filesystem::path& manifest) {
    FaceProcessorNet net(load(manifest, "face_landmark_68_tiny_model-weights_manifest.json"));
    net->eval();
    return net;
}

FaceProcessorNet load_face_expression(const std::filesystem::path& manifest) {
    FaceProcessorNet net(load(manifest, "face_expression_model-weights_manifest.json"));
    net->eval();
    return net;
}

FaceRecognitionNet load_face_recognition(const std::filesystem::path& manifest) {
    FaceRecognitionNet net(load(manifest, "face_recognition_model-weights_manifest.json"));
    net->eval();
    return net;
}

}  // namespace avatar::face::faceapi
