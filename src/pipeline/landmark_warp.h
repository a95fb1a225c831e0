#pragma once
// The landmark-driven piecewise-affine warp: the classic baseline for face reenactment that
// synthbench compares every engine with (issues #5, #6). The source's face mesh is cut into the
// triangles of MediaPipe's canonical face and each triangle is moved affinely onto the target
// landmarks; outside the face the image follows the similarity transform that best maps the
// source points onto the target points (so hair and neck move with the head, rigidly).
//
// Coordinates: image pixels, x right, y down, pixel (i, j) covering [j, j+1) x [i, i+1) (its
// centre at (j + 0.5, i + 0.5)), the convention of the rasterizer (synth/rasterizer.h). Points
// [V, 2] or [V, 3]; with 3 columns the third is a depth (smaller = nearer, FaceMesh's z) that
// decides which triangle shows where the warped mesh folds over itself.
#include <torch/torch.h>

namespace avatar::pipeline {

// source: uint8 [H, W, 3]; source_points, target_points: [468, 2 or 3] (FaceMesh order) in the
// source's and the output's pixels; out_height/out_width: the output size (0 = the source's).
// Returns uint8 [out_height, out_width, 3]. Anti-aliased at the face's border (3x3 samples).
// Throws avatar::Error on bad shapes or non-finite points.
torch::Tensor piecewise_affine_warp(const torch::Tensor& source, const torch::Tensor& source_points,
                                    const torch::Tensor& target_points, int64_t out_height = 0,
                                    int64_t out_width = 0);

}  // namespace avatar::pipeline
