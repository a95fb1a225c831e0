// The pieces of pipeline/portrait_animation.h that need no face models: the relative-motion rule
// (also through the DPE generator of the reference fixture), the crop convention and its
// smoothing, and paste-back leaving everything outside the mask untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "pipeline/portrait_animation.h"
#include "shared_fixture.h"

namespace avatar::pipeline {
namespace {
namespace fs = std::filesystem;
namespace dpe = engines::dpe;

const fs::path kWeights = testing::shared_fixture_dir("dpe") / "weights.safetensors";

#define SKIP_WITHOUT_DPE_FIXTURE()                                               \
    do {                                                                         \
        if (!fs::is_regular_file(kWeights))                                      \
            GTEST_SKIP() << "the dpe reference fixture is absent: " << kWeights; \
    } while (0)

dpe::Generator fixture_generator() {
    return dpe::load_dpe_generator(SafetensorsFile::open(kWeights));
}

torch::Tensor random_image(int size, int seed) {
    torch::manual_seed(seed);
    return torch::rand({1, 3, size, size}) * 2 - 1;
}

TEST(RelativeMotion, ReferenceFrameGivesTheSourceMotion) {
    torch::manual_seed(0);
    const auto source = torch::randn({1, 512});
    const auto reference = torch::randn({1, 512});
    const auto driving = torch::randn({1, 512});
    EXPECT_TRUE(torch::equal(relative_motion(source, reference, reference), source));
    const auto moved = relative_motion(source, driving, reference);
    EXPECT_TRUE(torch::allclose(moved - source, driving - reference, 1e-6, 1e-6));
    EXPECT_FALSE(torch::allclose(moved, driving));
    EXPECT_THROW(relative_motion(source, torch::randn({1, 20}), reference), Error);
}

TEST(RelativeMotion, ModeNamesParse) {
    EXPECT_EQ(parse_motion_mode("relative"), MotionMode::kRelative);
    EXPECT_EQ(parse_motion_mode("absolute"), MotionMode::kAbsolute);
    EXPECT_THROW(parse_motion_mode("Relative"), Error);
    EXPECT_EQ(parse_driving_crop("follow"), DrivingCrop::kFollow);
    EXPECT_THROW(parse_driving_crop("still"), Error);
    EXPECT_EQ(parse_paste_region("face"), PasteRegion::kFace);
    EXPECT_THROW(parse_paste_region("head"), Error);
    EXPECT_EQ(parse_paste_mode("difference"), PasteMode::kDifference);
    EXPECT_THROW(parse_paste_mode("blend"), Error);
    // auto: the difference for expression edits (the head stays put), the pixels otherwise.
    EXPECT_EQ(resolve_paste_mode(PasteMode::kAuto, engines::dpe::Stage::kExpression),
              PasteMode::kDifference);
    EXPECT_EQ(resolve_paste_mode(PasteMode::kAuto, engines::dpe::Stage::kPose),
              PasteMode::kReplace);
    EXPECT_EQ(resolve_paste_mode(PasteMode::kAuto, engines::dpe::Stage::kBoth),
              PasteMode::kReplace);
    EXPECT_EQ(resolve_paste_mode(PasteMode::kReplace, engines::dpe::Stage::kExpression),
              PasteMode::kReplace);
}

// The first driving frame renders the source driven by itself (the official forward with the
// source as the driving image); later frames add the driving change to the source's motion.
TEST(DpeAnimator, RelativeMotionStartsFromTheSourcesOwnMotion) {
    SKIP_WITHOUT_DPE_FIXTURE();
    auto generator = fixture_generator();
    const int size = static_cast<int>(generator->config().size);
    const auto source = random_image(size, 1);
    const auto first = random_image(size, 2);
    const auto later = random_image(size, 3);

    DpeAnimator animator(generator, dpe::Stage::kExpression, MotionMode::kRelative);
    EXPECT_EQ(animator.size(), size);
    animator.set_source(source);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(animator.source_motion(), generator->motion(source), 1e-5, 1e-5));

    const auto d_first = animator.driving_motion(first);
    const auto m_first = animator.motion_for(d_first);
    EXPECT_TRUE(animator.has_reference());
    EXPECT_TRUE(torch::equal(m_first, animator.source_motion()));
    EXPECT_FALSE(torch::allclose(m_first, d_first, 1e-3, 1e-3));  // not the absolute motion
    const auto self_driven = generator->forward(source, source, dpe::Stage::kExpression);
    EXPECT_TRUE(torch::allclose(animator.render(m_first), self_driven, 1e-4, 1e-4));

