#include "train/synthetic_clips.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "face/alignment.h"
#include "face/face_model.h"
#include "synth/dataset.h"
#include "synth/head.h"
#include "synth/motion_generator.h"
#include "synth/random.h"

namespace avatar::train {

namespace {
// Mixes a batch index and a purpose into the run's seed: every batch is an independent stream.
uint64_t stream_seed(uint64_t seed, int64_t index, uint64_t purpose) {
    synth::Random mix(seed ^ (0xD1B54A32D192ED03ULL * (static_cast<uint64_t>(index) + 1)) ^
                      (purpose * 0x94D049BB133111EBULL));
    return mix.next_u64();
}
}  // namespace

std::vector<float> carry_pose(const float* row, const float* row_first,
                              const face::CropTransform& crop, const float* pose,
                              const float* pose_first, const face::CropTransform& pose_crop) {
    // Box crops have no rotation, so the map from the pose clip's frame to this clip's frame is a
    // uniform scale k and a shift; a move of so many crop widths there is a move of k times its
    // pixels here.
    const auto map = pose_crop.image_to_crop.then(crop.crop_to_image);
    const double k = std::sqrt(std::abs(map.m[0] * map.m[4] - map.m[1] * map.m[3]));
    std::vector<float> out(row, row + face::face_layout_size());
    std::copy(pose, pose + 3, out.begin());  // pitch, yaw, roll
    for (int c = 3; c < 6; ++c)              // translation x, y, z
        out[c] = static_cast<float>(row_first[c] + k * (pose[c] - pose_first[c]));
    out[6] = static_cast<float>(row_first[6] * (pose[6] / pose_first[6]));  // scale
    return out;
}

CrossRule parse_cross_rule(const std::string& name) {
    if (name == "clip")
        return CrossRule::kClip;
    check(name == "portrait", "--cross-rule", "'" + name + "' is not one of clip, portrait");
    return CrossRule::kPortrait;
}

const char* cross_rule_name(CrossRule rule) {
    return rule == CrossRule::kClip ? "clip" : "portrait";
}

struct SyntheticClipSampler::Impl {
    explicit Impl(const SyntheticClipOptions& o) : options(o) {
        photo = synth::AppearanceSources::load(o.photo_textures, o.backgrounds);
        // The procedural identities share the photographic backgrounds, not the faces.
        procedural.backgrounds = photo.backgrounds;
        procedural.background_names = photo.background_names;
        if (!o.photo_textures.empty() || !o.backgrounds.empty())
            spdlog::info(
                "training data: {} photo faces for {:.0f} % of the identities, {} "
                "backgrounds",
                photo.faces.size(), 100.0 * o.photo_fraction, photo.backgrounds.size());
    }

    // One clip: the identity's renderer, its motion rows and the clip's fixed crop.
    struct Clip {
        std::unique_ptr<synth::HeadRenderer> head;
        std::vector<float> rows;
        face::CropTransform crop;
    };

    Clip open_clip(int64_t identity) {
        // Identity seeds come from the run's seed, so two runs with different seeds see
        // different people.
        synth::Random seeds(options.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(identity));
        const uint64_t appearance_seed = seeds.next_u64();
        const uint64_t motion_seed = seeds.next_u64();
        // Drawn after the two seeds above, so runs without photo textures see the people they
        // always saw.
        const bool photo_skin =
            !photo.faces.empty() && seeds.uniform(0.0, 1.0) < options.photo_fraction;
        Clip clip;
        synth::HeadRenderOptions render;
        render.width = render.height = options.render_size;
        clip.head = std::make_unique<synth::HeadRenderer>(
            (photo_skin ? photo : procedural).appearance(identity, appearance_seed, 1.0), render);
        synth::MotionOptions motion;
        motion.width = motion.height = options.render_size;
        clip.rows = synth::generate_motion(motion_seed, options.clip_frames, motion);
        // The crop of the clip: around the first frame's face.
        clip.head->render(clip.rows.data(), frame);
        clip.crop = crop_around_last_render(clip);
        return clip;
    }

    // The face's 468 points in the clip's last render, [468, 2] image pixels (float64).
    static torch::Tensor last_render_points(const Clip& clip) {
        const auto& screen = clip.head->face_screen();
        return torch::from_blob(const_cast<float*>(screen.data()),
                                {static_cast<int64_t>(screen.size() / 3), 3})
            .narrow(1, 0, 2)
            .to(torch::kFloat64);
    }

    // The FOMM-style square around the face of the clip's last render: crop_scale times the
    // extent of its 468 points.
    face::CropTransform crop_around_last_render(const Clip& clip) const {
        return face::box_crop_from_points(last_render_points(clip), options.image_size,
                                          {options.crop_scale, 0.0});
    }

