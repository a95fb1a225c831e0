#include "nn/eg3d/renderer.h"

#include "core/error.h"

namespace avatar::nn::eg3d {
namespace {

// Every formula below keeps the official operation order: float32 rounding then matches the
// official code bit for bit, which matters because importance sampling is discontinuous in the
// coarse weights (searchsorted).

// F.normalize(v, dim=-1): v / max(||v||, eps).
torch::Tensor normalize_safe(const torch::Tensor& v, double eps = 1e-12) {
    const auto norm = torch::linalg_vector_norm(v, 2, {-1}, /*keepdim=*/true, c10::nullopt);
    return v / norm.clamp_min(eps).expand_as(v);
}

// x[..., :-1, :] and x[..., 1:, :] along the sample axis (dim 2 of [B, M, S, C]).
torch::Tensor head(const torch::Tensor& x) {
    return x.narrow(2, 0, x.size(2) - 1);
}
torch::Tensor tail(const torch::Tensor& x) {
    return x.narrow(2, 1, x.size(2) - 1);
}

void check_rays(const torch::Tensor& t, const char* name) {
    check(t.dim() == 3 && t.size(2) == 3, "eg3d renderer",
          std::string(name) + " must be [B, M, 3], got " + c10::str(t.sizes()));
}

}  // namespace

RenderingOptions RenderingOptions::from_kwargs(const nlohmann::json& kwargs) {
    const std::string subject = "rendering_kwargs";
    check(kwargs.is_object(), subject, "expected a JSON object");
    RenderingOptions options;
    options.depth_resolution = kwargs.value("depth_resolution", options.depth_resolution);
    options.depth_resolution_importance =
        kwargs.value("depth_resolution_importance", options.depth_resolution_importance);
    check(!kwargs.contains("ray_start") || kwargs["ray_start"].is_number(), subject,
          "only numeric ray_start/ray_end are supported (not 'auto')");
    check(!kwargs.contains("ray_end") || kwargs["ray_end"].is_number(), subject,
          "only numeric ray_start/ray_end are supported (not 'auto')");
    options.ray_start = kwargs.value("ray_start", options.ray_start);
    options.ray_end = kwargs.value("ray_end", options.ray_end);
    options.box_warp = kwargs.value("box_warp", options.box_warp);
    check(kwargs.value("clamp_mode", std::string("softplus")) == "softplus", subject,
          "only clamp_mode 'softplus' is supported");
    check(!kwargs.value("disparity_space_sampling", false), subject,
          "disparity-space sampling is not supported");
    check(!kwargs.value("white_back", false), subject, "a white background is not supported");
    check(kwargs.value("density_noise", 0.0) == 0.0, subject, "density noise is not supported");
    check(options.depth_resolution >= 4 && options.depth_resolution_importance >= 0, subject,
          "depth_resolution must be >= 4 and depth_resolution_importance >= 0");
    return options;
}

// ---------------------------------------------------------------------------------------------
// Rays

std::pair<torch::Tensor, torch::Tensor> sample_rays(const torch::Tensor& cam2world,
                                                    const torch::Tensor& intrinsics,
                                                    int64_t resolution) {
    check(cam2world.dim() == 3 && cam2world.size(1) == 4 && cam2world.size(2) == 4, "sample_rays",
          "cam2world must be [B, 4, 4]");
    check(intrinsics.dim() == 3 && intrinsics.size(0) == cam2world.size(0) &&
              intrinsics.size(1) == 3 && intrinsics.size(2) == 3,
          "sample_rays", "intrinsics must be [B, 3, 3]");
    check(resolution > 0, "sample_rays", "resolution must be positive");
    const int64_t batch = cam2world.size(0), rays = resolution * resolution;
    const auto options = cam2world.options();
    const auto origin = cam2world.narrow(1, 0, 3).select(2, 3);  // [B, 3]
    const auto fx = intrinsics.select(1, 0).select(1, 0).unsqueeze(-1);
    const auto fy = intrinsics.select(1, 1).select(1, 1).unsqueeze(-1);
    const auto cx = intrinsics.select(1, 0).select(1, 2).unsqueeze(-1);
    const auto cy = intrinsics.select(1, 1).select(1, 2).unsqueeze(-1);
    const auto sk = intrinsics.select(1, 0).select(1, 1).unsqueeze(-1);

    // Pixel centres on the normalised image plane, built with the official ops (arange, scale,
    // offset) so that they round identically; (u, v) = (column, row).
    const auto index = torch::arange(resolution, options);
    const auto grid = torch::meshgrid({index, index}, "ij");
    const auto uv = (torch::stack(grid) * (1.0 / static_cast<double>(resolution)) +
                     (0.5 / static_cast<double>(resolution)))
                        .flip(0)
                        .reshape({2, -1})
                        .transpose(1, 0)
                        .unsqueeze(0)
                        .repeat({batch, 1, 1});
    const auto x_cam = uv.select(2, 0).view({batch, -1});
    const auto y_cam = uv.select(2, 1).view({batch, -1});
    const auto z_cam = torch::ones({batch, rays}, options);

    const auto x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx * z_cam;
    const auto y_lift = (y_cam - cy) / fy * z_cam;
    const auto camera_points = torch::stack({x_lift, y_lift, z_cam, torch::ones_like(z_cam)}, -1);
    const auto world_points =
        torch::bmm(cam2world, camera_points.permute({0, 2, 1})).permute({0, 2, 1}).narrow(2, 0, 3);
    const auto directions = normalize_safe(world_points - origin.unsqueeze(1));
    const auto origins = origin.unsqueeze(1).repeat({1, rays, 1});
    return {origins, directions};
}

// ---------------------------------------------------------------------------------------------
// Tri-planes

torch::Tensor plane_axes() {
    return torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f,  //
                          1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f,  //
                          0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f},
                         torch::kFloat32)
        .reshape({3, 3, 3});
}

