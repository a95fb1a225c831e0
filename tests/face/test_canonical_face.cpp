// MediaPipe's canonical face read from the npm package: equal to the decoded fixture, and the
// protobuf / file-table readers reject malformed input with avatar::Error.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "face/canonical_face.h"
#include "face/model_files.h"
#include "face_fixtures.h"
#include "scratch_dir.h"

namespace avatar::face {
namespace {
namespace fs = std::filesystem;

const char* kAsset =
    "/third_party/mediapipe/modules/face_geometry/data/"
    "geometry_pipeline_metadata_landmarks.binarypb";

std::vector<uint8_t> packed_metadata() {
    const std::string package = "@mediapipe/face_mesh";
    return read_packed_asset(
        npm_package_file(package, "face_mesh_solution_packed_assets_loader.js"),
        npm_package_file(package, "face_mesh_solution_packed_assets.data"), kAsset);
}

TEST(CanonicalFace, EqualsTheDecodedFixture) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto path = testing::face_fixture("geometry/mediapipe_canonical_face.safetensors");
    if (!fs::exists(path))
        GTEST_SKIP() << "no fixture " << path;
    const auto& face = canonical_face();
    const auto reference = SafetensorsFile::open(path);
    EXPECT_TRUE(torch::equal(face.vertices, reference.get("vertices_xyz_cm")));
    EXPECT_TRUE(torch::equal(face.uv, reference.get("uv")));
    EXPECT_TRUE(torch::equal(face.triangles, reference.get("triangles")));
    EXPECT_TRUE(torch::equal(face.procrustes_ids, reference.get("procrustes_landmark_ids")));
    EXPECT_TRUE(torch::equal(face.procrustes_weights, reference.get("procrustes_weights")));
}

TEST(CanonicalFace, ShapesAndKnownValues) {
    SKIP_WITHOUT_MEDIAPIPE();
    EXPECT_EQ(packed_metadata().size(), 19376u);
    const auto& face = canonical_face();
    EXPECT_EQ(face.vertices.sizes(), (std::vector<int64_t>{468, 3}));
    EXPECT_EQ(face.uv.sizes(), (std::vector<int64_t>{468, 2}));
    EXPECT_EQ(face.triangles.sizes(), (std::vector<int64_t>{898, 3}));
    EXPECT_EQ(face.procrustes_ids.numel(), 33);
    EXPECT_NEAR(face.procrustes_weights.sum().item<double>(), 1.055, 1e-3);
    // The nose tip, vertex 1 (README section 7).
    EXPECT_NEAR(face.vertices[1][1].item<double>(), -1.127, 1e-3);
    EXPECT_NEAR(face.vertices[1][2].item<double>(), 7.476, 1e-3);
    // Cached: the same object every time.
    EXPECT_EQ(&canonical_face(), &face);
}

// A prefix cut inside a field is an error; one cut between two landmark refs is a valid,
// shorter message (protobuf has no end marker), so it must at least decode to fewer refs.
TEST(CanonicalFace, TruncatedMessagesAreErrorsOrShorter) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto bytes = packed_metadata();
    ASSERT_NO_THROW(parse_geometry_pipeline_metadata(bytes.data(), bytes.size(), "full"));
    int errors = 0;
    for (size_t n = 0; n < bytes.size(); n += 7) {
        try {
            const auto face = parse_geometry_pipeline_metadata(bytes.data(), n, "prefix");
            EXPECT_LT(face.procrustes_ids.numel(), 33) << n;
        } catch (const Error&) {
            ++errors;
        }
    }
    EXPECT_GT(errors, int(bytes.size() / 7) - 20);
}

// A tiny protobuf writer for hand-made messages.
struct Writer {
    std::vector<uint8_t> out;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out.push_back(uint8_t(v | 0x80));
            v >>= 7;
        }
        out.push_back(uint8_t(v));
    }
    void key(uint32_t field, uint32_t type) { varint(uint64_t(field) << 3 | type); }
    void fixed32(float f) {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; ++i)
            out.push_back(uint8_t(bits >> (8 * i)));
    }
    void bytes(uint32_t field, const std::vector<uint8_t>& b) {
        key(field, 2);
        varint(b.size());
        out.insert(out.end(), b.begin(), b.end());
    }
};

