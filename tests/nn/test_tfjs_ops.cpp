// TFJS weight manifests and TF-exact image ops: decoding edge cases on hand-made manifests, and
// bit-exact reproduction of the preprocessed inputs stored in the face_models fixture.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "nn/tfjs/image_ops.h"
#include "nn/tfjs/same_padding.h"
#include "nn/tfjs/weights.h"
#include "scratch_dir.h"
#include "shared_fixture.h"

namespace avatar::nn::tfjs {
namespace {
using avatar::testing::write_bytes;
namespace fs = std::filesystem;
using nlohmann::json;

TEST(TfjsWeights, DecodesEveryStorageType) {
    const auto dir = testing::fresh_dir("tfjs", "decode");
    std::vector<uint8_t> bytes = {0,    255,  10,          // uint8 x3
                                  0x00, 0x3c, 0x00, 0xc0,  // float16 1.0, -2.0
                                  0x01, 0x00,              // float16 smallest subnormal
                                  0xff, 0xff,              // uint16 65535
                                  7,    0,    0,    0};    // int32 7
    float f = 0.25f;
    const auto* fb = reinterpret_cast<const uint8_t*>(&f);
    bytes.insert(bytes.end(), fb, fb + 4);
    write_bytes(dir / "w.bin", bytes);
    const json manifest = json::parse(R"([{"paths":["w.bin"],"weights":[
        {"name":"a","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}},
        {"name":"h","shape":[1,2],"dtype":"float32","quantization":{"dtype":"float16"}},
        {"name":"s","shape":[],"dtype":"float32","quantization":{"dtype":"float16"}},
        {"name":"u","shape":[1],"dtype":"float32","quantization":{"dtype":"uint16","scale":1,"min":0}},
        {"name":"i","shape":[1],"dtype":"int32"},
        {"name":"f","shape":[1,1,1,1],"dtype":"float32"}]}])");
    const auto w = Weights::decode(manifest, dir, "test manifest");
    EXPECT_EQ(w.names().size(), 6u);
    EXPECT_TRUE(torch::equal(w.get("a"), torch::tensor({-1.0f, 126.5f, 4.0f})));
    EXPECT_TRUE(torch::equal(w.get("h"), torch::tensor({{1.0f, -2.0f}})));
    EXPECT_EQ(w.get("s").dim(), 0);
    EXPECT_FLOAT_EQ(w.get("s").item<float>(), std::ldexp(1.0f, -24));
    EXPECT_FLOAT_EQ(w.get("u").item<float>(), 65535.0f);
    EXPECT_EQ(w.get("i").scalar_type(), torch::kInt32);
    EXPECT_EQ(w.get("i").item<int>(), 7);
    EXPECT_FLOAT_EQ(w.get("f").item<float>(), 0.25f);
    EXPECT_THROW(w.get("missing"), Error);
}

TEST(TfjsWeights, RejectsShardsThatDoNotMatchTheManifest) {
    const auto dir = testing::fresh_dir("tfjs", "mismatch");
    write_bytes(dir / "w.bin", {1, 2, 3});
    const auto one = [](const char* shape) {
        return json::parse(
            std::string(R"([{"paths":["w.bin"],"weights":[{"name":"x","shape":)") + shape +
            R"(,"dtype":"float32","quantization":{"dtype":"uint8","scale":1,"min":0}}]}])");
    };
    EXPECT_NO_THROW(Weights::decode(one("[3]"), dir, "m"));
    EXPECT_THROW(Weights::decode(one("[4]"), dir, "m"), Error);  // shard too short
    EXPECT_THROW(Weights::decode(one("[2]"), dir, "m"), Error);  // bytes left over
    EXPECT_THROW(Weights::decode(json::parse(R"([{"paths":["nope.bin"],"weights":[]}])"), dir, "m"),
                 Error);
    EXPECT_THROW(Weights::decode(json::parse(R"({"not":"an array"})"), dir, "m"), Error);
    EXPECT_THROW(Weights::decode(json::parse(R"([{"paths":["w.bin"],"weights":[{"name":"x",
        "shape":[3],"dtype":"complex64"}]}])"),
                                 dir, "m"),
                 Error);
}

TEST(TfjsWeights, LayoutConversions) {
    const auto hwio = torch::arange(2 * 3 * 4 * 5, torch::kFloat32).reshape({2, 3, 4, 5});
    const auto oihw = conv_filter_to_torch(hwio);
    EXPECT_EQ(oihw.sizes(), (std::vector<int64_t>{5, 4, 2, 3}));
    EXPECT_EQ(oihw[4][3][1][2].item<float>(), hwio[1][2][3][4].item<float>());
    const auto dw = depthwise_filter_to_torch(hwio.narrow(3, 0, 2));  // [2,3,4,2]
    EXPECT_EQ(dw.sizes(), (std::vector<int64_t>{8, 1, 2, 3}));
    EXPECT_EQ(dw[3 * 2 + 1][0][1][2].item<float>(), hwio[1][2][3][1].item<float>());
}

