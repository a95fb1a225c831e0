#pragma once
// The synthetic data set writer behind `avatar synth` (issue #8; layout documented and versioned in
// docs/synthetic-world.md): per identity a video, the per-frame avatar-face-v1 coefficients,
// 468 and 68 landmarks, boxes, masks and face-part labels, all from one seed.
//
// Layout (version 1):
//   DIR/synth.json                       manifest: format "avatar-synth", version, options, files,
//                                        label names
//   DIR/identity_NNNN/video.mp4          H.264, size x size, `fps`
//   DIR/pairs/...                        with options.pairs > 0 (below; each image with a
//                                        coverage mask and a label map, revision 2)
//   DIR/identity_NNNN/motion.safetensors avatar-motion v1 (docs/motion-format.md), layout
//                                        avatar-face-v1: channels pose, identity, expression,
//                                        gaze, coefficients, landmarks468, landmarks68, box,
//                                        face_found, plus extra channels mask (uint8 [N, S, S],
//                                        coverage x 255) and labels (uint8 [N, S, S])
// Identity i's appearance and motion come from two 64-bit seeds drawn in order from
// splitmix64(seed), so identity i is the same whatever --identities is. The video is encoded
// with one x264 thread so that the same seed gives the same bytes.
//
// Nothing half-written: everything goes into DIR.partial (removed first if a previous run left
// it) and is renamed to DIR at the end; on failure DIR.partial is removed. DIR must not exist or
// be an empty folder.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include <string>
#include <utility>

#include "media/motion_file.h"
#include "synth/head.h"
#include "synth/photo_texture.h"

namespace avatar::synth {

struct DatasetOptions {
    int identities = 4;
    int64_t frames = 100;  // per identity
    int size = 256;        // frame width = height, pixels
    uint64_t seed = 1;
    double fps = 25.0;
    float camera_distance_cm = 0.0f;  // 0 = the layout's weak perspective; else a pinhole
    int supersample = 2;
    int crf = 18;
    // Benchmark pairs with ground truth (needs identities >= 2): for pair k, identities A != B
    // and frames i (of A), j (of B) drawn from the seed; rendered as PNGs in DIR/pairs/pair_KKKK/:
    // source (A at i), driving (B at j), reenact (A's look and identity with B's pose,
    // expression and gaze at j), expression_only (A's pose at i, B's expression and gaze at j),
    // pose_only (B's pose at j, A's expression and gaze at i); DIR/pairs/pairs.json lists the
    // identities, frames and the coefficient row of every image. "A at another frame" is A's
    // own video. Also self_reenact: A at another frame k of its own motion, the driving image
    // and the truth of self-reenactment ("frame_self" = k; sets written before it was added
    // lack it, and readers detect it by its row).
    int pairs = 0;
    // How the pairs' rows are made (docs/synthetic-world.md):
    //   1  (synthbench v1) "X at i" is the last row of X's motion generated i + 1 frames long,
    //      which is not frame i of X's video (the generator's draws depend on the clip's length),
    //      and the cross-identity truths take all 7 of B's pose columns: B's head rotation and
    //      B's position and size in B's frame;
    //   2  "X at i" is frame i of X's video, and the cross-identity truths (reenact, pose_only)
    //      take B's head rotation only, keeping A's translation and scale: where A's head is in
    //      A's frame, which a crop-based engine cannot see in B's image and absolute
    //      retargeting keeps too (face/retarget.h). self_reenact is a true frame of A's video.
    int pair_rule = 2;
    // Also store every frame uncompressed (extra channel "rgb", uint8 [N, S, S, 3]) in the motion
    // file, so that training can read frames without decoding the video (3 x S² bytes a frame).
    bool raw_frames = false;
    std::string name;  // recorded in synth.json ("synthbench-v1" for the preset below)
    // Photo textures (synth/photo_texture.h): images (files, folders, or "faceapi-demo") whose
    // faces are unwrapped once; identity i then wears usable face (i mod count), augmented from
    // its appearance seed. Empty = the procedural skin.
    std::vector<std::string> photo_textures;
    // Photographic backgrounds (files or folders): identity i gets a random crop of one, drawn
    // from its appearance seed. Empty = the procedural gradient.
    std::vector<std::string> backgrounds;
};

// The photo textures and backgrounds of a data set, loaded once and shared by every identity.
struct AppearanceSources {
    std::vector<PhotoFace> faces;
    std::vector<std::string> background_names;
    std::vector<torch::Tensor> backgrounds;  // uint8 [H, W, 3]

