#pragma once
// A complete synthetic head around the face model (DESIGN.md §4, issue #8), rendered from one
// avatar-face-v1 coefficient row (face/face_model.h: pose 7 + identity 12 + expression 22 +
// gaze 4) with the CPU rasterizer (synth/rasterizer.h).
//
// Parts, all in the face model's space (cm; x right = the subject's left, y up, z toward the
// viewer) unless said otherwise:
// - face: the 468-vertex face model with its own triangles minus those that fill the eye
//   openings and the inner lips, textured with a procedural skin texture in the canonical UV
//   space (tone, noise, blush, lips, brows) — writes the UV image;
// - head shell: rings that start exactly at the face's silhouette loop (shared vertices, so no
//   gap) and sweep over an ellipsoidal cranium to a pole at the back of the head; ears;
// - eyeballs: spheres behind the eye openings, iris and pupil on the gaze axis, rotated by the
//   layout's gaze (per eye pitch, yaw in radians with the head's convention: yaw > 0 looks
//   toward image right, pitch > 0 looks down); the lids are the face model's (blink closes them);
// - mouth: a dark cavity attached to the inner lip loop, upper teeth fixed to the skull, lower
//   teeth and tongue rotating with the jaw (jaw_open 1 = 25 degrees about the x-parallel axis
//   through (0, 0.5, -2.5), as the jaw_open mode);
// - hair: a cap over the cranium (styles below);
// - neck (blending from the head's pose at the top to the body's at the bottom) and shoulders in
//   the body frame, which follows a quarter of the head's yaw only.
// Lighting: Lambert + ambient per vertex with one directional light fixed in the pose frame
// (x right, y up, z toward the viewer), so it stays put while the head turns.
// Camera: weak perspective exactly as the layout says (camera_distance_cm = 0), or a pinhole at
// camera_distance_cm from the model origin with focal = scale * distance, which agrees with the
// layout at the origin's depth.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "synth/rasterizer.h"

namespace avatar::synth {

// Face-part labels of the label map.
enum Label : uint8_t {
    kLabelBackground = 0,
    kLabelFaceSkin = 1,
    kLabelHeadSkin = 2,
    kLabelNeck = 3,
    kLabelClothes = 4,
    kLabelHair = 5,
    kLabelBrows = 6,
    kLabelLips = 7,
    kLabelSclera = 8,
    kLabelIris = 9,
    kLabelMouthCavity = 10,
    kLabelTeeth = 11,
    kLabelTongue = 12,
    kLabelEars = 13,
};
// "background", "face_skin", ... by label value (14 names).
const std::vector<std::string>& label_names();

enum class HairStyle : int { buzz = 0, short_cut = 1, medium = 2, long_cut = 3, bald = 4 };
inline constexpr int kHairStyleCount = 5;

// Everything about an identity's look that is not in the coefficients; fixed over a video.
// Colours are display RGB in [0, 1].
struct Appearance {
    float skin[3] = {0.80f, 0.60f, 0.50f};
    float lips[3] = {0.70f, 0.36f, 0.36f};
    float brows[3] = {0.20f, 0.13f, 0.08f};
    float iris[3] = {0.30f, 0.20f, 0.10f};
    float hair[3] = {0.20f, 0.12f, 0.06f};
    float clothes[3] = {0.20f, 0.30f, 0.50f};
    float background_top[3] = {0.60f, 0.65f, 0.70f};
    float background_bottom[3] = {0.30f, 0.32f, 0.35f};
    HairStyle hair_style = HairStyle::short_cut;
    float light[3] = {0.35f, 0.45f, 0.82f};  // toward the light, pose frame (normalised on use)
    float ambient = 0.45f;
    float diffuse = 0.65f;
    uint64_t noise_seed = 1;  // skin, hair and background patterns
    // A face texture in the canonical UV space (e.g. a photo unwrapped by synth/photo_texture.h)
    // used instead of the procedural skin texture; `skin` should then be its mean skin colour,
    // since the head shell, ears and neck are painted with `skin` and meet the texture at the
    // face's silhouette. Shared, never modified.
    std::shared_ptr<const Texture> face_texture;
    // A photographic background instead of the procedural gradient: uint8 [H, W, 3] RGB, of
    // which the crop (x0, y0, x1, y1, fractions of the width and height) is resized to the frame
    // (mirrored left-right when background_mirror). Undefined = the procedural gradient.
    torch::Tensor background_image;
    float background_crop[4] = {0.0f, 0.0f, 1.0f, 1.0f};
    bool background_mirror = false;
};

// A random but plausible appearance (skin tones from light to dark, hair colours and styles,
// iris colours, clothes, background, light direction), deterministic in the seed.
Appearance random_appearance(uint64_t seed);

struct HeadRenderOptions {
    int width = 256;
    int height = 256;
    int supersample = 2;
    float camera_distance_cm = 0.0f;  // 0 = weak perspective (the layout's own projection)
};

// Renders frames of one identity. Builds the appearance's textures and background once; each
// render() rebuilds the geometry from the row (cheap) and rasterizes it. Not thread-safe; the
// rasterizer inside runs at::get_num_threads() threads.
class HeadRenderer {
public:
    // Throws avatar::Error if the options are out of range or the face model is unavailable.
    HeadRenderer(const Appearance& appearance, const HeadRenderOptions& options);
    ~HeadRenderer();
    HeadRenderer(const HeadRenderer&) = delete;
    HeadRenderer& operator=(const HeadRenderer&) = delete;

    // `row`: face_layout_size() floats in the avatar-face-v1 layout. Throws avatar::Error on
    // non-finite values.
    void render(const float* row, RenderOutput& out);

    // The 468 face vertices of the last render() projected to the screen: [468, 3] (x, y in
    // pixels, depth as the rasterizer's: layout z in pixels for weak perspective, distance in cm
    // for the pinhole).
    const std::vector<float>& face_screen() const { return screen_face_; }
    // The skin texture (canonical UV space) and background of this appearance.
    const Texture& skin_texture() const { return skin_texture_; }
    const std::vector<float>& background() const { return background_; }
    const HeadRenderOptions& options() const { return options_; }

    struct Part;  // one mesh of the head (head.cpp)

private:
    void build_geometry(const float* row);
    void project(const float* row);

    Appearance appearance_;
    HeadRenderOptions options_;
    Texture skin_texture_;
    Texture eye_texture_;
    std::vector<float> background_;
    Rasterizer rasterizer_;
    std::vector<float> screen_face_;
    std::vector<float> neutral_;  // face vertices with the identity only (expression 0)
    std::vector<Part> parts_;
};

}  // namespace avatar::synth
