// The TFJS graph-model interpreter on small hand-written graphs with known results: TF's
// asymmetric SAME padding, Conv2DBackpropInput, NHWC semantics of Reshape / Mean / ConcatV2 / Pad
// with NCHW kept inside, constant folding, batches, gradients, and load-time errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "nn/tfjs/graph_model.h"
#include "scratch_dir.h"

namespace avatar::nn::tfjs {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A graph under construction: nodes plus float32/int32 constants written to one shard.
class GraphBuilder {
public:
    GraphBuilder& placeholder(const std::string& name, std::vector<int64_t> shape) {
        json dims = json::array();
        for (auto d : shape)
            dims.push_back({{"size", std::to_string(d)}});
        nodes_.push_back({{"name", name},
                          {"op", "Placeholder"},
                          {"attr", {{"shape", {{"shape", {{"dim", dims}}}}}}}});
        return *this;
    }
    GraphBuilder& constant(const std::string& name, const torch::Tensor& value) {
        const auto v = value.contiguous();
        const bool is_int = v.scalar_type() == torch::kInt32;
        const auto t = is_int ? v : v.to(torch::kFloat32);
        const auto* p = static_cast<const uint8_t*>(t.data_ptr());
        bytes_.insert(bytes_.end(), p, p + t.numel() * 4);
        weights_.push_back({{"name", name},
                            {"shape", json(t.sizes().vec())},
                            {"dtype", is_int ? "int32" : "float32"}});
        nodes_.push_back({{"name", name}, {"op", "Const"}});
        return *this;
    }
    GraphBuilder& node(const std::string& name, const std::string& op,
                       std::vector<std::string> inputs, json attr = json::object()) {
        nodes_.push_back({{"name", name}, {"op", op}, {"input", inputs}, {"attr", attr}});
        return *this;
    }
    GraphModel build(const std::string& test) const {
        const auto dir = testing::fresh_dir("tfjs_graph", test);
        std::ofstream(dir / "w.bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes_.data()),
                   static_cast<std::streamsize>(bytes_.size()));
        const json model{
            {"format", "graph-model"},
            {"modelTopology", {{"node", nodes_}}},
            {"weightsManifest", json::array({{{"paths", {"w.bin"}}, {"weights", weights_}}})}};
        return GraphModel::from_json(model.dump(), dir, test + ".json");
    }

private:
    json nodes_ = json::array();
    json weights_ = json::array();
    std::vector<uint8_t> bytes_;
};

json ints(std::vector<int64_t> v) {
    json list = json::array();
    for (auto i : v)
        list.push_back(std::to_string(i));
    return {{"list", {{"i", list}}}};
}
json str(const std::string& base64) {
    return {{"s", base64}};
}
const char* kSame = "U0FNRQ==";
const char* kValid = "VkFMSUQ=";

json conv_attr(int64_t stride, const char* padding) {
    return {{"strides", ints({1, stride, stride, 1})}, {"padding", str(padding)}};
}

// Reference NHWC convolution with explicit (top, bottom, left, right) zero padding.
torch::Tensor conv_nhwc(const torch::Tensor& x, const torch::Tensor& hwio, int64_t stride,
                        std::array<int64_t, 4> pad) {
    namespace F = torch::nn::functional;
    auto nchw =
        F::pad(x.permute({0, 3, 1, 2}), F::PadFuncOptions({pad[2], pad[3], pad[0], pad[1]}));
    return torch::conv2d(nchw, hwio.permute({3, 2, 0, 1}), {}, stride).permute({0, 2, 3, 1});
}

TEST(TfjsGraph, SamePaddingIsAsymmetricForStridedConvsAndPools) {
    const auto x = torch::arange(1, 17, torch::kFloat32).view({1, 4, 4, 1});
    auto model = GraphBuilder()
                     .placeholder("x", {-1, 4, 4, 1})
                     .constant("w", torch::ones({3, 3, 1, 1}))
                     .node("conv", "Conv2D", {"x", "w"}, conv_attr(2, kSame))
                     .node("neg", "Neg", {"x"})
                     .node("pool", "MaxPool", {"neg"},
                           {{"ksize", ints({1, 3, 3, 1})},
                            {"strides", ints({1, 2, 2, 1})},
                            {"padding", str(kSame)}})
                     .build("same_padding");
    const auto out = model.run(x);
    ASSERT_EQ(out.size(), 2u);
    // TF pads 0 before and 1 after: windows rows/cols {0,1,2} and {2,3,pad}.
    EXPECT_TRUE(torch::equal(out[0].view({2, 2}), torch::tensor({{54.f, 45.f}, {72.f, 54.f}})));
    // SAME max pooling pads with -inf, never with zeros: the values stay negative.
    EXPECT_TRUE(torch::equal(out[1].view({2, 2}), torch::tensor({{-1.f, -3.f}, {-9.f, -11.f}})));
    EXPECT_TRUE(torch::allclose(out[0], conv_nhwc(x, torch::ones({3, 3, 1, 1}), 2, {0, 1, 0, 1})));
}

// Naive Conv2DBackpropInput: scatter each input pixel through the filter, then crop TF's way.
torch::Tensor conv_backprop_input_naive(const torch::Tensor& x, const torch::Tensor& f,
                                        int64_t stride, int64_t out_h, int64_t out_w, bool same) {
    const int64_t n = x.size(0), in_h = x.size(1), in_w = x.size(2), in_c = x.size(3);
    const int64_t kh = f.size(0), kw = f.size(1), out_c = f.size(2);
    const int64_t full_h = (in_h - 1) * stride + kh, full_w = (in_w - 1) * stride + kw;
    auto full =
        torch::zeros({n, std::max(full_h, out_h + kh), std::max(full_w, out_w + kw), out_c});
    for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < in_h; ++i)
            for (int64_t j = 0; j < in_w; ++j)
                for (int64_t a = 0; a < kh; ++a)
                    for (int64_t c = 0; c < kw; ++c)
                        for (int64_t o = 0; o < out_c; ++o)
                            for (int64_t ic = 0; ic < in_c; ++ic)
                                full[b][i * stride + a][j * stride + c][o] +=
                                    x[b][i][j][ic] * f[a][c][o][ic];
    int64_t top = 0, left = 0;
    if (same) {
        top = std::max<int64_t>((in_h - 1) * stride + kh - out_h, 0) / 2;
        left = std::max<int64_t>((in_w - 1) * stride + kw - out_w, 0) / 2;
    }
    return full.narrow(1, top, out_h).narrow(2, left, out_w);
}

