// The synthetic head: every part shows where it should, blink closes the eyes, the jaw opens the
// mouth, gaze moves the iris, no background shows through the head at any pose, determinism.
// Set AVATAR_SYNTH_DEBUG_DIR to get the rendered frames as PNG files.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "media/image.h"
#include "synth/head.h"

namespace avatar::synth {
namespace {

struct Row {
    std::vector<float> values;
    int64_t K, E;
    Row() {
        const auto& m = face::face_model();
        K = m.identity_count();
        E = m.expression_count();
        values.assign(static_cast<size_t>(face::face_layout_size()), 0.0f);
        values[3] = 128.0f;  // translation: the model origin at the image centre, a bit high
        values[4] = 112.0f;
        values[6] = 6.0f;  // px per cm
    }
    float& pitch() { return values[0]; }
    float& yaw() { return values[1]; }
    float& expression(int i) { return values[static_cast<size_t>(7 + K + i)]; }
    float& gaze(int i) { return values[static_cast<size_t>(7 + K + E + i)]; }
    const float* data() const { return values.data(); }
};

// Background pixels (mask 0) that cannot be reached from the image border through background:
// holes in the head.
std::vector<int> enclosed_background_pixels(const RenderOutput& out) {
    const int W = out.width, H = out.height;
    std::vector<uint8_t> seen(static_cast<size_t>(W * H), 0);
    std::vector<int> stack;
    const auto push = [&](int x, int y) {
        const size_t i = static_cast<size_t>(y * W + x);
        if (x < 0 || y < 0 || x >= W || y >= H || seen[i] || out.mask[i] > 0.0f)
            return;
        seen[i] = 1;
        stack.push_back(y * W + x);
    };
    for (int x = 0; x < W; ++x) {
        push(x, 0);
        push(x, H - 1);
    }
    for (int y = 0; y < H; ++y) {
        push(0, y);
        push(W - 1, y);
    }
    while (!stack.empty()) {
        const int p = stack.back();
        stack.pop_back();
        push(p % W + 1, p / W);
        push(p % W - 1, p / W);
        push(p % W, p / W + 1);
        push(p % W, p / W - 1);
    }
    std::vector<int> holes;
    for (size_t i = 0; i < seen.size(); ++i)
        if (out.mask[i] == 0.0f && !seen[i])
            holes.push_back(static_cast<int>(i));
    return holes;
}

// Enclosed background next to (within 2 px of) the face, the eyes or the mouth: a gap in the
// geometry. Enclosed background elsewhere can be legitimate (between a hair flap and an ear).
int face_holes(const RenderOutput& out) {
    int holes = 0;
    for (const int i : enclosed_background_pixels(out)) {
        bool near_face = false;
        for (int dy = -2; dy <= 2; ++dy)
            for (int dx = -2; dx <= 2; ++dx) {
                const int x = i % out.width + dx, y = i / out.width + dy;
                if (x < 0 || y < 0 || x >= out.width || y >= out.height)
                    continue;
                const uint8_t l = out.label[static_cast<size_t>(y * out.width + x)];
                near_face = near_face || l == kLabelFaceSkin || l == kLabelLips ||
                            l == kLabelBrows || l == kLabelSclera || l == kLabelIris ||
                            l == kLabelMouthCavity || l == kLabelTeeth || l == kLabelTongue;
            }
        holes += near_face;
    }
    return holes;
}

void maybe_save(const RenderOutput& out, const std::string& name) {
    const char* dir = std::getenv("AVATAR_SYNTH_DEBUG_DIR");
    if (!dir)
        return;
    std::filesystem::create_directories(dir);
    const auto rgb = (out.rgb_tensor() * 255.0f).round().clamp(0, 255).to(torch::kUInt8);
    media::write_image(std::filesystem::path(dir) / (name + ".png"), rgb);
    // Labels as grey levels, holes (enclosed background) in red.
    auto labels = (out.label_tensor().to(torch::kInt32) * 18).clamp(0, 255).to(torch::kUInt8);
    labels = labels.unsqueeze(-1).repeat({1, 1, 3}).contiguous();
    for (const int i : enclosed_background_pixels(out)) {
        labels[i / out.width][i % out.width][0] = 255;
        labels[i / out.width][i % out.width][1] = 0;
    }
    media::write_image(std::filesystem::path(dir) / (name + "_labels.png"), labels);
}

std::map<int, int> label_counts(const RenderOutput& out) {
    std::map<int, int> counts;
    for (uint8_t l : out.label)
        ++counts[l];
    return counts;
}

// Centroid x of the pixels with a label.
double label_centroid_x(const RenderOutput& out, uint8_t label) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < out.width * out.height; ++i)
        if (out.label[static_cast<size_t>(i)] == label) {
            sum += i % out.width;
            ++n;
        }
    return n ? sum / n : -1.0;
}

TEST(Head, FrontalHeadHasEveryPart) {
    SKIP_WITHOUT_MEDIAPIPE();
    Appearance look;
    look.hair_style = HairStyle::short_cut;
    HeadRenderer head(look, HeadRenderOptions{});
    Row row;
    RenderOutput out;
    head.render(row.data(), out);
    maybe_save(out, "frontal");
    const auto counts = label_counts(out);
    for (const uint8_t label :
         {kLabelFaceSkin, kLabelHeadSkin, kLabelNeck, kLabelClothes, kLabelHair, kLabelBrows,
          kLabelLips, kLabelSclera, kLabelIris, kLabelEars, kLabelBackground})
        EXPECT_GT(counts.count(label) ? counts.at(label) : 0, 10)
            << label_names()[label] << " is missing";
    EXPECT_LE(face_holes(out), 4);
    // The UV image covers the face and nothing else.
    int uv = 0;
    for (size_t i = 0; i < out.uv_valid.size(); ++i) {
        uv += out.uv_valid[i];
        if (out.uv_valid[i]) {
            EXPECT_TRUE(out.label[i] == kLabelFaceSkin || out.label[i] == kLabelLips ||
                        out.label[i] == kLabelBrows);
        }
    }
    EXPECT_GT(uv, 4000);
}