    const auto d_later = animator.driving_motion(later);
    EXPECT_TRUE(torch::allclose(animator.motion_for(d_later),
                                animator.source_motion() + d_later - d_first, 1e-5, 1e-5));
    animator.reset_reference();
    EXPECT_TRUE(torch::equal(animator.motion_for(d_later), animator.source_motion()));
}

TEST(DpeAnimator, AbsoluteMotionIsTheOfficialForward) {
    SKIP_WITHOUT_DPE_FIXTURE();
    auto generator = fixture_generator();
    const int size = static_cast<int>(generator->config().size);
    const auto source = random_image(size, 4);
    const auto driving = random_image(size, 5);
    for (const auto stage : {dpe::Stage::kExpression, dpe::Stage::kPose, dpe::Stage::kBoth}) {
        DpeAnimator animator(generator, stage, MotionMode::kAbsolute);
        animator.set_source(source);
        const auto d = animator.driving_motion(driving);
        EXPECT_TRUE(torch::equal(animator.motion_for(d), d));
        torch::NoGradGuard no_grad;
        EXPECT_TRUE(torch::allclose(animator.animate(driving),
                                    generator->forward(source, driving, stage), 1e-4, 1e-4));
    }
}

TEST(DpeAnimator, NeedsASourceFirst) {
    SKIP_WITHOUT_DPE_FIXTURE();
    DpeAnimator animator(fixture_generator(), dpe::Stage::kExpression, MotionMode::kRelative);
    const auto d = torch::zeros({1, 512});
    EXPECT_THROW(animator.motion_for(d), Error);
    EXPECT_THROW(animator.render(d), Error);
}

TEST(FaceCrop, SquareAroundTheFaceBoxAtTheConventionsScale) {
    const auto t = face_crop({100, 50, 160, 130}, 256);  // 60 x 80 box, centre (130, 90)
    EXPECT_EQ(t.size, 256);
    EXPECT_NEAR(t.quad[0][0], 130 - 0.5 * 80 * 1.7, 1e-9);
    EXPECT_NEAR(t.quad[0][1], 90 - 0.5 * 80 * 1.7, 1e-9);
    EXPECT_NEAR(t.quad[2][0], 130 + 0.5 * 80 * 1.7, 1e-9);
    const auto shifted = face_crop({100, 50, 160, 130}, 32, {2.0, 0.1});
    EXPECT_NEAR(shifted.quad[0][1], 90 + 0.1 * 160 - 80, 1e-9);
    EXPECT_NEAR(shifted.quad[3][0] - shifted.quad[0][0], 160, 1e-9);
}

TEST(CropSmoother, SteadiesAJitteringCrop) {
    CropSmoother smoother;
    const auto still = face_crop({100, 100, 200, 200}, 64);
    // The first crop passes unchanged; a still face stays still.
    const auto first = smoother(still, 0.0);
    EXPECT_NEAR(first.quad[0][0], still.quad[0][0], 1e-9);
    EXPECT_NEAR(smoother(still, 0.04).quad[2][1], still.quad[2][1], 1e-9);
    // +-3 px of jitter in the box: the smoothed centre moves far less.
    double raw_spread = 0, smooth_spread = 0;
    for (int i = 2; i < 50; ++i) {
        const double j = (i % 2 == 0) ? 3.0 : -3.0;
        const auto raw = face_crop({100 + j, 100 - j, 200 + j, 200 - j}, 64);
        const auto s = smoother(raw, 0.04 * i);
        raw_spread = std::max(raw_spread, std::abs(raw.quad[0][0] - still.quad[0][0]));
        smooth_spread = std::max(smooth_spread, std::abs(s.quad[0][0] - still.quad[0][0]));
        EXPECT_EQ(s.size, 64);
    }
    EXPECT_GT(raw_spread, 2.9);
    EXPECT_LT(smooth_spread, 0.5 * raw_spread);
}

TEST(PasteCrop, PixelsOutsideTheMaskKeepTheFrame) {
    torch::manual_seed(7);
    const auto frame = torch::randint(0, 256, {96, 128, 3}, torch::kUInt8);
    const auto transform = face_crop({50, 30, 80, 60}, 32);  // a 51-pixel square inside
    const auto rendered = torch::rand({1, 3, 32, 32}) * 2 - 1;
    for (const auto colour : {face::ColourMatch::kNone, face::ColourMatch::kLab}) {
        const auto out = paste_crop(frame, rendered, transform, {0.1, colour});
        ASSERT_EQ(out.sizes(), frame.sizes());
        const auto mask = face::frame_paste_mask(transform, 96, 128, 0.1 * 32);
        const auto outside = (mask == 0).unsqueeze(-1).expand_as(frame);
        EXPECT_TRUE(torch::equal(out.masked_select(outside), frame.masked_select(outside)));
        EXPECT_GT(outside.sum().item<int64_t>(), 96 * 128 * 3 / 2);
        // Inside, the rendered face replaced the frame.
        const auto inside = (mask > 0.99).unsqueeze(-1).expand_as(frame);
        ASSERT_GT(inside.sum().item<int64_t>(), 0);
        EXPECT_GT((out.masked_select(inside).to(torch::kFloat32) -
                   frame.masked_select(inside).to(torch::kFloat32))
                      .abs()
                      .mean()
                      .item<float>(),
                  20.0f);
    }
}

// 36 points on a circle: a stand-in for the outline of a face.
torch::Tensor ring_points(double cx, double cy, double r) {
    std::vector<double> xy;
    for (int i = 0; i < 36; ++i) {
        const double a = 2 * M_PI * i / 36;
        xy.push_back(cx + r * std::cos(a));
        xy.push_back(cy + r * std::sin(a));
    }
    return torch::tensor(xy, torch::kFloat64).reshape({36, 2});
}

TEST(FaceRegionMask, HullGrownAndSoftenedInCropSpace) {
    const auto transform = face_crop({52, 36, 76, 60}, 64);  // 24-px box -> 40.8-px crop
    const auto mask = face_region_mask(ring_points(64, 48, 12), transform, 0.06, 0.03);
    ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{64, 64}));
    EXPECT_GE(mask.min().item<float>(), 0.0f);
    EXPECT_LE(mask.max().item<float>(), 1.0f);
    EXPECT_NEAR(mask[32][32].item<float>(), 1.0f, 1e-4);  // the centre
    EXPECT_EQ(mask[1][1].item<float>(), 0.0f);            // the crop's corner: background
    // The ring's radius in the crop is 12 * 64 / 40.8 = 18.8 px; grown by 0.06 * 64 = 3.8 px.
    EXPECT_GT(mask[32][32 + 20].item<float>(), 0.5f);
    EXPECT_LT(mask[32][32 + 29].item<float>(), 0.05f);
}

