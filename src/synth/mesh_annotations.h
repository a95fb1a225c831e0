#pragma once
// Named vertex loops of MediaPipe's face mesh (MESH_ANNOTATIONS of facemeshcoords.ts), shared by
// the head (synth/head.cpp) and the photo-texture unwrapper (synth/photo_texture.cpp), which
// must agree on which triangles are skin and where the lips, brows and eyes are.
#include <array>
#include <cstdint>
#include <vector>

namespace avatar::synth::mesh {

// The face mesh's only boundary loop (its silhouette), in order.
inline constexpr std::array<int, 36> kSilhouette = {
    356, 389, 251, 284, 332, 297, 338, 10,  109, 67,  103, 54,  21,  162, 127, 234, 93,  132,
    58,  172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454};
// Inner lip loop: upper inner lip from the right corner 78 to the left corner 308, then the lower.
inline constexpr std::array<int, 20> kInnerLips = {78,  191, 80,  81,  82,  13, 312, 311, 310, 415,
                                                   308, 324, 318, 402, 317, 14, 87,  178, 88,  95};
inline constexpr std::array<int, 20> kOuterLips = {61,  185, 40,  39,  37,  0,  267, 269, 270, 409,
                                                   291, 375, 321, 405, 314, 17, 84,  181, 91,  146};
// Eye contours, ring 0 (the lid margins), as loops. Right eye (x < 0), then left (x > 0).
inline constexpr std::array<int, 16> kRightEye = {33,  7,   163, 144, 145, 153, 154, 155,
                                                  133, 173, 157, 158, 159, 160, 161, 246};
inline constexpr std::array<int, 16> kLeftEye = {263, 249, 390, 373, 374, 380, 381, 382,
                                                 362, 398, 384, 385, 386, 387, 388, 466};
// Brows: upper line then the lower line reversed = a closed polygon.
inline constexpr std::array<int, 10> kRightBrow = {70, 63, 105, 66, 107, 55, 65, 52, 53, 46};
inline constexpr std::array<int, 10> kLeftBrow = {300, 293, 334, 296, 336, 285, 295, 282, 283, 276};

// The face triangles that are skin: all but those whose three vertices lie on one eye's lid
// margin or on the inner lip loop (they fill the eye openings and the mouth, where the head has
// eyeballs and a mouth cavity). triangles: [count, 3]; returns the kept ones, [kept, 3].
inline std::vector<int32_t> skin_triangles(const int32_t* triangles, int64_t count) {
    std::vector<uint8_t> ring(468, 0);  // 1 right eye, 2 left eye, 4 inner lips
    for (int i : kRightEye)
        ring[static_cast<size_t>(i)] |= 1;
    for (int i : kLeftEye)
        ring[static_cast<size_t>(i)] |= 2;
    for (int i : kInnerLips)
        ring[static_cast<size_t>(i)] |= 4;
    std::vector<int32_t> out;
    for (int64_t t = 0; t < count; ++t) {
        const int32_t* v = triangles + 3 * t;
        const uint8_t all = ring[static_cast<size_t>(v[0])] & ring[static_cast<size_t>(v[1])] &
                            ring[static_cast<size_t>(v[2])];
        if (all == 0)
            out.insert(out.end(), v, v + 3);
    }
    return out;
}

}  // namespace avatar::synth::mesh
