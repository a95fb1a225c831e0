// The data set writer and `avatar synth`: the layout of docs/synthetic-world.md, landmarks that
// agree with the coefficients, bit-identical files for the same seed, one-line errors and
// nothing left behind on failure.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_runner.h"
#include "core/error.h"
#include "core/files.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "face/model_files.h"
#include "media/image.h"
#include "media/motion_file.h"
#include "media/video_reader.h"
#include "scratch_dir.h"
#include "synth/dataset.h"
#include "synth/head.h"
#include "synth/motion_generator.h"

namespace avatar::synth {
namespace {
namespace fs = std::filesystem;

TEST(Dataset, LayoutAndLandmarks) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("synth", "layout");
    DatasetOptions o;
    o.identities = 2;
    o.frames = 6;
    o.size = 128;
    o.seed = 5;
    o.pairs = 2;
    int frames = 0;
    write_dataset(root / "set", o, [&] { ++frames; });
    EXPECT_EQ(frames, 12);
    EXPECT_FALSE(fs::exists(root / "set.partial"));
    const auto manifest = nlohmann::json::parse(read_text_file(root / "set" / "synth.json"));
    EXPECT_EQ(manifest["format"], "avatar-synth");
    EXPECT_EQ(manifest["version"], 1);
    EXPECT_EQ(manifest["revision"], 3);
    EXPECT_EQ(manifest["pair_rule"], 2);
    EXPECT_TRUE(manifest["photo_textures"].empty());
    EXPECT_TRUE(manifest["backgrounds"].empty());
    ASSERT_EQ(manifest["items"].size(), 2u);
    for (int i = 0; i < 2; ++i) {
        const auto folder = root / "set" / manifest["items"][i]["folder"].get<std::string>();
        const auto motion = media::read_motion(folder / "motion.safetensors");
        EXPECT_EQ(motion.layout, face::kFaceLayoutName);
        EXPECT_EQ(motion.frame_count, 6);
        EXPECT_EQ(motion.image_width, 128);
        const auto rows = motion.channels.at("coefficients");
        ASSERT_EQ(rows.size(1), face::face_layout_size());
        // The stored 468 points are the layout's projection of the face model (weak perspective).
        const auto parts = face::unpack_face_coefficients(rows.to(torch::kFloat64));
        const auto v = face::face_model().vertices(parts.identity, parts.expression);
        const auto R = face::euler_rad_to_rotation(parts.pose.narrow(1, 0, 3));
        auto p = torch::matmul(v, R.transpose(1, 2)) * parts.pose.select(1, 6).view({-1, 1, 1});
        p = p * torch::tensor({1.0, -1.0, -1.0}, torch::kFloat64) +
            parts.pose.narrow(1, 3, 3).unsqueeze(1);
        const auto mesh = motion.channels.at("landmarks468").to(torch::kFloat64);
        EXPECT_LT((mesh.narrow(2, 0, 2) - p.narrow(2, 0, 2)).abs().max().item<double>(), 1e-3);
        EXPECT_EQ(motion.channels.at("landmarks68").sizes(), (std::vector<int64_t>{6, 68, 2}));
        EXPECT_EQ(motion.channels.at("mask").sizes(), (std::vector<int64_t>{6, 128, 128}));
        EXPECT_GT(motion.channels.at("mask").to(torch::kFloat32).mean().item<double>(), 20.0);
        EXPECT_GT(motion.channels.at("labels").max().item<int64_t>(), 5);
        media::VideoReader video(folder / "video.mp4");
        int n = 0;
        while (video.next_frame())
            ++n;
        EXPECT_EQ(n, 6);
    }
    // Benchmark pairs: images and rows that mix A and B as documented.
    const auto pairs = nlohmann::json::parse(read_text_file(root / "set" / "pairs" / "pairs.json"));
    ASSERT_EQ(pairs["pairs"].size(), 2u);
    const int64_t K = face::face_model().identity_count();
    for (const auto& pair : pairs["pairs"]) {
        EXPECT_NE(pair["identity_a"], pair["identity_b"]);
        const auto folder = root / "set" / "pairs" / pair["folder"].get<std::string>();
        for (const char* image : {"source", "driving", "reenact", "expression_only", "pose_only"}) {
            EXPECT_TRUE(fs::is_regular_file(folder / (std::string(image) + ".png"))) << image;
            // Revision 2: each pair image has its coverage mask and label map, which agree (a
            // pixel is background in one exactly when it is in the other).
            const auto mask = media::read_image(folder / (std::string(image) + "_mask.png"));
            const auto labels = media::read_image(folder / (std::string(image) + "_labels.png"));
            ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{128, 128, 3})) << image;
            ASSERT_EQ(labels.sizes(), mask.sizes()) << image;
            const auto l = labels.select(2, 0), m = mask.select(2, 0);
            EXPECT_LE(l.max().item<int64_t>(), 13) << image;
            EXPECT_GT(l.max().item<int64_t>(), 5) << image;
            EXPECT_TRUE(torch::equal(l.eq(0), m.eq(0))) << image;
            EXPECT_GT(m.to(torch::kFloat32).mean().item<double>(), 20.0) << image;
        }
        const auto rows = pair["rows"];
        const auto src = rows["source"].get<std::vector<float>>();
        const auto drv = rows["driving"].get<std::vector<float>>();
        const auto re = rows["reenact"].get<std::vector<float>>();
        const auto ex = rows["expression_only"].get<std::vector<float>>();
        const auto po = rows["pose_only"].get<std::vector<float>>();
        // Pair rule 2: B's head rotation (columns 0-2) crosses over, A's translation and scale
        // (3-6) stay.
        for (size_t c = 0; c < src.size(); ++c) {
            const bool rotation = c < 3, pose = c < 7;
            const bool identity = c >= 7 && c < static_cast<size_t>(7 + K);
            EXPECT_EQ(re[c], identity || (pose && !rotation) ? src[c] : drv[c]) << c;
            EXPECT_EQ(ex[c], pose || identity ? src[c] : drv[c]) << c;
            EXPECT_EQ(po[c], rotation ? drv[c] : src[c]) << c;
        }
        // The source row is frame_a of A's motion file.
        const auto motion = media::read_motion(
            root / "set" /
            manifest["items"][pair["identity_a"].get<int>()]["motion"].get<std::string>());
        const auto row = motion.channels.at("coefficients")[pair["frame_a"].get<int64_t>()];
        for (size_t c = 0; c < src.size(); ++c)
            EXPECT_EQ(row[static_cast<int64_t>(c)].item<float>(), src[c]);
        // Self-reenactment: A at another frame of its own motion, rendered as self_reenact.png.
        EXPECT_TRUE(fs::is_regular_file(folder / "self_reenact.png"));
        const int64_t frame_self = pair["frame_self"].get<int64_t>();
        EXPECT_NE(frame_self, pair["frame_a"].get<int64_t>());
        const auto self = rows["self_reenact"].get<std::vector<float>>();
        const auto self_row = motion.channels.at("coefficients")[frame_self];
        ASSERT_EQ(self.size(), src.size());
        for (size_t c = 0; c < self.size(); ++c)
            EXPECT_EQ(self_row[static_cast<int64_t>(c)].item<float>(), self[c]) << c;
        // The driving row is frame_b of B's motion file.
        const auto motion_b = media::read_motion(
            root / "set" /
            manifest["items"][pair["identity_b"].get<int>()]["motion"].get<std::string>());
        const auto row_b = motion_b.channels.at("coefficients")[pair["frame_b"].get<int64_t>()];
        for (size_t c = 0; c < drv.size(); ++c)
            EXPECT_EQ(row_b[static_cast<int64_t>(c)].item<float>(), drv[c]) << c;
    }
    // The loader: frames from the video (lossy) are close to the raw frames of a raw_frames set.
    const SyntheticDataset loaded(root / "set");
    EXPECT_EQ(loaded.size(), 2);
    EXPECT_EQ(loaded.image_size(), 128);
    const auto decoded = loaded.frames(1);
    EXPECT_EQ(decoded.sizes(), (std::vector<int64_t>{6, 128, 128, 3}));
    EXPECT_EQ(loaded.motion(1).frame_count, 6);
    EXPECT_THROW(loaded.motion(2), avatar::Error);
    DatasetOptions raw_options = o;
    raw_options.raw_frames = true;
    raw_options.pairs = 0;
    write_dataset(root / "raw", raw_options);
    const auto raw = SyntheticDataset(root / "raw").frames(1);
    EXPECT_EQ(raw.sizes(), decoded.sizes());
    EXPECT_LT((raw.to(torch::kFloat32) - decoded.to(torch::kFloat32)).abs().mean().item<double>(),
              3.0);
    EXPECT_THROW(SyntheticDataset(root / "missing"), avatar::Error);
    // Identity 0 is the same whatever the number of identities.
    o.identities = 1;
    o.pairs = 0;
    write_dataset(root / "one", o);
    EXPECT_EQ(read_file(root / "one" / "identity_0000" / "motion.safetensors"),
              read_file(root / "set" / "identity_0000" / "motion.safetensors"));
}

