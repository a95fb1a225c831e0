#include "media/image.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"
#include "core/files.h"

namespace avatar::media {
namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t magic_size) {
    return size >= magic_size && std::memcmp(data, magic, magic_size) == 0;
}

// libjpeg decodes a truncated file with only a warning on stderr and fills the missing rows
// with grey, and OpenCV passes that on as success. A complete JPEG has an EOI marker (FF D9)
// after its last start-of-scan (FF DA): inside entropy-coded data FF is always followed by 00
// or a restart marker, so this test has no false alarms, and EXIF thumbnails (which precede the
// main scan) cannot satisfy it.
bool jpeg_is_complete(const uint8_t* data, size_t size) {
    size_t last_scan = 0;
    for (size_t i = 0; i + 1 < size; ++i) {
        if (data[i] == 0xFF && data[i + 1] == 0xDA)
            last_scan = i;
    }
    if (last_scan == 0)
        return false;
    for (size_t i = last_scan + 2; i + 1 < size; ++i) {
        if (data[i] == 0xFF && data[i + 1] == 0xD9)
            return true;
    }
    return false;
}

// A PNG ends with an IEND chunk; without it the file was cut short (libpng may still decode the
// rows it got).
bool png_is_complete(const uint8_t* data, size_t size) {
    static const char kIend[] = {'I', 'E', 'N', 'D'};
    const auto* end = data + size;
    return std::search(data + 8, end, kIend, kIend + 4) != end;
}

std::string lower_extension(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext;
}

// uint8 [H, W, 3] RGB tensor (or [H, W] grey) -> BGR (or grey) cv::Mat sharing nothing.
cv::Mat to_bgr_mat(const torch::Tensor& image, const std::string& subject) {
    check(image.scalar_type() == torch::kUInt8, subject,
          "image tensor must be uint8 [H, W, 3] (use to_uint8_hwc), got " +
              std::string(c10::toString(image.scalar_type())));
    const bool grey = image.dim() == 2;
    check(grey || (image.dim() == 3 && image.size(2) == 3), subject,
          "image tensor must be [H, W, 3] (or [H, W]), got " + c10::str(image.sizes()));
    check(image.size(0) > 0 && image.size(1) > 0, subject, "image tensor is empty");
    const torch::Tensor host = image.to(torch::kCPU).contiguous();
    const cv::Mat view(static_cast<int>(host.size(0)), static_cast<int>(host.size(1)),
                       grey ? CV_8UC1 : CV_8UC3, host.data_ptr<uint8_t>());
    cv::Mat out;
    if (grey)
        out = view.clone();
    else
        cv::cvtColor(view, out, cv::COLOR_RGB2BGR);
    return out;
}

}  // namespace

torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& subject) {
    check(size > 0, subject, "empty file, not an image");
    static const char kPng[] = "\x89PNG\r\n\x1a\n";
    if (starts_with(data, size, kPng, 8))
        check(png_is_complete(data, size), subject, "truncated PNG (no IEND chunk)");
    if (starts_with(data, size, "\xFF\xD8", 2))
        check(jpeg_is_complete(data, size), subject, "truncated JPEG (no end-of-image marker)");

    cv::Mat decoded;
    try {
        // imdecode takes a Mat header over our bytes; it does not modify them.
        const cv::Mat buffer(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
        decoded = cv::imdecode(buffer, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
        throw Error(subject, "cannot decode image: " + e.msg);
    }
    check(!decoded.empty(), subject, "not an image format OpenCV reads, or damaged");

    // IMREAD_COLOR gives 8-bit BGR for the usual formats; HDR-type formats come as float.
    if (decoded.depth() == CV_16U)
        decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
    else if (decoded.depth() != CV_8U)
        decoded.convertTo(decoded, CV_8U, 255.0);
    check(decoded.type() == CV_8UC3, subject, "unsupported pixel layout");

    cv::Mat rgb;
    cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
    return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
}

torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& subject) {
    return decode_image(bytes.data(), bytes.size(), subject);
}

torch::Tensor read_image(const std::filesystem::path& path) {
    const std::vector<uint8_t> bytes = read_file(path);
    return decode_image(bytes, path.string());
}

std::vector<uint8_t> encode_image(const torch::Tensor& image, const std::string& extension,
                                  int jpeg_quality) {
    std::string ext = extension;
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool jpeg = ext == ".jpg" || ext == ".jpeg";
    check(jpeg || ext == ".png", extension.empty() ? "image" : extension,
          "unsupported image extension (use .png, .jpg or .jpeg)");
    const cv::Mat bgr = to_bgr_mat(image, "image");
    std::vector<int> params;
    if (jpeg)
        params = {cv::IMWRITE_JPEG_QUALITY, std::clamp(jpeg_quality, 1, 100)};
    std::vector<uint8_t> bytes;
    bool encoded = false;
    try {
        encoded = cv::imencode(jpeg ? ".jpg" : ".png", bgr, bytes, params);
    } catch (const cv::Exception& e) {
        throw Error("image", "cannot encode: " + e.msg);
    }
    check(encoded, "image", "cannot encode as " + ext);
    return bytes;
}

void write_image(const std::filesystem::path& path, const torch::Tensor& image, int jpeg_quality) {
    std::vector<uint8_t> bytes;
    try {
        bytes = encode_image(image, lower_extension(path), jpeg_quality);
    } catch (const Error& e) {
        throw Error(path.string(), e.message());
    }
    write_file_atomic(path, bytes.data(), bytes.size());
}

torch::Tensor to_float_nchw(const torch::Tensor& image) {
    check(image.scalar_type() == torch::kUInt8, "image",
          "to_float_nchw expects uint8 [H, W, 3], got " +
              std::string(c10::toString(image.scalar_type())));
    check((image.dim() == 3 || image.dim() == 4) && image.size(-1) == 3, "image",
          "to_float_nchw expects [H, W, 3] or [N, H, W, 3], got " + c10::str(image.sizes()));
    const torch::Tensor batched = image.dim() == 3 ? image.unsqueeze(0) : image;
    return batched.permute({0, 3, 1, 2}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

torch::Tensor to_uint8_hwc(const torch::Tensor& image) {
    check(image.is_floating_point(), "image",
          "to_uint8_hwc expects a float [1, 3, H, W] tensor in [-1, 1], got " +
              std::string(c10::toString(image.scalar_type())));
    check((image.dim() == 3 && image.size(0) == 3) || (image.dim() == 4 && image.size(1) == 3),
          "image",
          "to_uint8_hwc expects [1, 3, H, W] or [3, H, W], got " + c10::str(image.sizes()));
    const torch::Tensor scaled =
        image.to(torch::kFloat32).add(1.0).mul(127.5).round().clamp(0.0, 255.0).to(torch::kUInt8);
    if (image.dim() == 3)
        return scaled.permute({1, 2, 0}).contiguous();
    const torch::Tensor hwc = scaled.permute({0, 2, 3, 1}).contiguous();
    return image.size(0) == 1 ? hwc.squeeze(0) : hwc;
}

}  // namespace avatar::media
