#include "synth/rasterizer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "core/error.h"

namespace avatar::synth {

// ---- textures ----------------------------------------------------------------------------------

Texture::Texture(int width_, int height_) : width(width_), height(height_) {
    avatar::check(
        width_ > 0 && height_ > 0, "texture",
        "size must be positive, got " + std::to_string(width_) + "x" + std::to_string(height_));
    rgb.assign(static_cast<size_t>(width_) * static_cast<size_t>(height_) * 3, 0.0f);
}

void Texture::sample(float u, float v, float* out) const {
    // Texel centres sit at ((i + 0.5) / W, (j + 0.5) / H); outside them the border texel repeats.
    const float x = std::clamp(u, 0.0f, 1.0f) * static_cast<float>(width) - 0.5f;
    const float y = std::clamp(v, 0.0f, 1.0f) * static_cast<float>(height) - 0.5f;
    const float fx = std::floor(x), fy = std::floor(y);
    const float ax = x - fx, ay = y - fy;
    const int x0 = std::clamp(static_cast<int>(fx), 0, width - 1);
    const int y0 = std::clamp(static_cast<int>(fy), 0, height - 1);
    const int x1 = std::min(x0 + (fx >= 0.0f ? 1 : 0), width - 1);
    const int y1 = std::min(y0 + (fy >= 0.0f ? 1 : 0), height - 1);
    const float* r0 = rgb.data() + static_cast<size_t>(y0) * static_cast<size_t>(width) * 3;
    const float* r1 = rgb.data() + static_cast<size_t>(y1) * static_cast<size_t>(width) * 3;
    for (int c = 0; c < 3; ++c) {
        const float top = r0[x0 * 3 + c] + ax * (r0[x1 * 3 + c] - r0[x0 * 3 + c]);
        const float bottom = r1[x0 * 3 + c] + ax * (r1[x1 * 3 + c] - r1[x0 * 3 + c]);
        out[c] = top + ay * (bottom - top);
    }
}

torch::Tensor Texture::to_tensor() const {
    return torch::from_blob(const_cast<float*>(rgb.data()), {height, width, 3}, torch::kFloat32)
        .clone();
}

// ---- outputs -----------------------------------------------------------------------------------

namespace {

template <typename T>
torch::Tensor copy_to_tensor(const std::vector<T>& data, std::vector<int64_t> shape,
                             torch::ScalarType dtype) {
    return torch::from_blob(const_cast<T*>(data.data()), shape, dtype).clone();
}

}  // namespace

torch::Tensor RenderOutput::rgb_tensor() const {
    return copy_to_tensor(rgb, {height, width, 3}, torch::kFloat32);
}
torch::Tensor RenderOutput::mask_tensor() const {
    return copy_to_tensor(mask, {height, width}, torch::kFloat32);
}
torch::Tensor RenderOutput::depth_tensor() const {
    return copy_to_tensor(depth, {height, width}, torch::kFloat32);
}
torch::Tensor RenderOutput::uv_tensor() const {
    return copy_to_tensor(uv, {height, width, 2}, torch::kFloat32);
}
torch::Tensor RenderOutput::uv_valid_tensor() const {
    return copy_to_tensor(uv_valid, {height, width}, torch::kUInt8);
}
torch::Tensor RenderOutput::label_tensor() const {
    return copy_to_tensor(label, {height, width}, torch::kUInt8);
}

// ---- rasterization -----------------------------------------------------------------------------

namespace {

// A triangle ready for scan conversion, in sample coordinates (sample centres at integers).
// Vertices are reordered so that the signed area is positive; edge i is the one opposite vertex i
// and its function e_i = a_i x + b_i y + c_i is positive inside, e_i(v_i) = twice the area.
struct Triangle {
    double a[3], b[3], c[3];
    bool tie_inside[3];  // top-left rule: a sample exactly on edge i is inside
    double inv_area2;
    float w[3];              // perspective: 1 / depth; affine: depth
    int32_t x0, x1, y0, y1;  // inclusive sample bounding box, clipped to the image
    int32_t mesh;
    int32_t vertex[3];
    uint8_t label;
};

}  // namespace

struct Rasterizer::Prepared {
    std::vector<Triangle> triangles;
    std::vector<std::vector<int32_t>> bands;  // triangle ids per band, increasing
};

namespace {

void check_settings(const RenderSettings& s) {
    avatar::check(s.width > 0 && s.height > 0 && s.width <= 16384 && s.height <= 16384,
                  "render settings",
                  "image size must be 1..16384, got " + std::to_string(s.width) + "x" +
                      std::to_string(s.height));
    avatar::check(s.supersample >= 1 && s.supersample <= 8, "render settings",
                  "supersample must be 1..8, got " + std::to_string(s.supersample));
    avatar::check(!s.perspective || s.near > 0.0f, "render settings", "near must be positive");
}

void check_mesh(const MeshView& m, size_t index) {
    if (m.triangle_count == 0 && m.vertex_count >= 0)
        return;
    const std::string subject = "mesh " + std::to_string(index);
    avatar::check(m.vertex_count >= 0 && m.triangle_count >= 0, subject, "negative count");
    avatar::check(m.screen != nullptr && m.triangles != nullptr, subject,
                  "screen positions and triangles are required");
    avatar::check(m.texture == nullptr || m.uv != nullptr, subject, "a texture needs UVs");
    avatar::check(!m.uv_visible || m.uv != nullptr, subject, "uv_visible needs UVs");
    if (m.texture) {
        const auto& t = *m.texture;
        avatar::check(
            t.width > 0 && t.height > 0 &&
                t.rgb.size() == static_cast<size_t>(t.width) * static_cast<size_t>(t.height) * 3,
            subject, "texture buffer does not match its size");
    }
    for (int64_t i = 0; i < m.triangle_count * 3; ++i) {
        if (m.triangles[i] < 0 || m.triangles[i] >= m.vertex_count)  // message only on failure
            throw avatar::Error(subject, "triangle " + std::to_string(i / 3) +
                                             " has vertex index " + std::to_string(m.triangles[i]) +
                                             " outside [0, " + std::to_string(m.vertex_count) +
                                             ")");
    }
}

constexpr int kBandPixelRows = 8;

}  // namespace

void Rasterizer::render(const std::vector<MeshView>& meshes, const RenderSettings& settings,
                        RenderOutput& out) {
    check_settings(settings);
    for (size_t i = 0; i < meshes.size(); ++i)
        check_mesh(meshes[i], i);

    const int S = settings.supersample;
    const int W = settings.width, H = settings.height;
    const int SW = W * S, SH = H * S;
    const double scale = static_cast<double>(S);
    const int band_rows = kBandPixelRows * S;
    const int band_count = (SH + band_rows - 1) / band_rows;

    // --- triangle setup (serial: cheap, and it fixes the triangle order) ---
    Prepared prep;
    prep.bands.assign(static_cast<size_t>(band_count), {});
    for (size_t mi = 0; mi < meshes.size(); ++mi) {
        const auto& m = meshes[mi];
        for (int64_t t = 0; t < m.triangle_count; ++t) {
            int32_t v[3] = {m.triangles[3 * t], m.triangles[3 * t + 1], m.triangles[3 * t + 2]};
            double x[3], y[3];
            float d[3];
            bool behind = false, finite = true;
            for (int k = 0; k < 3; ++k) {
                const float* p = m.screen + 3 * static_cast<int64_t>(v[k]);
                x[k] = static_cast<double>(p[0]) * scale - 0.5;
                y[k] = static_cast<double>(p[1]) * scale - 0.5;
                d[k] = p[2];
                finite =
                    finite && std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]);
                behind = behind || (settings.perspective && p[2] <= settings.near);
            }
            if (behind || !finite)
                continue;
            const double area2 = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0]);
            if (area2 == 0.0)
                continue;
            // Front faces have negative area2 (counter-clockwise to the viewer, y down).
            if ((m.cull == Cull::back && area2 > 0.0) || (m.cull == Cull::front && area2 < 0.0))
                continue;
            if (area2 < 0.0) {
                std::swap(v[1], v[2]);
                std::swap(x[1], x[2]);
                std::swap(y[1], y[2]);
                std::swap(d[1], d[2]);
            }
            Triangle tri{};
            const double minx = std::min({x[0], x[1], x[2]}), maxx = std::max({x[0], x[1], x[2]});
            const double miny = std::min({y[0], y[1], y[2]}), maxy = std::max({y[0], y[1], y[2]});
            if (maxx < 0.0 || maxy < 0.0 || minx > SW - 1 || miny > SH - 1)
                continue;
            tri.x0 = static_cast<int32_t>(std::max(0.0, std::ceil(minx)));
            tri.x1 = static_cast<int32_t>(std::min<double>(SW - 1, std::floor(maxx)));
            tri.y0 = static_cast<int32_t>(std::max(0.0, std::ceil(miny)));
            tri.y1 = static_cast<int32_t>(std::min<double>(SH - 1, std::floor(maxy)));
            if (tri.x0 > tri.x1 || tri.y0 > tri.y1)
                continue;
            double area = 0.0;
            for (int e = 0; e < 3; ++e) {
                // Edge from vertex j to vertex k, opposite vertex e. Computed so that the same
                // edge traversed the other way gives exactly the negated function.
                const int j = (e + 1) % 3, k = (e + 2) % 3;
                tri.a[e] = y[j] - y[k];
                tri.b[e] = x[k] - x[j];
                tri.c[e] = x[j] * y[k] - y[j] * x[k];
                tri.tie_inside[e] = tri.a[e] > 0.0 || (tri.a[e] == 0.0 && tri.b[e] > 0.0);
                area = tri.a[e] * x[e] + tri.b[e] * y[e] + tri.c[e];
            }
            if (!(area > 0.0))
                continue;  // collinear after rounding
            tri.inv_area2 = 1.0 / area;
            for (int k = 0; k < 3; ++k) {
                tri.w[k] = settings.perspective ? 1.0f / d[k] : d[k];
                tri.vertex[k] = v[k];
            }
            tri.mesh = static_cast<int32_t>(mi);
            tri.label = m.labels ? m.labels[t] : m.label;
            const auto id = static_cast<int32_t>(prep.triangles.size());
            prep.triangles.push_back(tri);
            for (int b = tri.y0 / band_rows; b <= tri.y1 / band_rows; ++b)
                prep.bands[static_cast<size_t>(b)].push_back(id);
        }
    }

    const size_t samples = static_cast<size_t>(SW) * static_cast<size_t>(SH);
    sample_depth_.resize(samples);
    sample_triangle_.resize(samples);
    sample_bary_.resize(samples * 2);
    const size_t pixels = static_cast<size_t>(W) * static_cast<size_t>(H);
    out.width = W;
    out.height = H;
    out.rgb.assign(pixels * 3, 0.0f);
    out.mask.assign(pixels, 0.0f);
    out.depth.assign(pixels, std::numeric_limits<float>::infinity());
    out.uv.assign(pixels * 2, 0.0f);
    out.uv_valid.assign(pixels, 0);
    out.label.assign(pixels, 0);

    const bool perspective = settings.perspective;
    const float inf = std::numeric_limits<float>::infinity();

    const auto process_band = [&](int band) {
        const int sy0 = band * band_rows, sy1 = std::min(SH, sy0 + band_rows);  // [sy0, sy1)
        float* zbuf = sample_depth_.data();
        int32_t* tbuf = sample_triangle_.data();
        float* bbuf = sample_bary_.data();
        std::fill(zbuf + static_cast<size_t>(sy0) * SW, zbuf + static_cast<size_t>(sy1) * SW, inf);
        std::fill(tbuf + static_cast<size_t>(sy0) * SW, tbuf + static_cast<size_t>(sy1) * SW, -1);

        // Scan conversion with the depth test.
        for (const int32_t id : prep.bands[static_cast<size_t>(band)]) {
            const Triangle& t = prep.triangles[static_cast<size_t>(id)];
            const int ya = std::max(t.y0, sy0), yb = std::min(t.y1, sy1 - 1);
            for (int sy = ya; sy <= yb; ++sy) {
                const double py = sy;
                const double r0 = t.b[0] * py + t.c[0];
                const double r1 = t.b[1] * py + t.c[1];
                const double r2 = t.b[2] * py + t.c[2];
                const size_t row = static_cast<size_t>(sy) * static_cast<size_t>(SW);
                for (int sx = t.x0; sx <= t.x1; ++sx) {
                    const double px = sx;
                    const double e0 = t.a[0] * px + r0;
                    const double e1 = t.a[1] * px + r1;
                    const double e2 = t.a[2] * px + r2;
                    if (e0 < 0.0 || e1 < 0.0 || e2 < 0.0)
                        continue;
                    if ((e0 == 0.0 && !t.tie_inside[0]) || (e1 == 0.0 && !t.tie_inside[1]) ||
                        (e2 == 0.0 && !t.tie_inside[2]))
                        continue;
                    const float b0 = static_cast<float>(e0 * t.inv_area2);
                    const float b1 = static_cast<float>(e1 * t.inv_area2);
                    const float b2 = static_cast<float>(e2 * t.inv_area2);
                    float depth, p1, p2;
                    if (perspective) {
                        const float q0 = b0 * t.w[0], q1 = b1 * t.w[1], q2 = b2 * t.w[2];
                        const float sum = q0 + q1 + q2;
                        depth = 1.0f / sum;
                        p1 = q1 * depth;
                        p2 = q2 * depth;
                    } else {
                        depth = b0 * t.w[0] + b1 * t.w[1] + b2 * t.w[2];
                        p1 = b1;
                        p2 = b2;
                    }
                    const size_t s = row + static_cast<size_t>(sx);
                    if (depth < zbuf[s]) {
                        zbuf[s] = depth;
                        tbuf[s] = id;
                        bbuf[2 * s] = p1;
                        bbuf[2 * s + 1] = p2;
                    }
                }
            }
        }

        // Shading and resolve of the band's pixel rows.
        const float inv_samples = 1.0f / static_cast<float>(S * S);
        for (int py = sy0 / S; py < sy1 / S; ++py) {
            for (int px = 0; px < W; ++px) {
                const size_t pixel = static_cast<size_t>(py) * static_cast<size_t>(W) + px;
                float sum[3] = {0.0f, 0.0f, 0.0f};
                int covered = 0;
                bool representative = false;
                for (int sy = py * S; sy < (py + 1) * S; ++sy) {
                    for (int sx = px * S; sx < (px + 1) * S; ++sx) {
                        const size_t s = static_cast<size_t>(sy) * static_cast<size_t>(SW) + sx;
                        const int32_t id = tbuf[s];
                        if (id < 0)
                            continue;
                        ++covered;
                        const Triangle& t = prep.triangles[static_cast<size_t>(id)];
                        const MeshView& m = meshes[static_cast<size_t>(t.mesh)];
                        const float p1 = bbuf[2 * s], p2 = bbuf[2 * s + 1];
                        const float p0 = 1.0f - p1 - p2;
                        float rgb[3] = {1.0f, 1.0f, 1.0f};
                        if (m.color) {
                            const float* c0 = m.color + 3 * static_cast<int64_t>(t.vertex[0]);
                            const float* c1 = m.color + 3 * static_cast<int64_t>(t.vertex[1]);
                            const float* c2 = m.color + 3 * static_cast<int64_t>(t.vertex[2]);
                            for (int c = 0; c < 3; ++c)
                                rgb[c] = p0 * c0[c] + p1 * c1[c] + p2 * c2[c];
                        }
                        float u = 0.0f, v = 0.0f;
                        if (m.uv) {
                            const float* t0 = m.uv + 2 * static_cast<int64_t>(t.vertex[0]);
                            const float* t1 = m.uv + 2 * static_cast<int64_t>(t.vertex[1]);
                            const float* t2 = m.uv + 2 * static_cast<int64_t>(t.vertex[2]);
                            u = p0 * t0[0] + p1 * t1[0] + p2 * t2[0];
                            v = p0 * t0[1] + p1 * t1[1] + p2 * t2[1];
                        }
                        if (m.texture) {
                            float texel[3];
                            m.texture->sample(u, v, texel);
                            for (int c = 0; c < 3; ++c)
                                rgb[c] *= texel[c];
                        }
                        for (int c = 0; c < 3; ++c)
                            sum[c] += rgb[c];
                        if (!representative) {
                            representative = true;
                            out.depth[pixel] = zbuf[s];
                            out.label[pixel] = t.label;
                            if (m.uv_visible) {
                                out.uv_valid[pixel] = 1;
                                out.uv[2 * pixel] = u;
                                out.uv[2 * pixel + 1] = v;
                            }
                        }
                    }
                }
                const int empty = S * S - covered;
                for (int c = 0; c < 3; ++c) {
                    const float bg =
                        settings.background ? settings.background[3 * pixel + c] : 0.0f;
                    out.rgb[3 * pixel + c] =
                        (sum[c] + static_cast<float>(empty) * bg) * inv_samples;
                }
                out.mask[pixel] = static_cast<float>(covered) * inv_samples;
            }
        }
    };

    // Bands are handed out dynamically (an atomic counter) for load balance; every band's result
    // is independent of which thread computes it. Plain std::threads, as many as LibTorch's
    // intra-op setting: at::parallel_for's OpenMP implementation lives in a header and runs
    // serially in a translation unit built without -fopenmp, as this project's are.
    std::atomic<int> next{0};
    const auto work = [&] {
        for (int band = next.fetch_add(1); band < band_count; band = next.fetch_add(1))
            process_band(band);
    };
    const int workers = std::max(1, std::min(at::get_num_threads(), band_count));
    std::vector<std::thread> helpers;
    helpers.reserve(static_cast<size_t>(workers - 1));
    for (int w = 1; w < workers; ++w)
        helpers.emplace_back(work);
    work();
    for (auto& h : helpers)
        h.join();
}

