#include "face/canonical_face.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "core/files.h"
#include "face/model_files.h"

namespace avatar::face {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// --- protobuf wire format ------------------------------------------------------------------
// A field is a varint key (field_number << 3 | wire_type) followed by its value: 0 varint,
// 1 fixed64, 2 length-delimited (a varint byte count, then the bytes), 5 fixed32. Groups (3, 4)
// are obsolete and not accepted.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class WireReader {
public:
    WireReader(const uint8_t* data, size_t size, std::string subject)
        : p_(data), end_(data + size), subject_(std::move(subject)) {}

    bool done() const { return p_ == end_; }

    uint64_t varint() {
        uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_)
                fail("truncated varint");
            const uint8_t byte = *p_++;
            if (shift == 63 && byte > 1)
                fail("varint overflows 64 bits");
            value |= uint64_t(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0)
                return value;
        }
        fail("varint longer than 10 bytes");
    }

    float fixed32_float() {
        need(4);
        uint32_t bits =
            uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16 | uint32_t(p_[3]) << 24;
        p_ += 4;
        float value;
        std::memcpy(&value, &bits, sizeof value);
        return value;
    }

    // The payload of a length-delimited field, as a reader of its own.
    WireReader bytes(const std::string& what) {
        const uint64_t length = varint();
        need(length);
        WireReader sub(p_, size_t(length), subject_ + ": " + what);
        p_ += length;
        return sub;
    }

    // Reads a key; returns the field number and sets `wire_type`.
    uint32_t key(uint32_t& wire_type) {
        const uint64_t k = varint();
        wire_type = uint32_t(k & 7);
        const uint64_t field = k >> 3;
        if (field == 0 || field > 0x1fffffff)
            fail("invalid field number " + std::to_string(field));
        return uint32_t(field);
    }

    void skip(uint32_t wire_type) {
        switch (wire_type) {
            case kVarint:
                varint();
                return;
            case kFixed64:
                need(8);
                p_ += 8;
                return;
            case kFixed32:
                need(4);
                p_ += 4;
                return;
            case kLengthDelimited:
                bytes("skipped field");
                return;
            default:
                fail("unsupported wire type " + std::to_string(wire_type));
        }
    }

    // A repeated scalar field, packed (wire type 2) or one element (its own wire type).
    template <typename Read>
    void repeated(uint32_t wire_type, uint32_t element_type, const std::string& what,
                  Read read_one) {
        if (wire_type == kLengthDelimited) {
            WireReader packed = bytes(what);
            while (!packed.done())
                read_one(packed);
        } else if (wire_type == element_type) {
            read_one(*this);
        } else {
            fail(what + ": wire type " + std::to_string(wire_type));
        }
    }

    void expect(uint32_t wire_type, uint32_t expected, const std::string& what) const {
        if (wire_type != expected)
            fail(what + ": wire type " + std::to_string(wire_type) + ", expected " +
                 std::to_string(expected));
    }

    [[noreturn]] void fail(const std::string& message) const {
        throw Error(subject_, "malformed protobuf: " + message);
    }

private:
    void need(uint64_t n) const {
        if (uint64_t(end_ - p_) < n)
            fail("field runs past the end of the message");
    }

    const uint8_t* p_;
    const uint8_t* end_;
    std::string subject_;
};

struct Mesh3d {
    uint64_t vertex_type = 0;
    uint64_t primitive_type = 0;
    std::vector<float> vertex_buffer;
    std::vector<uint64_t> index_buffer;
};

Mesh3d parse_mesh(WireReader reader) {
    Mesh3d mesh;
    while (!reader.done()) {
        uint32_t type;
        switch (reader.key(type)) {
            case 1:
                reader.expect(type, kVarint, "Mesh3d.vertex_type");
                mesh.vertex_type = reader.varint();
                break;
            case 2:
                reader.expect(type, kVarint, "Mesh3d.primitive_type");
                mesh.primitive_type = reader.varint();
                break;
            case 3:
                reader.repeated(type, kFixed32, "Mesh3d.vertex_buffer", [&](WireReader& r) {
                    mesh.vertex_buffer.push_back(r.fixed32_float());
                });
                break;
            case 4:
                reader.repeated(type, kVarint, "Mesh3d.index_buffer",
                                [&](WireReader& r) { mesh.index_buffer.push_back(r.varint()); });
                break;
            default:
                reader.skip(type);
        }
    }
    return mesh;
}

