// The two ways nn/rosinality's ModulatedConv2d computes: the grouped per-sample weights of the
// official code (inference) and the activation-modulating form used for training batches.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nn/rosinality.h"

namespace {
using namespace avatar::nn::rosinality;

TEST(ModulatedConv2d, TrainingPathEqualsTheGroupedForm) {
    torch::manual_seed(4);
    for (const bool upsample : {false, true}) {
        for (const bool demodulate : {true, false}) {
            ModulatedConv2d conv(6, 5, upsample ? 3 : 1, 8, demodulate, upsample);
            const auto x = torch::randn({3, 6, 7, 7});
            const auto style = torch::randn({3, 8});
            conv->eval();
            torch::Tensor grouped;
            {
                torch::NoGradGuard no_grad;
                grouped = conv->forward(x, style);
            }
            conv->train();
            const auto modulated = conv->forward(x, style);  // batch 3, training, grad on
            ASSERT_TRUE(modulated.requires_grad());
            ASSERT_EQ(modulated.sizes(), grouped.sizes());
            EXPECT_TRUE(torch::allclose(modulated, grouped, 1e-4, 1e-5))
                << "upsample " << upsample << " demodulate " << demodulate << ": "
                << (modulated - grouped).abs().max().item<double>();
        }
    }
}

}  // namespace