TEST(Dataset, PhotographicBackgrounds) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("synth", "backgrounds");
    // A background whose blue channel is 77 everywhere, unlike any procedural gradient.
    auto image = torch::full({120, 200, 3}, 77, torch::kUInt8);
    image.select(2, 0).copy_(
        torch::arange(200).div(200.0 / 255.0).to(torch::kUInt8).expand({120, 200}));
    media::write_image(root / "bg.png", image);
    DatasetOptions o;
    o.identities = 2;
    o.frames = 2;
    o.size = 64;
    o.seed = 3;
    o.raw_frames = true;
    o.backgrounds = {(root / "bg.png").string()};
    write_dataset(root / "set", o);
    const auto manifest = nlohmann::json::parse(read_text_file(root / "set" / "synth.json"));
    EXPECT_EQ(manifest["backgrounds"], nlohmann::json::array({"bg.png"}));
    const SyntheticDataset set(root / "set");
    for (int64_t i = 0; i < 2; ++i) {
        const auto motion = set.motion(i);
        EXPECT_EQ(motion.attributes.at("background").rfind("photo bg.png crop ", 0), 0u)
            << motion.attributes.at("background");
        EXPECT_EQ(motion.attributes.at("texture"), "procedural");
        const auto frames = set.frames(i);
        const auto background = motion.channels.at("mask").eq(0);
        ASSERT_GT(background.sum().item<int64_t>(), 500);
        const auto blue = frames.select(3, 2).masked_select(background).to(torch::kInt32);
        EXPECT_EQ(blue.min().item<int>(), 77);
        EXPECT_EQ(blue.max().item<int>(), 77);
    }
    // A missing background is a one-line error naming the option; nothing is left behind.
    o.backgrounds = {(root / "missing.png").string()};
    try {
        write_dataset(root / "bad", o);
        FAIL() << "no error";
    } catch (const avatar::Error& e) {
        EXPECT_NE(std::string(e.what()).find("--backgrounds"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(root / "bad"));
    EXPECT_FALSE(fs::exists(root / "bad.partial"));
}

TEST(Dataset, PhotoTexturesThroughTheCli) {
    SKIP_WITHOUT_MEDIAPIPE();
    if (!fs::exists(face::human_model_file("facemesh.json")) ||
        !fs::exists(face::human_model_file("blazeface.json")))
        GTEST_SKIP() << "the pinned face models are not installed under "
                     << face::npm_packages_dir();
    const auto root = testing::fresh_dir("synth", "photo_cli");
    // The "photo": a rendered head, so the test needs no photo files.
    {
        HeadRenderOptions options;
        options.width = options.height = 384;
        HeadRenderer head(random_appearance(4), options);
        std::vector<float> row(static_cast<size_t>(face::face_layout_size()), 0.0f);
        row[3] = 192.0f;
        row[4] = 176.0f;
        row[6] = 14.0f;
        RenderOutput out;
        head.render(row.data(), out);
        media::write_image(root / "face.png",
                           (out.rgb_tensor() * 255.0f).round().clamp(0, 255).to(torch::kUInt8));
    }
    const auto unwrap = testing::run_cli("synth --unwrap " + (root / "face.png").string() + " -o " +
                                         (root / "texture.png").string() + " --size 128");
    ASSERT_EQ(unwrap.exit_status, 0) << unwrap.output;
    EXPECT_NE(unwrap.output.find("of the skin observed"), std::string::npos) << unwrap.output;
    EXPECT_EQ(media::read_image(root / "texture.png").sizes(), (std::vector<int64_t>{128, 128, 3}));
    const auto set = testing::run_cli("synth -q -o " + (root / "set").string() +
                                      " --identities 2 --frames 2 --size 64 --photo-textures " +
                                      (root / "face.png").string());
    ASSERT_EQ(set.exit_status, 0) << set.output;
    const auto manifest = nlohmann::json::parse(read_text_file(root / "set" / "synth.json"));
    ASSERT_EQ(manifest["photo_textures"].size(), 1u);
    EXPECT_EQ(manifest["photo_textures"][0]["source"], "face.png");
    const SyntheticDataset loaded(root / "set");
    for (int64_t i = 0; i < 2; ++i)
        EXPECT_EQ(loaded.motion(i).attributes.at("texture"), "photo face.png face 0");
    // Same seed, same photo: the same bytes (detection, fit, unwrap and augmentation included).
    const auto again = testing::run_cli("synth -q -o " + (root / "again").string() +
                                        " --identities 2 --frames 2 --size 64 --photo-textures " +
                                        (root / "face.png").string());
    ASSERT_EQ(again.exit_status, 0) << again.output;
    for (const char* file : {"synth.json", "identity_0000/video.mp4",
                             "identity_0000/motion.safetensors", "identity_0001/video.mp4"})
        EXPECT_EQ(read_file(root / "set" / file), read_file(root / "again" / file)) << file;
    const auto preset =
        testing::run_cli("synth -q -o " + (root / "preset").string() +
                         " --preset synthbench-v1 --backgrounds " + (root / "face.png").string());
    EXPECT_NE(preset.exit_status, 0);
    EXPECT_NE(preset.output.find("--preset"), std::string::npos) << preset.output;
    // A photo without a usable face is a one-line error naming the option.
    auto grey = torch::full({64, 64, 3}, 128, torch::kUInt8);
    media::write_image(root / "grey.png", grey);
    const auto bad =
        testing::run_cli("synth -q -o " + (root / "bad").string() +
                         " --frames 2 --photo-textures " + (root / "grey.png").string());
    EXPECT_NE(bad.exit_status, 0);
    EXPECT_NE(bad.output.find("--photo-textures"), std::string::npos) << bad.output;
    EXPECT_FALSE(fs::exists(root / "bad"));
}

TEST(Dataset, SameSeedGivesIdenticalFilesThroughTheCli) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("synth", "cli");
    for (const char* name : {"a", "b", "c"}) {
        const std::string seed = std::string(name) == "c" ? "8" : "7";
        const auto r =
            testing::run_cli("synth -q -t 2 -o " + (root / name).string() +
                             " --identities 2 --frames 5 --size 96 --pairs 1 --seed " + seed);
        ASSERT_EQ(r.exit_status, 0) << r.output;
    }
    for (const char* file :
         {"synth.json", "identity_0000/video.mp4", "identity_0000/motion.safetensors",
          "identity_0001/video.mp4", "identity_0001/motion.safetensors", "pairs/pairs.json",
          "pairs/pair_0000/reenact.png"}) {
        EXPECT_EQ(read_file(root / "a" / file), read_file(root / "b" / file)) << file;
    }
    EXPECT_NE(read_file(root / "a" / "identity_0000/motion.safetensors"),
              read_file(root / "c" / "identity_0000/motion.safetensors"));
    // A non-empty output folder is refused with one line, and nothing is written.
    const auto r = testing::run_cli("synth -q -o " + (root / "a").string() + " --frames 2");
    EXPECT_NE(r.exit_status, 0);
    EXPECT_NE(r.output.find("not an empty folder"), std::string::npos) << r.output;
    const auto bad = testing::run_cli("synth -q -o " + (root / "d").string() + " --size 33");
    EXPECT_NE(bad.exit_status, 0);
    EXPECT_NE(bad.output.find("--size"), std::string::npos) << bad.output;
    EXPECT_FALSE(fs::exists(root / "d"));
    EXPECT_FALSE(fs::exists(root / "d.partial"));
}

}  // namespace
}  // namespace avatar::synth