void parse_landmark_ref(WireReader reader, std::vector<int32_t>& ids, std::vector<float>& weights) {
    std::optional<uint64_t> id;
    float weight = 0.0f;  // proto2 default
    while (!reader.done()) {
        uint32_t type;
        switch (reader.key(type)) {
            case 1:
                reader.expect(type, kVarint, "WeightedLandmarkRef.landmark_id");
                id = reader.varint();
                break;
            case 2:
                reader.expect(type, kFixed32, "WeightedLandmarkRef.weight");
                weight = reader.fixed32_float();
                break;
            default:
                reader.skip(type);
        }
    }
    if (!id)
        reader.fail("WeightedLandmarkRef without landmark_id");
    if (*id >= uint64_t(kMeshVertices))
        reader.fail("landmark_id " + std::to_string(*id) + " is not a vertex (< 468)");
    if (!std::isfinite(weight) || weight < 0)
        reader.fail("landmark weight " + std::to_string(weight) + " is not a finite weight >= 0");
    ids.push_back(int32_t(*id));
    weights.push_back(weight);
}

template <typename T>
torch::Tensor to_tensor(const std::vector<T>& values, torch::ScalarType dtype,
                        std::vector<int64_t> shape) {
    return torch::from_blob(const_cast<T*>(values.data()), shape, dtype).clone();
}

// The `{...}` argument of the last `loadPackage(` call in an Emscripten loader script.
std::string load_package_argument(const std::string& script, const std::string& subject) {
    const auto call = script.rfind("loadPackage(");
    check(call != std::string::npos, subject,
          "no loadPackage(...) file table in the loader script");
    const auto begin = script.find_first_not_of(" \t\r\n", call + 12);
    check(begin != std::string::npos && script[begin] == '{', subject,
          "loadPackage(...) is not called with an object literal");
    // Find the matching brace, skipping string literals (which may hold braces).
    int depth = 0;
    bool in_string = false;
    for (size_t i = begin; i < script.size(); ++i) {
        const char c = script[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && --depth == 0) {
            return script.substr(begin, i + 1 - begin);
        }
    }
    throw Error(subject, "unterminated loadPackage(...) file table");
}

CanonicalFace load_canonical_face() {
    const std::string package = "@mediapipe/face_mesh";
    const std::string asset =
        "/third_party/mediapipe/modules/face_geometry/data/"
        "geometry_pipeline_metadata_landmarks.binarypb";
    const auto bytes = read_packed_asset(
        npm_package_file(package, "face_mesh_solution_packed_assets_loader.js"),
        npm_package_file(package, "face_mesh_solution_packed_assets.data"), asset);
    return parse_geometry_pipeline_metadata(bytes.data(), bytes.size(),
                                            package + " packed asset " + asset);
}

}  // namespace

