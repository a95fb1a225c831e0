#pragma once
// The six face-api nets (@vladmandic/face-api 1.7.15, the face-api.js architectures) as LibTorch
// modules, built from the TFJS weight manifests of the npm package.
//
// Every forward takes the *preprocessed* NCHW input (see processing.h: toBatchTensor + the net's
// normalisation) and returns the raw outputs the library's runNet returns; decoding lives in
// processing.h. All ops are plain torch ops: gradients flow to the input, and `.to(device)` moves
// a net to any device.
#include <torch/torch.h>

#include <filesystem>
#include <vector>

#include "face/faceapi/layers.h"
#include "nn/tfjs/weights.h"

namespace avatar::face::faceapi {

// ---- TinyFaceDetector: Tiny-YOLOv2 with separable convs, any input size multiple of 32 ----------
class TinyFaceDetectorImpl : public torch::nn::Module {
public:
    explicit TinyFaceDetectorImpl(const nn::tfjs::Weights& weights);
    // x [N, 3, S, S] normalised (S a multiple of 32) -> raw [N, 25, S/32, S/32]; channel
    // 5 a + j holds anchor a's (tx, ty, tw, th, obj).
    torch::Tensor forward(const torch::Tensor& x);

private:
    TFConv2d conv0_{nullptr};
    std::vector<SeparableConv> separable_;  // conv1..conv5
    TFConv2d conv8_{nullptr};
};
TORCH_MODULE(TinyFaceDetector);

// ---- SsdMobilenetV1: MobileNetV1 + 6 SSD heads, input 512 ---------------------------------------
struct SsdOutputs {
    torch::Tensor box_encodings;  // [N, 5118, 4]: (ty, tx, th, tw) per anchor
    torch::Tensor class_logits;   // [N, 5118, 3]: class 1 is "face"
};

class SsdMobilenetV1Impl : public torch::nn::Module {
public:
    explicit SsdMobilenetV1Impl(const nn::tfjs::Weights& weights);
    // x [N, 3, 512, 512] normalised to [-1, 1].
    SsdOutputs forward(const torch::Tensor& x);
    // The 5118 anchors [ymin, xmin, ymax, xmax] (normalised), the weight "Output/extra_dim".
    const torch::Tensor& anchors() const { return anchors_; }

private:
    struct DepthwiseBlock {
        torch::Tensor filter;  // [C, 1, 3, 3]
        // tf.batchNorm(x, moving_mean, moving_variance, beta, gamma, eps), kept unfolded
        torch::Tensor gamma, beta, mean, variance;
        int64_t stride;
    };
    TFConv2d conv0_{nullptr};
    std::vector<DepthwiseBlock> depthwise_;  // Conv2d_1..13_depthwise
    std::vector<TFConv2d> pointwise_;        // Conv2d_1..13_pointwise
    std::vector<TFConv2d> extra_;            // Prediction/Conv2d_0..7_pointwise
    std::vector<TFConv2d> box_heads_;        // BoxPredictor_i/BoxEncodingPredictor
    std::vector<TFConv2d> class_heads_;      // BoxPredictor_i/ClassPredictor
    torch::Tensor anchors_;                  // [5118, 4]
};
TORCH_MODULE(SsdMobilenetV1);

// ---- FaceFeatureExtractor: dense blocks shared by the landmark and expression nets --------------
// Its configuration is detected from the weights: 4 blocks of 4 convs (FaceLandmark68Net,
// FaceExpressionNet; 112 -> 7 px, 256 channels) or 3 blocks of 3 (FaceLandmark68TinyNet;
// 112 -> 14 px, 128 channels).
struct FeatureExtractorConfig {
    int blocks = 4;           // dense0..dense{blocks-1}
    int convs_per_block = 4;  // denseBlock4 or denseBlock3
    int64_t channels = 256;   // of the last block, = the bottleneck feature size
    static FeatureExtractorConfig detect_from_weights(const nn::tfjs::Weights& weights);
};

class FaceFeatureExtractorImpl : public torch::nn::Module {
public:
    explicit FaceFeatureExtractorImpl(const nn::tfjs::Weights& weights);
    // x [N, 3, 112, 112] normalised -> bottleneck [N, channels] (the average-pooled last block).
    torch::Tensor forward(const torch::Tensor& x);
    // The output of every dense block (112 input: 56, 28, 14 and 7 px), for perceptual losses;
    // any input size >= 16 (the nets' own is 112).
    std::vector<torch::Tensor> block_features(const torch::Tensor& x);
    const FeatureExtractorConfig& config() const { return config_; }

private:
    torch::Tensor dense_block(size_t block, const torch::Tensor& x);

