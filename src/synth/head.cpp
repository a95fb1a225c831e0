#include "synth/head.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <string>

#include "core/error.h"
#include "face/canonical_face.h"
#include "face/face_model.h"
#include "synth/mesh_annotations.h"
#include "synth/polygon.h"
#include "synth/random.h"

namespace avatar::synth {

namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- mesh annotations (MediaPipe vertex ids; MESH_ANNOTATIONS of facemeshcoords.ts) ------------

using mesh::kInnerLips;
using mesh::kLeftBrow;
using mesh::kLeftEye;
using mesh::kOuterLips;
using mesh::kRightBrow;
using mesh::kRightEye;
using mesh::kSilhouette;

// Tessellation of the procedural parts.
constexpr int kShellRings = 14;  // rings from the silhouette to the back pole
constexpr int kEyeStacks = 15;   // polar rows of an eyeball (angles in kEyeTheta)
constexpr int kEyeSlices = 16;
constexpr int kMouthRings = 4;  // inner lip loop + 3 rings into the cavity
constexpr int kTeethColumns = 14;
constexpr int kHairRows = 14;
constexpr int kHairColumns = 48;
constexpr int kNeckRings = 8;
constexpr int kTorsoRings = 10;
constexpr int kRoundSlices = 24;  // around the neck and the torso
// Polar angle (radians from the gaze axis) of each eyeball row: dense over the iris.
constexpr double kEyeTheta[kEyeStacks + 1] = {
    0.0, 0.08, 0.17, 0.26, 0.36, 0.45, 0.5, 0.58,
    0.7, 0.9,  1.15, 1.45, 1.8,  2.3,  2.8, 3.14159265358979};
constexpr double kIrisTheta = 0.5;  // iris edge (radius 1.2 sin 0.5 = 0.58 cm)
constexpr double kPupilTheta = 0.17;
constexpr double kEyeRadius = 1.2;  // cm

constexpr double kEyeDepth = 0.8;  // eyeball centre this many radii behind the opening

constexpr float kWhite[3] = {1.0f, 1.0f, 1.0f};
constexpr float kTongue[3] = {0.72f, 0.33f, 0.33f};
constexpr float kCavity[3] = {0.55f, 0.16f, 0.14f};
constexpr float kTooth[3] = {0.93f, 0.9f, 0.82f};
constexpr float kSocket[3] = {0.45f, 0.25f, 0.24f};

constexpr int kUpperInnerLip = 13;
constexpr int kLowerInnerLip = 14;

// Jaw rotation of the jaw_open mode (docs/face-model.md): 25 degrees per unit about an
// x-parallel axis through this pivot.
constexpr double kJawDegreesPerUnit = 25.0;
constexpr double kJawPivot[3] = {0.0, 0.5, -2.5};

struct Vec3 {
    double x = 0, y = 0, z = 0;
};
Vec3 operator+(Vec3 a, Vec3 b) {
    return {a.x + b.x, a.y + b.y, a.z + b.z};
}
Vec3 operator-(Vec3 a, Vec3 b) {
    return {a.x - b.x, a.y - b.y, a.z - b.z};
}
Vec3 operator*(Vec3 a, double s) {
    return {a.x * s, a.y * s, a.z * s};
}
double dot(Vec3 a, Vec3 b) {
    return a.x * b.x + a.y * b.y + a.z * b.z;
}
Vec3 cross(Vec3 a, Vec3 b) {
    return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
Vec3 normalized(Vec3 a) {
    const double n = std::sqrt(dot(a, a));
    return n > 0 ? a * (1.0 / n) : a;
}
double smoothstep(double e0, double e1, double x) {
    const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}

// Row-major 3x3 matrix helpers.
Vec3 mul(const double* r, Vec3 v) {
    return {r[0] * v.x + r[1] * v.y + r[2] * v.z, r[3] * v.x + r[4] * v.y + r[5] * v.z,
            r[6] * v.x + r[7] * v.y + r[8] * v.z};
}
void rotation_x(double a, double* r) {
    const double c = std::cos(a), s = std::sin(a);
    const double m[9] = {1, 0, 0, 0, c, -s, 0, s, c};
    std::copy(m, m + 9, r);
}

// The face model as float arrays (built once from face_model()).
struct FaceBasis {
    int64_t K = 0, E = 0;
    std::vector<float> mean;         // [468 * 3]
    std::vector<float> identity;     // [K][468 * 3]
    std::vector<float> expression;   // [E][468 * 3]
    std::vector<float> uv;           // [468 * 2]
    std::vector<int32_t> triangles;  // [T * 3]
};

const FaceBasis& face_basis() {
    static FaceBasis basis;
    static std::once_flag once;
    std::call_once(once, [] {
        const auto& m = face::face_model();
        const auto& c = face::canonical_face();
        basis.K = m.identity_count();
        basis.E = m.expression_count();
        const auto f32 = [](const torch::Tensor& t) {
            auto x = t.to(torch::kFloat32).contiguous();
            return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
        };
        basis.mean = f32(m.mean);
        basis.identity = f32(m.identity_basis);
        basis.expression = f32(m.expression_basis);
        basis.uv = f32(c.uv);
        auto tri = c.triangles.to(torch::kInt32).contiguous();
        basis.triangles.assign(tri.data_ptr<int32_t>(), tri.data_ptr<int32_t>() + tri.numel());
    });
    return basis;
}

Vec3 vertex(const std::vector<float>& v, int64_t i) {
    return {v[3 * i], v[3 * i + 1], v[3 * i + 2]};
}
void set_vertex(std::vector<float>& v, int64_t i, Vec3 p) {
    v[3 * i] = static_cast<float>(p.x);
    v[3 * i + 1] = static_cast<float>(p.y);
    v[3 * i + 2] = static_cast<float>(p.z);
}

std::vector<Vec3> loop_points(const std::vector<float>& verts, const int* ids, size_t n) {
    std::vector<Vec3> out;
    for (size_t i = 0; i < n; ++i)
        out.push_back(vertex(verts, ids[i]));
    return out;
}

void lerp3(const float* a, const float* b, float t, float* out) {
    for (int c = 0; c < 3; ++c)
        out[c] = a[c] + t * (b[c] - a[c]);
}

// Hairline elevation (degrees above the cranium's equator) by azimuth |phi| (degrees from the
// front), per style, at |phi| = 0, 45, 80, 100, 140, 180.
constexpr double kHairAzimuths[6] = {0, 45, 80, 100, 140, 180};
constexpr double kHairlines[kHairStyleCount][6] = {
    {42, 32, 12, 5, -20, -30},   // buzz
    {38, 28, 10, 0, -30, -40},   // short
    {34, 26, 8, -30, -50, -55},  // medium
    {34, 26, 8, -55, -70, -75},  // long
    {90, 90, 90, 90, 90, 90},    // bald (no hair)
};
constexpr double kHairOffset[kHairStyleCount] = {0.015, 0.05, 0.08, 0.10, 0.0};

double hairline(int style, double azimuth_deg) {
    const double a = std::min(std::abs(azimuth_deg), 180.0);
    int i = 0;
    while (i < 4 && a > kHairAzimuths[i + 1])
        ++i;
    const double t = (a - kHairAzimuths[i]) / (kHairAzimuths[i + 1] - kHairAzimuths[i]);
    const double s = t * t * (3 - 2 * t);
    return kHairlines[style][i] + s * (kHairlines[style][i + 1] - kHairlines[style][i]);
}

// The appearance's photographic background: its crop resized (area-averaged when shrinking, so
// a large photo does not alias) to width x height, float RGB in [0, 1], row-major.
std::vector<float> photo_background(const Appearance& a, int width, int height) {
    const auto& image = a.background_image;
    avatar::check(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8 &&
                      image.size(0) >= 1 && image.size(1) >= 1,
                  "head renderer", "the background image must be uint8 [H, W, 3]");
    const float* c = a.background_crop;
    avatar::check(std::isfinite(c[0]) && std::isfinite(c[1]) && std::isfinite(c[2]) &&
                      std::isfinite(c[3]) && c[0] >= 0.0f && c[1] >= 0.0f && c[2] <= 1.0f &&
                      c[3] <= 1.0f && c[0] < c[2] && c[1] < c[3],
                  "head renderer", "the background crop must lie inside [0, 1] and be non-empty");
    const int64_t H = image.size(0), W = image.size(1);
    const auto x0 = std::min<int64_t>(W - 1, std::llround(c[0] * W));
    const auto y0 = std::min<int64_t>(H - 1, std::llround(c[1] * H));
    const auto x1 = std::max<int64_t>(x0 + 1, std::llround(c[2] * W));
    const auto y1 = std::max<int64_t>(y0 + 1, std::llround(c[3] * H));
    auto crop = image.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0);
    if (a.background_mirror)
        crop = crop.flip({1});
    auto x = crop.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255.0f;
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{height, width})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
    x = x[0].permute({1, 2, 0}).clamp(0.0f, 1.0f).contiguous();
    return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
}

}  // namespace

