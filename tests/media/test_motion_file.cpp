#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/safetensors.h"
#include "media/motion_file.h"
#include "scratch_dir.h"

namespace avatar::media {
namespace {
namespace fs = std::filesystem;

fs::path test_dir(const std::string& name) {
    return avatar::testing::fresh_dir("motion_file", name);
}

void write_text(const fs::path& path, const std::string& text) {
    write_file_atomic(path, text.data(), text.size());
}

// A motion with every known channel, an extra int channel, a lost face with NaN, attributes.
Motion sample_motion(int64_t frames = 5) {
    torch::manual_seed(3);
    Motion m;
    m.fps = FrameRate{30000, 1001};
    m.frame_count = frames;
    m.image_width = 1280;
    m.image_height = 720;
    m.layout = "avatar-face-v1";
    m.attributes = {{"source", "drive.mp4"}, {"tracker", "facemesh"}};
    m.channels[channel::kPose] = torch::randn({frames, 7});
    m.channels[channel::kIdentity] = torch::randn({frames, 12});
    m.channels[channel::kExpression] = torch::randn({frames, 9});
    m.channels[channel::kGaze] = torch::randn({frames, 4});
    m.channels[channel::kBox] = torch::rand({frames, 4}) * 500;
    m.channels[channel::kLandmarks68] = torch::rand({frames, 68, 2}) * 500;
    m.channels[channel::kLandmarks468] = torch::rand({frames, 468, 3});
    m.channels[channel::kIris] = torch::rand({frames, 10, 3});
    auto found = torch::ones({frames}, torch::kBool);
    if (frames > 2) {
        found[2] = false;
        m.channels[channel::kPose][2] = std::numeric_limits<float>::quiet_NaN();
    }
    m.channels[channel::kFaceFound] = found;
    m.channels["track_id"] = torch::arange(frames, torch::kInt64) * int64_t{1000000007};
    m.channels["blink_score"] = torch::rand({frames}, torch::kFloat64);
    m.channels["mask_bits"] = torch::randint(0, 255, {frames, 3}, torch::kUInt8);
    return m;
}

void expect_same(const Motion& a, const Motion& b) {
    EXPECT_EQ(a.fps.num, b.fps.num);
    EXPECT_EQ(a.fps.den, b.fps.den);
    EXPECT_EQ(a.frame_count, b.frame_count);
    EXPECT_EQ(a.image_width, b.image_width);
    EXPECT_EQ(a.image_height, b.image_height);
    EXPECT_EQ(a.layout, b.layout);
    EXPECT_EQ(a.attributes, b.attributes);
    ASSERT_EQ(a.channels.size(), b.channels.size());
    for (const auto& [name, tensor] : a.channels) {
        ASSERT_TRUE(b.has(name)) << name;
        const auto& other = b.channels.at(name);
        EXPECT_EQ(tensor.scalar_type(), other.scalar_type()) << name;
        EXPECT_EQ(tensor.sizes(), other.sizes()) << name;
        // Bit-exact, NaN included (equal_nan).
        if (tensor.is_floating_point()) {
            EXPECT_TRUE(torch::allclose(tensor, other, 0, 0, /*equal_nan=*/true)) << name;
        } else {
            EXPECT_TRUE(torch::equal(tensor, other)) << name;
        }
    }
}

TEST(MotionFile, RoundTripJson) {
    const auto path = test_dir("json") / "m.json";
    const auto motion = sample_motion();
    write_motion(path, motion);
    const auto text = read_text_file(path);
    EXPECT_NE(text.find("\"format\": \"avatar-motion\""), std::string::npos);
    EXPECT_NE(text.find("\"fps\": \"30000/1001\""), std::string::npos);
    EXPECT_NE(text.find("null"), std::string::npos);  // the NaN of the lost face
    expect_same(motion, read_motion(path));
}

TEST(MotionFile, RoundTripSafetensors) {
    const auto path = test_dir("safetensors") / "m.safetensors";
    const auto motion = sample_motion(40);
    write_motion(path, motion);
    const auto file = SafetensorsFile::open(path);
    EXPECT_EQ(file.metadata().at("format"), "avatar-motion");
    EXPECT_EQ(file.metadata().at("version"), "1");
    EXPECT_EQ(file.info("landmarks68").shape, (std::vector<int64_t>{40, 68, 2}));
    const auto loaded = read_motion(path);
    expect_same(motion, loaded);
    // The channels are owned copies, safe to edit in place.
    loaded.channels.at(channel::kPose).mul_(2);
}

TEST(MotionFile, BothEncodingsHoldTheSameContent) {
    const auto dir = test_dir("both");
    const auto motion = sample_motion(3);
    write_motion(dir / "a.json", motion);
    write_motion(dir / "a.safetensors", motion);
    expect_same(read_motion(dir / "a.json"), read_motion(dir / "a.safetensors"));
}

TEST(MotionFile, EmptyAndMinimalMotions) {
    const auto dir = test_dir("minimal");
    Motion empty;
    empty.frame_count = 0;
    empty.channels[channel::kPose] = torch::zeros({0, 7});
    for (const char* name : {"e.json", "e.safetensors"}) {
        write_motion(dir / name, empty);
        const auto loaded = read_motion(dir / name);
        EXPECT_EQ(loaded.frame_count, 0);
        EXPECT_EQ(loaded.channels.at(channel::kPose).sizes(), (std::vector<int64_t>{0, 7}));
        EXPECT_EQ(loaded.fps, FrameRate{});
    }
    Motion nothing;
    nothing.frame_count = 4;
    write_motion(dir / "n.json", nothing);
    EXPECT_TRUE(read_motion(dir / "n.json").channels.empty());
}

TEST(MotionFile, HandWrittenJsonIsAccepted) {
    const std::string text = R"({
        "format": "avatar-motion", "version": 1, "fps": 29.97, "frame_count": 2,
        "layout": "deca-53", "future_field": {"ignored": true},
        "channels": {
            "pose": {"shape": [2, 7], "data": [[0, 0, 0, 0, 0, 0, 1], [0.1, 0, 0, 1, 2, 3, 1.5]]},
            "face_found": {"dtype": "bool", "shape": [2], "data": [true, true]}
        }
    })";
    const auto m = parse_motion_json(text, "hand");
    EXPECT_EQ(m.fps.num, 2997);
    EXPECT_EQ(m.fps.den, 100);
    EXPECT_EQ(m.image_width, 0);
    EXPECT_FLOAT_EQ(m.channels.at("pose")[1][5].item<float>(), 3.0f);
}

