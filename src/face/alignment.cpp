#include "face/alignment.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace avatar::face {
namespace {

std::string shape_string(const torch::Tensor& t) {
    if (!t.defined())
        return "undefined";
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i)
        s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
}

Point2 operator+(const Point2& a, const Point2& b) {
    return {a[0] + b[0], a[1] + b[1]};
}
Point2 operator-(const Point2& a, const Point2& b) {
    return {a[0] - b[0], a[1] - b[1]};
}
Point2 operator*(const Point2& a, double s) {
    return {a[0] * s, a[1] * s};
}
double norm(const Point2& a) {
    return std::hypot(a[0], a[1]);
}
Point2 rot90(const Point2& a) {
    return {-a[1], a[0]};
}

// Points [N, 2] as doubles on the CPU, after checking the shape.
torch::Tensor points_cpu(const torch::Tensor& points, int64_t n, const std::string& subject) {
    check(points.defined() && points.dim() == 2 && points.size(1) == 2 &&
              (n < 0 ? points.size(0) > 0 : points.size(0) == n),
          subject,
          "expected points [" + (n < 0 ? std::string("N") : std::to_string(n)) + ", 2], got " +
              shape_string(points));
    const auto p = points.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    check(torch::isfinite(p).all().item<bool>(), subject, "points must be finite");
    return p;
}

Point2 point_at(const torch::Tensor& p, int64_t i) {
    const double* d = p.data_ptr<double>();
    return {d[2 * i], d[2 * i + 1]};
}

Point2 mean_of(const torch::Tensor& p, int64_t begin, int64_t end) {
    Point2 sum{0, 0};
    for (int64_t i = begin; i < end; ++i)
        sum = sum + point_at(p, i);
    return sum * (1.0 / double(end - begin));
}

cv::Matx23d to_cv(const Affine2& a) {
    return cv::Matx23d(a.m[0], a.m[1], a.m[2], a.m[3], a.m[4], a.m[5]);
}

int cv_border(Border border) {
    switch (border) {
        case Border::kZeros:
            return cv::BORDER_CONSTANT;
        case Border::kReplicate:
            return cv::BORDER_REPLICATE;
        case Border::kReflect:
            return cv::BORDER_REFLECT;
    }
    return cv::BORDER_CONSTANT;
}

// A view of a contiguous CPU HWC uint8/float32 tensor as a cv::Mat (no copy).
cv::Mat wrap_hwc(const torch::Tensor& t, const std::string& subject) {
    check(t.dim() == 3 && t.size(2) >= 1 && t.size(2) <= 4, subject,
          "expected an image [H, W, C] with C = 1..4, got " + shape_string(t));
    check(t.device().is_cpu(), subject, "HWC images must be on the CPU");
    check(t.scalar_type() == torch::kUInt8 || t.scalar_type() == torch::kFloat32, subject,
          "HWC images must be uint8 or float32");
    check(t.is_contiguous(), subject, "HWC images must be contiguous");
    const int depth = t.scalar_type() == torch::kUInt8 ? CV_8U : CV_32F;
    return cv::Mat(int(t.size(0)), int(t.size(1)), CV_MAKETYPE(depth, int(t.size(2))),
                   t.data_ptr());
}

torch::Tensor from_mat(const cv::Mat& mat) {
    const auto dtype = mat.depth() == CV_8U ? torch::kUInt8 : torch::kFloat32;
    return torch::from_blob(mat.data, {mat.rows, mat.cols, mat.channels()}, dtype).clone();
}

// The region of the frame under the quad (plus a pixel of margin), clipped to the frame.
struct Roi {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    bool empty() const { return x1 <= x0 || y1 <= y0; }
};

