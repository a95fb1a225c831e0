// Crops and paste-back: exact inverse transforms, FFHQ geometry on a fixture face, resampling
// paths that agree, and a paste-back that leaves the frame as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "core/error.h"
#include "core/safetensors.h"
#include "face/alignment.h"
#include "face_fixtures.h"
#include "metrics/image_metrics.h"

namespace avatar::face {
namespace {

// A smooth-ish RGB test image with detail at several scales.
torch::Tensor test_image(int64_t h, int64_t w) {
    const auto y = torch::arange(h, torch::kFloat32).view({h, 1, 1});
    const auto x = torch::arange(w, torch::kFloat32).view({1, w, 1});
    const auto c = torch::arange(3, torch::kFloat32).view({1, 1, 3});
    const auto v = 128 + 60 * torch::sin(x / 13 + c) * torch::cos(y / 17 - c) +
                   40 * torch::sin((x + 2 * y) / 41 + 2 * c);
    return v.round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

struct FixtureFace {
    torch::Tensor image;   // uint8 [640, 960, 3]
    torch::Tensor points;  // float32 [68, 2]
};

std::optional<FixtureFace> fixture_face() {
    const std::string image = "images/faceapi_sample1.safetensors";
    const std::string faceapi = "faceapi/faceapi_sample1.safetensors";
    if (!testing::have_face_fixture(image) || !testing::have_face_fixture(faceapi))
        return std::nullopt;
    return FixtureFace{
        SafetensorsFile::open(testing::face_fixture(image)).get("image").clone(),
        SafetensorsFile::open(testing::face_fixture(faceapi)).get("face0.lm68.points").clone()};
}

TEST(Alignment, TransformAndInverseAreExact) {
    const auto t = ffhq_crop({100.3, 120.7}, {140.1, 115.2}, {108, 170}, {142, 166}, 256);
    torch::manual_seed(1);
    const auto points = torch::rand({100, 2}, torch::kFloat64) * 500 - 100;
    const auto back = t.crop_to_image.apply(t.image_to_crop.apply(points));
    EXPECT_LT((back - points).abs().max().item<double>(), 1e-10);
    const auto identity = t.image_to_crop.then(t.crop_to_image);
    const std::array<double, 6> id{1, 0, 0, 0, 1, 0};
    for (size_t i = 0; i < 6; ++i)
        EXPECT_NEAR(identity.m[i], id[i], 1e-12) << i;
    // The quad's corners are the crop's outer corners.
    const std::array<Point2, 4> corners{Point2{-0.5, -0.5}, Point2{-0.5, 255.5},
                                        Point2{255.5, 255.5}, Point2{255.5, -0.5}};
    for (size_t i = 0; i < 4; ++i) {
        const auto c = t.image_to_crop.apply(t.quad[i]);
        EXPECT_NEAR(c[0], corners[i][0], 1e-9);
        EXPECT_NEAR(c[1], corners[i][1], 1e-9);
    }
    // Resizing keeps the region: a crop point scales with the size.
    const auto r = t.resized(1024);
    const auto p = t.image_to_crop.apply(Point2{120, 140});
    const auto q = r.image_to_crop.apply(Point2{120, 140});
    EXPECT_NEAR(q[0] + 0.5, (p[0] + 0.5) * 4, 1e-9);
    EXPECT_NEAR(q[1] + 0.5, (p[1] + 0.5) * 4, 1e-9);
    // Float points keep their dtype.
    EXPECT_EQ(t.image_to_crop.apply(points.to(torch::kFloat32)).scalar_type(), torch::kFloat32);
    EXPECT_THROW(Affine2({{1, 2, 0, 2, 4, 0}}).inverse(), Error);
}

TEST(Alignment, FfhqCropPutsTheEyesWhereTheRecipeSays) {
    const auto face = fixture_face();
    if (!face)
        GTEST_SKIP() << "no face_models fixture";
    const int size = 256;
    const auto t = ffhq_crop_from_68(face->points, size);
    const auto five = five_points_from_68(face->points);
    const auto crop_points = t.image_to_crop.apply(five);
    const auto eye_l = crop_points[0], eye_r = crop_points[1];
    const auto mouth = (crop_points[3] + crop_points[4]) / 2;
    // Upright: eye line horizontal, eyes above the mouth, centred.
    EXPECT_NEAR(eye_l[1].item<double>(), eye_r[1].item<double>(), 0.03 * size);
    EXPECT_NEAR((eye_l[0] + eye_r[0]).item<double>() / 2, size / 2.0, 0.03 * size);
    // FFHQ places the eyes a quarter of the crop apart around the centre (when the eye distance
    // sets the scale) and a little above the middle.
    EXPECT_NEAR(eye_l[0].item<double>(), 0.375 * size, 0.03 * size);
    EXPECT_NEAR(eye_r[0].item<double>(), 0.625 * size, 0.03 * size);
    EXPECT_NEAR(eye_l[1].item<double>(), 0.47 * size, 0.03 * size);
    EXPECT_GT(mouth[1].item<double>(), 0.55 * size);
    EXPECT_LT(mouth[1].item<double>(), 0.8 * size);
    // The same crop from 5 points.
    const auto t5 = ffhq_crop_from_5(five, size);
    for (size_t i = 0; i < 6; ++i)
        EXPECT_NEAR(t5.image_to_crop.m[i], t.image_to_crop.m[i], 1e-9);
    EXPECT_THROW(ffhq_crop_from_68(face->points.slice(0, 0, 60), size), Error);
}

TEST(Alignment, FfhqCropOfARotatedFaceIsUpright) {
    // Synthetic landmarks of an upright face rotated by 30 degrees about (200, 200).
    const double a = 30 * M_PI / 180;
    auto rot = [&](Point2 p) {
        const double x = p[0] - 200, y = p[1] - 200;
        return Point2{200 + std::cos(a) * x - std::sin(a) * y,
                      200 + std::sin(a) * x + std::cos(a) * y};
    };
    // Eye distance 40, eye-to-mouth 40: the eye distance sets the scale (2 * 40 > 1.8 * 40).
    const auto t =
        ffhq_crop(rot({180, 190}), rot({220, 190}), rot({185, 230}), rot({215, 230}), 512);
    const auto l = t.image_to_crop.apply(rot({180, 190}));
    const auto r = t.image_to_crop.apply(rot({220, 190}));
    EXPECT_NEAR(l[1], r[1], 1e-9);
    EXPECT_NEAR(r[0] - l[0], 512 / 4.0, 1e-9);  // |x| = 2 * eye distance: side = 4 eye distances
}

TEST(Alignment, BoxCrop) {
    const auto t = box_crop(100, 50, 40, 60, 128, {1.5, 0.1});
    const double side = 60 * 1.5;
    const auto tl = t.crop_to_image.apply(Point2{-0.5, -0.5});
    EXPECT_NEAR(tl[0], 120 - side / 2, 1e-9);
    EXPECT_NEAR(tl[1], 80 + 0.1 * side - side / 2, 1e-9);
    const auto br = t.crop_to_image.apply(Point2{127.5, 127.5});
    EXPECT_NEAR(br[0] - tl[0], side, 1e-9);
    EXPECT_NEAR(br[1] - tl[1], side, 1e-9);
    const auto from_points = box_crop_from_points(
        torch::tensor({{100.0, 50.0}, {140.0, 110.0}, {120.0, 70.0}}), 128, {1.5, 0.1});
    for (size_t i = 0; i < 6; ++i)
        EXPECT_NEAR(from_points.image_to_crop.m[i], t.image_to_crop.m[i], 1e-12);
    EXPECT_THROW(box_crop(0, 0, 0, 0, 64), Error);
    EXPECT_THROW(box_crop(0, 0, 10, 10, 0), Error);
}

TEST(Alignment, PixelAlignedCropIsASlice) {
    const auto image = test_image(120, 160);
    // A 1:1 axis-aligned region starting at pixel (30, 20): crop pixel (u, v) = image (30+u, 20+v).
    const auto t = crop_from_quad(
        {Point2{29.5, 19.5}, Point2{29.5, 83.5}, Point2{93.5, 83.5}, Point2{93.5, 19.5}}, 64);
    const auto expected = image.slice(0, 20, 84).slice(1, 30, 94);
    EXPECT_TRUE(torch::equal(warp_crop(image, t), expected));
    const auto nchw = warp_crop(image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32), t);
    EXPECT_LT((nchw[0].permute({1, 2, 0}) - expected.to(torch::kFloat32)).abs().max().item<float>(),
              1e-3);
    // Pasting the unchanged slice back changes nothing anywhere.
    EXPECT_TRUE(torch::equal(paste_back(image, expected.contiguous(), t, 8.0), image));
}

TEST(Alignment, OpenCvAndGridSamplePathsAgree) {
    const auto image = test_image(200, 240);
    const auto t = ffhq_crop({100.3, 90.7}, {140.1, 85.2}, {108, 140}, {142, 136}, 96);
    const auto hwc = warp_crop(image.to(torch::kFloat32), t, Border::kReflect);
    const auto nchw =
        warp_crop(image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32), t, Border::kReflect)[0]
            .permute({1, 2, 0});
    // OpenCV quantises sample positions to 1/32 pixel.
    EXPECT_LT((hwc - nchw).abs().max().item<float>(), 2.0f);
    EXPECT_LT((hwc - nchw).abs().mean().item<float>(), 0.3f);
    // Borders: a crop reaching outside the image.
    const auto outside = box_crop(-40, -40, 80, 80, 32, {1.0, 0.0});
    const auto zeros = warp_crop(image, outside, Border::kZeros);
    EXPECT_EQ(zeros[0][0].sum().item<int64_t>(), 0);
    const auto replicated = warp_crop(image, outside, Border::kReplicate);
    EXPECT_TRUE(torch::equal(replicated[0][0], image[0][0]));
}

TEST(Alignment, PasteBackOfTheUnchangedCropReproducesTheFrame) {
    const auto face = fixture_face();
    if (!face)
        GTEST_SKIP() << "no face_models fixture";
    const auto& frame = face->image;
    const auto t = ffhq_crop_from_68(face->points, 512);
    const auto crop = warp_crop(frame, t);
    ASSERT_EQ(crop.sizes(), (std::vector<int64_t>{512, 512, 3}));
    const auto pasted = paste_back(frame, crop, t, 24.0);
    const auto mask = frame_paste_mask(t, frame.size(0), frame.size(1), 24.0);
    const auto inside = (mask > 0.5).to(torch::kFloat32).view({1, 1, 640, 960});
    ASSERT_GT(inside.sum().item<double>(), 1000);
    auto as_nchw = [](const torch::Tensor& x) {
        return x.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255;
    };
    const double psnr =
        metrics::masked_psnr(as_nchw(pasted), as_nchw(frame), inside).item<double>();
    EXPECT_GT(psnr, 40.0);
    // Nothing outside the mask changes.
    const auto outside = (mask == 0).unsqueeze(-1).expand({640, 960, 3});
    EXPECT_TRUE(torch::equal(pasted.masked_select(outside), frame.masked_select(outside)));
    // A crop of another size uses the same region.
    const auto small = warp_crop(frame, t, 256);
    EXPECT_TRUE(torch::equal(small, warp_crop(frame, t.resized(256))));
    const double psnr_small =
        metrics::masked_psnr(as_nchw(paste_back(frame, small, t, 12.0)), as_nchw(frame), inside)
            .item<double>();
    EXPECT_GT(psnr_small, 25.0);
}

TEST(Alignment, ColourMatchingUndoesAColourCast) {
    const auto face = fixture_face();
    if (!face)
        GTEST_SKIP() << "no face_models fixture";
    const auto& frame = face->image;
    const auto t = ffhq_crop_from_68(face->points, 256);
    const auto crop = warp_crop(frame, t);
    // A global cast: darker, bluer.
    const auto cast = (crop.to(torch::kFloat32) * torch::tensor({0.8f, 0.85f, 1.0f}) +
                       torch::tensor({0.0f, 5.0f, 30.0f}))
                          .round()
                          .clamp(0, 255)
                          .to(torch::kUInt8);
    const auto mask = frame_paste_mask(t, 640, 960, 16.0);
    const auto inside = (mask > 0.5).unsqueeze(-1).expand({640, 960, 3});
    auto error = [&](ColourMatch match) {
        const auto pasted = paste_back(frame, cast, t, 16.0, match);
        return (pasted.to(torch::kFloat32) - frame.to(torch::kFloat32))
            .masked_select(inside)
            .abs()
            .mean()
            .item<double>();
    };
    const double none = error(ColourMatch::kNone), rgb = error(ColourMatch::kRgb),
                 lab = error(ColourMatch::kLab);
    EXPECT_GT(none, 10.0);
    EXPECT_LT(rgb, 0.3 * none);
    EXPECT_LT(lab, 0.3 * none);
    // Float images in [0, 1] work the same way.
    const auto pasted = paste_back(frame.to(torch::kFloat32) / 255, cast.to(torch::kFloat32) / 255,
                                   t, 16.0, ColourMatch::kLab);
    EXPECT_EQ(pasted.scalar_type(), torch::kFloat32);
    EXPECT_LT((pasted * 255 - frame.to(torch::kFloat32))
                  .masked_select(inside)
                  .abs()
                  .mean()
                  .item<double>(),
              0.3 * none);
}

TEST(Alignment, PasteMaskAndErrors) {
    const auto m = crop_paste_mask(64, 8.0);
    EXPECT_EQ(m[32][32].item<float>(), 1.0f);
    EXPECT_LT(m[0][32].item<float>(), 0.05f);
    EXPECT_LT(m[32][0].item<float>(), 0.05f);
    EXPECT_TRUE(torch::equal(crop_paste_mask(8, 0.0), torch::ones({8, 8})));
    // A custom mask multiplies in.
    const auto half = torch::zeros({64, 64});
    half.slice(1, 0, 32).fill_(1);
    EXPECT_EQ(crop_paste_mask(64, 8.0, half)[32][48].item<float>(), 0.0f);
    const auto frame = test_image(100, 100);
    const auto t = box_crop(30, 30, 40, 40, 64);
    EXPECT_THROW(paste_back(frame, torch::zeros({64, 64, 3}), t), Error);  // dtype mismatch
    EXPECT_THROW(paste_back(frame, torch::zeros({64, 32, 3}, torch::kUInt8), t), Error);
    EXPECT_THROW(crop_paste_mask(64, -1.0), Error);
    // A crop entirely outside the frame changes nothing.
    const auto far = box_crop(500, 500, 40, 40, 64);
    EXPECT_TRUE(
        torch::equal(paste_back(frame, torch::zeros({64, 64, 3}, torch::kUInt8), far), frame));
}

// A difference paste changes the frame by exactly the difference inside the mask and nowhere
// else, and a zero difference leaves it bit for bit.
TEST(Alignment, AddCropDifferenceAddsOnlyTheChange) {
    const auto frame = test_image(120, 140);
    const auto t = box_crop(40, 30, 48, 48, 32, {1.0, 0.0});  // 1.5 frame pixels per crop pixel
    EXPECT_TRUE(torch::equal(add_crop_difference(frame, torch::zeros({32, 32, 3}), t, 4.0), frame));
    const auto plus = add_crop_difference(frame, torch::full({32, 32, 3}, 10.0f), t, 4.0);
    const auto change = plus.to(torch::kInt32) - frame.to(torch::kInt32);
    // Well inside the feather: +10 (less where the frame saturates at 255).
    const auto centre = change.slice(0, 44, 64).slice(1, 54, 74);
    const auto headroom = (255 - frame.to(torch::kInt32)).slice(0, 44, 64).slice(1, 54, 74);
    EXPECT_TRUE(torch::equal(centre, torch::minimum(headroom, torch::full_like(headroom, 10))));
    // Where the paste mask is zero: nothing.
    const auto outside = frame_paste_mask(t, 120, 140, 4.0) == 0;
    ASSERT_GT(outside.sum().item<int64_t>(), 1000);
    EXPECT_EQ((change.abs().amax(2) > 0).logical_and(outside).sum().item<int64_t>(), 0);
    // A float frame works in its own units; bad shapes are errors.
    const auto frame_f = frame.to(torch::kFloat32) / 255;
    const auto plus_f = add_crop_difference(frame_f, torch::full({32, 32, 3}, 0.5f), t, 0.0);
    EXPECT_NEAR((plus_f - frame_f)[54][64][0].item<float>(), 0.5f, 1e-6);
    EXPECT_THROW(add_crop_difference(frame, torch::zeros({32, 16, 3}), t), Error);
    EXPECT_THROW(add_crop_difference(frame, torch::zeros({32, 32, 3}, torch::kUInt8), t), Error);
}

// The anti-aliased crop takes only float NCHW images: avg_pool2d would pool an HWC image across
// its width and channels.
TEST(Alignment, AntialiasedCropRejectsHwcImages) {
    const auto frame = test_image(200, 200);
    const auto t = box_crop(20, 20, 160, 160, 32);
    EXPECT_THROW(warp_crop_antialiased(frame, t), Error);
    const auto nchw = frame.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
    const auto crop = warp_crop_antialiased(nchw, t);
    EXPECT_EQ(crop.sizes(), (std::vector<int64_t>{1, 3, 32, 32}));
}

}  // namespace
}  // namespace avatar::face
