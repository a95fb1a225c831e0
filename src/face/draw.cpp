#include "face/draw.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace avatar::face {
namespace {

// OpenCV's drawing functions take fixed-point coordinates: 4 fractional bits keep sub-pixel
// positions (anti-aliased drawing uses them).
constexpr int kShift = 4;
constexpr double kOne = double(1 << kShift);

cv::Mat wrap(const torch::Tensor& image) {
    check(image.defined() && image.dim() == 3 && image.size(2) == 3 &&
              image.scalar_type() == torch::kUInt8 && image.device().is_cpu() &&
              image.is_contiguous(),
          "draw", "expected a contiguous CPU uint8 image [H, W, 3]");
    return cv::Mat(int(image.size(0)), int(image.size(1)), CV_8UC3, image.data_ptr());
}

cv::Scalar scalar(Rgb c) {
    return cv::Scalar(c.r, c.g, c.b);
}  // the Mat holds RGB

cv::Point fixed(double x, double y) {
    return cv::Point(int(std::lround(x * kOne)), int(std::lround(y * kOne)));
}

std::vector<cv::Point> fixed_points(const torch::Tensor& points, int64_t expected_rows,
                                    const std::string& subject) {
    check(points.defined() && points.dim() == 2 && points.size(1) >= 2 &&
              (expected_rows < 0 || points.size(0) == expected_rows),
          subject,
          "expected points [" +
              (expected_rows < 0 ? std::string("N") : std::to_string(expected_rows)) + ", 2]");
    const auto p = points.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const auto a = p.accessor<double, 2>();
    std::vector<cv::Point> out;
    out.reserve(size_t(p.size(0)));
    for (int64_t i = 0; i < p.size(0); ++i)
        if (std::isfinite(a[i][0]) && std::isfinite(a[i][1]))
            out.push_back(fixed(a[i][0], a[i][1]));
    return out;
}

struct Region68 {
    int begin, end;  // [begin, end)
    bool closed;
    Rgb colour;
};

constexpr std::array<Region68, 9> kRegions68{{
    {0, 17, false, {255, 255, 255}},  // jaw
    {17, 22, false, {255, 200, 0}},   // brows
    {22, 27, false, {255, 200, 0}},
    {27, 31, false, {0, 200, 255}},  // nose bridge
    {31, 36, false, {0, 200, 255}},  // lower nose
    {36, 42, true, {0, 255, 0}},     // eyes
    {42, 48, true, {0, 255, 0}},
    {48, 60, true, {255, 60, 60}},    // outer lips
    {60, 68, true, {255, 120, 200}},  // inner lips
}};

void draw_68(const torch::Tensor& image, const torch::Tensor& points, const Rgb* colour,
             int thickness) {
    cv::Mat mat = wrap(image);
    const auto all = fixed_points(points, 68, "draw_landmarks68");
    check(all.size() == 68, "draw_landmarks68", "points must be finite");
    for (const auto& region : kRegions68) {
        const std::vector<cv::Point> line(all.begin() + region.begin, all.begin() + region.end);
        cv::polylines(mat, line, region.closed, scalar(colour ? *colour : region.colour), thickness,
                      cv::LINE_AA, kShift);
    }
}

}  // namespace

void draw_points(const torch::Tensor& image, const torch::Tensor& points, Rgb colour, int radius) {
    cv::Mat mat = wrap(image);
    for (const auto& p : fixed_points(points, -1, "draw_points"))
        cv::circle(mat, p, int(std::lround(radius * kOne)), scalar(colour), cv::FILLED, cv::LINE_AA,
                   kShift);
}

void draw_box(const torch::Tensor& image, double left, double top, double width, double height,
              Rgb colour, int thickness) {
    cv::Mat mat = wrap(image);
    cv::rectangle(mat, fixed(left, top), fixed(left + width, top + height), scalar(colour),
                  thickness, cv::LINE_AA, kShift);
}

void draw_quad(const torch::Tensor& image, const std::array<Point2, 4>& quad, Rgb colour,
               int thickness) {
    cv::Mat mat = wrap(image);
    std::vector<cv::Point> corners;
    for (const auto& q : quad)
        corners.push_back(fixed(q[0], q[1]));
    cv::polylines(mat, corners, true, scalar(colour), thickness, cv::LINE_AA, kShift);
}

void draw_mesh468(const torch::Tensor& image, const torch::Tensor& points, Rgb colour, int radius) {
    check(points.defined() && points.dim() == 2 && points.size(0) == 468, "draw_mesh468",
          "expected FaceMesh points [468, >= 2]");
    draw_points(image, points, colour, radius);
}

void draw_landmarks68(const torch::Tensor& image, const torch::Tensor& points, int thickness) {
    draw_68(image, points, nullptr, thickness);
}

void draw_landmarks68(const torch::Tensor& image, const torch::Tensor& points, Rgb colour,
                      int thickness) {
    draw_68(image, points, &colour, thickness);
}

void draw_pose_axes(const torch::Tensor& image, const HeadPose& pose, double length_cm,
                    int thickness) {
    cv::Mat mat = wrap(image);
    check(pose.rotation.defined() && pose.rotation.dim() == 2, "draw_pose_axes",
          "expected an unbatched pose");
    const auto r = pose.rotation.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const auto t = pose.translation.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const double s = pose.scale.item<double>() * length_cm;
    const auto ra = r.accessor<double, 2>();
    const double ox = t[0].item<double>(), oy = t[1].item<double>();
    const std::array<Rgb, 3> colours{Rgb{255, 0, 0}, Rgb{0, 255, 0}, Rgb{0, 0, 255}};
    for (int axis = 0; axis < 3; ++axis) {
        // Column `axis` of R in the pose frame (y up) -> image (y down).
        const double dx = s * ra[0][axis], dy = -s * ra[1][axis];
        cv::line(mat, fixed(ox, oy), fixed(ox + dx, oy + dy), scalar(colours[size_t(axis)]),
                 thickness, cv::LINE_AA, kShift);
    }
}

}  // namespace avatar::face
