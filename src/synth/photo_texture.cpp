#include "synth/photo_texture.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"
#include "face/canonical_face.h"
#include "face/face_fit.h"
#include "face/face_model.h"
#include "face/model_files.h"
#include "face/tracker.h"
#include "media/image.h"
#include "synth/mesh_annotations.h"
#include "synth/polygon.h"
#include "synth/random.h"

namespace avatar::synth {
namespace {
namespace fs = std::filesystem;

double smoothstep(double e0, double e1, double x) {
    const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}

struct Point2 {
    double x = 0, y = 0;
};

// The canonical mesh as plain arrays, built once.
struct MeshData {
    std::vector<float> mean;         // [468 * 3] canonical vertices, cm
    std::vector<float> uv;           // [468 * 2]
    std::vector<int32_t> triangles;  // [T * 3] every triangle (the z-buffer)
    std::vector<int32_t> skin;       // the skin triangles (mesh::skin_triangles)
    std::vector<float> mirror_uv3;   // [468 * 3]: the UV of each vertex's mirror image, 0
};

const MeshData& mesh_data() {
    static MeshData data;
    static std::once_flag once;
    std::call_once(once, [] {
        const auto& model = face::face_model();
        const auto& canonical = face::canonical_face();
        const auto f32 = [](const torch::Tensor& t) {
            auto x = t.to(torch::kFloat32).contiguous();
            return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
        };
        data.mean = f32(model.mean);
        data.uv = f32(canonical.uv);
        auto tri = canonical.triangles.to(torch::kInt32).contiguous();
        data.triangles.assign(tri.data_ptr<int32_t>(), tri.data_ptr<int32_t>() + tri.numel());
        data.skin = mesh::skin_triangles(data.triangles.data(),
                                         static_cast<int64_t>(data.triangles.size() / 3));
        data.mirror_uv3.assign(468 * 3, 0.0f);
        for (size_t v = 0; v < 468; ++v) {
            const auto m = static_cast<size_t>(model.mirror[v]);
            data.mirror_uv3[3 * v] = data.uv[2 * m];
            data.mirror_uv3[3 * v + 1] = data.uv[2 * m + 1];
        }
    });
    return data;
}

// Rasterizes the skin triangles in UV space (size x size texels, one sample each) with a
// per-vertex attribute [468 * 3] as the colour: out.rgb holds the interpolated attribute (the
// rasterizer does not clamp colours) and out.mask the coverage.
void render_uv(int size, const float* attribute, RenderOutput& out) {
    const auto& md = mesh_data();
    std::vector<float> screen(468 * 3, 0.0f);
    for (size_t v = 0; v < 468; ++v) {
        screen[3 * v] = md.uv[2 * v] * static_cast<float>(size);
        screen[3 * v + 1] = md.uv[2 * v + 1] * static_cast<float>(size);
    }
    MeshView m;
    m.screen = screen.data();
    m.color = attribute;
    m.vertex_count = 468;
    m.triangles = md.skin.data();
    m.triangle_count = static_cast<int64_t>(md.skin.size() / 3);
    RenderSettings rs;
    rs.width = rs.height = size;
    rs.supersample = 1;
    rs.perspective = false;
    Rasterizer rasterizer;
    rasterizer.render({m}, rs, out);
}

enum Region : uint8_t { kRegionNone = 0, kRegionSkin = 1, kRegionLips = 2 };

// What every unwrap at one texture size shares: per texel whether a skin triangle covers it, its
// canonical position, the UV of its mirror image, the lid-margin weight, the distance inside the
// silhouette and the region used for the median colours.
struct Atlas {
    int size = 0;
    std::vector<uint8_t> covered;
    std::vector<float> canonical;  // [n * 3]
    std::vector<float> mirror_uv;  // [n * 2]
    std::vector<float> lid_weight;
    std::vector<float> inside_cm;  // distance inside the silhouette (x-y plane), cm
    std::vector<uint8_t> region;
    // Where hair (and, at the silhouette, background) covers faces in photos: the forehead above
    // the brows and a band along the silhouette. There, texels far from the skin colour are
    // taken for an occluder.
    std::vector<uint8_t> hair_zone;
};

const Atlas& atlas(int size) {
    static std::mutex mutex;
    static std::map<int, std::unique_ptr<Atlas>> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = cache[size];
    if (slot)
        return *slot;
    const auto& md = mesh_data();
    auto a = std::make_unique<Atlas>();
    a->size = size;
    const size_t n = static_cast<size_t>(size) * static_cast<size_t>(size);
    RenderOutput pos, mir;
    render_uv(size, md.mean.data(), pos);
    render_uv(size, md.mirror_uv3.data(), mir);
    const auto loop = [&](const int* ids, size_t count) {
        std::vector<Point2> out;
        for (size_t i = 0; i < count; ++i)
            out.push_back({md.mean[3 * static_cast<size_t>(ids[i])],
                           md.mean[3 * static_cast<size_t>(ids[i]) + 1]});
        return out;
    };
    const auto silhouette = loop(mesh::kSilhouette.data(), mesh::kSilhouette.size());
    const auto lips = loop(mesh::kOuterLips.data(), mesh::kOuterLips.size());
    const auto eye_r = loop(mesh::kRightEye.data(), mesh::kRightEye.size());
    const auto eye_l = loop(mesh::kLeftEye.data(), mesh::kLeftEye.size());
    const auto brow_r = loop(mesh::kRightBrow.data(), mesh::kRightBrow.size());
    const auto brow_l = loop(mesh::kLeftBrow.data(), mesh::kLeftBrow.size());
    a->covered.assign(n, 0);
    a->canonical.assign(3 * n, 0.0f);
    a->mirror_uv.assign(2 * n, 0.0f);
    a->lid_weight.assign(n, 0.0f);
    a->inside_cm.assign(n, 0.0f);
    a->region.assign(n, kRegionNone);
    a->hair_zone.assign(n, 0);
    double brow_top = -1e30;
    for (const auto* brow : {&brow_r, &brow_l})
        for (const auto& p : *brow)
            brow_top = std::max(brow_top, p.y);
    for (size_t i = 0; i < n; ++i) {
        if (pos.mask[i] <= 0.0f)
            continue;
        a->covered[i] = 1;
        std::copy(&pos.rgb[3 * i], &pos.rgb[3 * i] + 3, &a->canonical[3 * i]);
        a->mirror_uv[2 * i] = mir.rgb[3 * i];
        a->mirror_uv[2 * i + 1] = mir.rgb[3 * i + 1];
        const double x = pos.rgb[3 * i], y = pos.rgb[3 * i + 1];
        const double eye =
            std::min(polygon_signed_distance(eye_r, x, y), polygon_signed_distance(eye_l, x, y));
        // A fit a millimetre off at the lid margin samples the eyeball: trust the margin less.
        a->lid_weight[i] = static_cast<float>(smoothstep(0.1, 0.5, eye));
        a->inside_cm[i] =
            static_cast<float>(std::max(0.0, -polygon_signed_distance(silhouette, x, y)));
        const double lip = polygon_signed_distance(lips, x, y);
        const double brow =
            std::min(polygon_signed_distance(brow_r, x, y), polygon_signed_distance(brow_l, x, y));
        a->hair_zone[i] = (y > brow_top + 0.4 || a->inside_cm[i] < 2.0) && lip > 0.3 && brow > 0.3;
        if (lip < -0.05)
            a->region[i] = kRegionLips;
        else if (lip > 0.4 && brow > 0.4 && eye > 0.8 && !a->hair_zone[i])
            a->region[i] = kRegionSkin;
    }
    slot = std::move(a);
    return *slot;
}

// Per-channel median of the colours of the texels in `ids` (an empty list gives false).
bool median_colour(const std::vector<float>& rgb, const std::vector<size_t>& ids, float* out) {
    if (ids.empty())
        return false;
    std::vector<float> values(ids.size());
    for (int c = 0; c < 3; ++c) {
        for (size_t k = 0; k < ids.size(); ++k)
            values[k] = rgb[3 * ids[k] + static_cast<size_t>(c)];
        std::nth_element(values.begin(),
                         values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2),
                         values.end());
        out[c] = values[values.size() / 2];
    }
    return true;
}

// Push-pull fill (Gortler et al. 1996): a pyramid of weight-averaged colours, then every level
// keeps its own colour in proportion to its weight and takes the rest from the coarser level
// (bilinear). rgb [size * size * 3] is replaced; weight [size * size] in [0, 1].
void push_pull(int size, std::vector<float>& rgb, const std::vector<float>& weight) {
    struct Level {
        int n = 0;
        std::vector<float> c, w;  // premultiplied colour, weight (<= 1)
    };
    std::vector<Level> levels(1);
    levels[0].n = size;
    levels[0].w = weight;
    levels[0].c.resize(rgb.size());
    for (size_t i = 0; i < weight.size(); ++i)
        for (size_t k = 0; k < 3; ++k)
            levels[0].c[3 * i + k] = rgb[3 * i + k] * weight[i];
    while (levels.back().n > 1) {
        const Level& f = levels.back();
        Level g;
        g.n = (f.n + 1) / 2;
        g.c.assign(static_cast<size_t>(g.n) * g.n * 3, 0.0f);
        g.w.assign(static_cast<size_t>(g.n) * g.n, 0.0f);
        for (int y = 0; y < f.n; ++y)
            for (int x = 0; x < f.n; ++x) {
                const size_t src = static_cast<size_t>(y) * f.n + x;
                const size_t dst = static_cast<size_t>(y / 2) * g.n + x / 2;
                g.w[dst] += f.w[src];
                for (size_t k = 0; k < 3; ++k)
                    g.c[3 * dst + k] += f.c[3 * src + k];
            }
        for (size_t i = 0; i < g.w.size(); ++i)
            if (g.w[i] > 1.0f) {
                for (size_t k = 0; k < 3; ++k)
                    g.c[3 * i + k] /= g.w[i];
                g.w[i] = 1.0f;
            }
        levels.push_back(std::move(g));
    }
    // The coarsest level: its own average (grey if nothing at all was observed).
    std::vector<float> filled(3);
    {
        const Level& top = levels.back();
        for (size_t k = 0; k < 3; ++k)
            filled[k] = top.w[0] > 0.0f ? top.c[k] / top.w[0] : 0.5f;
    }
    for (size_t l = levels.size() - 1; l-- > 0;) {
        const Level& f = levels[l];
        const int cn = levels[l + 1].n;
        std::vector<float> next(static_cast<size_t>(f.n) * f.n * 3);
        for (int y = 0; y < f.n; ++y)
            for (int x = 0; x < f.n; ++x) {
                // Bilinear lookup of the coarser level at this texel's centre.
                const float gx = std::clamp((x + 0.5f) * 0.5f - 0.5f, 0.0f, cn - 1.0f);
                const float gy = std::clamp((y + 0.5f) * 0.5f - 0.5f, 0.0f, cn - 1.0f);
                const int x0 = static_cast<int>(gx), y0 = static_cast<int>(gy);
                const int x1 = std::min(x0 + 1, cn - 1), y1 = std::min(y0 + 1, cn - 1);
                const float ax = gx - x0, ay = gy - y0;
                const size_t i = static_cast<size_t>(y) * f.n + x;
                for (size_t k = 0; k < 3; ++k) {
                    const auto at = [&](int xx, int yy) {
                        return filled[3 * (static_cast<size_t>(yy) * cn + xx) + k];
                    };
                    const float up = (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x1, y0)) +
                                     ay * ((1 - ax) * at(x0, y1) + ax * at(x1, y1));
                    next[3 * i + k] = f.c[3 * i + k] + (1.0f - f.w[i]) * up;
                }
            }
        filled.swap(next);
    }
    rgb.swap(filled);
}