torch::Tensor project_onto_planes(const torch::Tensor& axes, const torch::Tensor& coordinates) {
    check_rays(coordinates, "coordinates");
    const int64_t n = coordinates.size(0), m = coordinates.size(1), planes = axes.size(0);
    const auto expanded =
        coordinates.unsqueeze(1).expand({-1, planes, -1, -1}).reshape({n * planes, m, 3});
    const auto inverse = torch::linalg_inv(axes)
                             .to(coordinates.options())
                             .unsqueeze(0)
                             .expand({n, -1, -1, -1})
                             .reshape({n * planes, 3, 3});
    return torch::bmm(expanded, inverse).narrow(2, 0, 2);
}

torch::Tensor sample_from_planes(const torch::Tensor& planes, const torch::Tensor& coordinates,
                                 double box_warp, torch::Tensor* projected) {
    check(planes.dim() == 5 && planes.size(1) == 3, "sample_from_planes",
          "planes must be [N, 3, C, H, W], got " + c10::str(planes.sizes()));
    check_rays(coordinates, "coordinates");
    check(coordinates.size(0) == planes.size(0), "sample_from_planes",
          "planes and coordinates disagree on the batch size");
    const int64_t n = planes.size(0), channels = planes.size(2);
    const int64_t h = planes.size(3), w = planes.size(4), m = coordinates.size(1);
    const auto flat = planes.reshape({n * 3, channels, h, w});
    const auto plane_coords =
        project_onto_planes(plane_axes().to(coordinates.device()), (2.0 / box_warp) * coordinates);
    if (projected != nullptr)
        *projected = plane_coords;
    // grid_sample: u indexes width and v height; outside [-1, 1] fades to zero.
    const auto sampled = torch::grid_sampler(flat, plane_coords.unsqueeze(1).to(torch::kFloat32),
                                             /*interpolation_mode=bilinear*/ 0,
                                             /*padding_mode=zeros*/ 0, /*align_corners=*/false);
    return sampled.permute({0, 3, 2, 1}).reshape({n, 3, m, channels});
}

// ---------------------------------------------------------------------------------------------
// Decoder