TEST(TfjsGraph, Conv2DBackpropInputMatchesTheScatterDefinition) {
    torch::manual_seed(3);
    struct Case {
        int64_t k, stride, in, out;
        const char* padding;
    };
    for (const auto& c : {Case{2, 2, 3, 6, kSame}, Case{3, 2, 2, 3, kSame}, Case{3, 2, 2, 4, kSame},
                          Case{3, 2, 3, 7, kValid}, Case{4, 2, 3, 6, kSame}}) {
        const auto x = torch::randn({2, c.in, c.in, 3});
        const auto f = torch::randn({c.k, c.k, 2, 3});  // [kh, kw, out, in]
        auto model =
            GraphBuilder()
                .placeholder("x", {-1, c.in, c.in, 3})
                .constant("sizes",
                          torch::tensor({1, static_cast<int>(c.out), static_cast<int>(c.out), 2},
                                        torch::kInt32))
                .constant("f", f)
                .node("y", "Conv2DBackpropInput", {"sizes", "f", "x"},
                      conv_attr(c.stride, c.padding))
                .build("conv_backprop_input");
        const auto y = model.run(x)[0];
        const auto expected = conv_backprop_input_naive(x, f, c.stride, c.out, c.out,
                                                        std::string(c.padding) == kSame);
        ASSERT_EQ(y.sizes(), expected.sizes()) << "k " << c.k << " out " << c.out;
        EXPECT_TRUE(torch::allclose(y, expected, 1e-4, 1e-5)) << "k " << c.k << " out " << c.out;
    }
}

