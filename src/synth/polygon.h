#pragma once
// Signed distance to a closed polygon in the x-y plane, for the texture masks of the synthetic
// head (eyes, lips, brows, the face's silhouette in UV space).
#include <algorithm>
#include <cmath>
#include <vector>

namespace avatar::synth {

// Distance from (x, y) to the nearest edge of `poly` (any point type with x and y members),
// negative inside (even-odd rule).
template <typename Point>
double polygon_signed_distance(const std::vector<Point>& poly, double x, double y) {
    bool inside = false;
    double best = 1e30;
    for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
        const Point a = poly[j], b = poly[i];
        if ((b.y > y) != (a.y > y) && x < (a.x - b.x) * (y - b.y) / (a.y - b.y) + b.x)
            inside = !inside;
        const double dx = a.x - b.x, dy = a.y - b.y;
        const double t =
            std::clamp(((x - b.x) * dx + (y - b.y) * dy) / (dx * dx + dy * dy), 0.0, 1.0);
        best = std::min(best, std::hypot(x - b.x - t * dx, y - b.y - t * dy));
    }
    return inside ? -best : best;
}

}  // namespace avatar::synth
