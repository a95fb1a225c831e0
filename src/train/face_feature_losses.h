#pragma once
// Feature losses from the front end's pretrained face networks (face-api's, bundled by npm; there
// are no ImageNet weights here, so no VGG perceptual loss and no LPIPS).
//
// - perceptual(a, b): the perceptual loss of Johnson et al. with FaceLandmark68Net's feature
//   extractor in place of VGG: the mean absolute difference of the outputs of its four dense
//   blocks (1/2, 1/4, 1/8 and 1/16 of the input size), summed over the blocks, on the images at
//   their own size. A landmark net's features respond to where the face's parts are, which is
//   what reenactment must get right.
// - expression(a, b): the mean squared difference of FaceExpressionNet's 256-d bottleneck (the
//   layer before its 7 emotion logits), on the central square of the crops (the face itself;
//   DPE's crops are 1.7 times the face). DPE uses an expression recognition network the same way.
//
// Images are float NCHW RGB in [-1, 1], at least 16 px (the expression net's input is resized to
// its 112 px). The nets are frozen; gradients flow to the images.
#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

namespace avatar::train {

class FaceFeatureLosses {
public:
    // Loads both nets from the npm package (face/model_files.h); throws avatar::Error if missing.
    // `face_fraction`: the side of the central square the expression loss looks at, as a
    // fraction of the crop side.
    explicit FaceFeatureLosses(double face_fraction = 1.0 / 1.7);

    torch::Tensor perceptual(const torch::Tensor& a, const torch::Tensor& b);
    torch::Tensor expression(const torch::Tensor& a, const torch::Tensor& b);

    // The sum of perceptual(a, b) (expression(a, b)) over `pairs`, for a training step's several
    // pairs at once: every distinct image (the same tensor object given twice counts once) goes
    // through the net once, the images that carry gradients in one batched pass and those that
    // do not (the real frames) in another without autograd. The same value as the separate calls
    // up to float rounding, at about two thirds of their cost. All images must have one shape.
    using ImagePairs = std::vector<std::pair<torch::Tensor, torch::Tensor>>;
    torch::Tensor perceptual_sum(const ImagePairs& pairs);
    torch::Tensor expression_sum(const ImagePairs& pairs);

    // The nets' inputs: [-1, 1] images with the face-api normalisation (the expression net's
    // resized to 112 px).
    torch::Tensor landmark_input(const torch::Tensor& image) const;
    torch::Tensor expression_input(const torch::Tensor& image) const;

private:
    struct Nets;
    std::shared_ptr<Nets> nets_;
    double face_fraction_;
};

}  // namespace avatar::train