CanonicalFace parse_geometry_pipeline_metadata(const uint8_t* data, size_t size,
                                               const std::string& subject) {
    WireReader reader(data, size, subject);
    std::optional<Mesh3d> mesh;
    std::vector<int32_t> ids;
    std::vector<float> weights;
    while (!reader.done()) {
        uint32_t type;
        switch (reader.key(type)) {
            case 1:
                reader.expect(type, kLengthDelimited, "canonical_mesh");
                mesh = parse_mesh(reader.bytes("canonical_mesh"));
                break;
            case 2:
                reader.expect(type, kLengthDelimited, "procrustes_landmark_basis");
                parse_landmark_ref(reader.bytes("procrustes_landmark_basis"), ids, weights);
                break;
            default:
                reader.skip(type);  // 3 input_source and anything newer
        }
    }
    check(mesh.has_value(), subject, "GeometryPipelineMetadata without canonical_mesh");
    check(mesh->vertex_type == 0, subject,
          "canonical_mesh.vertex_type " + std::to_string(mesh->vertex_type) +
              " is not VERTEX_PT (0)");
    check(mesh->primitive_type == 0, subject,
          "canonical_mesh.primitive_type " + std::to_string(mesh->primitive_type) +
              " is not TRIANGLE (0)");
    const size_t floats = mesh->vertex_buffer.size();
    check(floats == size_t(kMeshVertices) * 5, subject,
          "canonical_mesh.vertex_buffer holds " + std::to_string(floats) +
              " floats, expected 468 vertices x (x, y, z, u, v) = 2340");
    for (const float v : mesh->vertex_buffer)
        check(std::isfinite(v), subject, "canonical_mesh.vertex_buffer holds a non-finite value");
    const size_t indices = mesh->index_buffer.size();
    check(indices > 0 && indices % 3 == 0, subject,
          "canonical_mesh.index_buffer holds " + std::to_string(indices) +
              " indices, not a positive multiple of 3");
    std::vector<int32_t> triangle_indices;
    triangle_indices.reserve(indices);
    for (const uint64_t i : mesh->index_buffer) {
        check(i < uint64_t(kMeshVertices), subject,
              "canonical_mesh.index_buffer holds vertex " + std::to_string(i) + " (>= 468)");
        triangle_indices.push_back(int32_t(i));
    }
    check(!ids.empty(), subject, "no procrustes_landmark_basis");

    const auto buffer = to_tensor(mesh->vertex_buffer, torch::kFloat32, {kMeshVertices, 5});
    CanonicalFace face;
    face.vertices = buffer.slice(1, 0, 3).contiguous();
    face.uv = buffer.slice(1, 3, 5).contiguous();
    face.triangles = to_tensor(triangle_indices, torch::kInt32, {int64_t(indices / 3), 3});
    face.procrustes_ids = to_tensor(ids, torch::kInt32, {int64_t(ids.size())});
    face.procrustes_weights = to_tensor(weights, torch::kFloat32, {int64_t(weights.size())});
    return face;
}

std::vector<uint8_t> read_packed_asset(const fs::path& loader_js, const fs::path& data_file,
                                       const std::string& filename) {
    const std::string subject = loader_js.string();
    json table;
    try {
        table = json::parse(load_package_argument(read_text_file(loader_js), subject));
    } catch (const json::exception& e) {
        throw Error(subject, std::string("malformed loadPackage(...) file table: ") + e.what());
    }
    const auto files = table.find("files");
    check(files != table.end() && files->is_array(), subject,
          "the loadPackage(...) table has no \"files\" array");
    std::optional<std::pair<uint64_t, uint64_t>> range;
    for (const auto& entry : *files) {
        if (!entry.is_object() || entry.value("filename", json()) != filename)
            continue;
        const auto start = entry.value("start", json());
        const auto end = entry.value("end", json());
        check(start.is_number_unsigned() && end.is_number_unsigned(), subject,
              filename + ": \"start\"/\"end\" are not non-negative integers");
        range = {start.get<uint64_t>(), end.get<uint64_t>()};
    }
    check(range.has_value(), subject, "the file table does not list " + filename);
    check(range->first <= range->second, subject, filename + ": start > end");

    std::error_code ec;
    const auto data_size = fs::file_size(data_file, ec);
    check(!ec, data_file.string(), "cannot read the file size: " + ec.message());
    check(range->second <= data_size, data_file.string(),
          filename + ": byte range [" + std::to_string(range->first) + ", " +
              std::to_string(range->second) + ") runs past the end of the file (" +
              std::to_string(data_size) + " bytes)");
    std::ifstream in(data_file, std::ios::binary);
    check(bool(in), data_file.string(), "cannot open for reading");
    std::vector<uint8_t> bytes(range->second - range->first);
    in.seekg(std::streamoff(range->first));
    in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    check(bool(in), data_file.string(), "read error in the slice of " + filename);
    return bytes;
}

const CanonicalFace& canonical_face() {
    static std::mutex mutex;
    static std::optional<CanonicalFace> cached;
    std::lock_guard<std::mutex> lock(mutex);
    if (!cached)
        cached = load_canonical_face();
    return *cached;
}

}  // namespace avatar::face