OSGDecoderImpl::OSGDecoderImpl(int64_t features, int64_t hidden, int64_t outputs,
                               double lr_multiplier) {
    fc0 = FullyConnectedLayer(features, hidden, Activation::kLinear, lr_multiplier);
    fc1 = FullyConnectedLayer(hidden, outputs, Activation::kLinear, lr_multiplier);
    // The official net is Sequential(FC, Softplus, FC): the FCs are "net.0" and "net.2".
    auto net = register_module("net", std::make_shared<torch::nn::Module>());
    net->register_module("0", fc0);
    net->register_module("2", fc1);
}

DecoderOutput OSGDecoderImpl::forward(const torch::Tensor& features, bool keep_trace) {
    check(features.dim() == 4 && features.size(1) == 3, "OSGDecoder",
          "features must be [N, 3, M, C], got " + c10::str(features.sizes()));
    const int64_t n = features.size(0), m = features.size(2);
    const auto x = features.mean(1).view({n * m, features.size(3)});
    const auto hidden = fc0->forward(x);
    const auto activated = torch::softplus(hidden, /*beta=*/1, /*threshold=*/20);
    const auto out = fc1->forward(activated);
    DecoderOutput result;
    const auto y = out.view({n, m, -1});
    result.rgb = torch::sigmoid(y.narrow(2, 1, y.size(2) - 1)) * (1 + 2 * 0.001) - 0.001;
    result.sigma = y.narrow(2, 0, 1);
    if (keep_trace) {
        result.trace["fc0_out"] = hidden;
        result.trace["softplus_out"] = activated;
        result.trace["fc1_out"] = out;
    }
    return result;
}

// ---------------------------------------------------------------------------------------------
// Marching and sampling

MarchOutput ray_march(const torch::Tensor& colors, const torch::Tensor& densities,
                      const torch::Tensor& depths) {
    check(colors.dim() == 4 && densities.dim() == 4 && depths.dim() == 4 && colors.size(2) >= 2 &&
              densities.size(2) == colors.size(2) && depths.size(2) == colors.size(2),
          "ray_march", "expects colors [B, M, S, C], densities and depths [B, M, S, 1], S >= 2");
    const auto deltas = tail(depths) - head(depths);
    const auto colors_mid = (head(colors) + tail(colors)) / 2;
    auto densities_mid = (head(densities) + tail(densities)) / 2;
    const auto depths_mid = (head(depths) + tail(depths)) / 2;
    densities_mid = torch::softplus(densities_mid - 1, /*beta=*/1, /*threshold=*/20);

    const auto alpha = 1 - torch::exp(-(densities_mid * deltas));
    // Exclusive transmittance; the 1e-10 goes on (1 - alpha), not on alpha.
    const auto shifted =
        torch::cat({torch::ones_like(alpha.narrow(2, 0, 1)), 1 - alpha + 1e-10}, 2);
    const auto weights = alpha * head(torch::cumprod(shifted, 2));

    MarchOutput out;
    out.rgb = torch::sum(weights * colors_mid, 2);
    const auto weight_total = weights.sum(2);
    auto depth = torch::sum(weights * depths_mid, 2) / weight_total;
    depth = torch::nan_to_num(depth, std::numeric_limits<double>::infinity());
    // The clamp range is global over the batch tensor: batch members are coupled here.
    out.depth = torch::clamp(depth, torch::min(depths), torch::max(depths));
    out.rgb = out.rgb * 2 - 1;
    out.weights = weights;
    return out;
}

RenderNoise RenderNoise::draw(int64_t batch, int64_t rays, const RenderingOptions& options,
                              c10::optional<at::Generator> generator) {
    RenderNoise noise;
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    noise.jitter = torch::rand({batch, rays, options.depth_resolution, 1}, generator, f32);
    if (options.depth_resolution_importance > 0) {
        noise.u = torch::rand({batch * rays, options.depth_resolution_importance}, generator, f32);
    }
    return noise;
}