TEST(MotionFile, FrameRates) {
    EXPECT_EQ(FrameRate::parse("30000/1001", "x"), (FrameRate{30000, 1001}));
    EXPECT_EQ(FrameRate::parse("50/2", "x").num, 25);
    EXPECT_EQ(FrameRate::parse("25", "x"), (FrameRate{25, 1}));
    EXPECT_EQ(FrameRate::from_double(30000.0 / 1001.0, "x"), (FrameRate{30000, 1001}));
    EXPECT_EQ(FrameRate::from_double(23.976, "x").to_string(), "2997/125");
    EXPECT_EQ((FrameRate{30000, 1001}.to_string()), "30000/1001");
    for (const char* bad :
         {"", "0", "-25", "1/0", "a/b", "25fps", "nan", "inf", "1e300", "99999999999/1", "1/-2"}) {
        EXPECT_THROW(FrameRate::parse(bad, "x"), Error) << bad;
    }
}

TEST(MotionFile, CoefficientsFromTxt) {
    const auto dir = test_dir("txt");
    std::string text = "# Deep3DFaceRecon coefficients\n\n";
    for (int f = 0; f < 3; ++f) {
        for (int i = 0; i < 257; ++i)
            text += std::to_string(f * 1000 + i) + (i < 256 ? " " : "");
        text += f == 1 ? "  # a comment after the row\r\n" : "\n";
    }
    write_text(dir / "c.txt", text);
    const auto m = read_motion(dir / "c.txt");
    EXPECT_EQ(m.layout, "deep3d-257");
    EXPECT_EQ(m.frame_count, 3);
    EXPECT_EQ(m.fps, FrameRate{});
    const auto& c = m.channels.at(channel::kCoefficients);
    EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 257}));
    EXPECT_EQ(c[2][256].item<float>(), 2256.0f);

    write_text(dir / "o.txt", "1 2 3\t4\n-5e-1 +6 7 8\n");
    MotionImportOptions options;
    options.layout = "my-layout";
    options.fps = FrameRate{30, 1};
    const auto o = read_motion(dir / "o.txt", options);
    EXPECT_EQ(o.layout, "my-layout");
    EXPECT_EQ(o.fps.num, 30);
    EXPECT_EQ(o.channels.at(channel::kCoefficients)[1][0].item<float>(), -0.5f);
    EXPECT_EQ(read_motion(dir / "o.txt").layout, "raw");
}

