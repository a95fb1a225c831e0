// The talking-head motion generator: determinism, ranges, and the rhythms it promises (syllables
// at 4-5 Hz, blinks every 2-6 s, large turns up to the limits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "face/face_fixtures.h"
#include "face/face_model.h"
#include "synth/motion_generator.h"

namespace avatar::synth {
namespace {

struct Layout {
    int64_t K, E, D;
    Layout() {
        const auto& m = face::face_model();
        K = m.identity_count();
        E = m.expression_count();
        D = face::face_layout_size();
    }
    float expression(const std::vector<float>& rows, int64_t f, int64_t e) const {
        return rows[static_cast<size_t>(f * D + 7 + K + e)];
    }
};

TEST(MotionGenerator, SameSeedSameRowsOtherSeedOtherRows) {
    SKIP_WITHOUT_MEDIAPIPE();
    const auto a = generate_motion(42, 200, MotionOptions{});
    const auto b = generate_motion(42, 200, MotionOptions{});
    const auto c = generate_motion(43, 200, MotionOptions{});
    EXPECT_EQ(a.size(), static_cast<size_t>(200 * face::face_layout_size()));
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_TRUE(generate_motion(1, 0, MotionOptions{}).empty());
    EXPECT_THROW(generate_motion(1, -1, MotionOptions{}), avatar::Error);
}

TEST(MotionGenerator, RangesAndRhythms) {
    SKIP_WITHOUT_MEDIAPIPE();
    const Layout L;
    const auto& names = face::face_model().expression_names;
    const auto index = [&](const char* n) {
        return std::find(names.begin(), names.end(), n) - names.begin();
    };
    MotionOptions options;
    const int64_t frames = 25 * 120;  // two minutes
    double max_yaw = 0, max_pitch = 0;
    int blinks = 0, syllables = 0;
    double talking_seconds = 0;
    for (uint64_t seed : {1u, 2u, 3u}) {
        const auto rows = generate_motion(seed, frames, options);
        for (int64_t f = 0; f < frames; ++f) {
            const float* row = &rows[static_cast<size_t>(f * L.D)];
            for (int64_t i = 0; i < L.D; ++i)
                ASSERT_TRUE(std::isfinite(row[i]));
            for (int64_t e = 0; e < L.E; ++e) {
                ASSERT_GE(row[7 + L.K + e], 0.0f);
                ASSERT_LE(row[7 + L.K + e], 1.0f);
            }
            for (int64_t k = 0; k < L.K; ++k)
                ASSERT_LE(std::abs(row[7 + k]), 1.0f);
            EXPECT_EQ(row[7], rows[7]);  // identity constant over the sequence
            max_yaw = std::max(max_yaw, std::abs(row[1]) * 180 / M_PI);
            max_pitch = std::max(max_pitch, std::abs(row[0]) * 180 / M_PI);
            ASSERT_LE(std::abs(row[1]) * 180 / M_PI, 60.0 + 1e-3);
            ASSERT_LE(std::abs(row[0]) * 180 / M_PI, 30.0 + 1e-3);
            ASSERT_GT(row[6], 0.0f);
            // Blink onsets (crossing 0.5 upward).
            if (f > 0 && L.expression(rows, f, index("blink_left")) >= 0.5f &&
                L.expression(rows, f - 1, index("blink_left")) < 0.5f)
                ++blinks;
            // Syllables: local maxima of jaw_open above 0.08.
            if (f > 0 && f + 1 < frames) {
                const float j = L.expression(rows, f, index("jaw_open"));
                if (j > 0.08f && j >= L.expression(rows, f - 1, index("jaw_open")) &&
                    j > L.expression(rows, f + 1, index("jaw_open")))
                    ++syllables;
            }
            if (L.expression(rows, f, index("mouth_close")) < 0.2f)
                talking_seconds += 1.0 / 25.0;
        }
    }
    // Blinks every 2-6 s: in 360 s between 60 and 180.
    EXPECT_GE(blinks, 60);
    EXPECT_LE(blinks, 180);
    // Syllables at 4-5 Hz while talking (some merge at 25 frames/s): 2.5-5.5 per talking second.
    EXPECT_GT(syllables / talking_seconds, 2.5) << syllables << " in " << talking_seconds << " s";
    EXPECT_LT(syllables / talking_seconds, 5.5) << syllables << " in " << talking_seconds << " s";
    EXPECT_GT(max_yaw, 35.0);
    EXPECT_GT(max_pitch, 12.0);
}

}  // namespace
}  // namespace avatar::synth