Roi quad_roi(const CropTransform& t, int64_t height, int64_t width) {
    double min_x = t.quad[0][0], max_x = min_x, min_y = t.quad[0][1], max_y = min_y;
    for (const auto& q : t.quad) {
        min_x = std::min(min_x, q[0]);
        max_x = std::max(max_x, q[0]);
        min_y = std::min(min_y, q[1]);
        max_y = std::max(max_y, q[1]);
    }
    auto clip = [](double v, int64_t hi) { return int(std::clamp(v, 0.0, double(hi))); };
    return {clip(std::floor(min_x) - 1, width), clip(std::floor(min_y) - 1, height),
            clip(std::ceil(max_x) + 2, width), clip(std::ceil(max_y) + 2, height)};
}

// Warps crop-space `source` (HWC) into the ROI of the frame: dst(x, y) = source(image_to_crop(
// x + x0, y + y0)).
cv::Mat warp_to_roi(const cv::Mat& source, const CropTransform& t, const Roi& roi, int border) {
    const Affine2 offset{{1, 0, double(roi.x0), 0, 1, double(roi.y0)}};
    cv::Mat out;
    cv::warpAffine(source, out, to_cv(offset.then(t.image_to_crop)),
                   cv::Size(roi.x1 - roi.x0, roi.y1 - roi.y0),
                   cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, border, cv::Scalar::all(0));
    return out;
}

// Per-channel mean and standard deviation of `x` [h, w, C] weighted by `a` [h, w, 1].
std::pair<torch::Tensor, torch::Tensor> weighted_stats(const torch::Tensor& x,
                                                       const torch::Tensor& a,
                                                       const torch::Tensor& a_sum) {
    const std::vector<int64_t> dims{0, 1};
    const auto mean = (a * x).sum(dims) / a_sum;
    const auto var = (a * (x - mean).pow(2)).sum(dims) / a_sum;
    return {mean, var.sqrt()};
}

torch::Tensor rgb_to_lab(const torch::Tensor& rgb01) {
    cv::Mat lab;
    cv::cvtColor(wrap_hwc(rgb01.contiguous(), "paste_back"), lab, cv::COLOR_RGB2Lab);
    return from_mat(lab);
}

torch::Tensor lab_to_rgb(const torch::Tensor& lab) {
    cv::Mat rgb;
    cv::cvtColor(wrap_hwc(lab.contiguous(), "paste_back"), rgb, cv::COLOR_Lab2RGB);
    return from_mat(rgb);
}

}  // namespace

// --- Affine2 ---------------------------------------------------------------------------------

Point2 Affine2::apply(const Point2& p) const {
    return {m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]};
}

torch::Tensor Affine2::apply(const torch::Tensor& points) const {
    check(points.defined() && points.dim() >= 1 && points.size(-1) == 2, "Affine2::apply",
          "expected points [..., 2], got " + shape_string(points));
    check(points.is_floating_point(), "Affine2::apply", "points must be floating point");
    const auto p = points.to(torch::kFloat64);
    const auto x = p.select(-1, 0), y = p.select(-1, 1);
    return torch::stack({m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]}, -1)
        .to(points.scalar_type());
}

Affine2 Affine2::inverse() const {
    const double det = m[0] * m[4] - m[1] * m[3];
    check(std::isfinite(det) && det != 0.0, "Affine2::inverse", "the map is singular");
    const double a = m[4] / det, b = -m[1] / det, c = -m[3] / det, d = m[0] / det;
    return {{a, b, -(a * m[2] + b * m[5]), c, d, -(c * m[2] + d * m[5])}};
}

Affine2 Affine2::then(const Affine2& n) const {
    const auto& t = m;
    return {{n.m[0] * t[0] + n.m[1] * t[3], n.m[0] * t[1] + n.m[1] * t[4],
             n.m[0] * t[2] + n.m[1] * t[5] + n.m[2], n.m[3] * t[0] + n.m[4] * t[3],
             n.m[3] * t[1] + n.m[4] * t[4], n.m[3] * t[2] + n.m[4] * t[5] + n.m[5]}};
}

torch::Tensor Affine2::matrix() const {
    return torch::tensor(std::vector<double>(m.begin(), m.end()), torch::kFloat64).view({2, 3});
}

// --- crop regions ----------------------------------------------------------------------------

CropTransform CropTransform::resized(int new_size) const {
    return crop_from_quad(quad, new_size);
}

