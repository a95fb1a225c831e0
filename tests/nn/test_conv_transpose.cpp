// conv_transpose2d_stride2 (sub-pixel decomposition) against LibTorch's conv_transpose2d.
#include <gtest/gtest.h>

#include "nn/conv_transpose.h"

namespace avatar::nn {
namespace {

TEST(ConvTransposeStride2, MatchesConvTranspose2d) {
    torch::manual_seed(21);
    struct Case {
        int64_t groups, in, out_per_group, kh, kw, h, w;
    };
    for (const auto& c : std::vector<Case>{{1, 5, 3, 3, 3, 6, 7},
                                           {2, 8, 4, 3, 3, 5, 5},
                                           {1, 3, 2, 4, 4, 4, 3},
                                           {3, 6, 2, 1, 1, 4, 4},
                                           {1, 4, 3, 2, 3, 3, 5}}) {
        const auto x = torch::randn({2, c.in, c.h, c.w});
        const auto w = torch::randn({c.in, c.out_per_group, c.kh, c.kw});
        const auto expected = torch::conv_transpose2d(x, w, torch::Tensor(), 2, 0, 0, c.groups);
        const auto actual = conv_transpose2d_stride2(x, w, c.groups);
        ASSERT_EQ(actual.sizes(), expected.sizes());
        EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5))
            << "groups " << c.groups << " kernel " << c.kh << "x" << c.kw << " max err "
            << (actual - expected).abs().max().item<float>();
    }
}

}  // namespace
}  // namespace avatar::nn