// Bilinear lookup in a float [h, w, 3] image at continuous pixel coordinates (pixel centres at
// integer + 0.5), clamped to the border.
void sample_image(const float* image, int w, int h, float x, float y, float* out) {
    const float fx = std::clamp(x - 0.5f, 0.0f, static_cast<float>(w - 1));
    const float fy = std::clamp(y - 0.5f, 0.0f, static_cast<float>(h - 1));
    const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
    const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
    const float ax = fx - x0, ay = fy - y0;
    for (int k = 0; k < 3; ++k) {
        const auto at = [&](int xx, int yy) {
            return image[3 * (static_cast<size_t>(yy) * w + xx) + k];
        };
        out[k] = (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x1, y0)) +
                 ay * ((1 - ax) * at(x0, y1) + ax * at(x1, y1));
    }
}

}  // namespace

UnwrappedFace unwrap_face(const torch::Tensor& image, const float* row,
                          const UnwrapOptions& options) {
    avatar::check(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8 &&
                      image.size(0) >= 2 && image.size(1) >= 2,
                  "unwrap", "the image must be uint8 [H, W, 3]");
    avatar::check(options.size >= 16 && options.size <= 4096, "unwrap",
                  "texture size must be 16..4096");
    avatar::check(options.min_facing >= 0.0 && options.full_facing > options.min_facing &&
                      options.full_facing <= 1.0,
                  "unwrap", "need 0 <= min_facing < full_facing <= 1");
    const int64_t D = face::face_layout_size();
    for (int64_t i = 0; i < D; ++i)
        avatar::check(std::isfinite(row[i]), "unwrap",
                      "coefficient column " + std::to_string(i) + " is not finite");
    avatar::check(row[6] > 0.0f, "unwrap", "scale (column 6) must be positive");
    const auto& model = face::face_model();
    const int64_t K = model.identity_count(), E = model.expression_count();
    const auto& md = mesh_data();
    const Atlas& at = atlas(options.size);

    // The fitted face in the image: x, y in pixels, depth = layout z in pixels (away from the
    // viewer).
    const auto coefficient = [&](int64_t first, int64_t count) {
        return torch::from_blob(const_cast<float*>(row + first), {count}, torch::kFloat32)
            .to(torch::kFloat64);
    };
    auto vertices =
        model.vertices(coefficient(face::kPoseSize, K), coefficient(face::kPoseSize + K, E))
            .to(torch::kFloat32)
            .contiguous();
    std::vector<float> screen(468 * 3);
    project_weak_perspective(row, vertices.data_ptr<float>(), 468, screen.data());

    // Facing per vertex: the area-weighted normal of its skin triangles in screen space (x, y down,
    // depth away: right-handed, so a front face's normal has a negative third component).
    std::vector<float> facing(468 * 3, 0.0f);
    {
        std::vector<double> normal(468 * 3, 0.0);
        for (size_t t = 0; t < md.skin.size(); t += 3) {
            const float* a = &screen[3 * static_cast<size_t>(md.skin[t])];
            const float* b = &screen[3 * static_cast<size_t>(md.skin[t + 1])];
            const float* c = &screen[3 * static_cast<size_t>(md.skin[t + 2])];
            const double e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
            const double e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
            const double n[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                                 e1[0] * e2[1] - e1[1] * e2[0]};
            for (int k = 0; k < 3; ++k)
                for (size_t j = 0; j < 3; ++j)
                    normal[3 * static_cast<size_t>(md.skin[t + static_cast<size_t>(k)]) + j] +=
                        n[j];
        }
        for (size_t v = 0; v < 468; ++v) {
            const double len =
                std::sqrt(normal[3 * v] * normal[3 * v] + normal[3 * v + 1] * normal[3 * v + 1] +
                          normal[3 * v + 2] * normal[3 * v + 2]);
            facing[3 * v] = len > 0 ? static_cast<float>(-normal[3 * v + 2] / len) : 0.0f;
        }
    }

    // The image region of the face, shrunk when the face has many more pixels than the texture
    // has texels (bilinear lookups would alias).
    float lo[2] = {1e30f, 1e30f}, hi[2] = {-1e30f, -1e30f};
    for (size_t v = 0; v < 468; ++v)
        for (size_t k = 0; k < 2; ++k) {
            lo[k] = std::min(lo[k], screen[3 * v + k]);
            hi[k] = std::max(hi[k], screen[3 * v + k]);
        }
    const int64_t H = image.size(0), W = image.size(1);
    const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(lo[0])) - 2, 0, W);
    const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(lo[1])) - 2, 0, H);
    const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(hi[0])) + 2, 0, W);
    const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(hi[1])) + 2, 0, H);
    avatar::check(x1 - x0 >= 2 && y1 - y0 >= 2, "unwrap", "the face lies outside the image");
    const double face_px = std::max(hi[0] - lo[0], hi[1] - lo[1]);
    const double shrink = std::max(1.0, face_px / (0.9 * options.size));
    auto crop = image.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0);
    auto region = crop.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255.0f;
    if (shrink > 1.5) {
        namespace F = torch::nn::functional;
        const auto h = std::max<int64_t>(2, std::llround((y1 - y0) / shrink));
        const auto w = std::max<int64_t>(2, std::llround((x1 - x0) / shrink));
        region = F::interpolate(region, F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{h, w})
                                            .mode(torch::kBilinear)
                                            .align_corners(false)
                                            .antialias(true));
    }
    region = region[0].permute({1, 2, 0}).contiguous();
    const int rh = static_cast<int>(region.size(0)), rw = static_cast<int>(region.size(1));
    const float sx = static_cast<float>(rw) / static_cast<float>(x1 - x0);
    const float sy = static_cast<float>(rh) / static_cast<float>(y1 - y0);
    // Screen coordinates in the region; depth shrinks with the image so slopes keep their angle.
    std::vector<float> local(468 * 3);
    for (size_t v = 0; v < 468; ++v) {
        local[3 * v] = (screen[3 * v] - static_cast<float>(x0)) * sx;
        local[3 * v + 1] = (screen[3 * v + 1] - static_cast<float>(y0)) * sy;
        local[3 * v + 2] = screen[3 * v + 2] * 0.5f * (sx + sy);
    }

    // z-buffer of the whole face mesh (the eye and mouth fills occlude too).
    RenderOutput zbuffer;
    {
        MeshView m;
        m.screen = local.data();
        m.vertex_count = 468;
        m.triangles = md.triangles.data();
        m.triangle_count = static_cast<int64_t>(md.triangles.size() / 3);
        RenderSettings rs;
        rs.width = rw;
        rs.height = rh;
        rs.supersample = 1;
        rs.perspective = false;
        Rasterizer rasterizer;
        rasterizer.render({m}, rs, zbuffer);
    }
    RenderOutput where, how;
    render_uv(options.size, local.data(), where);
    render_uv(options.size, facing.data(), how);

    const size_t n = static_cast<size_t>(options.size) * static_cast<size_t>(options.size);
    const float tolerance = std::max(
        1.0f, static_cast<float>(options.occlusion_tolerance_cm * row[6] * 0.5 * (sx + sy)));
    const float* pixels = region.data_ptr<float>();
    std::vector<float> seen(3 * n, 0.0f), seen_weight(n, 0.0f);
    for (size_t i = 0; i < n; ++i) {
        if (!at.covered[i])
            continue;
        const float x = where.rgb[3 * i], y = where.rgb[3 * i + 1], d = where.rgb[3 * i + 2];
        if (!(x >= 0.0f && y >= 0.0f && x < static_cast<float>(rw) && y < static_cast<float>(rh)))
            continue;
        const size_t p = static_cast<size_t>(y) * static_cast<size_t>(rw) + static_cast<size_t>(x);
        if (d > zbuffer.depth[p] + tolerance)
            continue;  // something of the face lies in front (e.g. the nose at a turn)
        seen_weight[i] = static_cast<float>(
            smoothstep(options.min_facing, options.full_facing, how.rgb[3 * i]) * at.lid_weight[i]);
        sample_image(pixels, rw, rh, x, y, &seen[3 * i]);
    }

    UnwrappedFace result;
    result.weight = seen_weight;
    result.source.assign(n, kTexelOutside);
    std::vector<float> colour = seen, weight = seen_weight;
    if (options.mirror) {
        for (size_t i = 0; i < n; ++i) {
            if (!at.covered[i] || seen_weight[i] >= 1.0f)
                continue;
            const int mx = std::clamp(static_cast<int>(at.mirror_uv[2 * i] * options.size), 0,
                                      options.size - 1);
            const int my = std::clamp(static_cast<int>(at.mirror_uv[2 * i + 1] * options.size), 0,
                                      options.size - 1);
            const size_t j = static_cast<size_t>(my) * options.size + mx;
            if (!at.covered[j])
                continue;
            const float w = seen_weight[i], wm = (1.0f - w) * seen_weight[j];
            if (w + wm <= 0.0f)
                continue;
            for (size_t k = 0; k < 3; ++k)
                colour[3 * i + k] = (w * seen[3 * i + k] + wm * seen[3 * j + k]) / (w + wm);
            weight[i] = w + wm;
        }
    }
    size_t on_face = 0, observed = 0, mirrored = 0;
    std::vector<size_t> skin_ids, lip_ids;
    for (size_t i = 0; i < n; ++i) {
        if (!at.covered[i])
            continue;
        ++on_face;
        if (seen_weight[i] >= 0.5f) {
            result.source[i] = kTexelObserved;
            ++observed;
        } else if (weight[i] >= 0.5f) {
            result.source[i] = kTexelMirrored;
            ++mirrored;
        } else {
            result.source[i] = kTexelFilled;
        }
        if (at.region[i] == kRegionSkin && weight[i] >= 0.8f)
            skin_ids.push_back(i);
        if (at.region[i] == kRegionLips && weight[i] >= 0.6f)
            lip_ids.push_back(i);
    }
    avatar::check(skin_ids.size() >= 20, "unwrap",
                  "too little of the face's skin is visible in the image");
    median_colour(colour, skin_ids, result.skin);
    if (!median_colour(colour, lip_ids, result.lips)) {
        result.lips[0] = result.skin[0] * 0.85f;
        result.lips[1] = result.skin[1] * 0.6f;
        result.lips[2] = result.skin[2] * 0.65f;
    }
    // Hair over the forehead or background at the silhouette: in the hair zone, a colour far
    // from the skin's loses its weight (its mirror image or the fill replaces it).
    for (size_t i = 0; i < n; ++i) {
        if (!at.hair_zone[i] || weight[i] <= 0.0f || options.occluder_distance <= 0.0)
            continue;
        double d2 = 0;
        for (size_t k = 0; k < 3; ++k)
            d2 += (colour[3 * i + k] - result.skin[k]) * (colour[3 * i + k] - result.skin[k]);
        const float keep =
            static_cast<float>(1.0 - smoothstep(options.occluder_distance,
                                                2.0 * options.occluder_distance, std::sqrt(d2)));
        weight[i] *= keep;
        if (keep < 0.5f && result.source[i] == kTexelObserved) {
            result.source[i] = kTexelFilled;
            --observed;
        }
    }
    result.observed_fraction = static_cast<double>(observed) / static_cast<double>(on_face);
    result.mirrored_fraction = static_cast<double>(mirrored) / static_cast<double>(on_face);

    // The band inside the silhouette fades to the skin colour, as if that colour had been
    // observed there with weight (1 - b).
    for (size_t i = 0; i < n; ++i) {
        if (!at.covered[i] || options.border_blend_cm <= 0.0)
            continue;
        const float b =
            static_cast<float>(smoothstep(0.0, options.border_blend_cm, at.inside_cm[i]));
        const float w = b * weight[i] + (1.0f - b);
        if (w <= 0.0f)
            continue;  // deep inside and unseen: left to the fill
        for (size_t k = 0; k < 3; ++k)
            colour[3 * i + k] =
                (b * weight[i] * colour[3 * i + k] + (1.0f - b) * result.skin[k]) / w;
        weight[i] = w;
    }
    push_pull(options.size, colour, weight);
    result.texture = Texture(options.size, options.size);
    for (size_t i = 0; i < colour.size(); ++i)
        result.texture.rgb[i] = std::clamp(colour[i], 0.0f, 1.0f);
    return result;
}