const std::vector<std::string>& label_names() {
    static const std::vector<std::string> names = {
        "background", "face_skin", "head_skin", "neck",  "clothes", "hair",   "brows",
        "lips",       "sclera",    "iris",      "mouth", "teeth",   "tongue", "ears"};
    return names;
}

// ---- parts
// ---------------------------------------------------------------------------------------

// How a part's model-space vertices reach the pose frame.
enum class Frame { head, body, neck };

// One mesh of the head. `model` is rebuilt per frame; the topology is fixed at construction.
struct HeadRenderer::Part {
    std::string name;
    Frame frame = Frame::head;
    // Per vertex: positions, normals, albedo, albedo x light, light alone (for textured draws),
    // pose-frame positions, screen positions, UVs.
    std::vector<float> model, normal, albedo, shaded, light, world, screen, uv;
    std::vector<float> head_weight;  // Frame::neck: 1 = head pose, 0 = body pose, per vertex
    std::vector<int32_t> triangles;
    std::vector<uint8_t> labels;
    uint8_t label = kLabelHeadSkin;
    const Texture* texture = nullptr;
    bool uv_visible = false;
    bool shade = true;
    Cull cull = Cull::back;
    int64_t draw_triangle_begin = 0;  // triangles drawn: [begin, end) (all by default)
    int64_t draw_triangle_end = -1;
    // For orienting triangles outward at construction: a reference point (or axis along y when
    // axis_y is set) inside the part.
    Vec3 inside;
    bool axis_y = false;

    int64_t vertex_count() const { return static_cast<int64_t>(model.size() / 3); }
    void resize(int64_t n) {
        model.assign(static_cast<size_t>(3 * n), 0.0f);
        albedo.assign(static_cast<size_t>(3 * n), 1.0f);
    }
    void quad(int32_t a, int32_t b, int32_t c, int32_t d) {
        triangles.insert(triangles.end(), {a, b, c, a, c, d});
    }
};

namespace {

using Part = HeadRenderer::Part;

// Grid topology: rows x cols vertices (cols wrap around when `wrap`), quads between rows.
void grid_triangles(Part& p, int32_t first, int rows, int cols, bool wrap) {
    for (int r = 0; r + 1 < rows; ++r)
        for (int c = 0; c < (wrap ? cols : cols - 1); ++c) {
            const int32_t c1 = (c + 1) % cols;
            p.quad(first + r * cols + c, first + r * cols + c1, first + (r + 1) * cols + c1,
                   first + (r + 1) * cols + c);
        }
}

void compute_normals(Part& p) {
    const int64_t n = p.vertex_count();
    p.normal.assign(static_cast<size_t>(3 * n), 0.0f);
    for (size_t t = 0; t < p.triangles.size(); t += 3) {
        const int32_t i0 = p.triangles[t], i1 = p.triangles[t + 1], i2 = p.triangles[t + 2];
        const Vec3 a = vertex(p.model, i0), b = vertex(p.model, i1), c = vertex(p.model, i2);
        const Vec3 nrm = cross(b - a, c - a);  // area-weighted
        for (const int32_t i : {i0, i1, i2}) {
            p.normal[3 * i] += static_cast<float>(nrm.x);
            p.normal[3 * i + 1] += static_cast<float>(nrm.y);
            p.normal[3 * i + 2] += static_cast<float>(nrm.z);
        }
    }
    for (int64_t i = 0; i < n; ++i)
        set_vertex(p.normal, i, normalized(vertex(p.normal, i)));
}

// Flips triangles whose normal points toward the part's inside reference.
void orient_outward(Part& p, size_t first_triangle) {
    for (size_t t = 3 * first_triangle; t < p.triangles.size(); t += 3) {
        const Vec3 a = vertex(p.model, p.triangles[t]), b = vertex(p.model, p.triangles[t + 1]),
                   c = vertex(p.model, p.triangles[t + 2]);
        const Vec3 centroid = (a + b + c) * (1.0 / 3.0);
        Vec3 ref = p.inside;
        if (p.axis_y)
            ref.y = centroid.y;
        if (dot(cross(b - a, c - a), centroid - ref) < 0)
            std::swap(p.triangles[t + 1], p.triangles[t + 2]);
    }
}

}  // namespace