TEST(PasteCrop, AFaceRegionKeepsEverythingElseOfTheFrame) {
    torch::manual_seed(8);
    const auto frame = torch::randint(0, 256, {96, 128, 3}, torch::kUInt8);
    const auto transform = face_crop({52, 36, 76, 60}, 64);
    const auto region = face_region_mask(ring_points(64, 48, 8), transform);
    const auto rendered = torch::rand({1, 3, 64, 64}) * 2 - 1;
    const auto out =
        paste_crop(frame, rendered, transform, {0.08, face::ColourMatch::kLab}, region);
    const auto mask = face::frame_paste_mask(transform, 96, 128, 0.08 * 64, region);
    const auto outside = (mask == 0).unsqueeze(-1).expand_as(frame);
    EXPECT_TRUE(torch::equal(out.masked_select(outside), frame.masked_select(outside)));
    // The crop's corners are outside the face region: untouched although inside the crop.
    const auto crop_mask = face::frame_paste_mask(transform, 96, 128, 0.08 * 64);
    EXPECT_GT(((crop_mask > 0.5) & (mask == 0)).sum().item<int64_t>(), 100);
    EXPECT_FALSE(torch::equal(out, frame));
}

TEST(CropInput, NetworkInputAtTheCropSize) {
    const auto frame = torch::full({40, 60, 3}, 255, torch::kUInt8);
    const auto input = crop_input(frame, face_crop({20, 10, 40, 30}, 16));
    EXPECT_EQ(input.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
    EXPECT_TRUE(torch::allclose(input, torch::ones_like(input)));
}

}  // namespace
}  // namespace avatar::pipeline