std::vector<PhotoFace> unwrap_photo(const torch::Tensor& image, const std::string& name,
                                    const PhotoUnwrapOptions& options) {
    face::TrackerOptions tracker;
    tracker.detector = face::FaceDetector::kBoth;  // group photos have small faces
    tracker.iris = false;
    tracker.landmarks68 = false;
    tracker.smooth = false;
    const auto faces = face::detect_faces(image, tracker);
    const auto& model = face::face_model();
    const int64_t K = model.identity_count();
    std::vector<PhotoFace> out;
    for (const auto& f : faces) {
        if (!f.found)
            continue;
        const double side = std::max(f.box[2] - f.box[0], f.box[3] - f.box[1]);
        if (side < options.min_face_px)
            continue;
        const auto fit = face::fit_face_mesh468(f.mesh468.unsqueeze(0));
        PhotoFace p;
        p.source = name;
        p.face_size_px = side;
        p.fit_rms_px = fit.rms[0].item<double>();
        if (p.fit_rms_px > options.max_fit_rms * side)
            continue;
        p.row.assign(static_cast<size_t>(face::face_layout_size()), 0.0f);
        const auto put = [&](const torch::Tensor& t, int64_t first) {
            auto x = t.to(torch::kFloat32).contiguous();
            std::copy(x.data_ptr<float>(), x.data_ptr<float>() + x.numel(), p.row.begin() + first);
        };
        put(fit.pose[0], 0);
        put(fit.identity, face::kPoseSize);
        put(fit.expression[0], face::kPoseSize + K);
        p.unwrapped = unwrap_face(image, p.row.data(), options.unwrap);
        if (p.unwrapped.observed_fraction < options.min_observed)
            continue;
        p.face = static_cast<int>(out.size());
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<fs::path> list_image_files(const std::vector<std::string>& items,
                                       const std::string& option) {
    std::vector<fs::path> files;
    const auto is_image = [](const fs::path& p) {
        std::string ext = p.extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
    };
    for (const auto& item : items) {
        if (item == "faceapi-demo") {
            const auto dir = face::npm_packages_dir() / "@vladmandic/face-api/demo";
            for (int i = 1; i <= 6; ++i) {
                const auto f = dir / ("sample" + std::to_string(i) + ".jpg");
                avatar::check(fs::is_regular_file(f), option,
                              f.string() + " is missing (the face-api package: scripts/setup.sh)");
                files.push_back(f);
            }
            continue;
        }
        const fs::path p(item);
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<fs::path> found;
            for (const auto& e : fs::directory_iterator(p))
                if (e.is_regular_file() && is_image(e.path()))
                    found.push_back(e.path());
            std::sort(found.begin(), found.end());
            avatar::check(!found.empty(), option, item + ": no images in this folder");
            files.insert(files.end(), found.begin(), found.end());
        } else {
            avatar::check(fs::is_regular_file(p, ec), option, item + ": no such file or folder");
            files.push_back(p);
        }
    }
    avatar::check(!files.empty(), option, "no images given");
    return files;
}

std::vector<PhotoFace> unwrap_photo_files(const std::vector<fs::path>& files,
                                          const std::string& option,
                                          const PhotoUnwrapOptions& options) {
    std::vector<PhotoFace> out;
    for (const auto& f : files) {
        auto faces = unwrap_photo(media::read_image(f), f.filename().string(), options);
        for (auto& face : faces)
            out.push_back(std::move(face));
    }
    avatar::check(!out.empty(), option,
                  "no usable face in the given photos (faces need a side of " +
                      std::to_string(static_cast<int>(options.min_face_px)) +
                      " px or more, a good fit and most of their skin visible)");
    return out;
}

Texture augment_face_texture(const UnwrappedFace& face, uint64_t seed, float* skin_out) {
    const Texture& base = face.texture;
    avatar::check(base.width == base.height && base.width >= 16 &&
                      base.rgb.size() == static_cast<size_t>(base.width) * base.height * 3,
                  "augment", "the face texture must be square, 16 texels or more");
    const int size = base.width;
    const Atlas& at = atlas(size);
    const size_t n = static_cast<size_t>(size) * static_cast<size_t>(size);
    Random rng(seed ^ 0xF07E7E47A5ULL);
    const bool mirror = rng.chance(0.5);
    const double exposure = std::clamp(std::exp(0.12 * rng.normal()), 0.75, 1.3);
    double balance[3];
    for (double& b : balance)
        b = std::clamp(std::exp(0.04 * rng.normal()), 0.9, 1.1);
    const double saturation = rng.uniform(0.75, 1.2);
    const double contrast = rng.uniform(0.9, 1.12);
    const double blotch = rng.uniform(0.0, 0.08);
    const uint64_t blotch_seed = rng.next_u64();
    struct Mole {
        double u, v, radius, strength;
    };
    std::vector<Mole> moles;
    {
        std::vector<size_t> skin;
        for (size_t i = 0; i < n; ++i)
            if (at.region[i] == kRegionSkin)
                skin.push_back(i);
        const int64_t count = rng.index(6);
        for (int64_t m = 0; m < count && !skin.empty(); ++m) {
            const size_t i =
                skin[static_cast<size_t>(rng.index(static_cast<int64_t>(skin.size())))];
            moles.push_back({static_cast<double>(i % size) + 0.5,
                             static_cast<double>(i / size) + 0.5,
                             rng.uniform(0.5, 1.4) * size / 256.0, rng.uniform(0.25, 0.6)});
        }
    }

    // Mirror first (the mirror map is defined on the face; the rest is refilled from it).
    std::vector<float> rgb = base.rgb;
    if (mirror) {
        std::vector<float> weight(n, 0.0f);
        for (size_t i = 0; i < n; ++i) {
            if (!at.covered[i])
                continue;
            base.sample(at.mirror_uv[2 * i], at.mirror_uv[2 * i + 1], &rgb[3 * i]);
            weight[i] = 1.0f;
        }
        push_pull(size, rgb, weight);
    }
    const double pivot = 0.299 * face.skin[0] + 0.587 * face.skin[1] + 0.114 * face.skin[2];
    for (size_t i = 0; i < n; ++i) {
        double c[3];
        for (size_t k = 0; k < 3; ++k)
            c[k] = rgb[3 * i + k] * exposure * balance[k];
        const double lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        for (double& v : c)
            v = lum + saturation * (v - lum);
        for (double& v : c)
            v = pivot * exposure + contrast * (v - pivot * exposure);
        if (at.covered[i]) {
            const float* p = &at.canonical[3 * i];
            const double r =
                blotch *
                (2.0 * fractal_noise(p[0] * 0.9f, p[1] * 0.9f, p[2] * 0.9f, blotch_seed) - 1.0);
            c[0] *= 1.0 + 0.6 * r;
            c[1] *= 1.0 - 0.4 * r;
            c[2] *= 1.0 - 0.3 * r;
        }
        const double x = static_cast<double>(i % size) + 0.5,
                     y = static_cast<double>(i / size) + 0.5;
        for (const auto& m : moles) {
            const double d2 = (x - m.u) * (x - m.u) + (y - m.v) * (y - m.v);
            if (d2 > 9.0 * m.radius * m.radius)
                continue;
            const double g = m.strength * std::exp(-d2 / (2.0 * m.radius * m.radius));
            // Moles are brown: blue and green darken more than red.
            c[0] *= 1.0 - 0.8 * g;
            c[1] *= 1.0 - 0.95 * g;
            c[2] *= 1.0 - g;
        }
        for (size_t k = 0; k < 3; ++k)
            rgb[3 * i + k] = static_cast<float>(std::clamp(c[k], 0.0, 1.0));
    }
    Texture out(size, size);
    out.rgb = std::move(rgb);
    std::vector<size_t> skin_ids;
    for (size_t i = 0; i < n; ++i)
        if (at.region[i] == kRegionSkin)
            skin_ids.push_back(i);
    if (skin_out && !median_colour(out.rgb, skin_ids, skin_out))
        std::copy(face.skin, face.skin + 3, skin_out);
    return out;
}

Appearance photo_appearance(const UnwrappedFace& face, uint64_t seed) {
    Appearance a = random_appearance(seed);
    auto texture = std::make_shared<Texture>(augment_face_texture(face, seed, a.skin));
    a.face_texture = std::move(texture);
    std::copy(face.lips, face.lips + 3, a.lips);
    return a;
}

size_t choose_background(const std::vector<torch::Tensor>& images, uint64_t seed, double aspect,
                         Appearance& appearance) {
    avatar::check(!images.empty(), "backgrounds", "no background images");
    avatar::check(aspect > 0.0 && std::isfinite(aspect), "backgrounds", "bad aspect ratio");
    Random rng(seed ^ 0xBAC6A0D5ULL);
    const auto chosen = static_cast<size_t>(rng.index(static_cast<int64_t>(images.size())));
    const auto& image = images[chosen];
    const double H = static_cast<double>(image.size(0)), W = static_cast<double>(image.size(1));
    const double largest_h = std::min(H, W / aspect);
    const double h = largest_h * rng.uniform(0.45, 1.0), w = h * aspect;
    const double x0 = rng.uniform(0.0, W - w), y0 = rng.uniform(0.0, H - h);
    appearance.background_image = image;
    appearance.background_crop[0] = static_cast<float>(x0 / W);
    appearance.background_crop[1] = static_cast<float>(y0 / H);
    appearance.background_crop[2] = static_cast<float>(std::min(1.0, (x0 + w) / W));
    appearance.background_crop[3] = static_cast<float>(std::min(1.0, (y0 + h) / H));
    appearance.background_mirror = rng.chance(0.5);
    return chosen;
}

}  // namespace avatar::synth