// ---- appearance ---------------------------------------------------------------------------------

Appearance random_appearance(uint64_t seed) {
    Random rng(seed ^ 0xA99EA4A9CEULL);
    Appearance a;
    const auto set = [](float* dst, double r, double g, double b) {
        dst[0] = static_cast<float>(r);
        dst[1] = static_cast<float>(g);
        dst[2] = static_cast<float>(b);
    };
    // Skin: from light to dark along a warm axis, with a little hue jitter.
    const double t = rng.uniform();
    const double light[3] = {0.93, 0.74, 0.63}, dark[3] = {0.36, 0.22, 0.15};
    double skin[3];
    for (int c = 0; c < 3; ++c)
        skin[c] = light[c] + t * (dark[c] - light[c]);
    skin[0] *= rng.uniform(0.96, 1.04);
    skin[2] *= rng.uniform(0.9, 1.1);
    set(a.skin, skin[0], skin[1], skin[2]);
    set(a.lips, skin[0] * rng.uniform(0.8, 0.95), skin[1] * rng.uniform(0.55, 0.7),
        skin[2] * rng.uniform(0.6, 0.75));
    static const double hair[6][3] = {{0.04, 0.03, 0.025}, {0.16, 0.09, 0.05}, {0.32, 0.2, 0.1},
                                      {0.72, 0.58, 0.34},  {0.5, 0.18, 0.07},  {0.6, 0.6, 0.6}};
    const auto h = rng.index(6);
    const double hs = rng.uniform(0.85, 1.15);
    set(a.hair, hair[h][0] * hs, hair[h][1] * hs, hair[h][2] * hs);
    set(a.brows, std::min(hair[h][0], 0.3) * 0.8, std::min(hair[h][1], 0.22) * 0.8,
        std::min(hair[h][2], 0.14) * 0.8);
    static const double iris[5][3] = {{0.28, 0.16, 0.07},
                                      {0.12, 0.07, 0.04},
                                      {0.25, 0.42, 0.62},
                                      {0.3, 0.45, 0.25},
                                      {0.45, 0.35, 0.15}};
    const auto e = rng.index(5);
    set(a.iris, iris[e][0], iris[e][1], iris[e][2]);
    set(a.clothes, rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.8));
    set(a.background_top, rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9));
    for (int c = 0; c < 3; ++c)
        a.background_bottom[c] = a.background_top[c] * static_cast<float>(rng.uniform(0.4, 0.9));
    a.hair_style = static_cast<HairStyle>(rng.index(10) < 1 ? 4 : rng.index(4));
    set(a.light, rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.6), 1.0);
    a.ambient = static_cast<float>(rng.uniform(0.35, 0.5));
    a.diffuse = static_cast<float>(rng.uniform(0.55, 0.7));
    a.noise_seed = rng.next_u64();
    return a;
}

// ---- construction
// ---------------------------------------------------------------------------------

HeadRenderer::~HeadRenderer() = default;

