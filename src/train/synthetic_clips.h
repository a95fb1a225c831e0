#pragma once
// Training batches from the synthetic world (DESIGN.md section 4), rendered on the fly: an
// unlimited supply of talking-head clips, so no data set has to be written, decoded or stored.
//
// A clip is one identity (appearance and face-model identity drawn from a seed) speaking one
// motion sequence of synth::generate_motion. Like the VoxCeleb crops DPE, FOMM and LIA train on,
// every frame of a clip is cut with ONE square crop (a FOMM-style square at `crop_scale` times the
// extent of the face's 468 points in the clip's first frame), so head translation inside the clip
// is part of the motion to learn; pipeline::face_crop and the "fixed" driving crop of `avatar
// animate` use the same convention.
//
// Everything is a function of (seed, batch index): the same call gives the same pixels on every
// machine and thread count, so a resumed run sees exactly the batches it would have seen.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "face/alignment.h"

namespace avatar::train {

// How a cross-identity pair (mixed, cross_identity) is cut and what its truths carry.
enum class CrossRule {
    // Every frame cut with its clip's one crop, as same-clip pairs are; the truths take the other
    // head's rotation and its move and growth since its clip's first frame (carry_pose). The
    // default, and the only rule before session 23.
    kClip,
    // Each frame cut around its own face, as `avatar animate` crops a still portrait and
    // synthbench its pairs; the truths take the other head's rotation only, each person keeping
    // their place and size in their own frame (synthbench's pair rule 2). The truths S', S'' are
    // cut with the source's crop, D', D'' with the driving frame's.
    kPortrait,
};
// "clip" or "portrait"; throws avatar::Error naming --cross-rule otherwise.
CrossRule parse_cross_rule(const std::string& name);
const char* cross_rule_name(CrossRule rule);

struct SyntheticClipOptions {
    int image_size = 64;      // side of the square crops handed to the network
    int render_size = 256;    // side of the rendered frames the crops are cut from
    int identities = 100000;  // identity seeds are drawn from this many
    int clip_frames = 125;    // length of a clip's motion sequence (5 s at 25 fps)
    double crop_scale = 1.7;  // pipeline::CropConvention's default
    int clip_reuse = 4;       // consecutive same-identity batches drawn from the same clips
    uint64_t seed = 1;        // synthbench v1 uses 20261121: keep the training world apart
    // Real skin (synth/photo_texture.h): images, folders or "faceapi-demo" whose faces are
    // unwrapped once when the sampler is made; a `photo_fraction` of the identities (drawn per
    // identity from the seed) wear one of them (identity mod count, with the seeded
    // augmentation), the rest keep the procedural skin. `backgrounds`: photographic backgrounds
    // for every identity (seeded crops). Empty: the procedural world only.
    std::vector<std::string> photo_textures;
    std::vector<std::string> backgrounds;
    double photo_fraction = 0.5;
    CrossRule cross_rule = CrossRule::kClip;
};

// A batch of frame pairs, float32 NCHW in [-1, 1], image_size x image_size, with the face's 468
// points in each crop: float32 [B, 468, 2] (x, y) in grid_sample's coordinates (align_corners =
// false: -1 and 1 are the crop's outer edges), so that a warp grid sampled at the driving
// frame's points can be compared with the source's. Points on the far side of a turned head are
// included (the renderer projects all 468; hidden ones are not marked).
//
// Every pair also carries the truth of the four renders of DPE's cycle (engines/dpe/trainer.h),
// which real videos cannot show and the synthetic world renders, each with its points:
//   source_edit   S'  = e(S, D): S's person, S's pose, D's expression and gaze, S's crop;
//   source_cycle  S'' = p(S', D): S's person, D's pose, D's expression and gaze, S's crop;
//   driving_edit  D'  = p(D, S): D's person, S's pose, D's expression and gaze, D's crop;
//   driving_cycle D'' = e(D', S): D's person, S's pose, S's expression and gaze, D's crop.
// Within one clip S'' is D, D'' is S, and S' and D' are one frame (equal tensors). Across
// identities (CrossRule::kClip) a pose is carried from one clip to the other by carry_pose
// (below): the rotation as it is, the head's move and growth since the clip's first frame as
// the network sees them through the crops, each person keeping their own size and place in their
// own crop; with CrossRule::kPortrait only the rotation is carried and each frame has a crop of
// its own.
struct ClipPairs {
    // The frames, [B, 3, S, S], and their points, [B, 468, 2].
    torch::Tensor source, driving;
    torch::Tensor source_points, driving_points;
    // The cycle's truth, [B, 3, S, S], and its points, [B, 468, 2].
    torch::Tensor source_edit, source_cycle, driving_edit, driving_cycle;
    torch::Tensor source_edit_points, source_cycle_points, driving_edit_points,
        driving_cycle_points;
    torch::Tensor same_identity;  // [B] bool: S and D are frames of one clip
};

// The coefficient row `row` of a clip whose first frame is `row_first` and whose crop is `crop`,
// given the head pose of `pose`, a row of another clip (first frame `pose_first`, crop
// `pose_crop`): the rotation of `pose`, and a head that has moved and grown since `row_first` as
// `pose`'s head did since `pose_first`, measured in crop widths (each crop is cut around its
// clip's first frame at crop_scale times the face). So each person keeps their own size and
// place in their own crop, as synthbench's cross-identity truths keep the source's (before
// session 21 the head took the other head's place and pixel scale, so a person with a larger
// face than the driver's was drawn larger than their crop shows them). Identity, expression and
// gaze stay `row`'s. Pose layout: face/face_model.h.
std::vector<float> carry_pose(const float* row, const float* row_first,
                              const face::CropTransform& crop, const float* pose,
                              const float* pose_first, const face::CropTransform& pose_crop);

class SyntheticClipSampler {
public:
    // Throws avatar::Error naming the bad option.
    explicit SyntheticClipSampler(const SyntheticClipOptions& options);
    ~SyntheticClipSampler();
    SyntheticClipSampler(const SyntheticClipSampler&) = delete;
    SyntheticClipSampler& operator=(const SyntheticClipSampler&) = delete;

    // Batch number `index`: `batch` pairs of two frames of the same clip (the training pairs of
    // self-supervised reenactment). Batches index / clip_reuse alike show the same people.
    ClipPairs same_identity(int64_t index, int64_t batch);
    // The same batch, except that a `cross_fraction` of its pairs (drawn per pair from a stream
    // of their own) take the driving frame from another person's clip: cross-identity
    // reenactment, whose truth only a synthetic world has. At 0 it is same_identity exactly.
    ClipPairs mixed(int64_t index, int64_t batch, double cross_fraction);
    // Source and driving frames of different identities (e.g. for the sample grids).
    ClipPairs cross_identity(int64_t index, int64_t batch);

    const SyntheticClipOptions& options() const { return options_; }

private:
    struct Impl;
    SyntheticClipOptions options_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace avatar::train