torch::Tensor crop_grid_points(const CropTransform& crop, const torch::Tensor& image_points) {
    const auto in_crop = crop.image_to_crop.apply(image_points.to(torch::kFloat64));
    return (in_crop * 2.0 + 1.0) / static_cast<double>(crop.size) - 1.0;
}

CropTransform crop_from_quad(const std::array<Point2, 4>& quad, int size) {
    check(size >= 1, "crop size", "must be >= 1, got " + std::to_string(size));
    for (const auto& q : quad)
        check(std::isfinite(q[0]) && std::isfinite(q[1]), "crop quad", "corners must be finite");
    const double s = double(size);
    // crop (u, v) -> TL + (u + 0.5) / S * (TR - TL) + (v + 0.5) / S * (BL - TL)
    const Point2 a = (quad[3] - quad[0]) * (1.0 / s);
    const Point2 b = (quad[1] - quad[0]) * (1.0 / s);
    const Point2 origin = quad[0] + (a + b) * 0.5;
    CropTransform t;
    t.size = size;
    t.quad = quad;
    t.crop_to_image = Affine2{{a[0], b[0], origin[0], a[1], b[1], origin[1]}};
    const double det = a[0] * b[1] - a[1] * b[0];
    check(std::abs(det) > 1e-12 * (norm(a) * norm(b) + 1e-300), "crop quad",
          "the corners are degenerate (zero area)");
    t.image_to_crop = t.crop_to_image.inverse();
    return t;
}

CropTransform ffhq_crop(const Point2& eye_left, const Point2& eye_right, const Point2& mouth_left,
                        const Point2& mouth_right, int size) {
    const Point2 eye_avg = (eye_left + eye_right) * 0.5;
    const Point2 eye_to_eye = eye_right - eye_left;
    const Point2 mouth_avg = (mouth_left + mouth_right) * 0.5;
    const Point2 eye_to_mouth = mouth_avg - eye_avg;
    Point2 x = eye_to_eye - rot90(eye_to_mouth);
    const double length = norm(x);
    check(std::isfinite(length) && length > 0, "ffhq_crop",
          "degenerate landmarks (eyes and mouth coincide)");
    x = x * (std::max(norm(eye_to_eye) * 2.0, norm(eye_to_mouth) * 1.8) / length);
    const Point2 y = rot90(x);
    const Point2 c = eye_avg + eye_to_mouth * 0.1;
    return crop_from_quad({c - x - y, c - x + y, c + x + y, c + x - y}, size);
}

CropTransform ffhq_crop_from_68(const torch::Tensor& points68, int size) {
    const auto p = points_cpu(points68, 68, "ffhq_crop_from_68");
    return ffhq_crop(mean_of(p, 36, 42), mean_of(p, 42, 48), point_at(p, 48), point_at(p, 54),
                     size);
}

CropTransform ffhq_crop_from_5(const torch::Tensor& points5, int size) {
    const auto p = points_cpu(points5, 5, "ffhq_crop_from_5");
    return ffhq_crop(point_at(p, 0), point_at(p, 1), point_at(p, 3), point_at(p, 4), size);
}

torch::Tensor five_points_from_68(const torch::Tensor& points68) {
    const auto p = points_cpu(points68, 68, "five_points_from_68");
    const std::array<Point2, 5> five{mean_of(p, 36, 42), mean_of(p, 42, 48), point_at(p, 30),
                                     point_at(p, 48), point_at(p, 54)};
    auto out = torch::empty({5, 2}, torch::kFloat64);
    for (int64_t i = 0; i < 5; ++i) {
        out[i][0] = five[size_t(i)][0];
        out[i][1] = five[size_t(i)][1];
    }
    return out;
}

