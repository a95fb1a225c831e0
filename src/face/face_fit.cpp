#include "face/face_fit.h"

#include <limits>

#include "core/error.h"
#include "core/threads.h"
#include "face/eye_model.h"
#include "face/face_model.h"
#include "face/head_pose.h"

namespace avatar::face {

torch::Tensor project_face(const torch::Tensor& pose, const torch::Tensor& identity,
                           const torch::Tensor& expression) {
    avatar::check(pose.dim() == 2 && pose.size(1) == kPoseSize, "project_face",
                  "pose must be [N, 7]");
    const int64_t n = pose.size(0);
    auto id = identity;
    if (id.defined() && id.dim() == 1)
        id = id.unsqueeze(0).expand({n, id.size(0)});
    const auto v = face_model().vertices(id, expression);  // [N, 468, 3]
    const auto r = euler_rad_to_rotation(pose.narrow(1, 0, 3));
    const auto flip = torch::tensor({1.0, -1.0, -1.0}, pose.options());
    const auto s = pose.select(1, 6).view({n, 1, 1});
    return s * v.matmul(r.transpose(1, 2)) * flip + pose.narrow(1, 3, 3).unsqueeze(1);
}

namespace {

// What one fit is given: target points of a subset of the model's vertices with per-coordinate
// weights, and a starting pose per frame.
struct FitProblem {
    torch::Tensor points;         // float64 [N, V, 3] image coordinates
    torch::Tensor vertex_ids;     // int64 [V] model vertices of the points; undefined = all 468
    torch::Tensor point_weights;  // float64 [V, 3] weight of each coordinate's residual
    torch::Tensor rotation;       // float64 [N, 3, 3] start, pose frame
    torch::Tensor translation;    // float64 [N, 3]
    torch::Tensor scale;          // float64 [N]
};

FaceFitResult solve(const FitProblem& problem, const FaceFitOptions& options,
                    const torch::Tensor& initial_identity) {
    const auto& points = problem.points;
    const auto& model = face_model();
    const int64_t n = points.size(0), k = model.identity_count(), e = model.expression_count();
    const int64_t v_count = points.size(1), rows = v_count * 3;
    const int64_t p = 7 + e;  // per frame: translation 3, scale 1, rotation 3, expression E
    const bool fit_id = options.fit_identity;
    const bool subset = problem.vertex_ids.defined();
    torch::NoGradGuard no_grad;
    // Small tensors: one thread is as fast as two and immune to OpenMP spinning (threads.h).
    const SingleThreadScope single_thread;
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

    auto rotation = problem.rotation.clone();
    auto translation = problem.translation.clone();
    auto scale = problem.scale.clone();
    const auto s0 = scale.clone();
    auto identity = initial_identity.defined() ? initial_identity.to(torch::kFloat64).view({k})
                                               : torch::zeros({k}, f64);
    auto expression = torch::zeros({n, e}, f64);
    const auto select_vertices = [&](const torch::Tensor& t) {  // [..., 468, 3] -> [..., V, 3]
        return subset ? t.index_select(-2, problem.vertex_ids) : t;
    };

    const auto flip = torch::tensor({1.0, -1.0, -1.0}, f64);
    // Row weights: the point weights / s0, so residuals are in cm.
    const auto row_w =
        (problem.point_weights.view({1, v_count, 3}) / s0.view({n, 1, 1})).reshape({n, rows});
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    const auto row_w32 = row_w.to(f32);
    const auto b_exp32 = select_vertices(model.expression_basis).to(f32);  // [E, V, 3]
    const auto b_id32 = select_vertices(model.identity_basis).to(f32);     // [K, V, 3]

    const auto residual_of = [&](const torch::Tensor& r, const torch::Tensor& t,
                                 const torch::Tensor& s, const torch::Tensor& id,
                                 const torch::Tensor& ex) {
        const auto v = select_vertices(model.vertices(id.unsqueeze(0).expand({n, k}), ex));
        const auto x = s.view({n, 1, 1}) * v.matmul(r.transpose(1, 2)) * flip + t.unsqueeze(1);
        return std::make_pair(((x - points).reshape({n, rows}) * row_w), v);
    };
    const auto cost_of = [&](const torch::Tensor& res, const torch::Tensor& id,
                             const torch::Tensor& ex) {
        auto c = res.square().sum(1) + options.expression_prior * ex.square().sum(1);  // [N]
        if (options.smoothness > 0 && n > 1) {
            const auto d = (ex.narrow(0, 1, n - 1) - ex.narrow(0, 0, n - 1)).square().sum(1);
            c = c + options.smoothness * torch::cat({d, torch::zeros({1}, f64)});
        }
        auto total = c.sum();
        if (fit_id)
            total = total + options.identity_prior * id.square().sum();
        return total.item<double>();
    };

    auto [res, verts] = residual_of(rotation, translation, scale, identity, expression);
    double cost = cost_of(res, identity, expression);
    double lambda = 1e-4;
    const auto eye_p = torch::eye(p, f64).unsqueeze(0);
    int rejected = 0;
    for (int it = 0; it < options.iterations; ++it) {
        // Jacobian of the weighted residual, per frame [N, rows, P] (+ identity [N, rows, K]).
        // Built in float32 (several times faster; the steps are iterated to float64 residuals).
        const auto rot32 = rotation.to(f32);
        const auto sfr = (scale.view({n, 1, 1}) * rotation * flip.view({1, 3, 1})).to(f32);
        const auto v32 = verts.to(f32);
        const auto jt = torch::eye(3, f32).view({1, 1, 3, 3}).expand({n, v_count, 3, 3});
        const auto js = v32.matmul(rot32.transpose(1, 2)) * flip.to(f32);  // F R v
        const auto vx = v32.select(2, 0), vy = v32.select(2, 1), vz = v32.select(2, 2);
        const auto zero = torch::zeros_like(vx);
        // e_j x v for j = x, y, z: [N, 468, 3(j), 3]
        const auto cross =
            torch::stack({torch::stack({zero, -vz, vy}, 2), torch::stack({vz, zero, -vx}, 2),
                          torch::stack({-vy, vx, zero}, 2)},
                         2);
        const auto jw = cross.matmul(sfr.transpose(1, 2).unsqueeze(1));  // [N, 468, 3(j), 3]
        const auto je =
            b_exp32.unsqueeze(0).matmul(sfr.transpose(1, 2).unsqueeze(1));  // [N,E,468,3]
        auto j = torch::cat({jt.transpose(2, 3), js.unsqueeze(3), jw.transpose(2, 3),
                             je.permute({0, 2, 3, 1})},
                            3)
                     .reshape({n, rows, p}) *
                 row_w32.unsqueeze(2);
        auto a = j.transpose(1, 2).matmul(j).to(torch::kFloat64);  // [N, P, P]
        auto g = j.transpose(1, 2)
                     .matmul(res.to(f32).unsqueeze(2))
                     .squeeze(2)
                     .to(torch::kFloat64);  // [N, P]
        // Expression prior and smoothness (the latter as a diagonal approximation + its
        // gradient).
        auto prior_diag = torch::zeros({p}, f64);
        prior_diag.narrow(0, 7, e).fill_(options.expression_prior);
        a = a + torch::diag(prior_diag).unsqueeze(0);
        g.narrow(1, 7, e).add_(options.expression_prior * expression);
        if (options.smoothness > 0 && n > 1) {
            auto grad = torch::zeros_like(expression);
            const auto d = expression.narrow(0, 1, n - 1) - expression.narrow(0, 0, n - 1);
            grad.narrow(0, 1, n - 1).add_(d);
            grad.narrow(0, 0, n - 1).sub_(d);
            g.narrow(1, 7, e).add_(options.smoothness * grad);
            a.narrow(1, 7, e).narrow(2, 7, e).add_(2 * options.smoothness * torch::eye(e, f64));
        }
        // Projected Gauss-Newton: expressions at a bound whose gradient pushes them outward are
        // held (their rows and columns are replaced by the identity, their gradient by 0).
        auto free = torch::ones({n, p}, f64);
        {
            const auto ge = g.narrow(1, 7, e);
            const auto held = ((expression <= 0) & (ge > 0)) | ((expression >= 1) & (ge < 0));
            free.narrow(1, 7, e).masked_fill_(held, 0.0);
        }
        a = a * free.unsqueeze(2) * free.unsqueeze(1) + torch::diag_embed(1 - free);
        g = g * free;
        const auto damp = [&](const torch::Tensor& m) {
            return m + lambda * torch::diag_embed(m.diagonal(0, -2, -1) + 1e-9);
        };
        torch::Tensor d_frame, d_id;
        if (fit_id) {
            const auto jid = b_id32.unsqueeze(0)
                                 .matmul(sfr.transpose(1, 2).unsqueeze(1))
                                 .permute({0, 2, 3, 1})
                                 .reshape({n, rows, k}) *
                             row_w32.unsqueeze(2);
            const auto a_fi =
                j.transpose(1, 2).matmul(jid).to(torch::kFloat64) * free.unsqueeze(2);  // [N,P,K]
            const auto a_ii = jid.transpose(1, 2).matmul(jid).sum(0).to(torch::kFloat64) +
                              options.identity_prior * torch::eye(k, f64);  // [K, K]
            const auto g_i = jid.transpose(1, 2)
                                 .matmul(res.to(f32).unsqueeze(2))
                                 .squeeze(2)
                                 .sum(0)
                                 .to(torch::kFloat64) +
                             options.identity_prior * identity;
            const auto a_ff = damp(a);
            const auto inv_afi = torch::linalg_solve(a_ff, a_fi);          // [N, P, K]
            const auto inv_g = torch::linalg_solve(a_ff, g.unsqueeze(2));  // [N, P, 1]
            const auto schur = damp(a_ii) - a_fi.transpose(1, 2).matmul(inv_afi).sum(0);
            const auto rhs = g_i - a_fi.transpose(1, 2).matmul(inv_g).sum(0).squeeze(1);
            d_id = -torch::linalg_solve(schur, rhs.unsqueeze(1)).squeeze(1);
            d_frame = -(inv_g + inv_afi.matmul(d_id.view({1, k, 1}).expand({n, k, 1}))).squeeze(2);
        } else {
            d_frame = -torch::linalg_solve(damp(a), g.unsqueeze(2)).squeeze(2);
        }
        const auto new_t = translation + d_frame.narrow(1, 0, 3);
        const auto new_s = scale + d_frame.select(1, 3);
        const auto new_r = rotation.matmul(rotation_from_vector(d_frame.narrow(1, 4, 3)));
        const auto new_e = (expression + d_frame.narrow(1, 7, e)).clamp(0, 1);
        const auto new_id = fit_id ? identity + d_id : identity;
        auto [new_res, new_verts] = residual_of(new_r, new_t, new_s, new_id, new_e);
        const double new_cost = cost_of(new_res, new_id, new_e);
        if (new_cost <= cost) {
            // Converged: the cost fell by less than 1e-4 of itself (or of 1e-4 cm^2 per frame).
            const bool converged =
                cost - new_cost < 1e-4 * std::max(cost, 1e-4 * static_cast<double>(n));
            rejected = 0;
            rotation = new_r;
            translation = new_t;
            scale = new_s;
            expression = new_e;
            identity = new_id;
            res = new_res;
            verts = new_verts;
            cost = new_cost;
            lambda = std::max(lambda / 3, 1e-9);
            if (converged)
                break;
        } else {
            lambda *= 10;
            if (++rejected == 3)
                break;  // no step helps: at the minimum up to rounding
        }
    }

    FaceFitResult result;
    const auto ypr = rotation_to_euler_deg(rotation) * (M_PI / 180);  // (yaw, pitch, roll)
    result.pose = torch::cat({ypr.select(1, 1).unsqueeze(1), ypr.select(1, 0).unsqueeze(1),
                              ypr.select(1, 2).unsqueeze(1), translation, scale.unsqueeze(1)},
                             1);
    result.identity = identity.clone();
    result.expression = expression;
    const auto pred =
        select_vertices(project_face(result.pose, result.identity, result.expression));
    result.rms = (pred - points).narrow(2, 0, 2).square().sum(2).mean(1).sqrt();
    return result;
}

}  // namespace

FaceFitResult fit_face_mesh468(const torch::Tensor& points_in, const FaceFitOptions& options,
                               const torch::Tensor& initial_identity) {
    auto points = points_in.to(torch::kFloat64);
    if (points.dim() == 2)
        points = points.unsqueeze(0);
    avatar::check(points.dim() == 3 && points.size(1) == 468 && points.size(2) == 3,
                  "fit_face_mesh468", "points must be [N, 468, 3] or [468, 3]");
    avatar::check(points.isfinite().all().item<bool>(), "fit_face_mesh468",
                  "points must be finite");
    FitProblem problem;
    problem.points = points;
    problem.point_weights =
        torch::tensor({1.0, 1.0, options.z_weight}, torch::kFloat64).view({1, 3}).repeat({468, 1});
    // Start: the canonical face's Procrustes pose.
    const auto hp = head_pose_from_mesh468(points);
    problem.rotation = hp.rotation.to(torch::kFloat64);
    problem.translation = hp.translation.to(torch::kFloat64);
    problem.scale = hp.scale.to(torch::kFloat64).reshape({points.size(0)});
    return solve(problem, options, initial_identity);
}

FaceFitResult fit_face_landmarks68(const torch::Tensor& points_in, const FaceFitOptions& options,
                                   const torch::Tensor& initial_identity) {
    auto points = points_in.to(torch::kFloat64);
    if (points.dim() == 2)
        points = points.unsqueeze(0);
    avatar::check(points.dim() == 3 && points.size(1) == 68 && points.size(2) == 2,
                  "fit_face_landmarks68", "points must be [N, 68, 2] or [68, 2]");
    avatar::check(points.isfinite().all().item<bool>(), "fit_face_landmarks68",
                  "points must be finite");
    const int64_t n = points.size(0);
    FitProblem problem;
    // z is unknown: a zero target with zero weight.
    problem.points = torch::cat({points, torch::zeros({n, 68, 1}, torch::kFloat64)}, 2);
    problem.vertex_ids = torch::tensor(
        std::vector<int64_t>(kMesh468Of68.begin(), kMesh468Of68.end()), torch::kInt64);
    auto weights = torch::tensor({1.0, 1.0, 0.0}, torch::kFloat64).view({1, 3}).repeat({68, 1});
    weights.narrow(0, 0, 17).mul_(options.jaw_weight);
    problem.point_weights = weights;
    Pose68Options pose_options;
    pose_options.jaw_weight = options.jaw_weight;
    std::vector<torch::Tensor> rotations, translations, scales;
    for (int64_t i = 0; i < n; ++i) {
        const auto hp = head_pose_from_landmarks68(points[i], pose_options);
        rotations.push_back(hp.rotation.to(torch::kFloat64));
        translations.push_back(hp.translation.to(torch::kFloat64));
        scales.push_back(hp.scale.to(torch::kFloat64).reshape({}));
    }
    problem.rotation = torch::stack(rotations);
    problem.translation = torch::stack(translations);
    problem.scale = torch::stack(scales);
    return solve(problem, options, initial_identity);
}

torch::Tensor fit_gaze(const torch::Tensor& iris_in, const torch::Tensor& pose_in,
                       const torch::Tensor& identity, double prior) {
    avatar::check(iris_in.dim() == 3 && iris_in.size(1) == 2 && iris_in.size(2) == 2, "fit_gaze",
                  "iris centres must be [N, 2, 2]");
    avatar::check(
        pose_in.dim() == 2 && pose_in.size(1) == kPoseSize && pose_in.size(0) == iris_in.size(0),
        "fit_gaze", "pose must be [N, 7] with the iris centres' N");
    torch::NoGradGuard no_grad;
    const SingleThreadScope single_thread;  // small tensors (threads.h)
    const int64_t n = iris_in.size(0);
    const auto valid = iris_in.isfinite().flatten(1).all(1) & pose_in.isfinite().all(1);  // [N]
    // Invalid rows are solved on a harmless stand-in (a frontal pose, the eye centres) and set
    // to NaN at the end, so the batch stays one tensor computation.
    const auto frontal = torch::tensor({0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0}, torch::kFloat64);
    const auto pose = torch::where(valid.unsqueeze(1), pose_in.to(torch::kFloat64), frontal);
    const auto rotation = euler_rad_to_rotation(pose.narrow(1, 0, 3));  // [N, 3, 3]
    const auto scale = pose.select(1, 6).view({n, 1, 1});
    const auto translation = pose.narrow(1, 3, 2).unsqueeze(1);                       // [N, 1, 2]
    const auto centres = eyeball_centres(identity.to(torch::kFloat64)).unsqueeze(0);  // [1, 2, 3]
    const double radius = eyeball_radii(identity.to(torch::kFloat64)).item<double>();
    const auto flip = torch::tensor({1.0, -1.0}, torch::kFloat64);
    // The 2D image of a model-frame vector u: F(sRu) restricted to x, y = s * (Ru)_xy * (1, -1).
    const auto image_of = [&](const torch::Tensor& u) {  // [N, 2, 3] -> [N, 2, 2]
        return scale * u.matmul(rotation.transpose(1, 2)).narrow(2, 0, 2) * flip;
    };
    auto target = torch::where(valid.view({n, 1, 1}), iris_in.to(torch::kFloat64),
                               image_of(centres.expand({n, 2, 3})) + translation);
    // Residual in cm: (image_of(c + r g) + t - observed) / s.
    auto angles = torch::zeros({n, 2, 2}, torch::kFloat64);  // (pitch, yaw) per eye
    for (int it = 0; it < 10; ++it) {
        const auto p = angles.select(2, 0), y = angles.select(2, 1);
        const auto cp = torch::cos(p), sp = torch::sin(p), cy = torch::cos(y), sy = torch::sin(y);
        const auto g = torch::stack({sy * cp, -sp, cy * cp}, 2);        // [N, 2, 3]
        const auto dg_dp = torch::stack({-sy * sp, -cp, -cy * sp}, 2);  // [N, 2, 3]
        const auto dg_dy = torch::stack({cy * cp, torch::zeros_like(cp), -sy * cp}, 2);
        const auto r = (image_of(centres + radius * g) + translation - target) / scale;
        const auto jp = image_of(radius * dg_dp) / scale;  // [N, 2, 2]: d r / d pitch
        const auto jy = image_of(radius * dg_dy) / scale;
        // Gauss-Newton on |r|^2 + prior * |angles|^2, per eye.
        const auto j = torch::stack({jp, jy}, 3);  // [N,2,2,2]
        const auto a = j.transpose(2, 3).matmul(j) + prior * torch::eye(2, torch::kFloat64);
        const auto b = j.transpose(2, 3).matmul(r.unsqueeze(3)).squeeze(3) + prior * angles;
        const auto step = -torch::linalg_solve(a, b.unsqueeze(3)).squeeze(3);
        angles = (angles + step).clamp(-1.2, 1.2);  // beyond ~70 degrees an eye is not a ball
        if (step.abs().max().item<double>() < 1e-9)
            break;
    }
    auto gaze = angles.reshape({n, 4});
    return torch::where(
        valid.unsqueeze(1), gaze,
        torch::full({1}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64));
}

SequenceFit fit_face_sequence(const torch::Tensor& mesh_in, const torch::Tensor& found_in,
                              const torch::Tensor& iris_in, const SequenceFitOptions& options) {
    avatar::check(mesh_in.dim() == 3 && mesh_in.size(1) == 468 && mesh_in.size(2) == 3,
                  "fit_face_sequence", "mesh must be [N, 468, 3]");
    const int64_t n = mesh_in.size(0);
    avatar::check(found_in.dim() == 1 && found_in.size(0) == n, "fit_face_sequence",
                  "found must be [N] with the mesh's N");
    avatar::check(!iris_in.defined() || (iris_in.dim() == 3 && iris_in.size(0) == n &&
                                         iris_in.size(1) == 10 && iris_in.size(2) >= 2),
                  "fit_face_sequence", "iris must be [N, 10, 2 or 3]");
    avatar::check(options.identity_frames > 0 && options.chunk_frames > 0, "fit_face_sequence",
                  "identity_frames and chunk_frames must be positive");
    const auto found = found_in.to(torch::kBool);
    const auto rows = found.nonzero().view({-1});  // frames with a face
    const int64_t m = rows.size(0);
    avatar::check(m > 0, "fit_face_sequence", "no frame has a face");
    const auto mesh = mesh_in.to(torch::kFloat64).index_select(0, rows);

    // Identity from frames spread evenly over the video.
    const int64_t id_count = std::min(m, options.identity_frames);
    const auto id_rows = torch::linspace(0, static_cast<double>(m - 1), id_count, torch::kFloat64)
                             .round()
                             .to(torch::kInt64);
    FaceFitOptions id_options = options.fit;
    id_options.fit_identity = true;
    id_options.smoothness = 0;  // the sample frames are not consecutive
    const auto identity = fit_face_mesh468(mesh.index_select(0, id_rows), id_options).identity;

    FaceFitOptions frame_options = options.fit;
    frame_options.fit_identity = false;
    std::vector<torch::Tensor> poses, expressions, rms;
    for (int64_t begin = 0; begin < m; begin += options.chunk_frames) {
        const int64_t len = std::min(options.chunk_frames, m - begin);
        const auto fit = fit_face_mesh468(mesh.narrow(0, begin, len), frame_options, identity);
        poses.push_back(fit.pose);
        expressions.push_back(fit.expression);
        rms.push_back(fit.rms);
    }
    const auto nan = std::numeric_limits<double>::quiet_NaN();
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    const auto& model = face_model();
    SequenceFit out;
    out.identity = identity;
    out.pose = torch::full({n, kPoseSize}, nan, f64).index_copy_(0, rows, torch::cat(poses));
    out.expression = torch::full({n, model.expression_count()}, nan, f64)
                         .index_copy_(0, rows, torch::cat(expressions));
    out.rms = torch::full({n}, nan, f64).index_copy_(0, rows, torch::cat(rms));
    out.gaze = torch::full({n, kGazeSize}, nan, f64);
    if (iris_in.defined()) {
        // Rows 0 and 5: the left and right iris centres (FaceTracker's layout).
        const auto centres = iris_in.to(torch::kFloat64)
                                 .index_select(0, rows)
                                 .index_select(1, torch::tensor({0, 5}, torch::kInt64))
                                 .narrow(2, 0, 2);
        out.gaze.index_copy_(
            0, rows,
            fit_gaze(centres, out.pose.index_select(0, rows), identity, options.gaze_prior));
    }
    return out;
}

}  // namespace avatar::face