    // The clip's person rendered with coefficient row `row` as the network's input [1, 3, S, S]
    // in [-1, 1], cut with `crop`, and its face's points [1, 468, 2] in the crop's grid_sample
    // coordinates.
    std::pair<torch::Tensor, torch::Tensor> crop_render(Clip& clip, const float* row,
                                                        const face::CropTransform& crop) {
        clip.head->render(row, frame);
        return cut_last_render(clip, crop);
    }

    // As above, cut with the clip's crop.
    std::pair<torch::Tensor, torch::Tensor> crop_render(Clip& clip, const float* row) {
        return crop_render(clip, row, clip.crop);
    }

    // As above, cut around the render's own face (CrossRule::kPortrait), whose crop is stored in
    // `crop`.
    std::pair<torch::Tensor, torch::Tensor> portrait_render(Clip& clip, const float* row,
                                                            face::CropTransform& crop) {
        clip.head->render(row, frame);
        crop = crop_around_last_render(clip);
        return cut_last_render(clip, crop);
    }

    std::pair<torch::Tensor, torch::Tensor> cut_last_render(const Clip& clip,
                                                            const face::CropTransform& crop) {
        const auto rgb = frame.rgb_tensor().permute({2, 0, 1}).unsqueeze(0) * 2.0f - 1.0f;
        const auto normalised = face::crop_grid_points(crop, last_render_points(clip));
        return {face::warp_crop_antialiased(rgb, crop, face::Border::kReplicate),
                normalised.to(torch::kFloat32).unsqueeze(0)};
    }

    static const float* row(const Clip& clip, int64_t t) {
        return clip.rows.data() + static_cast<size_t>(t * face::face_layout_size());
    }

    // Frame `t` of a clip, as crop_render.
    std::pair<torch::Tensor, torch::Tensor> crop_frame(Clip& clip, int64_t t) {
        return crop_render(clip, row(clip, t));
    }

    // Row `row` with the expression and gaze (the layout's columns [7 + K, end), as the
    // benchmark pairs mix them: synth/dataset.cpp) of `expression`.
    static std::vector<float> with_expression(const float* row, const float* expression) {
        const int64_t width = face::face_layout_size();
        const int64_t from = face::kPoseSize + face::face_model().identity_count();
        std::vector<float> mixed(row, row + width);
        std::copy(expression + from, expression + width, mixed.begin() + from);
        return mixed;
    }

    // Row `row` turned as `pose` is (pose columns 0-2; translation and scale stay `row`'s):
    // how synthbench's pair rule 2 carries a pose across people.
    static std::vector<float> with_rotation(const float* row, const float* pose) {
        std::vector<float> turned(row, row + face::face_layout_size());
        std::copy(pose, pose + 3, turned.begin());
        return turned;
    }

    // The clip of an identity, opened at most once while it stays in use: opening one (textures,
    // background, motion) costs ten times a frame, so consecutive batches share their clips.
    Clip& clip(int64_t identity) {
        auto it = clips.find(identity);
        if (it == clips.end())
            it = clips.emplace(identity, open_clip(identity)).first;
        return it->second;
    }