TEST(MotionFile, LayoutGuesses) {
    EXPECT_EQ(guess_coefficient_layout(257), "deep3d-257");
    EXPECT_EQ(guess_coefficient_layout(70), "otavatar-70");
    EXPECT_EQ(guess_coefficient_layout(73), "pirender-73");
    EXPECT_EQ(guess_coefficient_layout(53), "deca-53");
    EXPECT_EQ(guess_coefficient_layout(54), "raw");
}

// A .npy file as numpy.save writes it (format 1.0: header padded so the data is 64-aligned).
std::vector<uint8_t> make_npy(const std::string& descr, const std::string& shape, const void* data,
                              size_t bytes, bool fortran = false, int major = 1) {
    std::string dict = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
    const size_t prefix = major == 1 ? 10 : 12;
    const size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
    dict.append(total - prefix - dict.size() - 1, ' ');
    dict += '\n';
    std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
    const uint32_t len = static_cast<uint32_t>(dict.size());
    out.push_back(static_cast<uint8_t>(len & 0xff));
    out.push_back(static_cast<uint8_t>(len >> 8));
    if (major != 1) {
        out.push_back(static_cast<uint8_t>(len >> 16));
        out.push_back(static_cast<uint8_t>(len >> 24));
    }
    out.insert(out.end(), dict.begin(), dict.end());
    const auto* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + bytes);
    return out;
}

TEST(MotionFile, CoefficientsFromNpyEveryDType) {
    const auto dir = test_dir("npy");
    const auto expected = torch::arange(6 * 70, torch::kFloat32).reshape({6, 70}) / 4;
    for (const auto& [descr, type] :
         std::vector<std::pair<std::string, torch::ScalarType>>{{"<f4", torch::kFloat32},
                                                                {"<f8", torch::kFloat64},
                                                                {"<f2", torch::kFloat16},
                                                                {"<i4", torch::kInt32},
                                                                {"<i8", torch::kInt64}}) {
        const auto values = expected.to(type).contiguous();
        const auto bytes =
            make_npy(descr, "(6, 70)", values.data_ptr(), values.numel() * values.element_size());
        const auto path = dir / ("c" + descr.substr(1) + ".npy");
        write_file_atomic(path, bytes.data(), bytes.size());
        const auto m = read_motion(path);
        EXPECT_EQ(m.layout, "otavatar-70") << descr;
        const auto& c = m.channels.at(channel::kCoefficients);
        EXPECT_EQ(c.scalar_type(), torch::kFloat32);
        EXPECT_TRUE(torch::equal(c, values.to(torch::kFloat32))) << descr;
    }
    // A single row [D] is one frame; format versions 2 and 3 have a 4-byte header length.
    const auto row = torch::arange(53, torch::kFloat32);
    for (int major : {1, 2, 3}) {
        const auto bytes = make_npy("<f4", "(53,)", row.data_ptr(), 53 * 4, false, major);
        const auto m = parse_coefficients_npy(bytes.data(), bytes.size(), "row");
        EXPECT_EQ(m.frame_count, 1);
        EXPECT_EQ(m.layout, "deca-53");
    }
}

