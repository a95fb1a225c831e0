#pragma once
// Photo textures for the synthetic world (issue #8): real faces unwrapped into the face model's
// canonical UV space, so that a synthetic identity can wear a real person's skin, and
// photographic backgrounds.
//
// Unwrapping one face (unwrap_face), given the image and an avatar-face-v1 row whose face model
// projects onto it (a fit of the project's own tracker output, or the true row of a render):
// 1. the face model's skin triangles (synth/mesh_annotations.h: not the eye and mouth fills) are
//    rasterized in UV space with the projected vertices as attributes, giving per texel its point
//    on the fitted surface in the image (x, y, depth) and how squarely the surface faces the
//    camera (the normal's component toward the viewer);
// 2. the same mesh is rasterized in the image to get a z-buffer: a texel is seen when nothing
//    lies in front of its point; its weight grows from 0 to 1 as the surface turns toward the
//    camera, and falls near the lid margins (where a fit error samples the eyeball); on the
//    forehead and along the silhouette, colours far from the face's median skin colour lose
//    their weight too (hair or background in front of the face);
// 3. the colour is sampled bilinearly from the image (prefiltered when the face is much larger
//    than the texture);
// 4. texels seen badly take the colour of their mirror image across the face's symmetry plane
//    (the face model's vertex mirror map carried into UV space) where that one is seen better;
// 5. a band inside the face's silhouette fades to the median skin colour (the silhouette meets
//    the head shell, painted in that colour, and is where hair and background creep in);
// 6. everything else, up to the texture's border, is filled by push-pull (a weighted pyramid),
//    so bilinear lookups near the UV layout's edges never read an unfilled texel.
//
// Photos (unwrap_photo): every face the tracker's detectors find (FaceDetector::kBoth, as for
// group photos), FaceMesh's 468 points fitted by fit_face_mesh468, then unwrapped.
//
// Augmentation (photo_appearance): deterministic from a seed (splitmix64): a left-right mirror
// of the texture, exposure, white balance, saturation and contrast jitter, a soft redness
// blotchiness and a few small moles.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "synth/head.h"
#include "synth/rasterizer.h"

namespace avatar::synth {

// Where a texel's colour came from.
enum TexelSource : uint8_t {
    kTexelOutside = 0,   // not on a skin triangle of the UV layout (filled from neighbours)
    kTexelObserved = 1,  // seen in the image with weight >= 0.5
    kTexelMirrored = 2,  // mostly from its mirror image
    kTexelFilled = 3,    // on the face but seen by neither: push-pull fill
};

struct UnwrapOptions {
    int size = 256;            // texture width = height, texels
    double min_facing = 0.2;   // cosine (normal . view) below which a texel gets no weight
    double full_facing = 0.5;  // weight 1 from this cosine on
    double occlusion_tolerance_cm = 0.3;  // depth slack of the z-buffer test
    bool mirror = true;                   // fill badly seen texels from their mirror image
    double border_blend_cm = 1.2;         // band inside the silhouette faded to the skin colour
    // On the forehead and near the silhouette, a texel whose colour lies further than this from
    // the median skin colour (RGB distance) starts losing its weight: hair or background in
    // front of the face. 0 = off.
    double occluder_distance = 0.2;
};

struct UnwrappedFace {
    Texture texture;               // size x size, every texel filled, display RGB in [0, 1]
    std::vector<float> weight;     // [size * size] observation weight in [0, 1] (before filling)
    std::vector<uint8_t> source;   // [size * size] TexelSource
    float skin[3] = {0, 0, 0};     // median colour of well-seen cheek, forehead and nose texels
    float lips[3] = {0, 0, 0};     // median colour of well-seen lip texels (skin if none)
    double observed_fraction = 0;  // of the face's skin texels: kTexelObserved
    double mirrored_fraction = 0;  // kTexelMirrored
};

// image: uint8 [H, W, 3] RGB. row: face::face_layout_size() floats, avatar-face-v1, weak
// perspective in the image's pixels (gaze is ignored). Throws avatar::Error on bad shapes,
// options or a face that falls entirely outside the image.
UnwrappedFace unwrap_face(const torch::Tensor& image, const float* row,
                          const UnwrapOptions& options = {});

struct PhotoFace {
    std::string source;       // the photo's name (file name for files)
    int face = 0;             // index among the photo's usable faces, from the left
    std::vector<float> row;   // the fitted avatar-face-v1 row (gaze 0)
    double fit_rms_px = 0;    // fit_face_mesh468's 2D residual
    double face_size_px = 0;  // side of the 468 points' box
    UnwrappedFace unwrapped;
};

struct PhotoUnwrapOptions {
    UnwrapOptions unwrap;
    double min_face_px = 80;  // smaller faces are skipped (too few pixels per texel)
    // Faces with less of their skin observed are skipped: below about half, the face is in
    // profile, looks down or is covered by hair or a hand, and the texture is mostly guesswork.
    double min_observed = 0.5;
    // Faces whose fit residual exceeds this fraction of their size are skipped: a fit that far
    // off (a strongly tilted, laughing face of the demo photos: 4.5 %; the others 1.2-2.4 %)
    // puts the photo's mouth and eyes in the wrong texels.
    double max_fit_rms = 0.035;
};

// Every usable face of one photo (uint8 [H, W, 3]), from the image's left. Needs the pinned face
// models (face/model_files.h). `name` labels the faces.
std::vector<PhotoFace> unwrap_photo(const torch::Tensor& image, const std::string& name,
                                    const PhotoUnwrapOptions& options = {});

// The image files named by `items`: files as given, folders' .jpg/.jpeg/.png/.bmp/.webp files in
// name order, and the keyword "faceapi-demo" = the six group photos of the pinned face-api
// package (demo/sample1..6.jpg, 22 faces). `option` names the option in errors; throws
// avatar::Error if an item is missing or nothing is found.
std::vector<std::filesystem::path> list_image_files(const std::vector<std::string>& items,
                                                    const std::string& option);

// Every usable face of every file (in list order); throws avatar::Error naming `option` if none.
std::vector<PhotoFace> unwrap_photo_files(const std::vector<std::filesystem::path>& files,
                                          const std::string& option,
                                          const PhotoUnwrapOptions& options = {});

// The face texture of `face` augmented from `seed` (header comment); skin_out receives the
// augmented texture's skin colour.
Texture augment_face_texture(const UnwrappedFace& face, uint64_t seed, float* skin_out);

// An identity wearing a photo's face: random_appearance(seed) for everything the texture does
// not give (hair, eyes, clothes, light, background), the face texture augmented from the seed,
// and skin (head shell, ears, neck) and lips set from the augmented texture.
Appearance photo_appearance(const UnwrappedFace& face, uint64_t seed);

// Puts a photographic background into `appearance`: one of `images` (uint8 [H, W, 3]) and a
// random crop of it with the frame's aspect (width / height), between 45 % and 100 % of the
// largest such crop, mirrored half of the time; deterministic in the seed. Returns the index of
// the image chosen.
size_t choose_background(const std::vector<torch::Tensor>& images, uint64_t seed, double aspect,
                         Appearance& appearance);

}  // namespace avatar::synth