    // Unwraps the faces of `photo_textures` and reads `backgrounds` (DatasetOptions); empty
    // lists load nothing. Throws avatar::Error naming the option at fault.
    static AppearanceSources load(const std::vector<std::string>& photo_textures,
                                  const std::vector<std::string>& backgrounds);
    // Identity `identity`'s look: random_appearance(seed), or photo_appearance of face
    // (identity mod count) when there are faces; then a background crop when there are
    // backgrounds. `describe` (optional) receives the sources: {"texture", ...}, {"background",
    // ...} attribute pairs for the motion file.
    Appearance appearance(
        int64_t identity, uint64_t seed, double aspect,
        std::vector<std::pair<std::string, std::string>>* describe = nullptr) const;
};

// synthbench v1, the fixed benchmark set: 20 identities x 100 frames at 256x256, 25 fps, seed
// 20261121, weak perspective, 2x2 supersampling, crf 18, 100 pairs. Never change these numbers;
// a different set is a new version.
DatasetOptions synthbench_v1();
// synthbench v2: v1's identities, frames, images and pair draws, with pair rule 2 (above). Never
// change these numbers either.
DatasetOptions synthbench_v2();
// The selection set of synthbench v2: v2's design with another seed (20261206), so other
// identities, videos and pairs, and four times its size (80 identities, 400 pairs), as two
// checkpoints' means over 100 pairs can differ by less than 100 pairs resolve. Checkpoints and
// settings are chosen on it, so that v2 stays a test set that nothing was tuned on. Never change
// these numbers either.
DatasetOptions synthbench_v2_select();
// A preset by its name (synthbench-v1, synthbench-v2, synthbench-v2-select); throws
// avatar::Error naming the known ones.
DatasetOptions dataset_preset(const std::string& name);

// Throws avatar::Error naming the bad option or path. `on_frame` (optional) is called after
// every rendered frame.
void write_dataset(const std::filesystem::path& dir, const DatasetOptions& options,
                   const std::function<void()>& on_frame = {});

// Reads a data set written by write_dataset (what training code uses). Throws avatar::Error
// naming the file if the manifest is missing, of another format or of a newer version.
class SyntheticDataset {
public:
    explicit SyntheticDataset(const std::filesystem::path& dir);
    int64_t size() const { return static_cast<int64_t>(folders_.size()); }  // identities
    int image_size() const { return image_size_; }
    const std::string& name() const { return name_; }  // "" when the set has none
    int pair_rule() const { return pair_rule_; }       // 1 for sets written before revision 3
    // Identity i's motion file (coefficients, landmarks, masks, labels, ...).
    media::Motion motion(int64_t i) const;
    // Identity i's frames, uint8 [N, S, S, 3]: the "rgb" channel when the set was written with
    // raw_frames (no decoding), else decoded from the video (lossy H.264).
    torch::Tensor frames(int64_t i) const;

private:
    std::filesystem::path dir_;
    std::vector<std::string> folders_;
    int image_size_ = 0;
    std::string name_;
    int pair_rule_ = 1;
};

// A contact sheet PNG: `identities` rows (identity i as in write_dataset with this seed, its
// coefficients' identity part from its motion seed) x 4 expressions (neutral, smile, open mouth,
// surprise) x 3 poses (yaw -35, 0, +35 degrees), each tile `tile` x `tile` pixels.
void write_contact_sheet(const std::filesystem::path& png, uint64_t seed, int identities, int tile);
// The same with photo textures and backgrounds (identity i's look as in write_dataset).
void write_contact_sheet(const std::filesystem::path& png, uint64_t seed, int identities, int tile,
                         const AppearanceSources& sources);

}  // namespace avatar::synth