void expect_npy_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
    try {
        parse_coefficients_npy(bytes.data(), bytes.size(), "bad.npy");
        ADD_FAILURE() << "accepted, expected: " << needle;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "bad.npy");
        EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    }
}

TEST(MotionFile, MalformedNpy) {
    const float v[6] = {1, 2, 3, 4, 5, 6};
    expect_npy_error(make_npy(">f4", "(2, 3)", v, 24), "big-endian");
    expect_npy_error(make_npy("<f4", "(2, 3)", v, 24, true), "Fortran");
    expect_npy_error(make_npy("<u2", "(2, 3)", v, 12), "not supported");
    expect_npy_error(make_npy("|b1", "(6,)", v, 6), "not supported");
    expect_npy_error(make_npy("<f4", "(1, 2, 3)", v, 24), "3 dimensions");
    expect_npy_error(make_npy("<f4", "()", v, 4), "0 dimensions");
    expect_npy_error(make_npy("<f4", "(2, 3)", v, 20), "the header needs 24");
    expect_npy_error(make_npy("<f4", "(2, 3)", v, 24 - 4), "bytes");
    expect_npy_error(make_npy("<f4", "(2, -3)", v, 24), "non-negative");
    expect_npy_error(make_npy("<f4", "(2, 0)", v, 0), "empty");
    expect_npy_error(make_npy("<f4", "(99999999999, 99999999999)", v, 24), "out of range");
    expect_npy_error(make_npy("<f4", "(2 3)", v, 24), "malformed");
    std::vector<uint8_t> not_npy = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_npy_error(not_npy, "magic");
    auto bytes = make_npy("<f4", "(2, 3)", v, 24);
    bytes[8] = 0xff;  // header length past the end
    bytes[9] = 0xff;
    expect_npy_error(bytes, "past the end");
    bytes = make_npy("<f4", "(2, 3)", v, 24);
    bytes[6] = 4;
    expect_npy_error(bytes, "version 4");
    const float nan[2] = {1, std::numeric_limits<float>::quiet_NaN()};
    expect_npy_error(make_npy("<f4", "(2,)", nan, 8), "NaN");
    const double huge[1] = {1e300};
    expect_npy_error(make_npy("<f8", "(1,)", huge, 8), "float32 range");
    std::string dict = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    std::vector<uint8_t> structured = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(dict.size()), 0};
    structured.insert(structured.end(), dict.begin(), dict.end());
    expect_npy_error(structured, "structured");
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
        const auto ok = make_npy("<f4", "(2, 3)", v, 24);
        EXPECT_THROW(parse_coefficients_npy(ok.data(), cut, "cut"), Error) << cut;
    }
}

void expect_txt_error(const std::string& text, const std::string& needle) {
    try {
        parse_coefficients_txt(text, "bad.txt");
        ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "bad.txt");
        EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    }
}

TEST(MotionFile, MalformedTxt) {
    expect_txt_error("", "no coefficient rows");
    expect_txt_error("# only a comment\n\n", "no coefficient rows");
    expect_txt_error("1 2 3\n4 5\n", "line 2 has 2 values, the first row has 3");
    expect_txt_error("1 2 x\n", "line 1: 'x' is not a number");
    expect_txt_error("1 2 3,\n", "not a number");
    expect_txt_error("1 nan 3\n", "not finite");
    expect_txt_error("1 inf 3\n", "not finite");
    expect_txt_error("1 1e999 3\n", "not a number");
}

void expect_json_error(const std::string& text, const std::string& needle) {
    try {
        parse_motion_json(text, "bad.json");
        ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "bad.json");
        EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    }
}

std::string json_with(const std::string& fields, const std::string& channels = "{}") {
    return R"({"format": "avatar-motion", "version": 1, "fps": 25, )" + fields +
           R"(, "channels": )" + channels + "}";
}

