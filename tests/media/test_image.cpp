#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/files.h"
#include "media/image.h"
#include "scratch_dir.h"

namespace avatar::media {
namespace {
using avatar::testing::write_bytes;
namespace fs = std::filesystem;

const fs::path kPortrait = fs::path(AVATAR_SOURCE_DIR) / "assets/samples/portrait.png";

fs::path scratch(const std::string& name) {
    return avatar::testing::fresh_dir("image", name);
}

double psnr(const torch::Tensor& a, const torch::Tensor& b) {
    const double mse = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).pow(2).mean().item<double>();
    return mse == 0 ? 1000.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

// Expects `action` to throw Error whose subject is `subject`.
template <typename F>
void expect_error_naming(const std::string& subject, F action) {
    try {
        action();
        ADD_FAILURE() << "expected an avatar::Error naming " << subject;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), subject) << e.what();
    }
}

TEST(Image, ReadsThePortraitAsRgbUint8) {
    const torch::Tensor image = read_image(kPortrait);
    EXPECT_EQ(image.scalar_type(), torch::kUInt8);
    EXPECT_EQ(image.sizes(), (std::vector<int64_t>{256, 256, 3}));
    // A face photo on a light background: the top-left corner is light grey, not saturated.
    const auto corner = image.index({0, 0}).to(torch::kInt32);
    EXPECT_GT(corner.min().item<int>(), 150);
}

TEST(Image, PngRoundTripIsExact) {
    const auto dir = scratch("png");
    const torch::Tensor image = read_image(kPortrait);
    write_image(dir / "copy.png", image);
    EXPECT_TRUE(torch::equal(read_image(dir / "copy.png"), image));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), {}), 1);  // no temporary left
}

TEST(Image, JpegRoundTripIsClose) {
    const auto dir = scratch("jpeg");
    const torch::Tensor image = read_image(kPortrait);
    write_image(dir / "copy.JPG", image);  // extension case does not matter
    const torch::Tensor back = read_image(dir / "copy.JPG");
    EXPECT_EQ(back.sizes(), image.sizes());
    EXPECT_GT(psnr(back, image), 33.0);
}

TEST(Image, OddSizesAndNonContiguousTensorsAreWritten) {
    const auto dir = scratch("odd");
    const torch::Tensor image = read_image(kPortrait).slice(1, 3, 40, 2).slice(0, 0, 17);
    ASSERT_FALSE(image.is_contiguous());
    write_image(dir / "odd.png", image);
    EXPECT_TRUE(torch::equal(read_image(dir / "odd.png"), image));
}

TEST(Image, GreyAndAlphaBecomeRgb) {
    const auto dir = scratch("grey_alpha");
    cv::Mat grey(4, 5, CV_8UC1, cv::Scalar(77));
    cv::imwrite((dir / "grey.png").string(), grey);
    const torch::Tensor g = read_image(dir / "grey.png");
    EXPECT_EQ(g.sizes(), (std::vector<int64_t>{4, 5, 3}));
    EXPECT_TRUE(torch::all(g == 77).item<bool>());

    cv::Mat bgra(3, 2, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent
    cv::imwrite((dir / "rgba.png").string(), bgra);
    const torch::Tensor rgb = read_image(dir / "rgba.png");
    EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 2, 3}));
    EXPECT_EQ(rgb.index({0, 0, 0}).item<int>(), 30);  // R: the stored colour is kept
    EXPECT_EQ(rgb.index({0, 0, 2}).item<int>(), 10);  // B

    cv::Mat deep(2, 2, CV_16UC3, cv::Scalar(65535, 0, 32896));
    cv::imwrite((dir / "deep.png").string(), deep);
    const torch::Tensor d = read_image(dir / "deep.png");
    EXPECT_EQ(d.index({0, 0, 0}).item<int>(), 128);
    EXPECT_EQ(d.index({0, 0, 2}).item<int>(), 255);
}

