#include "face/retarget.h"

#include <sstream>

#include "core/error.h"
#include "face/head_pose.h"

namespace avatar::face {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

// The region of one expression mode, from its name (face_model.h's naming scheme).
unsigned region_of_mode(const std::string& name) {
    if (starts_with(name, "blink_") || starts_with(name, "eye_wide_"))
        return kRegionEyes;
    if (starts_with(name, "brow_"))
        return kRegionBrows;
    return kRegionMouth;
}

torch::Tensor pitch_yaw_roll(const torch::Tensor& rotation) {
    const auto ypr = rotation_to_euler_deg(rotation) * (M_PI / 180);  // (yaw, pitch, roll)
    return torch::stack({ypr.select(1, 1), ypr.select(1, 0), ypr.select(1, 2)}, 1);
}

torch::Tensor rows_of(const torch::Tensor& t, int64_t rows, int64_t width, const char* what) {
    avatar::check(
        t.defined() && t.dim() == 2 && t.size(1) == width && (t.size(0) == 1 || t.size(0) == rows),
        "retarget_motion",
        std::string("source ") + what + " must be [1 or T, " + std::to_string(width) +
            "] with T = " + std::to_string(rows) + " driving frames");
    return t.to(torch::kFloat64).expand({rows, width});
}

}  // namespace

unsigned parse_motion_regions(const std::string& text) {
    unsigned regions = 0;
    std::stringstream list(text);
    std::string word;
    while (std::getline(list, word, ',')) {
        if (word == "all")
            regions |= kRegionAll;
        else if (word == "pose")
            regions |= kRegionPose;
        else if (word == "expression")
            regions |= kRegionExpression;
        else if (word == "eyes")
            regions |= kRegionEyes;
        else if (word == "brows")
            regions |= kRegionBrows;
        else if (word == "mouth" || word == "lips")
            regions |= kRegionMouth;
        else
            throw Error("regions", "unknown region '" + word +
                                       "' (all, pose, expression, eyes, brows, mouth/lips, or a "
                                       "comma-separated list)");
    }
    avatar::check(regions != 0, "regions", "no region given");
    return regions;
}

torch::Tensor expression_modes_of(unsigned regions) {
    const auto& names = face_model().expression_names;
    auto mask = torch::zeros({static_cast<int64_t>(names.size())}, torch::kBool);
    for (size_t i = 0; i < names.size(); ++i)
        mask[static_cast<int64_t>(i)] = (region_of_mode(names[i]) & regions) != 0;
    return mask;
}