namespace avatar::synth {
namespace {

// Pair rule 1 (synthbench v1) is kept as it was: the cross-identity truths take all of B's pose
// columns, and each row is the last of a motion generated frame + 1 long.
TEST(Dataset, PairRule1KeepsTheV1Rows) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto root = testing::fresh_dir("synth", "pair_rule_1");
    DatasetOptions o;
    o.identities = 2;
    o.frames = 3;
    o.size = 64;
    o.seed = 9;
    o.pairs = 1;
    o.pair_rule = 1;
    write_dataset(root / "set", o);
    const auto manifest = nlohmann::json::parse(read_text_file(root / "set" / "synth.json"));
    EXPECT_EQ(manifest["pair_rule"], 1);
    const auto pairs = nlohmann::json::parse(read_text_file(root / "set" / "pairs" / "pairs.json"));
    const auto& pair = pairs["pairs"][0];
    const auto rows = pair["rows"];
    const auto src = rows["source"].get<std::vector<float>>();
    const auto drv = rows["driving"].get<std::vector<float>>();
    const auto re = rows["reenact"].get<std::vector<float>>();
    const auto po = rows["pose_only"].get<std::vector<float>>();
    for (size_t c = 0; c < static_cast<size_t>(face::kPoseSize); ++c) {
        EXPECT_EQ(re[c], drv[c]) << c;
        EXPECT_EQ(po[c], drv[c]) << c;
    }
    const auto motion = media::read_motion(
        root / "set" /
        manifest["items"][pair["identity_a"].get<int>()]["motion"].get<std::string>());
    MotionOptions motion_options;
    motion_options.fps = o.fps;
    motion_options.width = motion_options.height = o.size;
    const auto generated = generate_motion(std::stoull(motion.attributes.at("motion_seed")),
                                           pair["frame_a"].get<int64_t>() + 1, motion_options);
    const std::vector<float> last(generated.end() - static_cast<int64_t>(src.size()),
                                  generated.end());
    EXPECT_EQ(last, src);
    o.pair_rule = 3;
    EXPECT_THROW(write_dataset(root / "bad", o), avatar::Error);
}

// synthbench v1 is a published benchmark: its numbers must never change (a new set is v2).
TEST(Dataset, SynthbenchV1IsFixed) {
    const auto o = synthbench_v1();
    EXPECT_EQ(o.identities, 20);
    EXPECT_EQ(o.frames, 100);
    EXPECT_EQ(o.size, 256);
    EXPECT_EQ(o.seed, 20261121u);
    EXPECT_EQ(o.fps, 25.0);
    EXPECT_EQ(o.camera_distance_cm, 0.0f);
    EXPECT_EQ(o.supersample, 2);
    EXPECT_EQ(o.crf, 18);
    EXPECT_EQ(o.pairs, 100);
    EXPECT_EQ(o.name, "synthbench-v1");
    EXPECT_EQ(o.pair_rule, 1);
}

// Two presets render their frames alike: the same clip length, size, camera and encoding.
void expect_same_rendering(const DatasetOptions& a, const DatasetOptions& b) {
    EXPECT_EQ(a.frames, b.frames);
    EXPECT_EQ(a.size, b.size);
    EXPECT_EQ(a.fps, b.fps);
    EXPECT_EQ(a.camera_distance_cm, b.camera_distance_cm);
    EXPECT_EQ(a.supersample, b.supersample);
    EXPECT_EQ(a.crf, b.crf);
}

// synthbench v2 is v1's set with pair rule 2, fixed likewise.
TEST(Dataset, SynthbenchV2IsV1WithPairRule2) {
    const auto o = synthbench_v2(), v1 = synthbench_v1();
    expect_same_rendering(o, v1);
    EXPECT_EQ(o.identities, v1.identities);
    EXPECT_EQ(o.seed, v1.seed);
    EXPECT_EQ(o.pairs, v1.pairs);
    EXPECT_EQ(o.name, "synthbench-v2");
    EXPECT_EQ(o.pair_rule, 2);
}

TEST(Dataset, TheSelectionSetIsALargerV2WithItsOwnSeed) {
    // v2's design with other people and pairs, four times as many of both.
    const auto select = dataset_preset("synthbench-v2-select"), v2 = synthbench_v2();
    expect_same_rendering(select, v2);
    EXPECT_EQ(select.identities, 4 * v2.identities);
    EXPECT_EQ(select.pairs, 4 * v2.pairs);
    EXPECT_EQ(select.pair_rule, v2.pair_rule);
    EXPECT_TRUE(select.photo_textures.empty() && select.backgrounds.empty());
    EXPECT_NE(select.seed, v2.seed);
    EXPECT_EQ(select.name, "synthbench-v2-select");
    EXPECT_EQ(dataset_preset("synthbench-v1").pair_rule, 1);
    EXPECT_EQ(dataset_preset("synthbench-v2").name, "synthbench-v2");
    try {
        dataset_preset("synthbench-v3");
        FAIL() << "an unknown preset was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("synthbench-v2-select"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace avatar::synth