HeadRenderer::HeadRenderer(const Appearance& appearance, const HeadRenderOptions& options)
    : appearance_(appearance), options_(options) {
    avatar::check(options.width >= 16 && options.height >= 16 && options.width <= 8192 &&
                      options.height <= 8192,
                  "head renderer",
                  "image size must be 16..8192, got " + std::to_string(options.width) + "x" +
                      std::to_string(options.height));
    avatar::check(options.camera_distance_cm >= 0.0f && std::isfinite(options.camera_distance_cm),
                  "head renderer", "camera distance must be >= 0 (0 = weak perspective)");
    const auto& fb = face_basis();
    const uint64_t seed = appearance.noise_seed;
    const float* skin = appearance.skin;

    if (appearance.face_texture) {
        const Texture& t = *appearance.face_texture;
        avatar::check(t.width >= 2 && t.height >= 2 &&
                          t.rgb.size() == static_cast<size_t>(t.width) * t.height * 3,
                      "head renderer", "the appearance's face texture is empty or malformed");
        skin_texture_ = t;
    } else {
        // Skin texture in the canonical UV space: rasterize the face in UV space with the
        // canonical positions as "colours" (a position map), then paint each texel from its 3D
        // position.
        const int size = 256;
        std::vector<float> screen(468 * 3);
        for (int i = 0; i < 468; ++i) {
            screen[3 * i] = fb.uv[2 * i] * size;
            screen[3 * i + 1] = fb.uv[2 * i + 1] * size;
            screen[3 * i + 2] = 0.0f;
        }
        MeshView m;
        m.screen = screen.data();
        m.color = fb.mean.data();
        m.vertex_count = 468;
        m.triangles = fb.triangles.data();
        m.triangle_count = static_cast<int64_t>(fb.triangles.size() / 3);
        RenderSettings rs;
        rs.width = rs.height = size;
        rs.supersample = 1;
        rs.perspective = false;
        RenderOutput pos;
        rasterizer_.render({m}, rs, pos);
        const auto lips = loop_points(fb.mean, kOuterLips.data(), kOuterLips.size());
        const auto brow_r = loop_points(fb.mean, kRightBrow.data(), kRightBrow.size());
        const auto brow_l = loop_points(fb.mean, kLeftBrow.data(), kLeftBrow.size());
        const auto eye_r = loop_points(fb.mean, kRightEye.data(), kRightEye.size());
        const auto eye_l = loop_points(fb.mean, kLeftEye.data(), kLeftEye.size());
        skin_texture_ = Texture(size, size);
        for (int i = 0; i < size * size; ++i) {
            float* out = &skin_texture_.rgb[3 * static_cast<size_t>(i)];
            const float* p = &pos.rgb[3 * static_cast<size_t>(i)];
            const bool covered = pos.mask[static_cast<size_t>(i)] > 0.0f;
            const double x = covered ? p[0] : 0.0, y = covered ? p[1] : 0.0,
                         z = covered ? p[2] : 0.0;
            const float tone =
                0.93f +
                0.14f * fractal_noise(static_cast<float>(x) * 0.7f, static_cast<float>(y) * 0.7f,
                                      static_cast<float>(z) * 0.7f, seed) +
                0.05f * (value_noise(static_cast<float>(x) * 6.0f, static_cast<float>(y) * 6.0f,
                                     static_cast<float>(z) * 6.0f, seed + 7) -
                         0.5f);
            float c[3];
            for (int k = 0; k < 3; ++k)
                c[k] = skin[k] * (covered ? tone : 1.0f);
            if (!covered) {
                std::copy(c, c + 3, out);
                continue;
            }
            // Cheek blush.
            const double blush = std::exp(-(std::pow(std::abs(x) - 4.3, 2) + std::pow(y + 1.8, 2)) /
                                          (2 * 1.6 * 1.6));
            c[0] *= static_cast<float>(1.0 + 0.06 * blush);
            c[1] *= static_cast<float>(1.0 - 0.08 * blush);
            c[2] *= static_cast<float>(1.0 - 0.06 * blush);
            // A little shadow around the eyes.
            for (const auto* eye : {&eye_r, &eye_l}) {
                const double d = polygon_signed_distance(*eye, x, y);
                const double w = 1.0 - smoothstep(0.0, 0.8, d);
                for (int k = 0; k < 3; ++k)
                    c[k] *= static_cast<float>(1.0 - 0.12 * w);
            }
            // Lips.
            const double dl = polygon_signed_distance(lips, x, y);
            const double wl = 1.0 - smoothstep(-0.08, 0.08, dl);
            lerp3(c, appearance.lips, static_cast<float>(wl), c);
            // Brows, with strands.
            for (const auto* brow : {&brow_r, &brow_l}) {
                const double d = polygon_signed_distance(*brow, x, y);
                const double strands =
                    0.55 + 0.45 * value_noise(static_cast<float>(x) * 9.0f,
                                              static_cast<float>(y) * 2.0f, 0.0f, seed + 11);
                const double w = (1.0 - smoothstep(-0.12, 0.1, d)) * strands;
                lerp3(c, appearance.brows, static_cast<float>(w), c);
            }
            std::copy(c, c + 3, out);
        }
    }

    // Eyeball texture: v = polar angle from the gaze axis / pi; pupil, iris with a darker rim and
    // radial streaks, sclera a little darker and redder toward the sides.
    {
        // One column: u is the azimuth around the gaze axis, whose seam must not show.
        const int rows = 256;
        eye_texture_ = Texture(1, rows);
        for (int r = 0; r < rows; ++r)
            for (int col = 0; col < 1; ++col) {
                const double theta = (r + 0.5) / rows * kPi;
                float c[3];
                if (theta < kPupilTheta) {
                    c[0] = c[1] = c[2] = 0.02f;
                } else if (theta < kIrisTheta) {
                    const double rim = smoothstep(kIrisTheta - 0.12, kIrisTheta, theta);
                    const double ring = 0.9 + 0.2 * smoothstep(kPupilTheta, kIrisTheta, theta);
                    for (int k = 0; k < 3; ++k)
                        c[k] = static_cast<float>(appearance.iris[k] * ring * (1.0 - 0.5 * rim));
                } else {
                    const double side = smoothstep(0.9, 1.6, theta);
                    c[0] = static_cast<float>(0.88 - 0.1 * side);
                    c[1] = static_cast<float>(0.85 - 0.2 * side);
                    c[2] = static_cast<float>(0.82 - 0.2 * side);
                }
                std::copy(c, c + 3, &eye_texture_.rgb[3 * static_cast<size_t>(r + col)]);
            }
    }

    if (appearance.background_image.defined()) {
        background_ = photo_background(appearance, options.width, options.height);
    } else {
        // Background: a vertical gradient with soft low-frequency blotches, fixed per identity.
        const int W = options.width, H = options.height;
        background_.resize(static_cast<size_t>(W) * static_cast<size_t>(H) * 3);
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                const float t = (y + 0.5f) / static_cast<float>(H);
                const float n =
                    0.8f + 0.4f * fractal_noise(x * 3.0f / W, y * 3.0f / H, 0.5f, seed + 21);
                for (int k = 0; k < 3; ++k)
                    background_[3 * (static_cast<size_t>(y) * W + x) + k] = std::clamp(
                        (appearance.background_top[k] +
                         t * (appearance.background_bottom[k] - appearance.background_top[k])) *
                            n,
                        0.0f, 1.0f);
            }
    }

    // Topology of every part, then one geometry pass at rest to orient the procedural triangles.
    const int64_t face_triangles = static_cast<int64_t>(fb.triangles.size() / 3);
    {
        // Skin: the face (minus the eye and mouth fills) then the shell sweeping back from the
        // silhouette. Both share the silhouette vertices, hence one part with two draws.
        Part skin_part;
        skin_part.name = "skin";
        std::vector<bool> in_right(468, false), in_left(468, false), in_mouth(468, false);
        for (int i : kRightEye)
            in_right[static_cast<size_t>(i)] = true;
        for (int i : kLeftEye)
            in_left[static_cast<size_t>(i)] = true;
        for (int i : kInnerLips)
            in_mouth[static_cast<size_t>(i)] = true;
        const auto lips = loop_points(fb.mean, kOuterLips.data(), kOuterLips.size());
        const auto brow_r = loop_points(fb.mean, kRightBrow.data(), kRightBrow.size());
        const auto brow_l = loop_points(fb.mean, kLeftBrow.data(), kLeftBrow.size());
        for (int64_t t = 0; t < face_triangles; ++t) {
            const int32_t* v = &fb.triangles[static_cast<size_t>(3 * t)];
            const auto all = [&](const std::vector<bool>& set) {
                return set[static_cast<size_t>(v[0])] && set[static_cast<size_t>(v[1])] &&
                       set[static_cast<size_t>(v[2])];
            };
            if (all(in_right) || all(in_left) || all(in_mouth))
                continue;
            skin_part.triangles.insert(skin_part.triangles.end(), v, v + 3);
            const Vec3 c = (vertex(fb.mean, v[0]) + vertex(fb.mean, v[1]) + vertex(fb.mean, v[2])) *
                           (1.0 / 3.0);
            uint8_t label = kLabelFaceSkin;
            if (polygon_signed_distance(lips, c.x, c.y) < 0)
                label = kLabelLips;
            else if (polygon_signed_distance(brow_r, c.x, c.y) < 0 ||
                     polygon_signed_distance(brow_l, c.x, c.y) < 0)
                label = kLabelBrows;
            skin_part.labels.push_back(label);
        }
        skin_part.draw_triangle_end = static_cast<int64_t>(skin_part.triangles.size() / 3);
        const int rings = kShellRings;
        const int n = static_cast<int>(kSilhouette.size());
        skin_part.resize(468 + static_cast<int64_t>(rings - 1) * n + 1);
        const auto ring_index = [&](int ring, int i) -> int32_t {
            return ring == 0 ? kSilhouette[static_cast<size_t>(i % n)]
                             : 468 + (ring - 1) * n + (i % n);
        };
        const int32_t pole = 468 + (rings - 1) * n;
        for (int r = 0; r + 1 < rings; ++r)
            for (int i = 0; i < n; ++i)
                skin_part.quad(ring_index(r, i), ring_index(r, i + 1), ring_index(r + 1, i + 1),
                               ring_index(r + 1, i));
        for (int i = 0; i < n; ++i)
            skin_part.triangles.insert(
                skin_part.triangles.end(),
                {ring_index(rings - 1, i), ring_index(rings - 1, i + 1), pole});
        skin_part.uv.assign(static_cast<size_t>(2 * skin_part.vertex_count()), 0.0f);
        std::copy(fb.uv.begin(), fb.uv.end(), skin_part.uv.begin());
        skin_part.texture = &skin_texture_;
        skin_part.uv_visible = true;
        skin_part.label = kLabelHeadSkin;
        parts_.push_back(std::move(skin_part));
    }
    const auto add_sphere = [&](const std::string& name, Frame frame, int stacks, int slices,
                                uint8_t label, Cull cull) {
        Part p;
        p.name = name;
        p.frame = frame;
        p.resize(static_cast<int64_t>(stacks + 1) * slices);
        grid_triangles(p, 0, stacks + 1, slices, true);
        p.label = label;
        p.cull = cull;
        parts_.push_back(std::move(p));
    };
    add_sphere("eye_right", Frame::head, kEyeStacks, kEyeSlices, kLabelSclera, Cull::back);
    add_sphere("eye_left", Frame::head, kEyeStacks, kEyeSlices, kLabelSclera, Cull::back);
    for (size_t e = parts_.size() - 2; e < parts_.size(); ++e) {
        Part& eye = parts_[e];
        eye.texture = &eye_texture_;
        eye.uv.assign(static_cast<size_t>(2 * eye.vertex_count()), 0.0f);
        for (int r = 0; r <= kEyeStacks; ++r)
            for (int c = 0; c < kEyeSlices; ++c) {
                const size_t i = static_cast<size_t>(r * kEyeSlices + c);
                eye.uv[2 * i] = static_cast<float>((c + 0.5) / kEyeSlices);
                eye.uv[2 * i + 1] = static_cast<float>(kEyeTheta[r] / kPi);
            }
        for (size_t t = 0; t < eye.triangles.size() / 3; ++t) {
            const size_t row = t / (2 * kEyeSlices);
            eye.labels.push_back(kEyeTheta[row + 1] <= kIrisTheta + 1e-9 ? kLabelIris
                                                                         : kLabelSclera);
        }
    }
    add_sphere("ear_right", Frame::head, 8, 12, kLabelEars, Cull::back);
    add_sphere("ear_left", Frame::head, 8, 12, kLabelEars, Cull::back);
    add_sphere("tongue", Frame::head, 6, 12, kLabelTongue, Cull::back);
    {
        // Mouth cavity: rings behind the inner lip loop and a cap.
        Part p;
        p.name = "mouth";
        const int n = static_cast<int>(kInnerLips.size());
        p.resize(static_cast<int64_t>(kMouthRings) * n + 1);
        grid_triangles(p, 0, kMouthRings, n, true);
        for (int i = 0; i < n; ++i)
            p.triangles.insert(
                p.triangles.end(),
                {(kMouthRings - 1) * n + i, (kMouthRings - 1) * n + (i + 1) % n, kMouthRings * n});
        p.label = kLabelMouthCavity;
        p.cull = Cull::none;
        p.shade = false;
        parts_.push_back(std::move(p));
    }
    for (const char* name : {"teeth_upper", "teeth_lower"}) {
        Part p;
        p.name = name;
        p.resize(2 * (kTeethColumns + 1));
        grid_triangles(p, 0, 2, kTeethColumns + 1, false);
        p.label = kLabelTeeth;
        p.cull = Cull::none;
        parts_.push_back(std::move(p));
    }
    {
        Part p;
        p.name = "hair";
        p.resize(static_cast<int64_t>(kHairRows) * kHairColumns);
        grid_triangles(p, 0, kHairRows, kHairColumns, true);
        p.label = kLabelHair;
        if (appearance.hair_style == HairStyle::bald)
            p.triangles.clear();
        parts_.push_back(std::move(p));
    }
    {
        Part p;
        p.name = "neck";
        p.frame = Frame::neck;
        p.resize(static_cast<int64_t>(kNeckRings) * kRoundSlices);
        grid_triangles(p, 0, kNeckRings, kRoundSlices, true);
        p.label = kLabelNeck;
        p.axis_y = true;
        parts_.push_back(std::move(p));
    }
    {
        Part p;
        p.name = "torso";
        p.frame = Frame::body;
        p.resize(static_cast<int64_t>(kTorsoRings) * kRoundSlices);
        grid_triangles(p, 0, kTorsoRings, kRoundSlices, true);
        p.label = kLabelClothes;
        p.axis_y = true;
        parts_.push_back(std::move(p));
    }

    for (const char* name : {"socket_right", "socket_left"}) {
        // Eye sockets: a dark pouch behind each lid opening, so that no background shows past
        // the eyeball at the corners of the eye.
        Part p;
        p.name = name;
        const int n = static_cast<int>(kRightEye.size());
        p.resize(2 * n + 1);
        grid_triangles(p, 0, 2, n, true);
        for (int i = 0; i < n; ++i)
            p.triangles.insert(p.triangles.end(), {n + i, n + (i + 1) % n, 2 * n});
        p.label = kLabelSclera;
        p.cull = Cull::none;
        p.shade = false;
        parts_.push_back(std::move(p));
    }

    std::vector<float> rest(static_cast<size_t>(face::face_layout_size()), 0.0f);
    rest[6] = 1.0f;
    build_geometry(rest.data());
    for (auto& p : parts_)
        if (p.cull != Cull::none)
            orient_outward(p, p.name == "skin" ? static_cast<size_t>(p.draw_triangle_end) : 0);
}