// ---- cameras -----------------------------------------------------------------------------------

void project_perspective(const PerspectiveCamera& camera, const float* points, int64_t count,
                         float* out) {
    for (int64_t i = 0; i < count; ++i) {
        const float x = points[3 * i], y = points[3 * i + 1], z = points[3 * i + 2];
        const float inv = 1.0f / z;
        out[3 * i] = camera.focal * x * inv + camera.cx;
        out[3 * i + 1] = camera.focal * y * inv + camera.cy;
        out[3 * i + 2] = z;
    }
}

void euler_rad_to_matrix(double pitch, double yaw, double roll, double* r) {
    const double cp = std::cos(pitch), sp = std::sin(pitch);
    const double cy = std::cos(yaw), sy = std::sin(yaw);
    const double cr = std::cos(roll), sr = std::sin(roll);
    // Ry * Rx
    const double ryx[9] = {cy, sy * sp, sy * cp, 0.0, cp, -sp, -sy, cy * sp, cy * cp};
    const double rz[9] = {cr, -sr, 0.0, sr, cr, 0.0, 0.0, 0.0, 1.0};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            r[3 * i + j] =
                ryx[3 * i] * rz[j] + ryx[3 * i + 1] * rz[3 + j] + ryx[3 * i + 2] * rz[6 + j];
}

void project_weak_perspective(const float* pose, const float* vertices, int64_t count, float* out) {
    double r[9];
    euler_rad_to_matrix(pose[0], pose[1], pose[2], r);
    const double s = pose[6];
    for (int64_t i = 0; i < count; ++i) {
        const double x = vertices[3 * i], y = vertices[3 * i + 1], z = vertices[3 * i + 2];
        const double rx = r[0] * x + r[1] * y + r[2] * z;
        const double ry = r[3] * x + r[4] * y + r[5] * z;
        const double rz = r[6] * x + r[7] * y + r[8] * z;
        out[3 * i] = static_cast<float>(s * rx + pose[3]);
        out[3 * i + 1] = static_cast<float>(-s * ry + pose[4]);
        out[3 * i + 2] = static_cast<float>(-s * rz + pose[5]);
    }
}

}  // namespace avatar::synth