CropTransform box_crop(double left, double top, double width, double height, int size,
                       const BoxCropOptions& options) {
    check(std::isfinite(left) && std::isfinite(top) && std::isfinite(width) &&
              std::isfinite(height) && width >= 0 && height >= 0,
          "box_crop", "the box must be finite with width, height >= 0");
    check(std::isfinite(options.scale) && options.scale > 0 && std::isfinite(options.shift_y),
          "box_crop", "scale must be > 0 and shift_y finite");
    const double side = std::max(width, height) * options.scale;
    check(side > 0, "box_crop", "the box is empty");
    const Point2 c{left + 0.5 * width, top + 0.5 * height + options.shift_y * side};
    const double h = 0.5 * side;
    return crop_from_quad({Point2{c[0] - h, c[1] - h}, Point2{c[0] - h, c[1] + h},
                           Point2{c[0] + h, c[1] + h}, Point2{c[0] + h, c[1] - h}},
                          size);
}

CropTransform box_crop_from_points(const torch::Tensor& points, int size,
                                   const BoxCropOptions& options) {
    const auto p = points_cpu(points, -1, "box_crop_from_points");
    const auto lo = std::get<0>(p.min(0)), hi = std::get<0>(p.max(0));
    const double x0 = lo[0].item<double>(), y0 = lo[1].item<double>();
    return box_crop(x0, y0, hi[0].item<double>() - x0, hi[1].item<double>() - y0, size, options);
}

// --- resampling and compositing --------------------------------------------------------------

torch::Tensor warp_crop(const torch::Tensor& image, const CropTransform& transform, Border border) {
    check(image.defined(), "warp_crop", "undefined image");
    check(transform.size >= 1, "warp_crop", "empty crop transform");
    const int size = transform.size;
    if (image.dim() == 3) {
        const auto src = image.contiguous();
        cv::Mat out;
        cv::warpAffine(wrap_hwc(src, "warp_crop"), out, to_cv(transform.crop_to_image),
                       cv::Size(size, size), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                       cv_border(border), cv::Scalar::all(0));
        return from_mat(out);
    }
    check(image.dim() == 4 && image.is_floating_point(), "warp_crop",
          "expected uint8/float32 [H, W, C] or float [N, C, H, W], got " + shape_string(image) +
              " " + std::string(c10::toString(image.scalar_type())));
    const int64_t n = image.size(0), h = image.size(2), w = image.size(3);
    // Crop pixel centres -> image coordinates -> grid_sample's [-1, 1] (align_corners = false:
    // -1 and 1 are the outer edges -0.5 and W - 0.5).
    const auto r = torch::arange(size, torch::kFloat64);
    const auto grid_v = r.view({size, 1}).expand({size, size});
    const auto grid_u = r.view({1, size}).expand({size, size});
    const auto xy = transform.crop_to_image.apply(torch::stack({grid_u, grid_v}, -1));
    const auto normalised = torch::stack(
        {(2 * xy.select(-1, 0) + 1) / double(w) - 1, (2 * xy.select(-1, 1) + 1) / double(h) - 1},
        -1);
    const auto grid = normalised.to(image.options()).unsqueeze(0).expand({n, size, size, 2});
    namespace F = torch::nn::functional;
    auto options = F::GridSampleFuncOptions().mode(torch::kBilinear).align_corners(false);
    switch (border) {
        case Border::kZeros:
            options.padding_mode(torch::kZeros);
            break;
        case Border::kReplicate:
            options.padding_mode(torch::kBorder);
            break;
        case Border::kReflect:
            options.padding_mode(torch::kReflection);
            break;
    }
    return F::grid_sample(image, grid, options);
}

torch::Tensor warp_crop(const torch::Tensor& image, const CropTransform& transform, int size,
                        Border border) {
    return warp_crop(image, transform.resized(size), border);
}

int antialias_factor(const CropTransform& transform) {
    // Image pixels per crop pixel along the crop's x axis (the crop is a similarity).
    const auto& m = transform.crop_to_image.m;
    return static_cast<int>(std::floor(std::hypot(m[0], m[3])));
}

