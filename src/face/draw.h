#pragma once
// Debug drawing of face-tracking results onto images (for `avatar track --debug DIR`), with
// OpenCV's anti-aliased primitives. Every function draws IN PLACE into `image`, which must be a
// contiguous CPU uint8 [H, W, 3] RGB tensor (media/image.h's storage layout); throws avatar::Error
// otherwise. Points are in image pixels (pixel centres at integers, as in face/alignment.h);
// points outside the image are clipped by OpenCV.
#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "face/alignment.h"
#include "face/head_pose.h"

namespace avatar::face {

struct Rgb {
    uint8_t r = 255, g = 255, b = 255;
};

// Filled dots of `radius` pixels at points [N, 2] (or [N, >= 2]: extra columns are ignored).
void draw_points(const torch::Tensor& image, const torch::Tensor& points, Rgb colour,
                 int radius = 1);

// An axis-aligned box (left, top, width, height).
void draw_box(const torch::Tensor& image, double left, double top, double width, double height,
              Rgb colour, int thickness = 1);

// A closed quadrilateral, e.g. a crop's region (CropTransform::quad).
void draw_quad(const torch::Tensor& image, const std::array<Point2, 4>& quad, Rgb colour,
               int thickness = 1);

// FaceMesh's 468 points [468, >= 2] as dots.
void draw_mesh468(const torch::Tensor& image, const torch::Tensor& points, Rgb colour,
                  int radius = 1);

// face-api's 68 points [68, 2] as polylines by region: jaw 0-16, brows 17-21 and 22-26, nose
// bridge 27-30, lower nose 31-35, eyes 36-41 and 42-47 (closed), outer lips 48-59 and inner lips
// 60-67 (closed); each region in its own colour unless `colour` is given.
void draw_landmarks68(const torch::Tensor& image, const torch::Tensor& points, int thickness = 1);
void draw_landmarks68(const torch::Tensor& image, const torch::Tensor& points, Rgb colour,
                      int thickness = 1);

// The head pose's axes from the canonical origin: x red, y green, z (toward the viewer) blue,
// each `length_cm` long in the fitted scale (orthographic projection onto the image).
void draw_pose_axes(const torch::Tensor& image, const HeadPose& pose, double length_cm = 5.0,
                    int thickness = 2);

}  // namespace avatar::face