// ---- per-frame geometry
// ---------------------------------------------------------------------------

namespace {

// Radius of the cranium ellipsoid (centre c, radii rx, ry_up / ry_down, rz) along unit direction d.
struct Cranium {
    Vec3 centre;
    double rx = 8.1, ry_up = 11.0, ry_down = 9.0, rz = 10.5;
    double radius(Vec3 d) const {
        const double ry = d.y > 0 ? ry_up : ry_down;
        return 1.0 / std::sqrt((d.x / rx) * (d.x / rx) + (d.y / ry) * (d.y / ry) +
                               (d.z / rz) * (d.z / rz));
    }
};

Vec3 slerp(Vec3 a, Vec3 b, double t) {
    const double cosine = std::clamp(dot(a, b), -1.0, 1.0);
    const double omega = std::acos(cosine);
    if (omega < 1e-6)
        return a;
    const double s = std::sin(omega);
    return a * (std::sin((1 - t) * omega) / s) + b * (std::sin(t * omega) / s);
}

void set_color(Part& p, int64_t i, const float* c, double scale = 1.0) {
    for (int k = 0; k < 3; ++k)
        p.albedo[static_cast<size_t>(3 * i + k)] = static_cast<float>(c[k] * scale);
}

// An ellipsoid on a (stacks + 1) x slices grid, polar axis local z, placed by `rotation`
// (row-major, local -> model) at `centre`.
void ellipsoid(Part& p, int stacks, int slices, const double* theta, Vec3 centre, Vec3 radii,
               const double* rotation) {
    for (int r = 0; r <= stacks; ++r) {
        const double th = theta ? theta[r] : kPi * r / stacks;
        for (int c = 0; c < slices; ++c) {
            const double ph = 2.0 * kPi * c / slices;
            const Vec3 local = {radii.x * std::sin(th) * std::cos(ph),
                                radii.y * std::sin(th) * std::sin(ph), radii.z * std::cos(th)};
            set_vertex(p.model, r * slices + c, centre + mul(rotation, local));
        }
    }
    p.inside = centre;
}

}  // namespace