torch::Tensor warp_crop_antialiased(const torch::Tensor& image, const CropTransform& transform,
                                    Border border) {
    check(transform.size >= 1, "warp_crop_antialiased", "empty crop transform");
    // avg_pool2d pools the last two dimensions: an HWC image would be pooled across W and C.
    check(image.defined() && image.dim() == 4 && image.is_floating_point(), "warp_crop_antialiased",
          "expected float [N, C, H, W], got " + shape_string(image));
    const int factor = antialias_factor(transform);
    if (factor < 2)
        return warp_crop(image, transform, border);
    const auto fine = warp_crop(image, transform, transform.size * factor, border);
    return torch::avg_pool2d(fine, factor);
}

torch::Tensor crop_paste_mask(int size, double feather_px, const torch::Tensor& mask) {
    check(size >= 1, "crop_paste_mask", "size must be >= 1");
    check(std::isfinite(feather_px) && feather_px >= 0, "crop_paste_mask",
          "feather must be >= 0 pixels");
    torch::Tensor alpha;
    if (feather_px == 0) {
        alpha = torch::ones({size, size}, torch::kFloat32);
    } else {
        // Distance of each pixel centre from the crop's outer edge, along each axis.
        const auto r = torch::arange(size, torch::kFloat64);
        const auto edge = torch::minimum(r + 0.5, double(size) - 0.5 - r);
        const auto d = torch::minimum(edge.view({size, 1}), edge.view({1, size}));
        const auto t = (d / feather_px).clamp(0, 1);
        alpha = (t * t * (3 - 2 * t)).to(torch::kFloat32);
    }
    if (mask.defined()) {
        check(mask.dim() == 2 && mask.size(0) == size && mask.size(1) == size, "paste mask",
              "expected [" + std::to_string(size) + ", " + std::to_string(size) + "], got " +
                  shape_string(mask));
        alpha = alpha * mask.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1);
    }
    return alpha.contiguous();
}

torch::Tensor frame_paste_mask(const CropTransform& transform, int64_t height, int64_t width,
                               double feather_px, const torch::Tensor& mask) {
    auto out = torch::zeros({height, width}, torch::kFloat32);
    const Roi roi = quad_roi(transform, height, width);
    if (roi.empty())
        return out;
    const auto alpha = crop_paste_mask(transform.size, feather_px, mask).unsqueeze(-1);
    const cv::Mat warped =
        warp_to_roi(wrap_hwc(alpha, "paste mask"), transform, roi, cv::BORDER_CONSTANT);
    out.slice(0, roi.y0, roi.y1).slice(1, roi.x0, roi.x1).copy_(from_mat(warped).squeeze(-1));
    return out;
}

namespace {

// A square crop-space image [S, S, C] warped back into `frame`'s pixels under the crop's exact
// inverse (bilinear, edges replicated, in float), with its paste mask: the common step of
// paste_back and add_crop_difference. `region` views the frame's pixels under the quad's
// bounding box; nullopt if the crop lies outside the frame.
struct CropInFrame {
    torch::Tensor region;  // view into the frame [h, w, 3]
    torch::Tensor warped;  // float32 [h, w, C]
    torch::Tensor alpha;   // float32 [h, w, 1]
};

std::optional<CropInFrame> warp_into_frame(const torch::Tensor& frame, const torch::Tensor& crop,
                                           const CropTransform& transform_in, double feather_px,
                                           const torch::Tensor& mask, const std::string& subject) {
    const int size = int(crop.size(0));
    const CropTransform transform =
        transform_in.size == size ? transform_in : transform_in.resized(size);
    const Roi roi = quad_roi(transform, frame.size(0), frame.size(1));
    if (roi.empty())
        return std::nullopt;
    // In float: no fixed-point uint8 resampling.
    const auto crop_f = crop.detach().to(torch::kFloat32).contiguous();
    const auto alpha_crop = crop_paste_mask(size, feather_px, mask).unsqueeze(-1);
    return CropInFrame{
        frame.slice(0, roi.y0, roi.y1).slice(1, roi.x0, roi.x1),
        from_mat(warp_to_roi(wrap_hwc(crop_f, subject), transform, roi, cv::BORDER_REPLICATE)),
        from_mat(warp_to_roi(wrap_hwc(alpha_crop, subject), transform, roi, cv::BORDER_CONSTANT))};
}

}  // namespace

