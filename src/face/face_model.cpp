#include "face/face_model.h"

#include <array>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "face/canonical_face.h"

namespace avatar::face {
namespace {

// Semantic vertex lists of MediaPipe's 468-point mesh (facts of the mesh topology), as tabulated
// in MESH_ANNOTATIONS of @vladmandic/human@3.3.6 src/face/facemeshcoords.ts (meshAnnotations:
// lips*, leftEye*/rightEye*, leftEyebrow*, silhouette, nose, cheeks). Only the subject's LEFT
// side (canonical x > 0) is listed; the right side is its mirror image (mirror map below).
const std::vector<int> kLipsUpperOuter = {185, 40, 39, 37, 0, 267, 269, 270, 409};
const std::vector<int> kLipsLowerOuter = {146, 91, 181, 84, 17, 314, 405, 321, 375};
const std::vector<int> kLipsUpperInner = {191, 80, 81, 82, 13, 312, 311, 310, 415};
const std::vector<int> kLipsLowerInner = {95, 88, 178, 87, 14, 317, 402, 318, 324};
const std::vector<int> kLipsUpperSemiOuter = {184, 74, 73, 72, 11, 302, 303, 304, 408};
const std::vector<int> kLipsLowerSemiOuter = {76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306};
// The rows between the inner and the semi-outer lip lines (not in MESH_ANNOTATIONS; found from
// the canonical face: each vertex lies between its neighbours of those two rows). Without them a
// mode that pins one lip leaves these vertices half free (e.g. jaw_open dragged the upper lip).
const std::vector<int> kLipsUpperSemiInner = {183, 42, 41, 38, 12, 268, 271, 272, 407};
const std::vector<int> kLipsLowerSemiInner = {96, 89, 179, 86, 15, 316, 403, 319, 325};
const std::vector<int> kLeftMouthCorner = {291, 308, 409, 375, 306, 292};
const std::vector<int> kLeftEyeUpper0 = {466, 388, 387, 386, 385, 384, 398};
const std::vector<int> kLeftEyeLower0 = {263, 249, 390, 373, 374, 380, 381, 382, 362};
const std::vector<int> kLeftEyeUpper1 = {467, 260, 259, 257, 258, 286, 414};
const std::vector<int> kLeftEyeLower1 = {359, 255, 339, 254, 253, 252, 256, 341, 463};
const std::vector<int> kLeftBrow = {383, 300, 293, 334, 296, 336, 285,
                                    417, 265, 353, 276, 283, 282, 295};
const std::vector<int> kLeftBrowInner = {336, 296, 285, 295, 282};
const std::vector<int> kLeftBrowOuter = {383, 300, 293, 265, 353, 276};
const std::vector<int> kJawLine = {361, 288, 397, 365, 379, 378, 400, 377, 152,
                                   148, 176, 149, 150, 136, 172, 58,  132};
const std::vector<int> kChin = {152, 148, 377, 176, 400};
const std::vector<int> kNose = {168, 6, 195, 4, 98, 97, 2, 326, 327, 1};
const std::vector<int> kNoseWings = {98, 327, 97, 326};
const std::vector<int> kCheeks = {205, 425};
const std::vector<int> kLeftCheek = {425};

std::vector<int> concat(std::initializer_list<std::vector<int>> lists) {
    std::vector<int> out;
    for (const auto& l : lists)
        out.insert(out.end(), l.begin(), l.end());
    return out;
}

using Mat3 = std::array<std::array<double, 3>, 3>;
using Vec3 = std::array<double, 3>;

constexpr Mat3 kZero = {{{0, 0, 0}, {0, 0, 0}, {0, 0, 0}}};

Mat3 scaling(double fx, double fy, double fz) {
    return {{{fx - 1, 0, 0}, {0, fy - 1, 0}, {0, 0, fz - 1}}};
}

// R_x(angle) - I: rotation about an axis parallel to x.
Mat3 rotation_x(double degrees) {
    const double a = degrees * M_PI / 180;
    return {{{0, 0, 0}, {0, std::cos(a) - 1, -std::sin(a)}, {0, std::sin(a), std::cos(a) - 1}}};
}

struct Component {
    std::vector<int> anchors;  // empty = the whole face (weight 1)
    double inner = 0, outer = 1;
    std::vector<int> pinned;
    double pin_radius = 0;
    int side = 0;           // +1 subject's left (x > 0), -1 right, 0 both
    bool mirrored = false;  // the field is reflected for x < 0
    Mat3 m = kZero;
    Vec3 c = {0, 0, 0};
    Vec3 t = {0, 0, 0};
};

struct Mode {
    std::string name;
    std::vector<Component> components;
};

Component region(std::vector<int> anchors, double inner, double outer) {
    Component c;
    c.anchors = std::move(anchors);
    c.inner = inner;
    c.outer = outer;
    return c;
}
Component pin(Component c, std::vector<int> pinned, double radius) {
    c.pinned = std::move(pinned);
    c.pin_radius = radius;
    return c;
}
Component translate(Component c, Vec3 t) {
    c.t = t;
    return c;
}
Component affine(Component c, Mat3 m, Vec3 centre) {
    c.m = m;
    c.c = centre;
    return c;
}
Component sided(Component c, int side) {
    c.side = side;
    return c;
}
Component mirrored(Component c) {
    c.mirrored = true;
    return c;
}

torch::Tensor smoothstep(double e0, double e1, const torch::Tensor& x) {
    const auto u = ((x - e0) / (e1 - e0)).clamp(0, 1);
    return u * u * (3 - 2 * u);
}

torch::Tensor min_distance(const torch::Tensor& v, const std::vector<int>& ids) {
    const auto idx = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
    return torch::cdist(v, v.index_select(0, idx)).amin(1);  // [468]
}

torch::Tensor to_tensor(const Mat3& m) {
    return torch::tensor(
               {m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2]},
               torch::kFloat64)
        .view({3, 3});
}
torch::Tensor to_tensor(const Vec3& v) {
    return torch::tensor({v[0], v[1], v[2]}, torch::kFloat64);
}

// Weight [468] and displacement [468, 3] of one component.
std::pair<torch::Tensor, torch::Tensor> evaluate(const Component& c, const torch::Tensor& v) {
    auto w = torch::ones({v.size(0)}, torch::kFloat64);
    if (!c.anchors.empty())
        w = 1 - smoothstep(c.inner, c.outer, min_distance(v, c.anchors));
    if (!c.pinned.empty())
        w = w * smoothstep(0, c.pin_radius, min_distance(v, c.pinned));
    if (c.side != 0)
        w = w * smoothstep(-0.3, 0.3, c.side * v.select(1, 0));
    auto local = v;
    auto sign = torch::ones({v.size(0)}, torch::kFloat64);
    if (c.mirrored) {
        sign = torch::where(v.select(1, 0) < 0, -sign, sign);
        local = v.clone();
        local.select(1, 0).mul_(sign);
    }
    auto d = (local - to_tensor(c.c)).matmul(to_tensor(c.m).t()) + to_tensor(c.t);
    if (c.mirrored)
        d.select(1, 0).mul_(sign);
    return {w, d * w.unsqueeze(1)};
}

// The mirror image of a component: x -> -x.
Component reflect(Component c, const std::vector<int64_t>& mirror) {
    for (auto& a : c.anchors)
        a = static_cast<int>(mirror[a]);
    for (auto& a : c.pinned)
        a = static_cast<int>(mirror[a]);
    c.side = -c.side;
    c.c[0] = -c.c[0];
    c.t[0] = -c.t[0];
    // S M S with S = diag(-1, 1, 1): negate row 0 and column 0 (the corner twice).
    for (int i = 0; i < 3; ++i) {
        c.m[0][i] = -c.m[0][i];
        c.m[i][0] = -c.m[i][0];
    }
    return c;
}

// Left mode -> (name_left, name_right) pair.
void add_pair(std::vector<Mode>& modes, const std::string& stem, std::vector<Component> left,
              const std::vector<int64_t>& mirror) {
    Mode l{stem + "_left", left};
    Mode r{stem + "_right", {}};
    for (const auto& c : left)
        r.components.push_back(reflect(c, mirror));
    modes.push_back(std::move(l));
    modes.push_back(std::move(r));
}

const Vec3 kMouthCentre = {0, -4.3, 5.0};
const Vec3 kLeftEyeCentre = {3.15, 2.62, 3.6};

std::vector<Mode> identity_modes(const std::vector<int64_t>& mirror) {
    auto lips = concat({kLipsUpperOuter, kLipsLowerOuter, kLeftMouthCorner});
    for (int v : kLeftMouthCorner)
        lips.push_back(static_cast<int>(mirror[v]));
    return {
        {"face_width", {affine(Component{}, scaling(1.08, 1, 1), {0, 0, 0})}},
        {"face_height", {affine(Component{}, scaling(1, 1.08, 1), {0, 0, 0})}},
        {"jaw_width", {affine(region(kJawLine, 1.0, 4.0), scaling(1.12, 1, 1), {0, 0, 0})}},
        {"chin", {translate(region(kChin, 0.8, 3.0), {0, -0.8, 0.3})}},
        {"cheeks", {affine(region(kCheeks, 1.0, 3.0), scaling(1.1, 1, 1.05), {0, -1.5, 0})}},
        {"nose_length",
         {affine(pin(region(kNose, 0.5, 1.5), kLipsUpperOuter, 1.0), scaling(1, 1.15, 1.1),
                 {0, 3.27, 3.0})}},
        {"nose_width", {affine(region(kNoseWings, 0.5, 1.8), scaling(1.2, 1, 1), {0, 0, 0})}},
        {"eye_size",
         {mirrored(affine(region(concat({kLeftEyeUpper0, kLeftEyeLower0}), 0.4, 1.4),
                          scaling(1.12, 1.15, 1), kLeftEyeCentre))}},
        {"eye_spacing",
         {mirrored(
             translate(region(concat({kLeftEyeUpper0, kLeftEyeLower0}), 0.8, 2.2), {0.3, 0, 0}))}},
        {"mouth_width", {affine(region(lips, 0.5, 2.0), scaling(1.15, 1, 1), kMouthCentre)}},
        {"lip_thickness",
         {affine(region(concat({kLipsUpperOuter, kLipsLowerOuter}), 0.3, 1.2),
                 scaling(1, 1.25, 1.05), kMouthCentre)}},
        {"brow_height",
         {mirrored(translate(pin(region(kLeftBrow, 0.5, 2.0), kLeftEyeUpper0, 0.8), {0, 0.5, 0}))}},
    };
}

std::vector<Mode> expression_modes(const std::vector<int64_t>& mirror) {
    const auto upper_lip =
        concat({kLipsUpperOuter, kLipsUpperInner, kLipsUpperSemiOuter, kLipsUpperSemiInner});
    const auto lower_lip =
        concat({kLipsLowerOuter, kLipsLowerInner, kLipsLowerSemiOuter, kLipsLowerSemiInner});
    const auto lips = concat({upper_lip, lower_lip, kLeftMouthCorner});
    std::vector<int> lips_both = lips;
    for (int v : kLeftMouthCorner)
        lips_both.push_back(static_cast<int>(mirror[v]));
    std::vector<Mode> modes;
    modes.push_back(
        {"jaw_open",
         {affine(pin(region(concat({lower_lip, kJawLine, kChin}), 0.5, 2.5), upper_lip, 0.5),
                 rotation_x(25), {0, 0.5, -2.5})}});
    modes.push_back({"mouth_close",
                     {translate(pin(region(upper_lip, 0.2, 1.2), lower_lip, 0.4), {0, -0.25, 0}),
                      translate(pin(region(lower_lip, 0.2, 1.2), upper_lip, 0.4), {0, 0.25, 0})}});
    add_pair(modes, "smile",
             {sided(translate(region(kLeftMouthCorner, 0.3, 2.5), {0.5, 0.6, -0.3}), 1)}, mirror);
    add_pair(modes, "frown",
             {sided(translate(region(kLeftMouthCorner, 0.3, 2.5), {0.1, -0.5, 0}), 1)}, mirror);
    modes.push_back({"pucker",
                     {affine(translate(region(lips_both, 0.8, 2.0), {0, 0, 0.5}),
                             scaling(0.75, 1, 1), kMouthCentre)}});
    modes.push_back(
        {"funnel",
         {affine(translate(pin(region(upper_lip, 0.3, 1.5), lower_lip, 0.4), {0, 0.25, 0.4}),
                 scaling(0.85, 1, 1), kMouthCentre),
          affine(translate(pin(region(lower_lip, 0.3, 1.5), upper_lip, 0.4), {0, -0.25, 0.4}),
                 scaling(0.85, 1, 1), kMouthCentre)}});
    add_pair(modes, "stretch",
             {sided(translate(region(kLeftMouthCorner, 0.3, 2.5), {0.5, -0.2, -0.2}), 1)}, mirror);
    modes.push_back(
        {"upper_lip_up",
         {translate(
             pin(region(concat({kLipsUpperOuter, kLipsUpperSemiOuter}), 0.3, 1.5), lower_lip, 0.5),
             {0, 0.4, 0.1})}});
    modes.push_back(
        {"lower_lip_down",
         {translate(
             pin(region(concat({kLipsLowerOuter, kLipsLowerSemiOuter}), 0.3, 1.5), upper_lip, 0.5),
             {0, -0.4, 0.1})}});
    modes.push_back(
        {"cheek_puff", {affine(region(kCheeks, 1.0, 3.0), scaling(1.12, 1, 1.1), {0, -2.0, 0})}});
    add_pair(
        modes, "blink",
        {pin(translate(region(kLeftEyeUpper0, 0.2, 1.0), {0, -0.6, 0.05}), kLeftEyeLower0, 0.3)},
        mirror);
    add_pair(modes, "eye_wide",
             {pin(translate(region(kLeftEyeUpper0, 0.2, 1.0), {0, 0.25, 0}), kLeftEyeLower0, 0.3)},
             mirror);
    {
        std::vector<int> inner = kLeftBrowInner;
        for (int v : kLeftBrowInner)
            inner.push_back(static_cast<int>(mirror[v]));
        std::vector<int> lids = kLeftEyeUpper0;
        for (int v : kLeftEyeUpper0)
            lids.push_back(static_cast<int>(mirror[v]));
        modes.push_back(
            {"brow_inner_up", {translate(pin(region(inner, 0.5, 2.0), lids, 0.6), {0, 0.5, 0})}});
    }
    add_pair(
        modes, "brow_down",
        {sided(translate(pin(region(kLeftBrow, 0.4, 1.6), kLeftEyeUpper0, 0.8), {-0.15, -0.4, 0}),
               1)},
        mirror);
    add_pair(
        modes, "brow_outer_up",
        {sided(translate(pin(region(kLeftBrowOuter, 0.4, 1.6), kLeftEyeUpper0, 0.8), {0, 0.5, 0}),
               1)},
        mirror);
    return modes;
}

std::pair<torch::Tensor, torch::Tensor> build(const std::vector<Mode>& modes,
                                              const torch::Tensor& v,
                                              const std::vector<int64_t>& mirror) {
    std::vector<torch::Tensor> bases, regions;
    for (const auto& mode : modes) {
        auto basis = torch::zeros_like(v);
        auto weight = torch::zeros({v.size(0)}, torch::kFloat64);
        for (auto c : mode.components) {
            if (c.mirrored) {  // a mirrored field acts on both sides: so do its anchors
                for (auto* ids : {&c.anchors, &c.pinned}) {
                    const size_t count = ids->size();
                    for (size_t i = 0; i < count; ++i)
                        ids->push_back(static_cast<int>(mirror[(*ids)[i]]));
                }
            }
            auto [w, d] = evaluate(c, v);
            basis += d;
            weight = torch::maximum(weight, w);
        }
        bases.push_back(basis);
        regions.push_back(weight);
    }
    return {torch::stack(bases), torch::stack(regions)};
}

std::vector<int64_t> mirror_map(const torch::Tensor& v) {
    const auto reflected = v * torch::tensor({-1.0, 1.0, 1.0}, torch::kFloat64);
    const auto nearest = torch::cdist(reflected, v).argmin(1).contiguous();
    return std::vector<int64_t>(nearest.data_ptr<int64_t>(),
                                nearest.data_ptr<int64_t>() + nearest.numel());
}

FaceModel make_model() {
    FaceModel m;
    m.mean = canonical_face().vertices.to(torch::kFloat64).contiguous();
    m.mirror = mirror_map(m.mean);
    const auto id = identity_modes(m.mirror);
    const auto ex = expression_modes(m.mirror);
    std::tie(m.identity_basis, m.identity_regions) = build(id, m.mean, m.mirror);
    std::tie(m.expression_basis, m.expression_regions) = build(ex, m.mean, m.mirror);
    for (const auto& mode : id)
        m.identity_names.push_back(mode.name);
    for (const auto& mode : ex)
        m.expression_names.push_back(mode.name);
    for (int v : concat({kLeftEyeUpper0, kLeftEyeLower0})) {
        m.eye_contours[0].push_back(v);
        m.eye_contours[1].push_back(m.mirror[static_cast<size_t>(v)]);
    }
    return m;
}

torch::Tensor blend(const torch::Tensor& coefficients, const torch::Tensor& basis,
                    const char* what) {
    const int64_t k = basis.size(0);
    avatar::check(
        coefficients.dim() >= 1 && coefficients.dim() <= 2 && coefficients.size(-1) == k,
        "face_model",
        std::string(what) + " coefficients must be [K] or [B, K] with K = " + std::to_string(k));
    const auto b = basis.to(coefficients.options()).reshape({k, -1});
    return coefficients.matmul(b);  // [..., 1404]
}

}  // namespace