TEST(Image, DamagedFilesAreErrorsNamingTheFile) {
    const auto dir = scratch("damaged");
    const std::vector<uint8_t> png = read_file(kPortrait);
    const std::vector<uint8_t> jpeg = encode_image(read_image(kPortrait), ".jpg");

    std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
        {"empty.png", {}},
        {"half.png", {png.begin(), png.begin() + static_cast<long>(png.size() / 2)}},
        {"no_iend.png", {png.begin(), png.end() - 12}},
        {"header_only.png", {png.begin(), png.begin() + 40}},
        {"half.jpg", {jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)}},
        {"no_eoi.jpg", {jpeg.begin(), jpeg.end() - 2}},
        {"text.png", {'h', 'e', 'l', 'l', 'o', '\n'}},
    };
    std::mt19937 rng(7);
    std::vector<uint8_t> noise(4096);
    for (auto& b : noise)
        b = static_cast<uint8_t>(rng());
    cases.emplace_back("noise.jpg", noise);
    // Valid signatures followed by garbage.
    std::vector<uint8_t> fake_png(png.begin(), png.begin() + 8);
    fake_png.insert(fake_png.end(), noise.begin(), noise.end());
    cases.emplace_back("fake.png", fake_png);

    for (const auto& [name, bytes] : cases) {
        SCOPED_TRACE(name);
        const fs::path path = dir / name;
        write_bytes(path, bytes);
        expect_error_naming(path.string(), [&] { read_image(path); });
    }
    expect_error_naming((dir / "missing.png").string(), [&] { read_image(dir / "missing.png"); });
    expect_error_naming(dir.string(), [&] { read_image(dir); });
}

TEST(Image, UnwritableRequestsLeaveNoFile) {
    const auto dir = scratch("unwritable");
    const torch::Tensor image = torch::zeros({4, 4, 3}, torch::kUInt8);
    expect_error_naming((dir / "a.bmpx").string(), [&] { write_image(dir / "a.bmpx", image); });
    expect_error_naming((dir / "b.png").string(),
                        [&] { write_image(dir / "b.png", image.to(torch::kFloat32)); });
    expect_error_naming((dir / "c.png").string(), [&] {
        write_image(dir / "c.png", torch::zeros({4, 4, 4}, torch::kUInt8));
    });
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST(ImageConversion, Uint8ToFloatAndBackIsIdentity) {
    const torch::Tensor all = torch::arange(256, torch::kInt32)
                                  .to(torch::kUInt8)
                                  .reshape({16, 16, 1})
                                  .expand({16, 16, 3})
                                  .contiguous();
    const torch::Tensor f = to_float_nchw(all);
    EXPECT_EQ(f.scalar_type(), torch::kFloat32);
    EXPECT_EQ(f.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
    EXPECT_FLOAT_EQ(f.min().item<float>(), -1.0f);
    EXPECT_FLOAT_EQ(f.max().item<float>(), 1.0f);
    EXPECT_TRUE(torch::equal(to_uint8_hwc(f), all));
    // A batch of frames keeps its batch dimension both ways.
    const torch::Tensor batch = torch::stack({all, all});
    EXPECT_EQ(to_float_nchw(batch).sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
    EXPECT_TRUE(torch::equal(to_uint8_hwc(to_float_nchw(batch)), batch));
}

TEST(ImageConversion, BackToUint8RoundsAndClamps) {
    // Channel values, one pixel each: out of range both ways, and rounding to nearest.
    const torch::Tensor f = torch::tensor({-3.0f, 5.0f, 0.0f}).reshape({1, 3, 1, 1});
    const torch::Tensor u = to_uint8_hwc(f);
    EXPECT_EQ(u.sizes(), (std::vector<int64_t>{1, 1, 3}));
    EXPECT_EQ(u[0][0][0].item<int>(), 0);
    EXPECT_EQ(u[0][0][1].item<int>(), 255);
    EXPECT_EQ(u[0][0][2].item<int>(), 128);  // 127.5 rounds (half to even) to 128
    const torch::Tensor near = torch::full({3, 1, 1}, 2.0f * 100.4f / 255.0f - 1.0f);
    EXPECT_EQ(to_uint8_hwc(near)[0][0][0].item<int>(), 100);  // [3, H, W] accepted too
    EXPECT_THROW(to_uint8_hwc(torch::zeros({1, 4, 2, 2})), Error);
    EXPECT_THROW(to_float_nchw(torch::zeros({2, 2, 3})), Error);  // float, not uint8
}

}  // namespace
}  // namespace avatar::media