torch::Tensor stratified_depths(const torch::Tensor& jitter, const RenderingOptions& options) {
    const int64_t samples = options.depth_resolution;
    check(jitter.dim() == 4 && jitter.size(2) == samples && jitter.size(3) == 1,
          "stratified_depths",
          "the jitter must be [B, M, " + std::to_string(samples) + ", 1], got " +
              c10::str(jitter.sizes()));
    check(samples >= 2, "stratified_depths", "depth_resolution must be at least 2");
    auto depths = torch::linspace(options.ray_start, options.ray_end, samples, jitter.options())
                      .reshape({1, 1, samples, 1})
                      .repeat({jitter.size(0), jitter.size(1), 1, 1});
    const double delta = (options.ray_end - options.ray_start) / static_cast<double>(samples - 1);
    depths += jitter * delta;
    return depths;
}

torch::Tensor sample_pdf(const torch::Tensor& bins, const torch::Tensor& weights_in,
                         const torch::Tensor& u_in, double eps) {
    check(bins.dim() == 2 && weights_in.dim() == 2 && u_in.dim() == 2 &&
              bins.size(0) == weights_in.size(0) && u_in.size(0) == weights_in.size(0) &&
              bins.size(1) >= weights_in.size(1) + 1,
          "sample_pdf", "expects bins [R, n+1], weights [R, n], u [R, k]");
    const int64_t rays = weights_in.size(0), bins_used = weights_in.size(1);
    const int64_t count = u_in.size(1);
    const auto weights = weights_in + eps;
    const auto pdf = weights / torch::sum(weights, -1, /*keepdim=*/true);
    auto cdf = torch::cumsum(pdf, -1);
    cdf = torch::cat({torch::zeros_like(cdf.narrow(1, 0, 1)), cdf}, -1);
    const auto u = u_in.contiguous();
    const auto index = torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true);
    const auto below = torch::clamp_min(index - 1, 0);
    const auto above = torch::clamp_max(index, bins_used);
    const auto gathered = torch::stack({below, above}, -1).view({rays, 2 * count});
    const auto cdf_g = torch::gather(cdf, 1, gathered).view({rays, count, 2});
    const auto bins_g = torch::gather(bins, 1, gathered).view({rays, count, 2});
    const auto cdf_below = cdf_g.select(2, 0), bin_below = bins_g.select(2, 0);
    auto denom = cdf_g.select(2, 1) - cdf_below;
    denom = denom.masked_fill(denom < eps, 1);
    return bin_below + (u - cdf_below) / denom * (bins_g.select(2, 1) - bin_below);
}

torch::Tensor sample_importance(const torch::Tensor& depths, const torch::Tensor& weights_in,
                                const torch::Tensor& u) {
    check(depths.dim() == 4 && weights_in.dim() == 4 && depths.size(2) >= 4 &&
              weights_in.size(2) == depths.size(2) - 1,
          "sample_importance", "expects depths [B, M, D, 1] (D >= 4) and weights [B, M, D-1, 1]");
    const int64_t batch = depths.size(0), rays = depths.size(1), samples = depths.size(2);
    check(u.dim() == 2 && u.size(0) == batch * rays, "sample_importance",
          "u must be [B * M, Di], got " + c10::str(u.sizes()));
    const auto z = depths.reshape({batch * rays, samples});
    auto weights = weights_in.reshape({batch * rays, -1}).unsqueeze(1).to(torch::kFloat32);
    // Smoothing: max-pool (k 2, s 1, pad 1) then avg-pool (k 2, s 1), then a floor of 0.01.
    weights = torch::max_pool1d(weights, {2}, {1}, {1});
    weights = torch::avg_pool1d(weights, {2}, {1}).squeeze(1);
    weights = weights + 0.01;
    const auto midpoints = 0.5 * (z.narrow(1, 0, samples - 1) + z.narrow(1, 1, samples - 1));
    // Only the D-3 inner weights are passed on, against D-1 midpoints: the last bin is unused.
    const auto inner = weights.narrow(1, 1, weights.size(1) - 2);
    return sample_pdf(midpoints, inner, u).reshape({batch, rays, u.size(1), 1});
}

