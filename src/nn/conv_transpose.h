#pragma once
// A stride-2 transposed convolution computed as four ordinary convolutions, one per output
// phase (sub-pixel decomposition). LibTorch's CPU conv_transpose2d takes the slow col2im path:
// at EG3D's SR sizes (256 -> 128 channels on 256²) it is ~10 s on one core, 20x an ordinary 3x3
// convolution of the same work. Each phase here is a small correlation on the input grid, so the
// work is exactly that of the transposed convolution and runs through oneDNN. Equal to
// conv_transpose2d in exact arithmetic; the summation order (and so the last bits) differ.
#include <torch/torch.h>

namespace avatar::nn {

// conv_transpose2d(x, w, stride = 2, padding = 0, output_padding = 0, groups) with w laid out as
// conv_transpose2d expects: [in, out / groups, kh, kw]. x [N, in, H, W] ->
// [N, out, 2(H-1) + kh, 2(W-1) + kw].
torch::Tensor conv_transpose2d_stride2(const torch::Tensor& x, const torch::Tensor& w,
                                       int64_t groups = 1);

}  // namespace avatar::nn