FaceCoefficients retarget_motion(const FaceCoefficients& source, const FaceCoefficients& driving,
                                 const RetargetOptions& options) {
    const auto& model = face_model();
    const int64_t e = model.expression_count(), k = model.identity_count();
    avatar::check(driving.pose.defined() && driving.pose.dim() == 2 &&
                      driving.pose.size(1) == kPoseSize && driving.pose.size(0) > 0,
                  "retarget_motion", "driving pose must be [T, 7] with T > 0");
    const int64_t t = driving.pose.size(0);
    avatar::check(driving.expression.defined() && driving.expression.dim() == 2 &&
                      driving.expression.size(0) == t && driving.expression.size(1) == e,
                  "retarget_motion", "driving expression must be [T, " + std::to_string(e) + "]");
    avatar::check(options.strength >= 0, "retarget_motion", "strength must be >= 0");
    avatar::check(options.reference_frame >= 0 && options.reference_frame < t, "retarget_motion",
                  "the reference frame " + std::to_string(options.reference_frame) +
                      " is outside the driving video's " + std::to_string(t) + " frames");
    torch::NoGradGuard no_grad;
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

    const auto src_pose = rows_of(source.pose, t, kPoseSize, "pose");
    const auto src_exp = rows_of(source.expression, t, e, "expression");
    const auto src_gaze = source.gaze.defined() ? rows_of(source.gaze, t, kGazeSize, "gaze")
                                                : torch::zeros({t, kGazeSize}, f64);
    avatar::check(source.identity.defined() && source.identity.size(-1) == k, "retarget_motion",
                  "source identity must be [K] or [S, K] with K = " + std::to_string(k));
    const auto identity = source.identity.dim() == 1
                              ? source.identity.to(torch::kFloat64).unsqueeze(0).expand({t, k})
                              : rows_of(source.identity, t, k, "identity");

    auto drv_pose = driving.pose.to(torch::kFloat64);
    auto drv_exp = driving.expression.to(torch::kFloat64);
    auto drv_gaze = driving.gaze.defined() ? driving.gaze.to(torch::kFloat64) : src_gaze.clone();
    avatar::check(drv_gaze.dim() == 2 && drv_gaze.size(0) == t && drv_gaze.size(1) == kGazeSize,
                  "retarget_motion", "driving gaze must be [T, 4]");
    // A driving frame without a face (NaN) moves nothing: it gives the source's row.
    const auto valid = drv_pose.isfinite().all(1) & drv_exp.isfinite().all(1);  // [T]
    const int64_t ref = options.reference_frame;
    avatar::check(valid[ref].item<bool>(), "retarget_motion",
                  "the driving reference frame " + std::to_string(ref) + " has no face");
    const auto gaze_valid = drv_gaze.isfinite().all(1);

    if (options.renormalise) {
        avatar::check(source.expression.size(0) > 1, "retarget_motion",
                      "renormalisation needs the expression statistics of a source video, not a "
                      "single frame");
        const auto src_rows = source.expression.to(torch::kFloat64);
        const auto src_ok = src_rows.isfinite().all(1);
        const auto s = src_rows.index({src_ok});
        const auto d = drv_exp.index({valid});
        avatar::check(s.size(0) > 1 && d.size(0) > 1, "retarget_motion",
                      "renormalisation needs at least two frames with a face on each side");
        const auto scale = s.std(0) / d.std(0).clamp_min(options.min_std);
        drv_exp = ((drv_exp - d.mean(0)) * scale + s.mean(0)).clamp(0, 1);
    }

    // Invalid driving rows are replaced by the reference row, i.e. "no change".
    drv_pose = torch::where(valid.unsqueeze(1), drv_pose, drv_pose[ref]);
    drv_exp = torch::where(valid.unsqueeze(1), drv_exp, drv_exp[ref]);
    const double s = options.strength;
    const auto src_r = euler_rad_to_rotation(src_pose.narrow(1, 0, 3));
    const auto drv_r = euler_rad_to_rotation(drv_pose.narrow(1, 0, 3));

    FaceCoefficients out;
    out.identity = identity.clone();
    torch::Tensor expression, rotation, translation, scale, gaze;
    if (options.relative) {
        expression = src_exp + s * (drv_exp - drv_exp[ref]);
        const auto delta = drv_r.matmul(drv_r[ref].transpose(0, 1));
        rotation = rotation_from_vector(s * rotation_vector(delta)).matmul(src_r);
        const auto px = src_pose.select(1, 6) / drv_pose[ref][6];  // source px per driving px
        translation =
            src_pose.narrow(1, 3, 3) +
            s * (drv_pose.narrow(1, 3, 3) - drv_pose[ref].narrow(0, 3, 3)) * px.unsqueeze(1);
        scale = src_pose.select(1, 6) * torch::pow(drv_pose.select(1, 6) / drv_pose[ref][6], s);
        const auto g_ref = gaze_valid[ref].item<bool>() ? drv_gaze[ref] : torch::zeros({4}, f64);
        gaze = src_gaze + s * (drv_gaze - g_ref);
    } else {
        expression = src_exp + s * (drv_exp - src_exp);
        rotation = rotation_from_vector(s * rotation_vector(drv_r.matmul(src_r.transpose(1, 2))))
                       .matmul(src_r);
        translation = src_pose.narrow(1, 3, 3);
        scale = src_pose.select(1, 6);
        gaze = src_gaze + s * (drv_gaze - src_gaze);
    }
    expression = expression.clamp(0, 1);
    gaze = torch::where(gaze_valid.unsqueeze(1), gaze, src_gaze);

    // Regions: what is not selected stays the source's; invalid driving rows are the source's.
    const auto modes = expression_modes_of(options.regions).unsqueeze(0) & valid.unsqueeze(1);
    out.expression = torch::where(modes, expression, src_exp);
    auto pose = torch::cat({pitch_yaw_roll(rotation), translation, scale.unsqueeze(1)}, 1);
    const bool move_pose = (options.regions & kRegionPose) != 0;
    out.pose = move_pose ? torch::where(valid.unsqueeze(1), pose, src_pose) : src_pose.clone();
    const bool move_eyes = (options.regions & kRegionEyes) != 0;
    out.gaze = move_eyes ? torch::where(valid.unsqueeze(1), gaze, src_gaze) : src_gaze.clone();
    return out;
}

}  // namespace avatar::face