torch::Tensor paste_back(const torch::Tensor& frame, const torch::Tensor& crop,
                         const CropTransform& transform_in, double mask_feather_px,
                         ColourMatch colour_match, const torch::Tensor& mask) {
    const std::string subject = "paste_back";
    check(frame.defined() && frame.dim() == 3 && frame.size(2) == 3, subject,
          "expected a frame [H, W, 3], got " + shape_string(frame));
    check(crop.defined() && crop.dim() == 3 && crop.size(2) == 3 && crop.size(0) == crop.size(1),
          subject, "expected a square crop [S, S, 3], got " + shape_string(crop));
    check(frame.scalar_type() == crop.scalar_type() &&
              (frame.scalar_type() == torch::kUInt8 || frame.scalar_type() == torch::kFloat32),
          subject, "frame and crop must both be uint8 or both float32");
    check(frame.device().is_cpu() && crop.device().is_cpu(), subject, "images must be on the CPU");
    const bool is_uint8 = frame.scalar_type() == torch::kUInt8;

    auto out = frame.clone().contiguous();
    const auto in_frame = warp_into_frame(out, crop, transform_in, mask_feather_px, mask, subject);
    if (!in_frame)
        return out;
    auto warped = in_frame->warped;
    const auto& alpha = in_frame->alpha;
    const auto& region = in_frame->region;
    const auto background = region.to(torch::kFloat32);
    const auto alpha_sum = alpha.sum();
    if (colour_match != ColourMatch::kNone && alpha_sum.item<double>() > 1e-6) {
        const double unit = is_uint8 ? 255.0 : 1.0;
        const bool lab = colour_match == ColourMatch::kLab;
        auto source = lab ? rgb_to_lab((warped / unit).clamp(0, 1)) : warped;
        const auto target = lab ? rgb_to_lab((background / unit).clamp(0, 1)) : background;
        const auto [mu_s, sd_s] = weighted_stats(source, alpha, alpha_sum);
        const auto [mu_t, sd_t] = weighted_stats(target, alpha, alpha_sum);
        const double eps = lab ? 1e-3 : 1e-3 * unit;
        source = (source - mu_s) * (sd_t / sd_s.clamp_min(eps)) + mu_t;
        warped = lab ? lab_to_rgb(source.to(torch::kFloat32)) * unit : source;
    }
    auto blended = background * (1 - alpha) + warped * alpha;
    if (is_uint8)
        blended = blended.round().clamp(0, 255);
    region.copy_(blended.to(frame.scalar_type()));
    return out;
}

torch::Tensor add_crop_difference(const torch::Tensor& frame, const torch::Tensor& difference,
                                  const CropTransform& transform_in, double mask_feather_px,
                                  const torch::Tensor& mask) {
    const std::string subject = "add_crop_difference";
    check(frame.defined() && frame.dim() == 3 && frame.size(2) == 3 &&
              (frame.scalar_type() == torch::kUInt8 || frame.scalar_type() == torch::kFloat32),
          subject, "expected a uint8 or float32 frame [H, W, 3], got " + shape_string(frame));
    check(difference.defined() && difference.dim() == 3 && difference.size(2) == 3 &&
              difference.size(0) == difference.size(1) && difference.is_floating_point(),
          subject, "expected a float square difference [S, S, 3], got " + shape_string(difference));
    check(frame.device().is_cpu() && difference.device().is_cpu(), subject,
          "images must be on the CPU");
    auto out = frame.clone().contiguous();
    const auto in_frame =
        warp_into_frame(out, difference, transform_in, mask_feather_px, mask, subject);
    if (!in_frame)
        return out;
    const auto& region = in_frame->region;
    auto changed = region.to(torch::kFloat32) + in_frame->warped * in_frame->alpha;
    if (frame.scalar_type() == torch::kUInt8)
        changed = changed.round().clamp(0, 255);
    region.copy_(changed.to(frame.scalar_type()));
    return out;
}

}  // namespace avatar::face
