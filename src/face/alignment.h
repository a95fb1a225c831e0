#pragma once
// Face crops with exact inverse transforms, and compositing a processed crop back into the frame.
//
// Coordinates. Points and transforms use continuous pixel coordinates with pixel centres at
// integers: pixel (row i, column j) is centred on (x = j, y = i), so an image of W x H pixels
// covers [-0.5, W - 0.5] x [-0.5, H - 0.5] (OpenCV's and dlib's convention). A crop of S x S
// pixels is the square region `quad` of the image (its outer corners, in image coordinates),
// resampled; image_to_crop maps the quad's corners to the crop's outer corners (-0.5, -0.5) ...
// (S - 0.5, S - 0.5). The quad is independent of S, so one crop region serves every output size
// (CropTransform::resized).
//
// Images:
//   - uint8 [H, W, C] RGB (the storage layout of media/image.h) or float32 [H, W, C]: CPU,
//     resampled with OpenCV (cv::warpAffine, bilinear);
//   - float [N, C, H, W] (the API layout of DESIGN.md section 6, any range, any device): torch
//     grid_sample (bilinear, align_corners = false), differentiable. Same pixel convention.
// Border handling (samples outside the image): kZeros = 0 (black; constant 0 for float),
// kReplicate = the nearest edge pixel, kReflect = mirrored about the image edge (-0.5, W - 0.5):
// "cba|abcd" (cv::BORDER_REFLECT, grid_sample padding_mode "reflection").
#include <torch/torch.h>

#include <array>
#include <cstdint>

namespace avatar::face {

using Point2 = std::array<double, 2>;

// A 2-D affine map p' = M [x, y, 1]^T; m = (M00, M01, M02, M10, M11, M12).
struct Affine2 {
    std::array<double, 6> m{1, 0, 0, 0, 1, 0};

    Point2 apply(const Point2& p) const;
    // Points [..., 2] of any floating dtype and device; computed in float64, returned in the
    // input's dtype. Differentiable with respect to the points.
    torch::Tensor apply(const torch::Tensor& points) const;
    // Throws avatar::Error if the map is singular.
    Affine2 inverse() const;
    // The map "this, then next".
    Affine2 then(const Affine2& next) const;
    // float64 [2, 3].
    torch::Tensor matrix() const;
};

struct CropTransform {
    int size = 0;  // the crop is size x size pixels
    // Image positions of the crop's outer corners: top-left, bottom-left, bottom-right,
    // top-right (the FFHQ quad order).
    std::array<Point2, 4> quad{};
    Affine2 image_to_crop;  // image px -> crop px
    Affine2 crop_to_image;  // its exact inverse (crop px -> image px)

