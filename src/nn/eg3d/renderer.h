#pragma once
// EG3D's neural volume renderer as OTAvatar ships it (shared/reference/eg3d/SPEC.md §5-7): the
// pixel-centre ray sampler, tri-plane sampling with the official plane axes, the OSG decoder,
// MipRayMarcher2 and the two-pass importance renderer.
//
// The official renderer draws random numbers even at inference (stratified depth jitter and the
// importance-sampling u). Here they are explicit: RenderNoise holds them, and
// RenderNoise::draw() makes them from a generator in the official order, so that runs are
// reproducible and a fixture's stored numbers can be fed in.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "nn/stylegan2.h"

namespace avatar::nn::eg3d {

// The rendering options that change numerics (rendering_kwargs of the official config).
struct RenderingOptions {
    int64_t depth_resolution = 48;             // coarse samples per ray
    int64_t depth_resolution_importance = 48;  // fine samples per ray (0: coarse pass only)
    double ray_start = 2.25;
    double ray_end = 3.3;
    double box_warp = 1.0;  // the side of the cube the planes span, in world units

    // From an official rendering_kwargs object (missing keys keep their defaults). Throws Error
    // for options this port does not implement (clamp_mode other than softplus, disparity-space
    // or 'auto' ray ranges, a white background, density noise).
    static RenderingOptions from_kwargs(const nlohmann::json& kwargs);
};

// ---- rays ----

// RaySampler: cam2world [B, 4, 4] (OpenCV) and normalised intrinsics [B, 3, 3] -> ray origins
// and unit directions [B, R*R, 3] through the pixel centres; ray m = i * R + j covers pixel row
// i, column j. The skew K[0,1] is part of the formula.
std::pair<torch::Tensor, torch::Tensor> sample_rays(const torch::Tensor& cam2world,
                                                    const torch::Tensor& intrinsics,
                                                    int64_t resolution);

// ---- tri-planes ----

// The official plane axes [3, 3, 3]: the planes are (x, y), (x, z) and (z, x) — the third is
// not (y, z), a quirk of EG3D that checkpoints depend on.
torch::Tensor plane_axes();

// Coordinates [N, M, 3] -> 2-D plane coordinates [N * 3, M, 2] (coords . inv(axis), first two).
torch::Tensor project_onto_planes(const torch::Tensor& axes, const torch::Tensor& coordinates);

// planes [N, 3, C, H, W], coordinates [N, M, 3] in world units -> features [N, 3, M, C]:
// bilinear, zero padding outside the box, align_corners = false. `projected`, if given,
// receives the plane coordinates after the 2 / box_warp scaling.
torch::Tensor sample_from_planes(const torch::Tensor& planes, const torch::Tensor& coordinates,
                                 double box_warp, torch::Tensor* projected = nullptr);

// ---- decoder ----

struct DecoderOutput {
    torch::Tensor rgb;    // [N, M, 32] features in (-0.001, 1.001), the first 3 are colour
    torch::Tensor sigma;  // [N, M, 1] raw density
    std::map<std::string, torch::Tensor> trace;  // "fc0_out", "softplus_out", "fc1_out"
};

// OSGDecoder: mean over the 3 planes, FC -> softplus -> FC. Registered as "net.0" and "net.2".
class OSGDecoderImpl : public torch::nn::Module {
public:
    OSGDecoderImpl(int64_t features, int64_t hidden, int64_t outputs, double lr_multiplier = 1.0);
    // features [N, 3, M, C] -> rgb and sigma. The official decoder also takes the ray
    // directions and ignores them; they are not asked for here.
    DecoderOutput forward(const torch::Tensor& features, bool keep_trace = false);