TEST(TfjsGraph, KeepsNhwcSemanticsWithNchwInside) {
    torch::manual_seed(5);
    const auto x = torch::randn({2, 5, 5, 3});
    const auto w = torch::randn({3, 3, 3, 4});
    const auto dw = torch::randn({3, 3, 4, 1});
    const auto bias = torch::randn({4});
    const auto alpha = torch::rand({1, 1, 4});
    const auto fc = torch::randn({4, 2});
    const json fused{{"strides", ints({1, 2, 2, 1})},
                     {"padding", str(kSame)},
                     {"fused_ops", {{"list", {{"s", {"Qmlhc0FkZA==", "UHJlbHU="}}}}}},
                     {"num_args", {{"i", "2"}}}};
    auto model =
        GraphBuilder()
            .placeholder("x", {-1, 5, 5, 3})
            .constant("w", w)
            .constant("b", bias)
            .constant("alpha", alpha)
            .constant("dw", dw)
            .constant("fc", fc)
            .constant("pads", torch::tensor({0, 0, 0, 0, 0, 0, 1, 2}, torch::kInt32).view({4, 2}))
            .constant("flat", torch::tensor({-1, 3 * 3 * 7}, torch::kInt32))
            .constant("axes", torch::tensor({1, 2}, torch::kInt32))
            .constant("axis", torch::tensor(-1, torch::kInt32))
            .constant("c1", torch::tensor({2.0f}))
            .constant("c2", torch::tensor({4.0f}))
            .node("conv", "_FusedConv2D", {"x", "w", "b", "alpha"}, fused)  // -> [N,3,3,4]
            .node("dwconv", "DepthwiseConv2dNative", {"conv", "dw"}, conv_attr(1, kSame))
            .node("six", "AddV2", {"c1", "c2"})  // folded at load
            .node("scaled", "Mul", {"dwconv", "six"})
            .node("padded", "Pad", {"scaled", "pads"})  // channels 4 -> 7
            .node("flatten", "Reshape", {"padded", "flat"})
            .node("mean", "Mean", {"conv", "axes"})
            .node("logits", "MatMul", {"mean", "fc"})
            .node("probs", "Softmax", {"logits"})
            .node("cat", "ConcatV2", {"conv", "dwconv", "axis"})
            .node("out_flat", "Identity", {"flatten"})
            .build("nhwc_semantics");
    ASSERT_EQ(model.output_names(), (std::vector<std::string>{"probs", "cat", "out_flat"}));
    const auto out = model.run(x);

    // Reference in NHWC with plain torch ops.
    auto conv = conv_nhwc(x, w, 2, {1, 1, 1, 1}) + bias;  // 5 -> 3: total pad 2, symmetric
    conv = torch::where(conv < 0, conv * alpha, conv);
    auto dwconv = conv_nhwc(
        conv, dw.permute({0, 1, 3, 2}).expand({3, 3, 1, 4}) * torch::eye(4).view({1, 1, 4, 4}), 1,
        {1, 1, 1, 1});
    auto padded =
        torch::nn::functional::pad(dwconv * 6.0f, torch::nn::functional::PadFuncOptions({1, 2}));
    const auto flatten = padded.reshape({2, 63});
    const auto probs = torch::softmax(conv.mean({1, 2}).matmul(fc), -1);
    const auto cat = torch::cat({conv, dwconv}, 3);
    EXPECT_TRUE(torch::allclose(out[0], probs, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(out[1], cat, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(out[2], flatten, 1e-4, 1e-5));
    EXPECT_TRUE(out[1].is_contiguous());
    EXPECT_EQ(model.output_index("cat:0"), 1u);
    EXPECT_THROW(model.output_index("nope"), Error);
    // The constant Add was folded: conv, dwconv, mul, pad, reshape, mean, matmul, softmax, concat.
    EXPECT_EQ(model.num_steps(), 9u);

    // Gradients reach the input.
    const auto xg = x.clone().requires_grad_(true);
    model.run(xg)[0].select(1, 0).sum().backward();
    ASSERT_TRUE(xg.grad().defined());
    EXPECT_GT(xg.grad().abs().sum().item<double>(), 0.0);
}

TEST(TfjsGraph, FusesConstantAffineAndClampsIntoTheConvolution) {
    torch::manual_seed(7);
    const auto x = torch::randn({2, 6, 6, 3});
    const auto w = torch::randn({3, 3, 3, 5});
    const auto scale = torch::rand({5}) + 0.5;
    const auto shift = torch::randn({1, 1, 1, 5});
    auto model = GraphBuilder()
                     .placeholder("x", {-1, 6, 6, 3})
                     .constant("w", w)
                     .constant("scale", scale)
                     .constant("shift", shift)
                     .constant("six", torch::tensor(6.0f))
                     .constant("zero", torch::tensor(0.0f))
                     .node("conv", "Conv2D", {"x", "w"}, conv_attr(1, kSame))
                     .node("mul", "Mul", {"conv", "scale"})
                     .node("add", "Add", {"shift", "mul"})
                     .node("relu", "Relu", {"add"})
                     .node("min", "Minimum", {"relu", "six"})
                     .node("max", "Maximum", {"min", "zero"})
                     .node("out", "Identity", {"max"})
                     .build("fusion");
    EXPECT_EQ(model.num_steps(), 1u);  // everything folded into the convolution
    const auto expected = torch::clamp(conv_nhwc(x, w, 1, {1, 1, 1, 1}) * scale + shift, 0.0, 6.0);
    EXPECT_TRUE(torch::allclose(model.run(x)[0], expected, 1e-4, 1e-5));
}

TEST(TfjsGraph, ReshapeToAFixedBatchOfOneKeepsTheBatch) {
    auto model = GraphBuilder()
                     .placeholder("x", {1, 2, 2, 3})
                     .constant("shape", torch::tensor({1, 4, 3}, torch::kInt32))
                     .node("r", "Reshape", {"x", "shape"})
                     .build("reshape_batch");
    const auto x = torch::randn({3, 2, 2, 3});
    EXPECT_TRUE(torch::equal(model.run(x)[0], x.reshape({3, 4, 3})));
    EXPECT_THROW(model.run(torch::randn({1, 3, 3, 3})), Error);  // wrong spatial size
}

TEST(TfjsGraph, UnsupportedOpIsALoadTimeErrorNamingModelAndOp) {
    try {
        GraphBuilder()
            .placeholder("x", {-1, 2})
            .node("angle", "Atan2", {"x", "x"})
            .build("unsupported");
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("unsupported.json"), std::string::npos) << what;
        EXPECT_NE(what.find("Atan2"), std::string::npos) << what;
        EXPECT_NE(what.find("angle"), std::string::npos) << what;
    }
    // An unsupported fused activation is caught at load time too.
    EXPECT_THROW(GraphBuilder()
                     .placeholder("x", {-1, 4, 4, 1})
                     .constant("w", torch::ones({1, 1, 1, 1}))
                     .constant("b", torch::zeros({1}))
                     .node("c", "_FusedConv2D", {"x", "w", "b"},
                           {{"strides", ints({1, 1, 1, 1})},
                            {"padding", str(kValid)},
                            {"fused_ops", {{"list", {{"s", {"Qmlhc0FkZA==", "U3dpc2g="}}}}}},
                            {"num_args", {{"i", "1"}}}})
                     .build("bad_fused"),
                 Error);
    // A node reading a missing input.
    EXPECT_THROW(GraphBuilder().placeholder("x", {-1, 2}).node("y", "Relu", {"z"}).build("missing"),
                 Error);
}

}  // namespace
}  // namespace avatar::nn::tfjs
