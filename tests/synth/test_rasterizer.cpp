// The CPU rasterizer of the synthetic world: coverage against analytic areas, watertight shared
// edges, depth ordering, perspective-correct UVs against ray casting, textures, determinism.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "synth/rasterizer.h"

namespace avatar::synth {
namespace {

double sum(const std::vector<float>& v) {
    double s = 0.0;
    for (float x : v)
        s += x;
    return s;
}

// One triangle (x, y, depth per vertex) on a 256x256 image.
RenderOutput render_triangles(const std::vector<float>& screen, const std::vector<int32_t>& tris,
                              int supersample, bool perspective = false,
                              const std::vector<float>& color = {}) {
    MeshView m;
    m.screen = screen.data();
    m.vertex_count = static_cast<int64_t>(screen.size() / 3);
    m.triangles = tris.data();
    m.triangle_count = static_cast<int64_t>(tris.size() / 3);
    m.color = color.empty() ? nullptr : color.data();
    RenderSettings settings;
    settings.supersample = supersample;
    settings.perspective = perspective;
    RenderOutput out;
    Rasterizer r;
    r.render({m}, settings, out);
    return out;
}

TEST(Rasterizer, TriangleCoverageMatchesAnalyticArea) {
    const std::vector<float> screen = {20.3f, 30.7f, 1.0f,   200.1f, 50.2f,
                                       1.0f,  90.6f, 220.9f, 1.0f};
    const double area =
        0.5 * std::abs((200.1 - 20.3) * (220.9 - 30.7) - (90.6 - 20.3) * (50.2 - 30.7));
    for (int s : {1, 2, 4}) {
        const auto out = render_triangles(screen, {0, 1, 2}, s);
        // Sampling error is at most about one pixel row along the perimeter; far less on average.
        EXPECT_NEAR(sum(out.mask), area, area * (s == 1 ? 0.01 : 0.003)) << "supersample " << s;
        // Edges are soft with supersampling: some pixels partially covered.
        bool partial = false;
        for (float m : out.mask)
            partial = partial || (m > 0.0f && m < 1.0f);
        EXPECT_EQ(partial, s > 1);
    }
    // Both windings cover the same samples when nothing is culled.
    const auto a = render_triangles(screen, {0, 1, 2}, 2);
    const auto b = render_triangles(screen, {0, 2, 1}, 2);
    EXPECT_EQ(a.mask, b.mask);
}

TEST(Rasterizer, SharedEdgesAreWatertight) {
    // A fan of 37 triangles around an off-grid centre: every sample inside the polygon is covered
    // exactly once, so the coverage equals the polygon's area and the interior has no cracks.
    const int n = 37;
    std::vector<float> screen = {128.37f, 121.91f, 0.0f};
    for (int i = 0; i < n; ++i) {
        const double a = 2.0 * M_PI * i / n + 0.1;
        screen.insert(screen.end(), {static_cast<float>(128.37 + 90.0 * std::cos(a)),
                                     static_cast<float>(121.91 + 90.0 * std::sin(a)), 0.0f});
    }
    std::vector<int32_t> tris;
    for (int i = 0; i < n; ++i)
        tris.insert(tris.end(), {0, 1 + i, 1 + (i + 1) % n});
    // With one sample per pixel a crack shows as a pixel of mask 0 inside the polygon.
    const auto out = render_triangles(screen, tris, 1);
    double area = 0.0;
    for (int i = 0; i < n; ++i) {
        const float* p = &screen[3 * (1 + i)];
        const float* q = &screen[3 * (1 + (i + 1) % n)];
        area += 0.5 * (static_cast<double>(p[0]) * q[1] - static_cast<double>(q[0]) * p[1]);
    }
    EXPECT_NEAR(sum(out.mask), std::abs(area), std::abs(area) * 0.01);
    for (int y = 60; y < 180; ++y) {
        for (int x = 70; x < 190; ++x) {
            if (std::hypot(x + 0.5 - 128.37, y + 0.5 - 121.91) < 85.0) {
                ASSERT_EQ(out.mask[static_cast<size_t>(y) * 256 + x], 1.0f) << x << "," << y;
            }
        }
    }
}

TEST(Rasterizer, NearerTriangleWinsInEitherOrder) {
    // Red far triangle and blue near triangle overlapping around (128, 128).
    const std::vector<float> screen = {40, 40, 5, 200, 60,  5, 100, 220, 5,
                                       60, 50, 2, 220, 120, 2, 90,  200, 2};
    const std::vector<float> color = {1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1};
    for (bool perspective : {false, true}) {
        for (bool far_first : {true, false}) {
            const std::vector<int32_t> tris = far_first ? std::vector<int32_t>{0, 1, 2, 3, 4, 5}
                                                        : std::vector<int32_t>{3, 4, 5, 0, 1, 2};
            const auto out = render_triangles(screen, tris, 2, perspective, color);
            const size_t p = 128 * 256 + 128;
            EXPECT_FLOAT_EQ(out.rgb[3 * p], 0.0f);
            EXPECT_FLOAT_EQ(out.rgb[3 * p + 2], 1.0f);
            EXPECT_FLOAT_EQ(out.depth[p], 2.0f);
            // A pixel only the far triangle covers stays red.
            const size_t q = 60 * 256 + 60;
            EXPECT_FLOAT_EQ(out.rgb[3 * q], 1.0f);
            EXPECT_FLOAT_EQ(out.depth[q], 5.0f);
        }
    }
}

TEST(Rasterizer, PerspectiveCorrectUvOnTiltedQuad) {
    // A 20 x 20 quad in the plane z = 50 + 0.8 x (tilted 38.7 degrees about the y axis), UV (0,0)
    // to (1,1) across it. For each pixel the ray through its centre meets the plane at a point
    // whose UV is known analytically; the rasterizer must agree (affine interpolation would be
    // off by up to several hundredths here).
    const PerspectiveCamera cam{300.0f, 128.0f, 128.0f};
    const std::vector<float> world = {-10, -10, 42, 10, -10, 58, 10, 10, 58, -10, 10, 42};
    std::vector<float> screen(12);
    project_perspective(cam, world.data(), 4, screen.data());
    const std::vector<float> uv = {0, 0, 1, 0, 1, 1, 0, 1};
    const std::vector<int32_t> tris = {0, 1, 2, 0, 2, 3};
    MeshView m;
    m.screen = screen.data();
    m.uv = uv.data();
    m.uv_visible = true;
    m.vertex_count = 4;
    m.triangles = tris.data();
    m.triangle_count = 2;
    RenderSettings settings;
    settings.supersample = 1;  // the representative sample is the pixel centre
    RenderOutput out;
    Rasterizer().render({m}, settings, out);
    double max_err = 0.0, max_affine_gap = 0.0;
    int checked = 0;
    for (int y = 0; y < 256; ++y) {
        for (int x = 0; x < 256; ++x) {
            const size_t p = static_cast<size_t>(y) * 256 + x;
            if (!out.uv_valid[p])
                continue;
            // Ray (dx, dy, 1) t; plane z = 50 + 0.8 X.
            const double dx = (x + 0.5 - 128.0) / 300.0, dy = (y + 0.5 - 128.0) / 300.0;
            const double t = 50.0 / (1.0 - 0.8 * dx);
            const double X = dx * t, Y = dy * t;
            const double u = (X + 10.0) / 20.0, v = (Y + 10.0) / 20.0;
            max_err =
                std::max({max_err, std::abs(out.uv[2 * p] - u), std::abs(out.uv[2 * p + 1] - v)});
            EXPECT_NEAR(out.depth[p], t, 1e-3 * t);
            // How far screen-linear interpolation would be: u of the screen x position.
            const double u_affine = (x + 0.5 - screen[0]) / (screen[3] - screen[0]);
            max_affine_gap = std::max(max_affine_gap, std::abs(u_affine - u));
            ++checked;
        }
    }
    EXPECT_GT(checked, 3000);
    EXPECT_LT(max_err, 2e-4);
    EXPECT_GT(max_affine_gap, 0.02);  // the test can tell the two apart
}

TEST(Rasterizer, TextureLabelsAndUvVisibility) {
    Texture tex(2, 1);
    tex.rgb = {1, 0, 0, 0, 0, 1};  // red left texel, blue right texel
    float c[3];
    tex.sample(0.25f, 0.5f, c);
    EXPECT_FLOAT_EQ(c[0], 1.0f);
    tex.sample(0.5f, 0.5f, c);  // halfway between the texel centres
    EXPECT_FLOAT_EQ(c[0], 0.5f);
    EXPECT_FLOAT_EQ(c[2], 0.5f);
    tex.sample(-3.0f, 0.5f, c);  // clamped
    EXPECT_FLOAT_EQ(c[0], 1.0f);

    // A textured quad with label 7 (uv visible) and an untextured triangle with label 3 in front.
    const std::vector<float> quad = {50, 50, 1, 150, 50, 1, 150, 150, 1, 50, 150, 1};
    const std::vector<float> uv = {0, 0, 1, 0, 1, 1, 0, 1};
    const std::vector<float> grey = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
                                     0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    const std::vector<int32_t> quad_tris = {0, 1, 2, 0, 2, 3};
    const std::vector<float> tri = {140, 140, 0.5f, 200, 140, 0.5f, 140, 200, 0.5f};
    const std::vector<int32_t> tri_idx = {0, 1, 2};
    MeshView a;
    a.screen = quad.data();
    a.uv = uv.data();
    a.color = grey.data();
    a.texture = &tex;
    a.uv_visible = true;
    a.vertex_count = 4;
    a.triangles = quad_tris.data();
    a.triangle_count = 2;
    a.label = 7;
    MeshView b;
    b.screen = tri.data();
    b.triangles = tri_idx.data();
    b.vertex_count = 3;
    b.triangle_count = 1;
    b.label = 3;
    std::vector<float> background(256 * 256 * 3, 0.25f);
    RenderSettings settings;
    settings.perspective = false;
    settings.background = background.data();
    RenderOutput out;
    Rasterizer().render({a, b}, settings, out);
    const auto at = [&](int x, int y) { return static_cast<size_t>(y) * 256 + x; };
    EXPECT_EQ(out.label[at(60, 100)], 7);
    EXPECT_EQ(out.uv_valid[at(60, 100)], 1);
    // The representative sample is the pixel's first one, at x = 60.25.
    EXPECT_NEAR(out.uv[2 * at(60, 100)], 0.1025f, 1e-5);
    EXPECT_NEAR(out.rgb[3 * at(60, 100)], 0.5f, 1e-5);  // grey x red texel
    EXPECT_NEAR(out.rgb[3 * at(60, 100) + 2], 0.0f, 1e-5);
    EXPECT_EQ(out.label[at(145, 145)], 3);
    EXPECT_EQ(out.uv_valid[at(145, 145)], 0);
    EXPECT_FLOAT_EQ(out.rgb[3 * at(145, 145)], 1.0f);  // white: no colour given
    EXPECT_EQ(out.label[at(10, 10)], 0);
    EXPECT_FLOAT_EQ(out.rgb[3 * at(10, 10)], 0.25f);  // background
    EXPECT_FLOAT_EQ(out.mask[at(10, 10)], 0.0f);
    EXPECT_TRUE(std::isinf(out.depth[at(10, 10)]));
}

TEST(Rasterizer, BackFacesAreCulled) {
    // Counter-clockwise to the viewer (y down: negative signed area) is the front.
    const std::vector<float> front = {50, 50, 1, 50, 150, 1, 150, 50, 1};
    std::vector<int32_t> tris = {0, 1, 2};
    MeshView m;
    m.screen = front.data();
    m.triangles = tris.data();
    m.vertex_count = 3;
    m.triangle_count = 1;
    m.cull = Cull::back;
    RenderSettings settings;
    settings.perspective = false;
    RenderOutput out;
    Rasterizer r;
    r.render({m}, settings, out);
    EXPECT_GT(sum(out.mask), 4000.0);
    tris = {0, 2, 1};
    r.render({m}, settings, out);
    EXPECT_EQ(sum(out.mask), 0.0);
}

TEST(Rasterizer, RejectsBadInput) {
    const std::vector<float> screen = {0, 0, 1, 10, 0, 1, 0, 10, 1};
    const std::vector<int32_t> tris = {0, 1, 3};
    MeshView m;
    m.screen = screen.data();
    m.triangles = tris.data();
    m.vertex_count = 3;
    m.triangle_count = 1;
    RenderOutput out;
    EXPECT_THROW(Rasterizer().render({m}, RenderSettings{}, out), avatar::Error);
    RenderSettings bad;
    bad.supersample = 0;
    EXPECT_THROW(Rasterizer().render({}, bad, out), avatar::Error);
}

TEST(Rasterizer, DeterministicAcrossRunsAndThreads) {
    // 2000 random overlapping triangles with colours and perspective depth.
    uint64_t state = 12345;
    const auto next = [&] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<float>((state >> 40) & 0xFFFFFF) / static_cast<float>(1 << 24);
    };
    std::vector<float> screen, color;
    std::vector<int32_t> tris;
    for (int t = 0; t < 2000; ++t) {
        const float cx = next() * 256, cy = next() * 256;
        for (int k = 0; k < 3; ++k) {
            screen.insert(screen.end(), {cx + (next() - 0.5f) * 60, cy + (next() - 0.5f) * 60,
                                         1.0f + next() * 10});
            color.insert(color.end(), {next(), next(), next()});
            tris.push_back(3 * t + k);
        }
    }
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    const auto one = render_triangles(screen, tris, 2, true, color);
    at::set_num_threads(2);
    const auto two = render_triangles(screen, tris, 2, true, color);
    const auto again = render_triangles(screen, tris, 2, true, color);
    at::set_num_threads(threads);
    EXPECT_EQ(one.rgb, two.rgb);
    EXPECT_EQ(one.depth, two.depth);
    EXPECT_EQ(two.rgb, again.rgb);
    EXPECT_EQ(two.mask, again.mask);
    EXPECT_GT(sum(one.mask), 30000.0);
}

}  // namespace
}  // namespace avatar::synth