TEST(MotionFile, MalformedJson) {
    const std::string pose2 =
        R"({"pose": {"shape": [2, 7], "data": [[0,0,0,0,0,0,1],[0,0,0,0,0,0,1]]}})";
    expect_json_error("{", "not valid JSON");
    expect_json_error("[]", "JSON object");
    expect_json_error(R"({"format": "other", "version": 1})", "not an avatar motion file");
    expect_json_error(R"({"version": 1})", "not an avatar motion file");
    expect_json_error(R"({"format": "avatar-motion", "version": 2, "fps": 25})",
                      "version 2 is newer");
    expect_json_error(R"({"format": "avatar-motion", "version": 0})", "invalid");
    expect_json_error(R"({"format": "avatar-motion", "version": "1"})", "integer");
    expect_json_error(R"({"format": "avatar-motion", "version": 1, "frame_count": 1})", "fps");
    expect_json_error(json_with(R"("frame_count": 3)", pose2), "2 frames, the header says 3");
    expect_json_error(json_with(R"("frame_count": 1.5)"), "integer");
    expect_json_error(json_with(R"("frame_count": -1)"), "negative");
    expect_json_error(json_with(R"("frame_count": 2, "image_size": [1])", pose2), "image_size");
    expect_json_error(json_with(R"("frame_count": 2, "image_size": [-5, 3])", pose2), "image size");
    expect_json_error(json_with(R"("frame_count": 2, "layout": "a b")", pose2), "layout");
    expect_json_error(json_with(R"("frame_count": 2, "attributes": {"a": 1})", pose2),
                      "must be a string");
    expect_json_error(R"({"format": "avatar-motion", "version": 1, "fps": 0, "frame_count": 0,
                          "channels": {}})",
                      "frame rate");
    expect_json_error(R"({"format": "avatar-motion", "version": 1, "fps": "1/0",
                          "frame_count": 0, "channels": {}})",
                      "frame rate");
    expect_json_error(json_with(R"("frame_count": 0)", "[]"), "channels must be an object");
    // Channel shapes, dtypes and data.
    expect_json_error(
        json_with(R"("frame_count": 1)", R"({"pose": {"shape": [1, 6], "data": [[0,0,0,0,0,0]]}})"),
        "channel 'pose' has shape [1, 6]");
    std::string zeros68 = "0";
    for (int i = 1; i < 68; ++i)
        zeros68 += ",0";
    expect_json_error(json_with(R"("frame_count": 1)", R"({"landmarks68": {"shape": [1, 68],)"
                                                       R"( "data": [[)" +
                                                           zeros68 + "]]}}"),
                      "landmarks68");
    expect_json_error(
        json_with(R"("frame_count": 1)", R"({"pose": {"shape": [1, 7], "data": [[0,0,0,0,0,0]]}})"),
        "does not match its shape");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"pose": {"shape": [1, 7], "data": [[0,0,0,0,0,0,"x"]]}})"),
                      "expected a number");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"pose": {"shape": [1, 7], "data": [[0,0,0,0,0,0,null]]}})"),
                      "NaN");
    expect_json_error(
        json_with(R"("frame_count": 1)",
                  R"({"pose": {"shape": [1, 7], "data": [[0,0,0,0,0,0,null]]},)"
                  R"( "face_found": {"dtype": "bool", "shape": [1], "data": [true]}})"),
        "NaN in frame 0, where face_found is true");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"pose": {"shape": [1, 7], "data": [[0,0,0,0,0,0,1e300]]}})"),
                      "infinite");
    expect_json_error(
        json_with(R"("frame_count": 1)", R"({"pose": {"dtype": "int32", "shape": [1, 7],)"
                                         R"( "data": [[0,0,0,0,0,0,0]]}})"),
        "must be float32");
    expect_json_error(
        json_with(R"("frame_count": 1)", R"({"face_found": {"shape": [1], "data": [1]}})"),
        "face_found");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"face_found": {"dtype": "bool", "shape": [1], "data": [1]}})"),
                      "true or false");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"x": {"dtype": "float16", "shape": [1], "data": [1]}})"),
                      "unknown dtype");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"x": {"dtype": "uint8", "shape": [1], "data": [256]}})"),
                      "out of range");
    expect_json_error(json_with(R"("frame_count": 1)",
                                R"({"x": {"dtype": "int32", "shape": [1], "data": [0.5]}})"),
                      "integer");
    expect_json_error(json_with(R"("frame_count": 1)", R"({"x": {"shape": [1]}})"), "no data");
    expect_json_error(
        json_with(R"("frame_count": 1)", R"({"x": {"shape": [1], "data": [1], "unit": "px"}})"),
        "unexpected field 'unit'");
    expect_json_error(json_with(R"("frame_count": 1)", R"({"x": {"shape": [], "data": 1}})"),
                      "shape must be [frames");
    expect_json_error(
        json_with(R"("frame_count": 0)", R"({"x": {"shape": [0, 99999999999], "data": []}})"),
        "out of range");
    expect_json_error(json_with(R"("frame_count": 1)", R"({"x": [1]})"), "must be an object");
}