void HeadRenderer::build_geometry(const float* row) {
    const auto& fb = face_basis();
    const float* identity = row + face::kPoseSize;
    const float* expression = identity + fb.K;
    const float* gaze = expression + fb.E;
    Part& skin = parts_[0];

    // Face vertices: mean + identity, then + expression.
    neutral_ = fb.mean;
    for (int64_t k = 0; k < fb.K; ++k) {
        const float c = identity[k];
        if (c == 0.0f)
            continue;
        const float* b = &fb.identity[static_cast<size_t>(k * 468 * 3)];
        for (size_t i = 0; i < neutral_.size(); ++i)
            neutral_[i] += c * b[i];
    }
    std::copy(neutral_.begin(), neutral_.end(), skin.model.begin());
    for (int64_t k = 0; k < fb.E; ++k) {
        const float c = expression[k];
        if (c == 0.0f)
            continue;
        const float* b = &fb.expression[static_cast<size_t>(k * 468 * 3)];
        for (size_t i = 0; i < neutral_.size(); ++i)
            skin.model[i] += c * b[i];
    }

    // Cranium, following the identity's face width and height (modes 0 and 1: +8 % per unit).
    Cranium cranium;
    const double sx = 1.0 + 0.08 * identity[0], sy = 1.0 + 0.08 * identity[1];
    cranium.centre = {0.0, 1.0 * sy, -3.0};
    cranium.rx *= sx;
    cranium.ry_up *= sy;
    cranium.ry_down *= sy;

    // Head shell: from each silhouette vertex along the great circle to the back pole, the
    // radius easing from the vertex's own to the cranium's.
    {
        const Vec3 back = normalized({0.0, 0.1, -1.0});
        const int n = static_cast<int>(kSilhouette.size());
        for (int i = 0; i < n; ++i) {
            const Vec3 o = vertex(skin.model, kSilhouette[static_cast<size_t>(i)]);
            const Vec3 rel = o - cranium.centre;
            const double r0 = std::sqrt(dot(rel, rel));
            const Vec3 d0 = rel * (1.0 / r0);
            for (int r = 1; r < kShellRings; ++r) {
                const double t = static_cast<double>(r) / kShellRings;
                const Vec3 d = normalized(slerp(d0, back, t));
                const double w = smoothstep(0.0, 0.35, t);
                const double radius = r0 + w * (cranium.radius(d) - r0);
                set_vertex(skin.model, 468 + (r - 1) * n + i, cranium.centre + d * radius);
            }
        }
        set_vertex(skin.model, 468 + (kShellRings - 1) * n,
                   cranium.centre + back * cranium.radius(back));
        for (int64_t i = 0; i < skin.vertex_count(); ++i)
            set_color(skin, i, appearance_.skin);
        skin.inside = cranium.centre;
    }

    size_t next = 1;
    // Eyeballs behind the openings (placed from the identity-only face so that blinking does not
    // move them), rotated by the gaze. Gaze columns: left eye (x > 0) pitch, yaw; right eye.
    for (int e = 0; e < 2; ++e) {
        Part& eye = parts_[next++];
        const auto& ring = e == 0 ? kRightEye : kLeftEye;
        Vec3 m;
        for (int i : ring)
            m = m + vertex(neutral_, i);
        m = m * (1.0 / ring.size());
        const double radius = kEyeRadius * (1.0 + 0.1 * identity[7]);
        const Vec3 centre = m + Vec3{0.0, 0.0, -radius * kEyeDepth};
        const float* g = gaze + (e == 0 ? 2 : 0);
        double rot[9];
        euler_rad_to_matrix(g[0], g[1], 0.0, rot);
        ellipsoid(eye, kEyeStacks, kEyeSlices, kEyeTheta, centre, {radius, radius, radius}, rot);
        for (int64_t i = 0; i < eye.vertex_count(); ++i)
            set_color(eye, i, kWhite);
    }
    // Ears: flat ellipsoids at the sides of the cranium.
    for (int e = 0; e < 2; ++e) {
        Part& ear = parts_[next++];
        const double side = e == 0 ? -1.0 : 1.0;
        double rot[9];
        euler_rad_to_matrix(0.0, side * 0.35, 0.0, rot);
        // Polar axis along y (the ear is tall): swap local axes through the rotation.
        const double tall[9] = {rot[0], rot[2], rot[1], rot[3], rot[5],
                                rot[4], rot[6], rot[8], rot[7]};
        ellipsoid(ear, 8, 12, nullptr, {side * 7.3 * sx, 0.3 * sy, -4.3}, {0.6, 1.7, 2.9 * sy},
                  tall);
        const float ear_color[3] = {appearance_.skin[0], appearance_.skin[1] * 0.93f,
                                    appearance_.skin[2] * 0.93f};
        for (int64_t i = 0; i < ear.vertex_count(); ++i)
            set_color(ear, i, ear_color);
    }
    // Jaw rotation for the lower teeth and the tongue.
    double jaw[9];
    rotation_x(kJawDegreesPerUnit * kPi / 180.0 * expression[0], jaw);
    const Vec3 pivot = {kJawPivot[0], kJawPivot[1], kJawPivot[2]};
    const auto jaw_move = [&](Vec3 p) { return pivot + mul(jaw, p - pivot); };
    const Vec3 upper_lip = vertex(neutral_, kUpperInnerLip);
    const Vec3 lower_lip = vertex(neutral_, kLowerInnerLip);
    {
        Part& tongue = parts_[next++];
        const double identity_rot[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        // Flat: 3.2 cm wide, 1 cm thick, 3.8 cm long (polar axis = model z).
        ellipsoid(tongue, 6, 12, nullptr, {0.0, lower_lip.y - 0.8, lower_lip.z - 2.4},
                  {1.6, 0.5, 1.9}, identity_rot);
        for (int64_t i = 0; i < tongue.vertex_count(); ++i)
            set_vertex(tongue.model, i, jaw_move(vertex(tongue.model, i)));
        tongue.inside = jaw_move(tongue.inside);
        for (int64_t i = 0; i < tongue.vertex_count(); ++i)
            set_color(tongue, i, kTongue);
    }
    {
        // Mouth cavity: ring 0 is the inner lip loop itself (same positions as the face's).
        Part& mouth = parts_[next++];
        const int n = static_cast<int>(kInnerLips.size());
        Vec3 m;
        for (int i : kInnerLips)
            m = m + vertex(skin.model, i);
        m = m * (1.0 / n);
        static const double scale_x[kMouthRings] = {1.0, 0.92, 0.85, 0.55};
        static const double scale_y[kMouthRings] = {1.0, 1.1, 1.4, 1.0};
        static const double dy[kMouthRings] = {0.0, -0.1, -0.4, -0.6};
        static const double dz[kMouthRings] = {0.0, -0.5, -1.6, -3.2};
        static const double shade[kMouthRings] = {0.5, 0.3, 0.14, 0.06};
        for (int r = 0; r < kMouthRings; ++r)
            for (int i = 0; i < n; ++i) {
                const Vec3 p = vertex(skin.model, kInnerLips[static_cast<size_t>(i)]);
                const Vec3 q = r == 0 ? p
                                      : Vec3{m.x + (p.x - m.x) * scale_x[r],
                                             m.y + (p.y - m.y) * scale_y[r] + dy[r], p.z + dz[r]};
                set_vertex(mouth.model, r * n + i, q);
                set_color(mouth, r * n + i, kCavity, shade[r]);
            }
        set_vertex(mouth.model, kMouthRings * n, m + Vec3{0.0, -0.5, -3.8});
        set_color(mouth, kMouthRings * n, kCavity, 0.05);
    }
    for (int jaw_teeth = 0; jaw_teeth < 2; ++jaw_teeth) {
        // An arc of teeth behind the lips: upper fixed to the skull, lower on the jaw.
        Part& teeth = parts_[next++];
        const bool lower = jaw_teeth == 1;
        const Vec3 lip = lower ? lower_lip : upper_lip;
        const double radius = lower ? 2.25 : 2.4;
        const double front = lip.z - (lower ? 0.45 : 0.35);
        const double top = lower ? lip.y + 0.25 : lip.y + 0.6;
        const double bottom = lower ? lip.y - 0.6 : lip.y - 0.3;
        for (int c = 0; c <= kTeethColumns; ++c) {
            const double a = -1.2 + 2.4 * c / kTeethColumns;
            const double tone = (c % 2 == 0 ? 0.8 : 1.0) * (1.0 - 0.45 * std::abs(a) / 1.2);
            for (int r = 0; r < 2; ++r) {
                Vec3 p = {radius * std::sin(a), r == 0 ? top : bottom,
                          front - radius + radius * std::cos(a)};
                if (lower)
                    p = jaw_move(p);
                set_vertex(teeth.model, r * (kTeethColumns + 1) + c, p);
                set_color(teeth, r * (kTeethColumns + 1) + c, kTooth, tone);
            }
        }
    }
    {
        // Hair cap: rows from the style's hairline up to the crown, on a shell above the cranium.
        Part& hair = parts_[next++];
        const int style = static_cast<int>(appearance_.hair_style);
        for (int c = 0; c < kHairColumns; ++c) {
            const double azimuth = -180.0 + 360.0 * c / kHairColumns;
            const double line = hairline(style, azimuth);
            for (int r = 0; r < kHairRows; ++r) {
                const double s = static_cast<double>(r) / (kHairRows - 1);
                const double el = (line + s * (90.0 - line)) * kPi / 180.0;
                const double az = azimuth * kPi / 180.0;
                const Vec3 d = {std::cos(el) * std::sin(az), std::sin(el),
                                std::cos(el) * std::cos(az)};
                // The edge hugs the cranium (no gap to look through under it); the volume grows
                // over the first rows.
                const double rise = smoothstep(0.0, 0.3, s);
                const double radius =
                    cranium.radius(d) * (1.0 + kHairOffset[style] * rise) + 0.05 + 0.1 * rise;
                set_vertex(hair.model, r * kHairColumns + c, cranium.centre + d * radius);
                const double streak = 0.7 + 0.6 * value_noise(static_cast<float>(az * 14.0),
                                                              static_cast<float>(el * 2.0), 0.0f,
                                                              appearance_.noise_seed + 5);
                set_color(hair, r * kHairColumns + c, appearance_.hair, streak);
            }
        }
        hair.inside = cranium.centre;
    }
    {
        // Neck: an elliptic tube from inside the head down into the torso.
        Part& neck = parts_[next++];
        neck.head_weight.resize(static_cast<size_t>(neck.vertex_count()));
        const double cz = -3.8;
        for (int r = 0; r < kNeckRings; ++r) {
            const double y = -7.0 - 15.0 * r / (kNeckRings - 1);
            for (int c = 0; c < kRoundSlices; ++c) {
                const double a = 2.0 * kPi * c / kRoundSlices;
                const int64_t i = r * kRoundSlices + c;
                set_vertex(neck.model, i, {5.6 * sx * std::sin(a), y, cz + 5.6 * std::cos(a)});
                neck.head_weight[static_cast<size_t>(i)] =
                    static_cast<float>(smoothstep(-15.0, -8.0, y));
                set_color(neck, i, appearance_.skin, 0.92);
            }
        }
        neck.inside = {0.0, 0.0, cz};
    }
    {
        // Shoulders and chest: the top half of an ellipsoid, then a tube down out of the frame.
        Part& torso = parts_[next++];
        const double cy = -23.0, cz = -4.0, rx = 19.0 * sx, ry = 6.5, rz = 10.0;
        static const double theta[6] = {0.25, 0.5, 0.8, 1.1, 1.35, kPi / 2};
        static const double drop[4] = {8.0, 18.0, 30.0, 50.0};
        for (int r = 0; r < kTorsoRings; ++r) {
            const double y = r < 6 ? cy + ry * std::cos(theta[r]) : cy - drop[r - 6];
            const double k = r < 6 ? std::sin(theta[r]) : 1.0;
            for (int c = 0; c < kRoundSlices; ++c) {
                const double a = 2.0 * kPi * c / kRoundSlices;
                const int64_t i = r * kRoundSlices + c;
                set_vertex(torso.model, i, {rx * k * std::sin(a), y, cz + rz * k * std::cos(a)});
                set_color(torso, i, appearance_.clothes);
            }
        }
        torso.inside = {0.0, cy, cz};
    }
    for (int e = 0; e < 2; ++e) {
        Part& socket = parts_[next++];
        const auto& ring = e == 0 ? kRightEye : kLeftEye;
        const int n = static_cast<int>(ring.size());
        Vec3 m;
        for (int i : ring)
            m = m + vertex(skin.model, i);
        m = m * (1.0 / n);
        for (int i = 0; i < n; ++i) {
            const Vec3 p = vertex(skin.model, ring[static_cast<size_t>(i)]);
            set_vertex(socket.model, i, p);
            set_vertex(socket.model, n + i,
                       Vec3{m.x + 0.8 * (p.x - m.x), m.y + 0.8 * (p.y - m.y), p.z - 1.0});
            set_color(socket, i, kSocket);
            set_color(socket, n + i, kSocket, 0.5);
        }
        set_vertex(socket.model, 2 * n, m + Vec3{0.0, 0.0, -1.5});
        set_color(socket, 2 * n, kSocket, 0.3);
    }
}

void HeadRenderer::project(const float* row) {
    const float* pose = row;
    double head[9], body[9];
    euler_rad_to_matrix(pose[0], pose[1], pose[2], head);
    euler_rad_to_matrix(0.0, 0.25 * pose[1], 0.0, body);
    const double s = pose[6];
    const Vec3 t = {pose[3], pose[4], pose[5]};
    const Vec3 light =
        normalized({appearance_.light[0], appearance_.light[1], appearance_.light[2]});
    const double D = options_.camera_distance_cm;
    const double cx = 0.5 * options_.width, cy = 0.5 * options_.height;
    for (auto& p : parts_) {
        compute_normals(p);
        const int64_t n = p.vertex_count();
        p.world.resize(static_cast<size_t>(3 * n));
        p.screen.resize(static_cast<size_t>(3 * n));
        p.shaded.resize(static_cast<size_t>(3 * n));
        p.light.resize(static_cast<size_t>(3 * n));
        for (int64_t i = 0; i < n; ++i) {
            const Vec3 v = vertex(p.model, i), nm = vertex(p.normal, i);
            Vec3 w, nw;
            if (p.frame == Frame::head) {
                w = mul(head, v);
                nw = mul(head, nm);
            } else if (p.frame == Frame::body) {
                w = mul(body, v);
                nw = mul(body, nm);
            } else {
                const double a = p.head_weight[static_cast<size_t>(i)];
                w = mul(head, v) * a + mul(body, v) * (1.0 - a);
                nw = normalized(mul(head, nm) * a + mul(body, nm) * (1.0 - a));
            }
            const double lit =
                p.shade ? appearance_.ambient + appearance_.diffuse * std::max(0.0, dot(nw, light))
                        : 1.0;
            for (int k = 0; k < 3; ++k) {
                p.shaded[static_cast<size_t>(3 * i + k)] =
                    static_cast<float>(p.albedo[static_cast<size_t>(3 * i + k)] * lit);
                p.light[static_cast<size_t>(3 * i + k)] = static_cast<float>(lit);
            }
            Vec3 q;
            if (D <= 0.0) {
                q = {s * w.x + t.x, -s * w.y + t.y, -s * w.z + t.z};
            } else {
                const double X = w.x + (t.x - cx) / s, Y = -w.y + (t.y - cy) / s, Z = D - w.z;
                q = {s * D * X / Z + cx, s * D * Y / Z + cy, Z};
            }
            set_vertex(p.screen, i, q);
        }
    }
    const auto& face = parts_[0].screen;
    screen_face_.assign(face.begin(), face.begin() + 468 * 3);
}

void HeadRenderer::render(const float* row, RenderOutput& out) {
    const int64_t size = face::face_layout_size();
    for (int64_t i = 0; i < size; ++i)
        avatar::check(std::isfinite(row[i]), "coefficient row",
                      "column " + std::to_string(i) + " is not finite");
    avatar::check(row[6] > 0.0f, "coefficient row", "scale (column 6) must be positive");
    build_geometry(row);
    project(row);
    std::vector<MeshView> views;
    for (const auto& p : parts_) {
        if (p.triangles.empty())
            continue;
        MeshView m;
        m.screen = p.screen.data();
        m.vertex_count = p.vertex_count();
        m.color = p.shaded.data();
        m.label = p.label;
        m.cull = p.cull;
        if (p.texture == &skin_texture_) {
            // The face (textured, per-triangle labels, writes the UV image) then the shell.
            m.color = p.light.data();
            m.uv = p.uv.data();
            m.texture = p.texture;
            m.uv_visible = true;
            m.triangles = p.triangles.data();
            m.triangle_count = p.draw_triangle_end;
            m.labels = p.labels.data();
            views.push_back(m);
            MeshView shell;
            shell.screen = p.screen.data();
            shell.vertex_count = p.vertex_count();
            shell.color = p.shaded.data();
            shell.label = p.label;
            // Not culled: near the silhouette the first rings can fold behind the face's edge, and
            // a culled fold would open a slit to the background.
            shell.cull = Cull::none;
            shell.triangles = p.triangles.data() + 3 * p.draw_triangle_end;
            shell.triangle_count =
                static_cast<int64_t>(p.triangles.size() / 3) - p.draw_triangle_end;
            views.push_back(shell);
            continue;
        }
        if (p.texture) {
            m.color = p.light.data();
            m.uv = p.uv.data();
            m.texture = p.texture;
        }
        if (!p.labels.empty())
            m.labels = p.labels.data();
        m.triangles = p.triangles.data();
        m.triangle_count = static_cast<int64_t>(p.triangles.size() / 3);
        views.push_back(m);
    }
    RenderSettings settings;
    settings.width = options_.width;
    settings.height = options_.height;
    settings.supersample = options_.supersample;
    settings.perspective = options_.camera_distance_cm > 0.0f;
    settings.background = background_.data();
    rasterizer_.render(views, settings, out);
}

}  // namespace avatar::synth
