#pragma once
// Per-frame metric plots for `avatar eval`: a line chart of one series as a PNG, with axes, tick
// labels and the mean drawn as a dashed line. NaN values (frames without a face) leave gaps.
#include <filesystem>
#include <string>
#include <vector>

namespace avatar::metrics {

struct LinePlotOptions {
    int width = 960;
    int height = 360;
    std::string title;
    std::string x_label = "frame";
};

// Writes the chart to `path` (PNG, atomically). Throws Error naming the path on failure.
void write_line_plot(const std::filesystem::path& path, const std::vector<double>& values,
                     const LinePlotOptions& options);

}  // namespace avatar::metrics