TEST(MotionFile, MalformedSafetensors) {
    const auto dir = test_dir("bad_safetensors");
    auto expect_error = [&](const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                            const std::map<std::string, std::string>& meta,
                            const std::string& needle) {
        const auto path = dir / "m.safetensors";
        save_safetensors(path, tensors, meta);
        try {
            read_motion(path);
            ADD_FAILURE() << "accepted, expected " << needle;
        } catch (const Error& e) {
            EXPECT_EQ(e.subject(), path.string());
            EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
        }
    };
    const std::map<std::string, std::string> ok = {
        {"format", "avatar-motion"}, {"version", "1"}, {"fps", "25"}, {"frame_count", "2"}};
    auto with = [&](const std::string& key, const std::string& value) {
        auto meta = ok;
        meta[key] = value;
        return meta;
    };
    const auto pose = torch::zeros({2, 7});
    expect_error({{"pose", pose}}, {}, "not an avatar motion file");
    expect_error({{"pose", pose}}, with("format", "x"), "not an avatar motion file");
    expect_error({{"pose", pose}}, with("version", "7"), "version 7 is newer");
    expect_error({{"pose", pose}}, with("version", "one"), "not an integer");
    expect_error({{"pose", pose}}, with("frame_count", "3"), "header says 3");
    expect_error({{"pose", pose}}, with("fps", "-3"), "frame rate");
    expect_error({{"pose", torch::zeros({2, 7}, torch::kFloat16)}}, ok, "dtype");
    expect_error({{"pose", torch::zeros({2, 8})}}, ok, "shape");
    expect_error({{"pose", torch::zeros({})}}, ok, "[frames");
    expect_error({{"face_found", torch::zeros({2}, torch::kUInt8)}}, ok, "bool");
    expect_error({{"pose", torch::full({2, 7}, std::numeric_limits<float>::quiet_NaN())}}, ok,
                 "NaN");
}

TEST(MotionFile, WriterErrors) {
    const auto dir = test_dir("writer");
    const auto motion = sample_motion(2);
    EXPECT_THROW(write_motion(dir / "m.npy", motion), Error);
    EXPECT_THROW(write_motion(dir / "m", motion), Error);
    auto bad = motion;
    bad.frame_count = 3;
    EXPECT_THROW(write_motion(dir / "m.json", bad), Error);
    bad = motion;
    bad.channels["pose"] = torch::full({2, 7}, std::numeric_limits<float>::infinity());
    EXPECT_THROW(write_motion(dir / "m.safetensors", bad), Error);
    EXPECT_TRUE(fs::is_empty(dir));
    try {
        read_motion(dir / "m.mp4");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(e.message().find("unknown motion file extension"), std::string::npos);
    }
    EXPECT_THROW(read_motion(dir / "missing.json"), Error);
}

}  // namespace
}  // namespace avatar::media