// 468 vertices (i, -i, 2i, u, v) and one triangle, written unpacked; one landmark ref.
std::vector<uint8_t> hand_made(bool packed, uint64_t bad_index = 0) {
    Writer mesh;
    mesh.key(1, 0);
    mesh.varint(0);  // VERTEX_PT
    Writer floats;
    for (int i = 0; i < 468; ++i)
        for (float v : {float(i), float(-i), float(2 * i), 0.25f, 0.75f}) {
            if (packed) {
                floats.fixed32(v);
            } else {
                mesh.key(3, 5);
                mesh.fixed32(v);
            }
        }
    if (packed)
        mesh.bytes(3, floats.out);
    for (uint64_t index : {uint64_t(0), uint64_t(300), bad_index ? bad_index : uint64_t(467)}) {
        mesh.key(4, 0);
        mesh.varint(index);
    }
    mesh.key(9, 1);  // an unknown fixed64 field is skipped
    for (int i = 0; i < 8; ++i)
        mesh.out.push_back(0);
    Writer ref;
    ref.key(1, 0);
    ref.varint(17);
    ref.key(2, 5);
    ref.fixed32(0.5f);
    Writer message;
    message.key(3, 0);
    message.varint(1);
    message.bytes(1, mesh.out);
    message.bytes(2, ref.out);
    return message.out;
}

TEST(CanonicalFace, PackedAndUnpackedFieldsDecodeAlike) {
    for (bool packed : {false, true}) {
        const auto bytes = hand_made(packed);
        const auto face = parse_geometry_pipeline_metadata(bytes.data(), bytes.size(), "hand");
        EXPECT_EQ(face.vertices[10][0].item<float>(), 10.0f);
        EXPECT_EQ(face.vertices[10][1].item<float>(), -10.0f);
        EXPECT_EQ(face.vertices[10][2].item<float>(), 20.0f);
        EXPECT_EQ(face.uv[467][1].item<float>(), 0.75f);
        EXPECT_TRUE(torch::equal(face.triangles, torch::tensor({{0, 300, 467}}, torch::kInt32)));
        EXPECT_EQ(face.procrustes_ids[0].item<int>(), 17);
        EXPECT_EQ(face.procrustes_weights[0].item<float>(), 0.5f);
    }
}

TEST(CanonicalFace, MalformedMessagesAreErrors) {
    const auto bad_index = hand_made(false, 468);
    EXPECT_THROW(parse_geometry_pipeline_metadata(bad_index.data(), bad_index.size(), "x"), Error);
    const std::vector<uint8_t> group{0x0b};  // field 1, wire type 3 (start group)
    EXPECT_THROW(parse_geometry_pipeline_metadata(group.data(), group.size(), "x"), Error);
    const std::vector<uint8_t> long_varint(12, 0xff);
    EXPECT_THROW(parse_geometry_pipeline_metadata(long_varint.data(), long_varint.size(), "x"),
                 Error);
    const std::vector<uint8_t> too_long{0x0a, 0x7f, 0x00};  // length 127, 1 byte left
    EXPECT_THROW(parse_geometry_pipeline_metadata(too_long.data(), too_long.size(), "x"), Error);
    const std::vector<uint8_t> empty;
    EXPECT_THROW(parse_geometry_pipeline_metadata(empty.data(), 0, "x"), Error);
    try {
        parse_geometry_pipeline_metadata(group.data(), group.size(), "some.binarypb");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "some.binarypb");
    }
}

TEST(CanonicalFace, PackedAssetTable) {
    const auto dir = testing::fresh_dir("face", "packed_asset");
    {
        std::ofstream(dir / "a.data", std::ios::binary) << "0123456789";
        std::ofstream(dir / "ok.js") << "var x = 1; loadPackage({\"files\": [{\"filename\": "
                                        "\"/a\", \"start\": 2, \"end\": 5}, {\"filename\": \"/b}\","
                                        " \"start\": 5, \"end\": 11}], \"x\": \"{\"});\n";
        std::ofstream(dir / "none.js") << "console.log('no table');";
        std::ofstream(dir / "broken.js") << "loadPackage({\"files\": [{\"filename\": ";
    }
    const auto a = read_packed_asset(dir / "ok.js", dir / "a.data", "/a");
    EXPECT_EQ(std::string(a.begin(), a.end()), "234");
    EXPECT_THROW(read_packed_asset(dir / "ok.js", dir / "a.data", "/b}"), Error);  // past the end
    EXPECT_THROW(read_packed_asset(dir / "ok.js", dir / "a.data", "/c"), Error);
    EXPECT_THROW(read_packed_asset(dir / "none.js", dir / "a.data", "/a"), Error);
    EXPECT_THROW(read_packed_asset(dir / "broken.js", dir / "a.data", "/a"), Error);
    EXPECT_THROW(read_packed_asset(dir / "missing.js", dir / "a.data", "/a"), Error);
}

}  // namespace
}  // namespace avatar::face