TEST(Head, BlinkJawAndGaze) {
    SKIP_WITHOUT_MEDIAPIPE();
    HeadRenderer head(random_appearance(3), HeadRenderOptions{});
    Row row;
    RenderOutput open_eyes, closed, jaw, look_right;
    head.render(row.data(), open_eyes);
    row.expression(13) = 1.0f;  // blink_left
    row.expression(14) = 1.0f;  // blink_right
    head.render(row.data(), closed);
    maybe_save(closed, "blink");
    const auto eyes = [](const RenderOutput& o) {
        const auto c = label_counts(o);
        return (c.count(kLabelIris) ? c.at(kLabelIris) : 0) +
               (c.count(kLabelSclera) ? c.at(kLabelSclera) : 0);
    };
    EXPECT_GT(eyes(open_eyes), 60);
    // A few pixels of the eye sockets' corners may remain.
    EXPECT_LT(eyes(closed), eyes(open_eyes) / 5);

    row.expression(13) = row.expression(14) = 0.0f;
    row.expression(0) = 1.0f;  // jaw_open
    head.render(row.data(), jaw);
    maybe_save(jaw, "jaw_open");
    const auto mouth = [](const RenderOutput& o) {
        const auto c = label_counts(o);
        int n = 0;
        for (const uint8_t l : {kLabelMouthCavity, kLabelTeeth, kLabelTongue})
            n += c.count(l) ? c.at(l) : 0;
        return n;
    };
    // The canonical lips are parted: cavity and teeth show at rest, mouth_close hides them and
    // jaw_open shows far more.
    EXPECT_GT(mouth(jaw), mouth(open_eyes) + 150);
    EXPECT_GT(mouth(open_eyes), 40);
    EXPECT_GT(label_counts(open_eyes)[kLabelTeeth], 20);
    RenderOutput closed_mouth;
    row.expression(0) = 0.0f;
    row.expression(1) = 1.0f;  // mouth_close
    head.render(row.data(), closed_mouth);
    EXPECT_LT(mouth(closed_mouth), 20);
    row.expression(1) = 0.0f;

    row.expression(0) = 0.0f;
    for (int i : {1, 3})
        row.gaze(i) = 0.5f;  // both eyes toward image right
    head.render(row.data(), look_right);
    maybe_save(look_right, "gaze_right");
    EXPECT_GT(label_centroid_x(look_right, kLabelIris),
              label_centroid_x(open_eyes, kLabelIris) + 1.5);
}

TEST(Head, NoHolesAtLargePosesAndPerspective) {
    SKIP_WITHOUT_MEDIAPIPE();
    for (const float distance : {0.0f, 50.0f}) {
        HeadRenderOptions options;
        options.camera_distance_cm = distance;
        for (int style = 0; style < kHairStyleCount; ++style) {
            Appearance look = random_appearance(static_cast<uint64_t>(10 + style));
            look.hair_style = static_cast<HairStyle>(style);
            HeadRenderer head(look, options);
            for (const auto& [pitch, yaw] : std::vector<std::pair<float, float>>{
                     {0.0f, 1.05f}, {0.0f, -1.05f}, {0.5f, 0.3f}, {-0.5f, -0.3f}}) {
                Row row;
                row.pitch() = pitch;
                row.yaw() = yaw;
                row.expression(0) = 0.6f;
                RenderOutput out;
                head.render(row.data(), out);
                maybe_save(out, "pose_d" + std::to_string(static_cast<int>(distance)) + "_s" +
                                    std::to_string(style) + "_p" + std::to_string(pitch) + "_y" +
                                    std::to_string(yaw));
                // Known: at grazing angles a slit of a few pixels can open between the hair's
                // edge and the temple's silhouette; a missing face, eye or mouth part would
                // leave hundreds.
                EXPECT_LE(face_holes(out), 40)
                    << "style " << style << " pitch " << pitch << " yaw " << yaw;
            }
        }
    }
}

TEST(Head, DeterministicAndThreadIndependent) {
    SKIP_WITHOUT_MEDIAPIPE();
    Row row;
    row.yaw() = 0.4f;
    row.expression(0) = 0.3f;
    row.gaze(0) = 0.1f;
    const int threads = at::get_num_threads();
    RenderOutput a, b, c;
    at::set_num_threads(1);
    HeadRenderer(random_appearance(7), HeadRenderOptions{}).render(row.data(), a);
    at::set_num_threads(2);
    HeadRenderer(random_appearance(7), HeadRenderOptions{}).render(row.data(), b);
    HeadRenderer(random_appearance(7), HeadRenderOptions{}).render(row.data(), c);
    at::set_num_threads(threads);
    EXPECT_EQ(a.rgb, b.rgb);
    EXPECT_EQ(b.rgb, c.rgb);
    EXPECT_EQ(a.label, c.label);
    HeadRenderer other(random_appearance(8), HeadRenderOptions{});
    RenderOutput d;
    other.render(row.data(), d);
    EXPECT_NE(d.rgb, c.rgb);
}

}  // namespace
}  // namespace avatar::synth