    // `same`: pairs of one clip, the people changing every clip_reuse batches, a `cross_fraction`
    // of them then re-drawn across identities; otherwise (cross_identity) every pair crosses.
    ClipPairs pairs(int64_t index, int64_t batch, bool same, double cross_fraction) {
        check(batch >= 1, "synthetic clips", "the batch size must be at least 1");
        check(cross_fraction >= 0 && cross_fraction <= 1, "--cross-fraction", "must be in [0, 1]");
        // Closed between batches, never within one: a pair holds two clips by reference.
        if (clips.size() + 2 * static_cast<size_t>(batch) > kMaxOpenClips)
            clips.clear();
        // Who is in a batch changes every clip_reuse batches; which frames, every batch.
        const int64_t reuse = same ? options.clip_reuse : 1;
        synth::Random who(stream_seed(options.seed, index / reuse, same ? 1 : 2));
        synth::Random when(stream_seed(options.seed, index, same ? 3 : 4));
        // Which pairs cross, and with whom: a stream of its own, so that the others are the
        // pairs same_identity gives.
        synth::Random crossing(stream_seed(options.seed, index, 5));
        std::vector<std::vector<torch::Tensor>> parts(12);
        std::vector<int64_t> same_flags;
        for (int64_t b = 0; b < batch; ++b) {
            const int64_t a = who.index(options.identities);
            int64_t other = same ? a : who.index(options.identities);
            const int64_t s = when.index(options.clip_frames);
            const int64_t d = when.index(options.clip_frames);
            if (same && cross_fraction > 0) {
                const bool cross = crossing.chance(cross_fraction);
                const int64_t partner = crossing.index(options.identities);
                if (cross)
                    other = partner;
            }
            Clip& A = clip(a);
            const float* row_s = row(A, s);
            const auto source = crop_render(A, row_s);
            std::vector<std::pair<torch::Tensor, torch::Tensor>> rendered;
            if (other == a) {
                const auto driving = crop_frame(A, d);
                const auto edit = crop_render(A, with_expression(row_s, row(A, d)).data());
                rendered = {source, driving, edit, driving, edit, source};
            } else if (options.cross_rule == CrossRule::kPortrait) {
                Clip& B = clip(other);
                const float* row_d = row(B, d);
                face::CropTransform source_crop, driving_crop;
                const auto source_own = portrait_render(A, row_s, source_crop);
                const auto driving = portrait_render(B, row_d, driving_crop);
                const auto s1_row = with_expression(row_s, row_d);
                const auto s1 = crop_render(A, s1_row.data(), source_crop);
                const auto s2 =
                    crop_render(A, with_rotation(s1_row.data(), row_d).data(), source_crop);
                const auto d1_row = with_rotation(row_d, row_s);
                const auto d1 = crop_render(B, d1_row.data(), driving_crop);
                const auto d2 =
                    crop_render(B, with_expression(d1_row.data(), row_s).data(), driving_crop);
                rendered = {source_own, driving, s1, s2, d1, d2};
            } else {
                Clip& B = clip(other);
                const float* row_d = row(B, d);
                const auto driving = crop_render(B, row_d);
                const auto s1 = crop_render(A, with_expression(row_s, row_d).data());
                const auto a_in_d_pose =
                    carry_pose(row_s, row(A, 0), A.crop, row_d, row(B, 0), B.crop);
                const auto s2 = crop_render(A, with_expression(a_in_d_pose.data(), row_d).data());
                const auto b_in_s_pose =
                    carry_pose(row_d, row(B, 0), B.crop, row_s, row(A, 0), A.crop);
                const auto d1 = crop_render(B, b_in_s_pose.data());
                const auto d2 = crop_render(B, with_expression(b_in_s_pose.data(), row_s).data());
                rendered = {source, driving, s1, s2, d1, d2};
            }
            for (size_t k = 0; k < rendered.size(); ++k) {
                parts[2 * k].push_back(rendered[k].first);
                parts[2 * k + 1].push_back(rendered[k].second);
            }
            same_flags.push_back(other == a);
        }
        // In the order of `rendered`: each frame, then its points.
        static constexpr torch::Tensor ClipPairs::*kFields[] = {
            &ClipPairs::source,        &ClipPairs::source_points,
            &ClipPairs::driving,       &ClipPairs::driving_points,
            &ClipPairs::source_edit,   &ClipPairs::source_edit_points,
            &ClipPairs::source_cycle,  &ClipPairs::source_cycle_points,
            &ClipPairs::driving_edit,  &ClipPairs::driving_edit_points,
            &ClipPairs::driving_cycle, &ClipPairs::driving_cycle_points};
        ClipPairs out;
        for (size_t k = 0; k < parts.size(); ++k)
            out.*kFields[k] = torch::cat(parts[k], 0);
        out.same_identity = torch::tensor(same_flags).to(torch::kBool);
        return out;
    }

    static constexpr size_t kMaxOpenClips = 256;
    std::map<int64_t, Clip> clips;
    synth::AppearanceSources photo, procedural;  // with and without the photo faces

    SyntheticClipOptions options;
    synth::RenderOutput frame;
};

SyntheticClipSampler::SyntheticClipSampler(const SyntheticClipOptions& options)
    : options_(options) {
    check(options.image_size >= 8 && options.image_size <= 1024, "--size",
          "the image size must be in [8, 1024], got " + std::to_string(options.image_size));
    check(options.render_size >= 32 && options.render_size <= 2048, "render size",
          "must be in [32, 2048], got " + std::to_string(options.render_size));
    check(options.identities >= 1, "--identities", "at least one identity is needed");
    check(options.clip_frames >= 2, "clip frames", "a clip needs at least two frames");
    check(options.clip_reuse >= 1, "clip reuse", "must be at least 1");
    check(options.crop_scale > 0.5 && options.crop_scale < 4.0, "crop scale",
          "must be in (0.5, 4)");
    check(options.photo_fraction >= 0 && options.photo_fraction <= 1, "--photo-fraction",
          "must be in [0, 1]");
    // After the checks: unwrapping the photo textures takes a while.
    impl_ = std::make_unique<Impl>(options);
}

SyntheticClipSampler::~SyntheticClipSampler() = default;

ClipPairs SyntheticClipSampler::same_identity(int64_t index, int64_t batch) {
    return impl_->pairs(index, batch, true, 0.0);
}

ClipPairs SyntheticClipSampler::mixed(int64_t index, int64_t batch, double cross_fraction) {
    return impl_->pairs(index, batch, true, cross_fraction);
}

ClipPairs SyntheticClipSampler::cross_identity(int64_t index, int64_t batch) {
    return impl_->pairs(index, batch, false, 0.0);
}

}  // namespace avatar::train
