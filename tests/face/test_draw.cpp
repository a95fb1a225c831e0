// Debug drawing: marks land where the points are, and wrong images are refused.
#include <gtest/gtest.h>

#include "core/error.h"
#include "face/draw.h"

namespace avatar::face {
namespace {

torch::Tensor black(int64_t h = 100, int64_t w = 120) {
    return torch::zeros({h, w, 3}, torch::kUInt8);
}

TEST(Draw, PointsBoxesAndPolylines) {
    auto image = black();
    draw_points(image, torch::tensor({{10.0, 20.0}, {90.0, 50.0}}), Rgb{255, 0, 0}, 2);
    EXPECT_GT(image[20][10][0].item<int>(), 200);
    EXPECT_EQ(image[20][10][1].item<int>(), 0);
    EXPECT_GT(image[50][90][0].item<int>(), 200);
    EXPECT_EQ(image[80][50][0].item<int>(), 0);

    image = black();
    draw_box(image, 20, 30, 40, 20, Rgb{0, 255, 0});
    EXPECT_GT(image[30][40][1].item<int>(), 100);  // top edge
    EXPECT_EQ(image[40][40][1].item<int>(), 0);    // inside stays empty

    image = black();
    auto points = torch::zeros({68, 2});
    for (int i = 0; i < 68; ++i) {
        points[i][0] = 10 + i;
        points[i][1] = 50;
    }
    draw_landmarks68(image, points);
    EXPECT_GT(image[50][30].sum().item<int>(), 0);
    draw_mesh468(image, torch::rand({468, 3}) * 90, Rgb{0, 0, 255});
    EXPECT_GT(image.select(2, 2).sum().item<int64_t>(), 0);
    draw_quad(image, {Point2{5, 5}, Point2{5, 95}, Point2{95, 95}, Point2{95, 5}}, Rgb{});
}

TEST(Draw, RefusesOtherImages) {
    const auto points = torch::zeros({3, 2});
    EXPECT_THROW(draw_points(torch::zeros({10, 10, 3}), points, Rgb{}), Error);
    EXPECT_THROW(draw_points(torch::zeros({3, 10, 10}, torch::kUInt8), points, Rgb{}), Error);
    EXPECT_THROW(draw_landmarks68(black(), torch::zeros({5, 2})), Error);
    EXPECT_THROW(draw_mesh468(black(), torch::zeros({68, 2}), Rgb{}), Error);
}

}  // namespace
}  // namespace avatar::face
