#include "metrics/plot.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "media/image.h"

namespace avatar::metrics {
namespace {

std::string tick_label(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.4g", value);
    return text;
}

}  // namespace

void write_line_plot(const std::filesystem::path& path, const std::vector<double>& values,
                     const LinePlotOptions& options) {
    check(options.width >= 200 && options.height >= 120, path.string(), "plot is too small");
    const cv::Scalar background(255, 255, 255), axis(60, 60, 60), grid(225, 225, 225),
        line(200, 90, 30), mean_colour(40, 40, 200);
    cv::Mat canvas(options.height, options.width, CV_8UC3, background);
    const int left = 70, right = 20, top = 34, bottom = 40;
    const int plot_w = options.width - left - right, plot_h = options.height - top - bottom;

    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int count = 0;
    for (double v : values) {
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            sum += v;
            ++count;
        }
    }
    if (count == 0) {
        lo = 0;
        hi = 1;
    } else if (hi - lo < 1e-12) {
        const double pad = std::max(std::abs(hi) * 0.05, 1e-6);
        lo -= pad;
        hi += pad;
    } else {
        const double pad = (hi - lo) * 0.05;
        lo -= pad;
        hi += pad;
    }
    const size_t n = values.size();
    auto x_of = [&](size_t i) {
        return left + (n <= 1 ? plot_w / 2
                              : static_cast<int>(std::lround(static_cast<double>(i) * plot_w /
                                                             static_cast<double>(n - 1))));
    };
    auto y_of = [&](double v) {
        return top + static_cast<int>(std::lround((hi - v) / (hi - lo) * plot_h));
    };

    const auto font = cv::FONT_HERSHEY_SIMPLEX;
    for (int t = 0; t <= 4; ++t) {
        const double v = lo + (hi - lo) * t / 4.0;
        const int y = y_of(v);
        cv::line(canvas, {left, y}, {left + plot_w, y}, grid, 1);
        cv::putText(canvas, tick_label(v), {4, y + 4}, font, 0.4, axis, 1, cv::LINE_AA);
    }
    for (int t = 0; t <= 4 && n > 1; ++t) {
        const size_t i = (n - 1) * static_cast<size_t>(t) / 4;
        const int x = x_of(i);
        cv::line(canvas, {x, top + plot_h}, {x, top + plot_h + 4}, axis, 1);
        cv::putText(canvas, std::to_string(i), {x - 8, top + plot_h + 18}, font, 0.4, axis, 1,
                    cv::LINE_AA);
    }
    cv::rectangle(canvas, {left, top}, {left + plot_w, top + plot_h}, axis, 1);
    cv::putText(canvas, options.x_label, {left + plot_w / 2 - 20, options.height - 6}, font, 0.45,
                axis, 1, cv::LINE_AA);

    // The series, broken at NaN; a lone finite value between gaps is drawn as a dot.
    std::vector<cv::Point> run;
    auto flush = [&] {
        if (run.size() == 1)
            cv::circle(canvas, run.front(), 2, line, cv::FILLED, cv::LINE_AA);
        else if (run.size() > 1)
            cv::polylines(canvas, run, false, line, 2, cv::LINE_AA);
        run.clear();
    };
    for (size_t i = 0; i < n; ++i) {
        if (std::isfinite(values[i]))
            run.emplace_back(x_of(i), y_of(values[i]));
        else
            flush();
    }
    flush();

    std::string title = options.title;
    if (count > 0) {
        const double mean = sum / count;
        const int y = y_of(mean);
        for (int x = left; x < left + plot_w; x += 12)
            cv::line(canvas, {x, y}, {std::min(x + 6, left + plot_w), y}, mean_colour, 1);
        title += "   mean " + tick_label(mean);
    }
    if (count < static_cast<int>(n))
        title += "   (" + std::to_string(n - static_cast<size_t>(count)) +
                 " frames without a finite value)";
    cv::putText(canvas, title, {left, 22}, font, 0.55, axis, 1, cv::LINE_AA);

    // OpenCV drew in BGR order; the image writer takes RGB.
    cv::cvtColor(canvas, canvas, cv::COLOR_BGR2RGB);
    const auto tensor = torch::from_blob(canvas.data, {canvas.rows, canvas.cols, 3}, torch::kUInt8);
    media::write_image(path, tensor);
}

}  // namespace avatar::metrics
