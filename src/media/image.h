#pragma once
// Still images: reading (PNG, JPEG and every format OpenCV's imgcodecs reads), writing (PNG and
// JPEG, chosen by extension, atomically) and the conversions between the two tensor layouts of
// the project:
//   - storage layout: uint8 [H, W, 3], RGB, what files hold and what read_image returns;
//   - API layout (DESIGN.md section 6): float32 [1, 3, H, W], RGB, in [-1, 1].
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace avatar::media {

// Reads an image file into uint8 [H, W, 3] RGB. Grey images are expanded to RGB, an alpha
// channel is dropped (the stored colours are kept, as PIL's convert("RGB") does), 16-bit images
// are scaled to 8 bits and JPEG EXIF orientation is applied. Throws Error naming `path` if the
// file is missing, not an image or damaged (truncated PNG and JPEG files are detected).
torch::Tensor read_image(const std::filesystem::path& path);

// As read_image, from the bytes of an image file; `subject` names them in errors.
torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& subject);
torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& subject);

// Writes uint8 [H, W, 3] RGB (any device; [H, W] grey is accepted too) as PNG (.png) or JPEG
// (.jpg, .jpeg; quality `jpeg_quality`) by the extension of `path`. The file is written to a
// temporary name and renamed, so a failed write leaves nothing under `path`.
void write_image(const std::filesystem::path& path, const torch::Tensor& image,
                 int jpeg_quality = 95);

// Encodes as write_image does, into memory; `extension` is ".png", ".jpg" or ".jpeg".
std::vector<uint8_t> encode_image(const torch::Tensor& image, const std::string& extension,
                                  int jpeg_quality = 95);

// uint8 [H, W, 3] (or [N, H, W, 3]) -> float32 [1, 3, H, W] (or [N, 3, H, W]) in [-1, 1]
// (0 -> -1, 255 -> 1), on the device of `image`.
torch::Tensor to_float_nchw(const torch::Tensor& image);

// float [1, 3, H, W] or [3, H, W] in [-1, 1] -> uint8 [H, W, 3], rounded to nearest and clamped
// (values outside [-1, 1] saturate), contiguous, on the device of `image`. [N, 3, H, W] with
// N > 1 gives [N, H, W, 3].
torch::Tensor to_uint8_hwc(const torch::Tensor& image);

}  // namespace avatar::media