TEST(TfjsImageOps, SamePaddingIsAsymmetricLikeTensorFlow) {
    EXPECT_EQ(same_padding(416, 3, 2), (std::pair<int64_t, int64_t>{0, 1}));
    EXPECT_EQ(same_padding(7, 3, 1), (std::pair<int64_t, int64_t>{1, 1}));
    EXPECT_EQ(same_padding(8, 2, 2), (std::pair<int64_t, int64_t>{0, 0}));
    EXPECT_EQ(same_padding(13, 2, 1), (std::pair<int64_t, int64_t>{0, 1}));
    const auto x = torch::ones({1, 1, 4, 4});
    const auto padded = pad_same(x, 3, 3, 2, 2, -1.0);
    EXPECT_EQ(padded.sizes(), (std::vector<int64_t>{1, 1, 5, 5}));
    EXPECT_EQ(padded[0][0][4][4].item<float>(), -1.0f);
    EXPECT_EQ(padded[0][0][0][0].item<float>(), 1.0f);
}

TEST(TfjsImageOps, LegacyResizeAndPaddingByHand) {
    // 1x2 -> 1x4 legacy: src = dst * 2 / 4 = 0, .5, 1, 1.5 -> 10, 15, 20, 20 (clamped).
    const auto x = torch::tensor({10.0f, 20.0f}).view({1, 1, 2, 1});
    const auto y = resize_bilinear_legacy(x, 1, 4);
    EXPECT_TRUE(torch::equal(y.flatten(), torch::tensor({10.0f, 15.0f, 20.0f, 20.0f})));
    // Centred padding of 3 extra columns: round(1.5) = 2 after, 1 before.
    const auto tall = torch::ones({1, 5, 2, 1});
    const auto sq = pad_to_square(tall, true);
    EXPECT_EQ(sq.sizes(), (std::vector<int64_t>{1, 5, 5, 1}));
    EXPECT_EQ(sq[0][0].flatten().sum().item<float>(), 2.0f);
    EXPECT_EQ(sq[0][0][1][0].item<float>(), 1.0f);
    EXPECT_EQ(sq[0][0][0][0].item<float>(), 0.0f);
    EXPECT_EQ(js_round(2.5), 3.0);
    EXPECT_EQ(js_round(-2.5), -2.0);
    EXPECT_THROW(resize_bilinear_legacy(torch::ones({3, 3}), 2, 2), Error);
}

// Every preprocessed input of the fixture is a pure function of the stored image.
class FaceModelsInputs : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = testing::shared_fixture_dir("face_models");
        if (!fs::exists(dir_ / "faceapi" / "faceapi_sample1.safetensors"))
            GTEST_SKIP() << "no shared fixture " << dir_;
        image_ = SafetensorsFile::open(dir_ / "images" / "faceapi_sample1.safetensors")
                     .get("image")
                     .to(torch::kFloat32)
                     .unsqueeze(0);
    }
    fs::path dir_;
    torch::Tensor image_;
};

TEST_F(FaceModelsInputs, DetectorInputsAreBitExact) {
    const auto faceapi = SafetensorsFile::open(dir_ / "faceapi" / "faceapi_sample1.safetensors");
    const auto square = pad_to_square(image_, false);
    const auto tiny =
        (resize_bilinear_legacy(square, 416, 416) - torch::tensor({117.001f, 114.697f, 97.404f})) /
        255.0f;
    EXPECT_TRUE(torch::equal(tiny, faceapi.get("tiny416.input")));
    const auto ssd = resize_bilinear_legacy(square, 512, 512) / 127.5f - 1.0f;
    EXPECT_TRUE(torch::equal(ssd, faceapi.get("ssd.input")));
    const auto human = SafetensorsFile::open(dir_ / "human" / "faceapi_sample1.safetensors");
    const auto blaze = resize_bilinear_legacy(image_, 256, 256) / 127.5f - 1.0f;
    EXPECT_TRUE(torch::equal(blaze, human.get("blazeface.input")));
}

TEST_F(FaceModelsInputs, CropAndResizeIsBitExact) {
    const auto human = SafetensorsFile::open(dir_ / "human" / "faceapi_sample1.safetensors");
    const auto box = human.get("face0.facemesh.crop_norm_yxyx").view({1, 4});
    const auto crop = crop_and_resize(image_, box, 192, 192) / 255.0f;
    EXPECT_TRUE(torch::equal(crop, human.get("face0.facemesh.input")));
}

}  // namespace
}  // namespace avatar::nn::tfjs
