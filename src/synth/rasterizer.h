#pragma once
// A CPU triangle rasterizer for the synthetic world (DESIGN.md §4, issue #8). It works on plain
// float buffers, not per-pixel torch ops, so that a 256x256 head renders in a few milliseconds.
//
// Conventions
// - Screen space: x right, y down, in output pixels; pixel (i, j) covers [j, j+1) x [i, i+1), its
//   centre is (j + 0.5, i + 0.5). Vertices arrive already projected (project_perspective,
//   project_weak_perspective below): screen x, y and a depth, SMALLER = NEARER.
// - Depth: with `perspective` set, the depth is the view distance (> near, any unit) and
//   attributes are interpolated perspective-correctly (linear in 1/depth). Without it (weak
//   perspective / orthographic), depth is any number and everything is interpolated linearly on
//   the screen.
// - Anti-aliasing: every pixel has S x S samples (RenderSettings::supersample) on a regular grid;
//   colour and mask are box averages of the samples, so the mask is a soft coverage at edges.
//   Depth, UV, visibility and label are taken from one representative sample: the first covered
//   sample in row-major order, so they are never a blend across an edge or a UV seam.
// - Fill rule: top-left, with edge functions evaluated exactly anti-symmetrically in double, so a
//   sample on an edge shared by two triangles belongs to exactly one of them (no cracks, no double
//   coverage).
// - Depth test: strictly nearer wins; at equal depth the earlier triangle (earlier mesh, then
//   lower index) wins, so the result does not depend on the number of threads.
// - Culling: per mesh; a front face appears counter-clockwise to the viewer (OpenGL's default),
//   which in y-down pixel coordinates is a NEGATIVE signed area
//   (x1 - x0)(y2 - y0) - (x2 - x0)(y1 - y0).
// - Colour: per-vertex colour (linear [0, 1] RGB, may carry lighting) times an optional texture
//   sampled bilinearly at the interpolated UV. Texture UV: u right, v down, (0, 0) = the top-left
//   corner of texel (0, 0), clamped to the border.
// - Triangles with a vertex at depth <= near (perspective only) are dropped, not clipped.
//
// Multi-threading: the sample grid is cut into row bands processed by at::get_num_threads()
// threads; every sample is computed from the triangle list alone, never from a band boundary, so
// the output is bit-identical at any thread count.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace avatar::synth {

// An RGB float image, row-major, height x width x 3, values typically in [0, 1].
struct Texture {
    int width = 0;
    int height = 0;
    std::vector<float> rgb;

    Texture() = default;
    Texture(int width_, int height_);
    // Bilinear lookup at (u, v) in [0, 1] (clamped), written to out[3].
    void sample(float u, float v, float* out) const;
    // Float32 [H, W, 3] copy.
    torch::Tensor to_tensor() const;
};

enum class Cull { none, back, front };

// One draw: vertices already on the screen. Pointers are borrowed for the call of render().
struct MeshView {
    const float* screen = nullptr;       // [V, 3]: x, y (pixels), depth
    const float* color = nullptr;        // [V, 3] linear RGB; nullptr = white
    const float* uv = nullptr;           // [V, 2] texture / UV-image coordinates; nullptr = none
    const int32_t* triangles = nullptr;  // [T, 3] vertex indices
    const uint8_t* labels = nullptr;     // [T] label per triangle; nullptr = `label` everywhere
    int64_t vertex_count = 0;
    int64_t triangle_count = 0;
    uint8_t label = 1;                 // face-part label (0 is reserved for the background)
    const Texture* texture = nullptr;  // multiplies the vertex colour when set (needs uv)
    bool uv_visible = false;           // the mesh writes its UV into the UV image (+ visibility)
    Cull cull = Cull::none;
};

struct RenderSettings {
    int width = 256;
    int height = 256;
    int supersample = 2;      // S: S x S samples per pixel (1..8)
    bool perspective = true;  // depth is a view distance; perspective-correct attributes
    float near = 1e-3f;       // perspective only: triangles reaching depth <= near are dropped
    const float* background = nullptr;  // [H, W, 3] behind everything; nullptr = black
};

// Per-pixel outputs, row-major.
struct RenderOutput {
    int width = 0;
    int height = 0;
    std::vector<float> rgb;         // [H, W, 3] composited over the background
    std::vector<float> mask;        // [H, W] foreground coverage in [0, 1]
    std::vector<float> depth;       // [H, W] representative sample's depth; +inf = background
    std::vector<float> uv;          // [H, W, 2] where uv_valid, else 0
    std::vector<uint8_t> uv_valid;  // [H, W] 1 where a uv_visible mesh is the representative
    std::vector<uint8_t> label;     // [H, W] face-part label, 0 = background

    // Float32 [H, W, 3] / [H, W] / [H, W] / [H, W, 2]; uint8 [H, W] for the two flag maps.
    torch::Tensor rgb_tensor() const;
    torch::Tensor mask_tensor() const;
    torch::Tensor depth_tensor() const;
    torch::Tensor uv_tensor() const;
    torch::Tensor uv_valid_tensor() const;
    torch::Tensor label_tensor() const;
};

// Keeps the sample buffers between frames, so rendering a video allocates once. Not thread-safe
// (one Rasterizer per rendering thread); render() itself runs at::get_num_threads() threads.
class Rasterizer {
public:
    // Throws avatar::Error naming the bad setting or mesh (sizes, indices out of range).
    void render(const std::vector<MeshView>& meshes, const RenderSettings& settings,
                RenderOutput& output);

private:
    struct Prepared;
    std::vector<float> sample_depth_;
    std::vector<int32_t> sample_triangle_;  // global triangle id, -1 = empty
    std::vector<float> sample_bary_;        // perspective-correct barycentrics b1, b2
};

// ---- cameras ----------------------------------------------------------------------------------

// A pinhole camera looking down +z of its camera space (x right, y down, z forward, any length
// unit): screen = (focal * x / z + cx, focal * y / z + cy), depth = z.
struct PerspectiveCamera {
    float focal = 500.0f;  // pixels
    float cx = 128.0f;     // principal point, pixels
    float cy = 128.0f;
};

// points [N, 3] in camera space -> out [N, 3] (screen x, y, depth z); use with perspective = true.
void project_perspective(const PerspectiveCamera& camera, const float* points, int64_t count,
                         float* out);

// face_model.h's weak perspective: image = F (scale R v) + translation, F = diag(1, -1, -1), with
// R from (pitch, yaw, roll) radians. out = (image x, image y, image z) where image z grows away
// from the viewer (FaceMesh's convention), so it serves directly as depth; use with
// perspective = false. `pose` = the 7 pose columns of avatar-face-v1.
void project_weak_perspective(const float* pose, const float* vertices, int64_t count, float* out);

// Row-major 3x3 rotation of (pitch, yaw, roll) radians, R = Ry(yaw) Rx(pitch) Rz(roll) (the
// convention of face_model.h's euler_rad_to_rotation), in double.
void euler_rad_to_matrix(double pitch, double yaw, double roll, double* r);

}  // namespace avatar::synth