RaySamples decode_samples(const torch::Tensor& planes, OSGDecoder& decoder,
                          const torch::Tensor& ray_origins, const torch::Tensor& ray_directions,
                          const torch::Tensor& depths, double box_warp) {
    const int64_t batch = depths.size(0), rays = depths.size(1), samples = depths.size(2);
    const auto coordinates =
        (ray_origins.unsqueeze(-2) + depths * ray_directions.unsqueeze(-2)).reshape({batch, -1, 3});
    const auto out = decoder->forward(sample_from_planes(planes, coordinates, box_warp));
    return {out.rgb.reshape({batch, rays, samples, out.rgb.size(-1)}),
            out.sigma.reshape({batch, rays, samples, 1})};
}

MergedSamples merge_samples(const torch::Tensor& depths_coarse, const RaySamples& coarse,
                            const torch::Tensor& depths_fine, const RaySamples& fine) {
    // torch.sort is not stable; ties are practically impossible.
    const auto depths = torch::cat({depths_coarse, depths_fine}, -2);
    const auto order = std::get<1>(torch::sort(depths, -2));
    const auto sorted = [&](const torch::Tensor& a, const torch::Tensor& b) {
        return torch::gather(torch::cat({a, b}, -2), -2, order.expand({-1, -1, -1, a.size(-1)}));
    };
    return {torch::gather(depths, -2, order), sorted(coarse.colors, fine.colors),
            sorted(coarse.sigma, fine.sigma)};
}

RenderOutput render_rays(const torch::Tensor& planes, OSGDecoder& decoder,
                         const torch::Tensor& ray_origins, const torch::Tensor& ray_directions,
                         const RenderingOptions& options, const RenderNoise& noise,
                         bool keep_trace) {
    check_rays(ray_origins, "ray origins");
    check_rays(ray_directions, "ray directions");
    const int64_t batch = ray_origins.size(0), rays = ray_origins.size(1);
    check(noise.jitter.defined() && noise.jitter.size(0) == batch && noise.jitter.size(1) == rays,
          "render_rays", "the jitter must be [B, M, D, 1] for this batch of rays");
    RenderOutput result;
    auto record = [&](const std::string& key, const torch::Tensor& t) {
        if (keep_trace)
            result.trace[key] = t;
    };
    // The decoder gives features and density together; split them as the official run_model.
    // The trace keeps the decoder's flat [B, M*S, C] layout, as the fixture stores it.
    auto decode = [&](const torch::Tensor& depths, const std::string& name) {
        auto samples =
            decode_samples(planes, decoder, ray_origins, ray_directions, depths, options.box_warp);
        record("colors_" + name, samples.colors.reshape({batch, -1, samples.colors.size(-1)}));
        record("sigma_" + name, samples.sigma.reshape({batch, -1, 1}));
        return samples;
    };

    const auto depths_coarse = stratified_depths(noise.jitter, options);
    record("depths_coarse", depths_coarse);
    const auto coarse = decode(depths_coarse, "coarse");

    MarchOutput final_march;
    if (options.depth_resolution_importance > 0) {
        const auto weights_coarse = ray_march(coarse.colors, coarse.sigma, depths_coarse).weights;
        record("weights_coarse", weights_coarse);
        check(noise.u.defined(), "render_rays", "importance sampling needs u [B * M, Di]");
        const auto depths_fine = sample_importance(depths_coarse, weights_coarse, noise.u);
        record("depths_fine", depths_fine);
        const auto fine = decode(depths_fine, "fine");
        const auto all = merge_samples(depths_coarse, coarse, depths_fine, fine);
        record("all_depths", all.depths);
        record("all_colors", all.colors);
        record("all_densities", all.densities);
        final_march = ray_march(all.colors, all.densities, all.depths);
    } else {
        final_march = ray_march(coarse.colors, coarse.sigma, depths_coarse);
    }
    record("rgb_final", final_march.rgb);
    record("depth_final", final_march.depth);
    record("weights_final", final_march.weights);
    result.rgb = final_march.rgb;
    result.depth = final_march.depth;
    result.weights_sum = final_march.weights.sum(2);
    return result;
}

}  // namespace avatar::nn::eg3d