torch::Tensor FaceModel::vertices(const torch::Tensor& identity,
                                  const torch::Tensor& expression) const {
    const auto& ref = identity.defined() ? identity : expression;
    const auto opts = ref.defined() ? ref.options() : mean.options();
    auto flat = mean.to(opts).reshape({-1});
    bool batched = false;
    int64_t batch = 1;
    for (const auto* t : {&identity, &expression})
        if (t->defined() && t->dim() == 2) {
            avatar::check(!batched || t->size(0) == batch, "face_model",
                          "identity and expression batch sizes differ");
            batched = true;
            batch = t->size(0);
        }
    torch::Tensor out = flat;
    if (identity.defined())
        out = out + blend(identity, identity_basis, "identity");
    if (expression.defined())
        out = out + blend(expression, expression_basis, "expression");
    if (batched)
        return out.expand({batch, flat.size(0)}).reshape({batch, -1, 3});
    return out.reshape({-1, 3});
}

const FaceModel& face_model() {
    static std::mutex mutex;
    static std::unique_ptr<FaceModel> model;
    std::lock_guard<std::mutex> lock(mutex);
    if (!model)
        model = std::make_unique<FaceModel>(make_model());
    return *model;
}

const std::vector<std::string>& identity_mode_names() {
    return face_model().identity_names;
}
const std::vector<std::string>& expression_mode_names() {
    return face_model().expression_names;
}

