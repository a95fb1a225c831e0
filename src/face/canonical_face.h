#pragma once
// MediaPipe's canonical face geometry (Apache-2.0), read at run time from the pinned npm package
// @mediapipe/face_mesh: the file geometry_pipeline_metadata_landmarks.binarypb packed inside
// face_mesh_solution_packed_assets.data. Its byte range comes from the file table of the
// Emscripten loader face_mesh_solution_packed_assets_loader.js, and its content is a protobuf
// GeometryPipelineMetadata:
//   1 canonical_mesh: Mesh3d { 1 vertex_type (0 = VERTEX_PT: x, y, z, u, v per vertex),
//                              2 primitive_type (0 = TRIANGLE), 3 vertex_buffer: repeated float,
//                              4 index_buffer: repeated uint32 }
//   2 procrustes_landmark_basis: repeated WeightedLandmarkRef { 1 landmark_id: uint32,
//                                                               2 weight: float }
//   3 input_source: enum (FACE_LANDMARK_PIPELINE)
// Repeated scalars are accepted packed or unpacked, unknown fields are skipped, and anything
// malformed (truncated varints or fields, wrong wire types, indices out of range, a vertex count
// other than 468) throws avatar::Error naming the input.
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace avatar::face {

constexpr int64_t kMeshVertices = 468;  // FaceMesh's landmark count = canonical vertex count

struct CanonicalFace {
    // float32 [468, 3], centimetres; x right, y up, z toward the viewer (nose tip: vertex 1).
    torch::Tensor vertices;
    // float32 [468, 2], texture coordinates as stored.
    torch::Tensor uv;
    // int32 [T, 3] (T = 898), vertex indices in file order.
    torch::Tensor triangles;
    // int32 [33] vertex ids and float32 [33] weights of MediaPipe's Procrustes landmark basis.
    torch::Tensor procrustes_ids;
    torch::Tensor procrustes_weights;
};

// Decodes a GeometryPipelineMetadata message (the bytes of the .binarypb); `subject` names the
// bytes in errors. The returned tensors own their memory.
CanonicalFace parse_geometry_pipeline_metadata(const uint8_t* data, size_t size,
                                               const std::string& subject);

// One file of an Emscripten packed-assets bundle: reads the loader script's
// `loadPackage({"files": [{"filename", "start", "end"}, ...], ...})` table and returns the bytes
// [start, end) of `filename` from `data_file`. Throws Error if the table is missing or malformed,
// the file is not listed, or its range lies outside the data file.
std::vector<uint8_t> read_packed_asset(const std::filesystem::path& loader_js,
                                       const std::filesystem::path& data_file,
                                       const std::string& filename);

// The canonical face from the pinned @mediapipe/face_mesh package (face::npm_package_file), read
// and decoded on the first call, then cached for the life of the process (thread-safe; a failed
// load is retried on the next call). The tensors are shared: never modify them in place.
const CanonicalFace& canonical_face();

}  // namespace avatar::face