    // The same region at another output size.
    CropTransform resized(int new_size) const;
};

// Image pixel positions [..., 2] -> the crop's grid_sample coordinates (align_corners=false:
// crop pixel u, centres at integers, is (2u + 1) / size - 1), float64. The convention of the
// points the DPE trainer learns from and of every point handed to its flows.
torch::Tensor crop_grid_points(const CropTransform& crop, const torch::Tensor& image_points);

// The transform of a square (or any parallelogram) region given by its corners TL, BL, BR, TR;
// only TL, BL and TR are used. Throws avatar::Error for size < 1 or a degenerate quad.
CropTransform crop_from_quad(const std::array<Point2, 4>& quad, int size);

// --- FFHQ-style aligned crop --------------------------------------------------------------------
// The FFHQ recipe (Karras et al., ffhq-dataset): eye_avg = (eye_left + eye_right) / 2,
// eye_to_eye = eye_right - eye_left, eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg,
// x = eye_to_eye - rot90(eye_to_mouth) normalised and scaled to
// max(|eye_to_eye| * 2.0, |eye_to_mouth| * 1.8), y = rot90(x), centre c = eye_avg +
// eye_to_mouth * 0.1, quad = (c - x - y, c - x + y, c + x + y, c + x - y). rot90(a, b) = (-b, a).
// "left"/"right" are as seen in the image (eye_left has the smaller x in an upright face).
// FFHQ's extra steps (shrinking, cropping and the blurred reflect padding) are not part of
// the transform; choose Border::kReflect in warp_crop for the nearest look.
CropTransform ffhq_crop(const Point2& eye_left, const Point2& eye_right, const Point2& mouth_left,
                        const Point2& mouth_right, int size);
// From face-api's 68 points [68, 2] (dlib/iBUG order: eyes 36-41 and 42-47, mouth corners 48
// and 54).
CropTransform ffhq_crop_from_68(const torch::Tensor& points68, int size);
// From 5 points [5, 2] in the RetinaFace/InsightFace order: left eye, right eye, nose tip,
// left mouth corner, right mouth corner (image left/right).
CropTransform ffhq_crop_from_5(const torch::Tensor& points5, int size);
// The 5 points of that order from 68 points: eye centres (means of 36-41, 42-47), nose tip 30,
// mouth corners 48 and 54. float64 [5, 2].
torch::Tensor five_points_from_68(const torch::Tensor& points68);

// --- FOMM-style box crop -----------------------------------------------------------------------
struct BoxCropOptions {
    double scale = 1.7;    // side = max(width, height) * scale (FOMM-style crops use ~1.6-1.8)
    double shift_y = 0.0;  // moves the square down by shift_y * side (negative: up)
};
// An axis-aligned square centred on the box (left, top, width, height in image coordinates).
CropTransform box_crop(double left, double top, double width, double height, int size,
                       const BoxCropOptions& options = {});
// Around the bounding box of points [N, 2].
CropTransform box_crop_from_points(const torch::Tensor& points, int size,
                                   const BoxCropOptions& options = {});

// --- resampling and compositing ----------------------------------------------------------------
enum class Border { kZeros, kReplicate, kReflect };

// The crop [size, size, C] (HWC input) or [N, C, size, size] (NCHW input) of `image`, bilinear.
torch::Tensor warp_crop(const torch::Tensor& image, const CropTransform& transform,
                        Border border = Border::kReplicate);
// The same region at another output size: warp_crop(image, transform.resized(size), border).
torch::Tensor warp_crop(const torch::Tensor& image, const CropTransform& transform, int size,
                        Border border = Border::kReplicate);
// warp_crop for float [N, C, H, W] images that shrinks without aliasing: where the crop covers
// k >= 2 image pixels per crop pixel, it samples k x k points per crop pixel (a crop k times the
// size) and averages them. Bilinear sampling alone skips pixels there, which makes thin features
// (lids, lip lines, hair strands) flicker as the crop moves.
torch::Tensor warp_crop_antialiased(const torch::Tensor& image, const CropTransform& transform,
                                    Border border = Border::kReplicate);
// The k of warp_crop_antialiased: whole image pixels per crop pixel (< 2: no anti-aliasing).
int antialias_factor(const CropTransform& transform);

enum class ColourMatch {
    kNone,
    kRgb,  // per-channel mean and standard deviation of the crop matched to the frame's, in RGB
    kLab,  // the same in CIE Lab (OpenCV's conversion, sRGB D65)
};

// The soft paste mask in crop space, float32 [size, size] in [0, 1]: 0 at the crop's outer edge,
// rising with a smoothstep over `feather_px` crop pixels to 1 inside (feather_px = 0: a hard
// square), multiplied by `mask` ([size, size] in [0, 1], e.g. a face segmentation) if given.
torch::Tensor crop_paste_mask(int size, double feather_px, const torch::Tensor& mask = {});

// The paste mask of `transform` in the frame, float32 [height, width] in [0, 1].
torch::Tensor frame_paste_mask(const CropTransform& transform, int64_t height, int64_t width,
                               double feather_px, const torch::Tensor& mask = {});

// Composites a processed crop back into a copy of `frame`: the crop is warped back with the exact
// inverse transform (bilinear, edge pixels replicated) and blended as
// frame * (1 - a) + crop * a, with a = frame_paste_mask(...). `crop` may have any square size
// (the transform is resized to it). With colour matching, the crop's colour statistics inside the
// mask (weighted by a) are matched to the frame's under the same mask before blending.
// frame [H, W, 3] and crop [S, S, 3]: both uint8 (the result is rounded and clamped), or both
// float32 in [0, 1] (kLab needs that range; kNone and kRgb work in any range). CPU only. Only the
// pixels under the quad's bounding box are touched.
torch::Tensor paste_back(const torch::Tensor& frame, const torch::Tensor& crop,
                         const CropTransform& transform, double mask_feather_px = 16.0,
                         ColourMatch colour_match = ColourMatch::kNone,
                         const torch::Tensor& mask = {});

// Adds a change made in crop space to a copy of `frame` instead of replacing its pixels:
// frame + a * difference, with `difference` (float32 [S, S, 3], in the frame's units: 0-255 for
// a uint8 frame) warped back with the exact inverse transform and a = frame_paste_mask(...). Only
// the difference is resampled, so the frame keeps its full-resolution detail wherever the change
// is small: the paste of an edit made by a network working below the frame's resolution.
// frame uint8 or float32 [H, W, 3] (uint8 results are rounded and clamped). CPU only.
torch::Tensor add_crop_difference(const torch::Tensor& frame, const torch::Tensor& difference,
                                  const CropTransform& transform, double mask_feather_px = 16.0,
                                  const torch::Tensor& mask = {});

}  // namespace avatar::face