torch::Tensor euler_rad_to_rotation(const torch::Tensor& pyr) {
    const auto p = pyr.select(-1, 0), y = pyr.select(-1, 1), r = pyr.select(-1, 2);
    const auto o = torch::ones_like(p), z = torch::zeros_like(p);
    const auto mat = [](std::initializer_list<torch::Tensor> e) {
        auto s = torch::stack(std::vector<torch::Tensor>(e), -1);
        auto sizes = s.sizes().vec();
        sizes.pop_back();
        sizes.push_back(3);
        sizes.push_back(3);
        return s.reshape(sizes);
    };
    const auto cp = torch::cos(p), sp = torch::sin(p), cy = torch::cos(y), sy = torch::sin(y);
    const auto cr = torch::cos(r), sr = torch::sin(r);
    const auto rx = mat({o, z, z, z, cp, -sp, z, sp, cp});
    const auto ry = mat({cy, z, sy, z, o, z, -sy, z, cy});
    const auto rz = mat({cr, -sr, z, sr, cr, z, z, z, o});
    return ry.matmul(rx).matmul(rz);
}

int64_t face_layout_size() {
    const auto& m = face_model();
    return kPoseSize + m.identity_count() + m.expression_count() + kGazeSize;
}

torch::Tensor pack_face_coefficients(const FaceCoefficients& c) {
    const auto& m = face_model();
    avatar::check(
        c.pose.defined() && c.identity.defined() && c.expression.defined() && c.gaze.defined(),
        "avatar-face-v1", "every part of the coefficients must be given");
    avatar::check(c.pose.size(-1) == kPoseSize && c.identity.size(-1) == m.identity_count() &&
                      c.expression.size(-1) == m.expression_count() && c.gaze.size(-1) == kGazeSize,
                  "avatar-face-v1", "a part has the wrong width");
    return torch::cat({c.pose, c.identity, c.expression, c.gaze}, -1);
}

FaceCoefficients unpack_face_coefficients(const torch::Tensor& rows) {
    const auto& m = face_model();
    avatar::check(rows.defined() && rows.dim() >= 1 && rows.size(-1) == face_layout_size(),
                  "avatar-face-v1",
                  "rows must have " + std::to_string(face_layout_size()) + " columns");
    const int64_t k = m.identity_count(), e = m.expression_count();
    FaceCoefficients c;
    c.pose = rows.narrow(-1, 0, kPoseSize);
    c.identity = rows.narrow(-1, kPoseSize, k);
    c.expression = rows.narrow(-1, kPoseSize + k, e);
    c.gaze = rows.narrow(-1, kPoseSize + k + e, kGazeSize);
    return c;
}

}  // namespace avatar::face