    FullyConnectedLayer fc0{nullptr}, fc1{nullptr};
};
TORCH_MODULE(OSGDecoder);

// ---- marching and sampling ----

struct MarchOutput {
    torch::Tensor rgb;      // [B, M, C], mapped to 2 * rgb - 1 (all C channels)
    torch::Tensor depth;    // [B, M, 1], clamped to the min/max depth of the WHOLE batch tensor
    torch::Tensor weights;  // [B, M, S - 1, 1], one per interval
};

// MipRayMarcher2 with clamp_mode = softplus: colors [B, M, S, C], raw densities [B, M, S, 1],
// depths [B, M, S, 1]. Colours, densities and depths are averaged at interval midpoints before
// softplus(sigma - 1); no white background.
MarchOutput ray_march(const torch::Tensor& colors, const torch::Tensor& densities,
                      const torch::Tensor& depths);

// The random numbers of one render call, in the shapes the official calls draw them.
struct RenderNoise {
    torch::Tensor jitter;  // [B, M, D, 1] in [0, 1): stratified jitter (torch.rand_like)
    torch::Tensor u;       // [B * M, Di] in [0, 1): importance-sampling u (torch.rand)

    // Draws both from `generator` (the default generator if none), jitter first, as the
    // official renderer does: with the same CPU generator state the numbers are the same.
    static RenderNoise draw(int64_t batch, int64_t rays, const RenderingOptions& options,
                            c10::optional<at::Generator> generator = c10::nullopt);
};

// Stratified coarse depths [B, M, D, 1]: linspace(start, end, D) + jitter * (end - start)/(D-1).
torch::Tensor stratified_depths(const torch::Tensor& jitter, const RenderingOptions& options);

// ImportanceRenderer.sample_importance: coarse depths [B, M, D, 1] and coarse marcher weights
// [B, M, D - 1, 1] -> fine depths [B, M, Di, 1] by inverse-CDF sampling of the smoothed weights
// (max-pool 2, avg-pool 2, + 0.01) on the depth midpoints, with u [B * M, Di].
torch::Tensor sample_importance(const torch::Tensor& depths, const torch::Tensor& weights,
                                const torch::Tensor& u);

// sample_pdf (det = false): bins [R, n + 1], weights [R, n], u [R, k] -> samples [R, k].
torch::Tensor sample_pdf(const torch::Tensor& bins, const torch::Tensor& weights,
                         const torch::Tensor& u, double eps = 1e-5);

// The decoder at depths [B, M, S, 1] along rays [B, M, 3] through planes [B, 3, C, H, W]
// (run_model): colours [B, M, S, C] and raw densities [B, M, S, 1].
struct RaySamples {
    torch::Tensor colors, sigma;
};
RaySamples decode_samples(const torch::Tensor& planes, OSGDecoder& decoder,
                          const torch::Tensor& ray_origins, const torch::Tensor& ray_directions,
                          const torch::Tensor& depths, double box_warp);

// The coarse and fine samples of each ray in one list sorted by depth, as the importance
// renderer marches them: depths [B, M, D + Di, 1], colours [B, M, D + Di, C], densities.
struct MergedSamples {
    torch::Tensor depths, colors, densities;
};
MergedSamples merge_samples(const torch::Tensor& depths_coarse, const RaySamples& coarse,
                            const torch::Tensor& depths_fine, const RaySamples& fine);

struct RenderOutput {
    torch::Tensor rgb;          // [B, M, C] composite features (2 * f - 1)
    torch::Tensor depth;        // [B, M, 1]
    torch::Tensor weights_sum;  // [B, M, 1]
    // Intermediates keyed as the fixture's render/* tensors (filled when asked for).
    std::map<std::string, torch::Tensor> trace;
};

// ImportanceRenderer.forward: coarse pass, importance pass, merged and sorted samples, final
// march. planes [B, 3, C, H, W]; ray origins/directions [B, M, 3].
RenderOutput render_rays(const torch::Tensor& planes, OSGDecoder& decoder,
                         const torch::Tensor& ray_origins, const torch::Tensor& ray_directions,
                         const RenderingOptions& options, const RenderNoise& noise,
                         bool keep_trace = false);

}  // namespace avatar::nn::eg3d