    FeatureExtractorConfig config_;
    TFConv2d first_conv_{nullptr};                   // dense0/conv0 (a plain conv)
    std::vector<std::vector<SeparableConv>> convs_;  // [block][conv] (dense0/conv0 left empty)
};
TORCH_MODULE(FaceFeatureExtractor);

// The feature extractor followed by one fully connected layer (fc/weights [in, out], fc/bias).
// FaceLandmark68Net and FaceLandmark68TinyNet: 136 outputs = 68 (x, y) pairs relative to the
// padded 112 square. FaceExpressionNet: 7 logits (neutral, happy, sad, angry, fearful, disgusted,
// surprised).
struct FaceProcessorOutputs {
    torch::Tensor features;  // [N, 256] (tiny landmark net: 128) bottleneck
    torch::Tensor output;    // [N, 136] landmarks or [N, 7] expression logits
};

class FaceProcessorNetImpl : public torch::nn::Module {
public:
    explicit FaceProcessorNetImpl(const nn::tfjs::Weights& weights);
    torch::Tensor forward(const torch::Tensor& x) { return forward_with_features(x).output; }
    FaceProcessorOutputs forward_with_features(const torch::Tensor& x);
    const FeatureExtractorConfig& config() const { return extractor_->config(); }
    int64_t outputs() const { return fc_weights_.size(1); }
    FaceFeatureExtractor extractor() const { return extractor_; }

private:
    FaceFeatureExtractor extractor_{nullptr};
    torch::Tensor fc_weights_;  // [in, out], used as x @ W
    torch::Tensor fc_bias_;
};
TORCH_MODULE(FaceProcessorNet);

// ---- FaceRecognitionNet: dlib's ResNet-34 face descriptor, input 150 ----------------------------
class FaceRecognitionNetImpl : public torch::nn::Module {
public:
    explicit FaceRecognitionNetImpl(const nn::tfjs::Weights& weights);
    // x [N, 3, 150, 150] normalised -> descriptor [N, 128] (not L2-normalised: compare with the
    // euclidean distance, dlib's same-person threshold is 0.6).
    torch::Tensor forward(const torch::Tensor& x);

private:
    // conv + bias, then dlib's affine "scale" layer (batch norm folded): x * weights + biases.
    struct ConvScale {
        torch::Tensor filter, bias, scale, shift;
    };
    struct Block {
        ConvScale conv1, conv2;
        bool down;  // residualDown: conv1 stride 2 VALID, average-pooled and zero-padded shortcut
    };
    ConvScale load_conv_scale(const nn::tfjs::Weights& weights, const std::string& prefix,
                              torch::nn::Module& parent);
    torch::Tensor conv_scale(const ConvScale& p, const torch::Tensor& x, int64_t stride,
                             Padding padding, bool relu) const;
    torch::Tensor residual(const Block& block, const torch::Tensor& x) const;

    ConvScale conv32_down_;
    std::vector<Block> blocks_;
    torch::Tensor fc_;  // [256, 128], no bias
};
TORCH_MODULE(FaceRecognitionNet);

// ---- loading ------------------------------------------------------------------------------------
// Each reads the npm package's manifest (face/model_files.h) unless a manifest path is given.
TinyFaceDetector load_tiny_face_detector(const std::filesystem::path& manifest = {});
SsdMobilenetV1 load_ssd_mobilenetv1(const std::filesystem::path& manifest = {});
FaceProcessorNet load_face_landmark_68(const std::filesystem::path& manifest = {});
FaceProcessorNet load_face_landmark_68_tiny(const std::filesystem::path& manifest = {});
FaceProcessorNet load_face_expression(const std::filesystem::path& manifest = {});
FaceRecognitionNet load_face_recognition(const std::filesystem::path& manifest = {});

}  // namespace avatar::face::faceapi
