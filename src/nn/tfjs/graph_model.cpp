#include "nn/tfjs/graph_model.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "nn/tfjs/image_ops.h"
#include "nn/tfjs/same_padding.h"
#include "nn/tfjs/weights.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace avatar::nn::tfjs {
namespace {
using ojson = nlohmann::ordered_json;
namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------------
// Compiled program

enum class Op {
    kConv,           // Conv2D, _FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2dNative
    kConvTranspose,  // Conv2DBackpropInput
    kMatMul,         // MatMul, _FusedMatMul
    kBinary,         // Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Maximum, Minimum, ...
    kAddN,
    kActivation,  // Relu, Relu6, Prelu, Sigmoid, ... (the fused activations, standalone)
    kUnary,       // Abs, Neg, Square, Sqrt, Rsqrt, Exp, Log
    kSoftmax,
    kPool,
    kPad,
    kReshape,
    kReduce,
    kConcat,
    kResize,
    kSqueeze,
};

enum class Binary { kAdd, kSub, kMul, kDiv, kMaximum, kMinimum, kSquaredDifference };
enum class Unary { kAbs, kNeg, kSquare, kSqrt, kRsqrt, kExp, kLog };
enum class Activation { kNone, kRelu, kRelu6, kClamp, kPrelu, kLeakyRelu, kElu, kSigmoid, kTanh };
enum class Reduce { kMean, kSum, kMax, kMin };
enum class Padding { kValid, kSame, kExplicit };

// A value at run time: a tensor in the graph's layout, or a 4-D activation kept NCHW.
struct Value {
    torch::Tensor t;
    bool nchw = false;
    // Constants only: the tensor right-aligned to 4-D and permuted to NCHW, for broadcasting
    // against NCHW activations (a bias [C] becomes [1, C, 1, 1]).
    torch::Tensor nchw_broadcast;
};

struct Step {
    Op op = Op::kBinary;
    std::string node;     // the TF node, for messages
    std::vector<int> in;  // operand slots
    int out = -1;
    std::vector<int> release;  // slots no later step reads: freed after this one

    Binary binary = Binary::kAdd;
    Unary unary = Unary::kAbs;
    Reduce reduce = Reduce::kMean;
    Activation activation = Activation::kNone;
    double leaky_alpha = 0.2;
    double clamp_min = -std::numeric_limits<double>::infinity();  // kClamp bounds
    double clamp_max = std::numeric_limits<double>::infinity();
    torch::Tensor weight, bias;            // conv / matmul, torch layouts
    torch::Tensor prelu_flat, prelu_nchw;  // prelu alpha: per channel [C], or broadcast forms
    torch::Tensor prelu_graph;
    int64_t stride_h = 1, stride_w = 1, kernel_h = 1, kernel_w = 1;
    int64_t dilation_h = 1, dilation_w = 1, groups = 1;
    Padding padding = Padding::kValid;
    std::array<int64_t, 4> explicit_pad{};  // top, bottom, left, right
    std::vector<int64_t> ints;  // reshape target, axes, pad pairs, resize size, output size
    bool keep_dims = false, transpose_a = false, half_pixel = false, align_corners = false;
    bool max_pool = false;
    double pad_value = 0.0;
};

torch::Tensor to_graph_layout(const Value& v) {
    return v.nchw ? v.t.permute({0, 2, 3, 1}) : v.t;
}

// Right-aligns a graph-layout tensor of rank <= 4 to rank 4 and permutes it NCHW.
torch::Tensor graph_to_nchw_broadcast(const torch::Tensor& t, const std::string& node) {
    check(
        t.dim() <= 4, node,
        "cannot broadcast a rank-" + std::to_string(t.dim()) + " tensor against a 4-D activation");
    if (t.dim() == 4)
        return t.permute({0, 3, 1, 2});
    std::vector<int64_t> shape(static_cast<size_t>(4 - t.dim()), 1);
    for (int64_t d = 0; d < t.dim(); ++d)
        shape.push_back(t.size(d));
    return t.reshape(shape).permute({0, 3, 1, 2});
}

torch::Tensor to_nchw(const Value& v, const std::string& node) {
    if (v.nchw)
        return v.t;
    if (v.nchw_broadcast.defined())
        return v.nchw_broadcast;
    return graph_to_nchw_broadcast(v.t, node);
}

// Graph axis -> NCHW axis for 4-D tensors.
int64_t nchw_axis(int64_t graph_axis) {
    static constexpr std::array<int64_t, 4> kMap{0, 2, 3, 1};
    return kMap[static_cast<size_t>(graph_axis)];
}

std::pair<int64_t, int64_t> same_pad(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
    return same_padding(in, (kernel - 1) * dilation + 1, stride);
}

torch::Tensor activate(const Step& s, torch::Tensor y, bool nchw) {
    switch (s.activation) {
        case Activation::kNone:
            return y;
        case Activation::kRelu:
            return torch::relu(y);
        case Activation::kRelu6:
            return torch::clamp(y, 0.0, 6.0);
        case Activation::kClamp:
            return torch::clamp(y,
                                std::isinf(s.clamp_min) ? c10::optional<c10::Scalar>()
                                                        : c10::optional<c10::Scalar>(s.clamp_min),
                                std::isinf(s.clamp_max) ? c10::optional<c10::Scalar>()
                                                        : c10::optional<c10::Scalar>(s.clamp_max));
        case Activation::kPrelu:
            if (nchw && s.prelu_flat.defined())
                return torch::prelu(y, s.prelu_flat);
            return torch::where(y < 0, y * (nchw ? s.prelu_nchw : s.prelu_graph), y);
        case Activation::kLeakyRelu:
            return F::leaky_relu(y, F::LeakyReLUFuncOptions().negative_slope(s.leaky_alpha));
        case Activation::kElu:
            return torch::elu(y);
        case Activation::kSigmoid:
            return torch::sigmoid(y);
        case Activation::kTanh:
            return torch::tanh(y);
    }
    return y;
}

torch::Tensor apply_binary(Binary op, const torch::Tensor& a, const torch::Tensor& b) {
    switch (op) {
        case Binary::kAdd:
            return a + b;
        case Binary::kSub:
            return a - b;
        case Binary::kMul:
            return a * b;
        case Binary::kDiv:
            return a / b;
        case Binary::kMaximum:
            return torch::maximum(a, b);
        case Binary::kMinimum:
            return torch::minimum(a, b);
        case Binary::kSquaredDifference: {
            const auto d = a - b;
            return d * d;
        }
    }
    return a;
}

torch::Tensor apply_unary(Unary op, const torch::Tensor& x) {
    switch (op) {
        case Unary::kAbs:
            return x.abs();
        case Unary::kNeg:
            return -x;
        case Unary::kSquare:
            return x * x;
        case Unary::kSqrt:
            return x.sqrt();
        case Unary::kRsqrt:
            return x.rsqrt();
        case Unary::kExp:
            return x.exp();
        case Unary::kLog:
            return x.log();
    }
    return x;
}

// Pads x [N, C, H, W] for a TF convolution or pool; returns the symmetric padding that is left
// for torch to apply (asymmetric SAME/EXPLICIT padding is applied here).
std::array<int64_t, 2> prepare_padding(const Step& s, torch::Tensor& x, double value) {
    int64_t top = 0, bottom = 0, left = 0, right = 0;
    if (s.padding == Padding::kSame) {
        std::tie(top, bottom) = same_pad(x.size(2), s.kernel_h, s.stride_h, s.dilation_h);
        std::tie(left, right) = same_pad(x.size(3), s.kernel_w, s.stride_w, s.dilation_w);
    } else if (s.padding == Padding::kExplicit) {
        top = s.explicit_pad[0];
        bottom = s.explicit_pad[1];
        left = s.explicit_pad[2];
        right = s.explicit_pad[3];
    }
    if (top == bottom && left == right && value == 0.0)
        return {top, left};
    if (top != 0 || bottom != 0 || left != 0 || right != 0)
        x = F::pad(x, F::PadFuncOptions({left, right, top, bottom}).value(value));
    return {0, 0};
}

bool use_mkldnn(const torch::Tensor& x, const torch::Tensor& weight) {
    static const bool available = at::hasMKLDNN();
    return available && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
           weight.device().is_cpu() && weight.scalar_type() == torch::kFloat32;
}

Value exec_pool(const Step& s, const Value& in) {
    auto x = to_nchw(in, s.node);
    if (s.max_pool) {
        if (s.padding == Padding::kSame)
            x = pad_same(x, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
                         -std::numeric_limits<double>::infinity());
        return {torch::max_pool2d(x, {s.kernel_h, s.kernel_w}, {s.stride_h, s.stride_w}), true, {}};
    }
    if (s.padding == Padding::kValid)
        return {torch::avg_pool2d(x, {s.kernel_h, s.kernel_w}, {s.stride_h, s.stride_w}), true, {}};
    // SAME average pooling divides by the number of real (unpadded) pixels in each window.
    const auto ones = torch::ones({1, 1, x.size(2), x.size(3)}, x.options());
    const auto padded = pad_same(x, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w);
    const auto count = pad_same(ones, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w);
    const auto sum = torch::avg_pool2d(padded, {s.kernel_h, s.kernel_w}, {s.stride_h, s.stride_w});
    const auto n = torch::avg_pool2d(count, {s.kernel_h, s.kernel_w}, {s.stride_h, s.stride_w});
    return {sum / n, true, {}};
}

Value exec_reduce(const Step& s, const Value& in) {
    const int64_t rank = in.t.dim();
    std::vector<int64_t> axes;
    for (auto a : s.ints) {
        if (a < 0)
            a += rank;
        check(a >= 0 && a < rank, s.node, "reduction axis out of range");
        axes.push_back(a);
    }
    auto reduce = [&](const torch::Tensor& x, const std::vector<int64_t>& dims) {
        switch (s.reduce) {
            case Reduce::kMean:
                return x.mean(dims, s.keep_dims);
            case Reduce::kSum:
                return x.sum(dims, s.keep_dims);
            case Reduce::kMax:
                return x.amax(dims, s.keep_dims);
            case Reduce::kMin:
                return x.amin(dims, s.keep_dims);
        }
        return x;
    };
    if (in.nchw) {
        std::vector<int64_t> mapped;
        for (auto a : axes)
            mapped.push_back(nchw_axis(a));
        if (s.keep_dims)
            return {reduce(in.t, mapped), true, {}};
        // Without keep_dims the remaining axes must come out in graph order: true when the
        // channel axis is reduced too or both spatial axes are (the common global pooling).
        std::vector<int64_t> remaining_graph_order;
        for (int64_t nchw_dim : {0, 1, 2, 3}) {
            if (std::find(mapped.begin(), mapped.end(), nchw_dim) == mapped.end())
                remaining_graph_order.push_back(nchw_dim == 0   ? 0
                                                : nchw_dim == 1 ? 3
                                                                : nchw_dim - 1);
        }
        if (std::is_sorted(remaining_graph_order.begin(), remaining_graph_order.end()))
            return {reduce(in.t, mapped), false, {}};
    }
    return {reduce(to_graph_layout(in), axes), false, {}};
}

Value exec_step(const Step& s, const std::vector<Value>& slots) {
    auto operand = [&](size_t i) -> const Value& { return slots[static_cast<size_t>(s.in[i])]; };
    switch (s.op) {
        case Op::kConv: {
            auto x = to_nchw(operand(0), s.node);
            const auto pad = prepare_padding(s, x, 0.0);
            torch::Tensor y;
            if (s.groups == 1 && use_mkldnn(x, s.weight)) {
                // oneDNN handles every dense conv well. torch's own route for 1x1 convolutions
                // (im2col + gemm) depends on the system BLAS: 10-15x slower with Debian's
                // reference libblas, on a par with OpenBLAS.
                y = at::mkldnn_convolution(x, s.weight, s.bias, {pad[0], pad[1]},
                                           {s.stride_h, s.stride_w}, {s.dilation_h, s.dilation_w},
                                           1);
            } else {
                y = torch::conv2d(x, s.weight, s.bias, {s.stride_h, s.stride_w}, {pad[0], pad[1]},
                                  {s.dilation_h, s.dilation_w}, s.groups);
            }
            return {activate(s, y, true), true, {}};
        }
        case Op::kConvTranspose: {
            const auto x = to_nchw(operand(0), s.node);
            auto full = torch::conv_transpose2d(x, s.weight, {}, {s.stride_h, s.stride_w});
            const int64_t out_h = s.ints[1], out_w = s.ints[2];
            int64_t top = 0, left = 0;
            if (s.padding == Padding::kSame) {
                top = same_padding(out_h, s.kernel_h, s.stride_h).first;
                left = same_padding(out_w, s.kernel_w, s.stride_w).first;
            }
            const int64_t extra_h = std::max<int64_t>(top + out_h - full.size(2), 0);
            const int64_t extra_w = std::max<int64_t>(left + out_w - full.size(3), 0);
            if (extra_h > 0 || extra_w > 0)
                full = F::pad(full, F::PadFuncOptions({0, extra_w, 0, extra_h}));
            auto y = full.narrow(2, top, out_h).narrow(3, left, out_w);
            if (s.bias.defined())
                y = y + s.bias.view({1, -1, 1, 1});
            return {activate(s, y, true), true, {}};
        }
        case Op::kMatMul: {
            auto a = to_graph_layout(operand(0));
            if (s.transpose_a)
                a = a.transpose(-2, -1);
            torch::Tensor y;
            if (s.weight.defined()) {
                y = s.bias.defined() && a.dim() == 2 ? torch::addmm(s.bias, a, s.weight)
                                                     : a.matmul(s.weight);
                if (s.bias.defined() && a.dim() != 2)
                    y = y + s.bias;
            } else {
                auto b = to_graph_layout(operand(1));
                if (s.ints.size() == 1 && s.ints[0] == 1)
                    b = b.transpose(-2, -1);
                y = a.matmul(b);
                if (s.bias.defined())
                    y = y + s.bias;
            }
            return {activate(s, y, false), false, {}};
        }
        case Op::kBinary: {
            const auto& a = operand(0);
            const auto& b = operand(1);
            if (a.nchw || b.nchw) {
                const auto y = apply_binary(s.binary, to_nchw(a, s.node), to_nchw(b, s.node));
                return {activate(s, y, true), true, {}};
            }
            return {activate(s, apply_binary(s.binary, a.t, b.t), false), false, {}};
        }
        case Op::kAddN: {
            bool any_nchw = false;
            for (size_t i = 0; i < s.in.size(); ++i)
                any_nchw = any_nchw || operand(i).nchw;
            torch::Tensor sum = any_nchw ? to_nchw(operand(0), s.node) : operand(0).t;
            for (size_t i = 1; i < s.in.size(); ++i)
                sum = sum + (any_nchw ? to_nchw(operand(i), s.node) : operand(i).t);
            return {sum, any_nchw, {}};
        }
        case Op::kActivation: {
            const auto& x = operand(0);
            return {activate(s, x.t, x.nchw), x.nchw, {}};
        }
        case Op::kUnary: {
            const auto& x = operand(0);
            return {apply_unary(s.unary, x.t), x.nchw, {}};
        }
        case Op::kSoftmax: {
            const auto& x = operand(0);
            return {torch::softmax(x.t, x.nchw ? 1 : -1), x.nchw, {}};
        }
        case Op::kPool:
            return exec_pool(s, operand(0));
        case Op::kPad: {
            const auto& x = operand(0);
            const int64_t rank = x.t.dim();
            check(static_cast<int64_t>(s.ints.size()) == 2 * rank, s.node,
                  "paddings do not match the input rank");
            std::vector<int64_t> pads;  // last dimension first, as F::pad wants
            for (int64_t d = rank - 1; d >= 0; --d) {
                const int64_t graph_axis =
                    x.nchw ? std::array<int64_t, 4>{0, 3, 1, 2}[static_cast<size_t>(d)] : d;
                pads.push_back(s.ints[static_cast<size_t>(2 * graph_axis)]);
                pads.push_back(s.ints[static_cast<size_t>(2 * graph_axis + 1)]);
            }
            return {F::pad(x.t, F::PadFuncOptions(pads).value(s.pad_value)), x.nchw, {}};
        }
        case Op::kReshape: {
            const auto x = to_graph_layout(operand(0));
            auto target = s.ints;
            if (!target.empty() && target[0] == 1 && x.dim() > 0 && x.size(0) > 1) {
                int64_t rest = 1;
                bool inferred = false;
                for (size_t i = 1; i < target.size(); ++i) {
                    if (target[i] < 0)
                        inferred = true;
                    else
                        rest *= target[i];
                }
                if (!inferred && rest * x.size(0) == x.numel())
                    target[0] = x.size(0);
            }
            return {x.reshape(target), false, {}};
        }
        case Op::kReduce:
            return exec_reduce(s, operand(0));
        case Op::kConcat: {
            int64_t axis = s.ints[0];
            bool any_nchw = false, all_rank4 = true;
            for (size_t i = 0; i < s.in.size(); ++i) {
                any_nchw = any_nchw || operand(i).nchw;
                all_rank4 = all_rank4 && operand(i).t.dim() == 4;
            }
            const int64_t rank = operand(0).t.dim();
            if (axis < 0)
                axis += rank;
            check(axis >= 0 && axis < rank, s.node, "concat axis out of range");
            std::vector<torch::Tensor> parts;
            const bool nchw = any_nchw && all_rank4;
            for (size_t i = 0; i < s.in.size(); ++i)
                parts.push_back(nchw ? to_nchw(operand(i), s.node) : to_graph_layout(operand(i)));
            return {torch::cat(parts, nchw ? nchw_axis(axis) : axis), nchw, {}};
        }
        case Op::kResize: {
            const auto& x = operand(0);
            const int64_t h = s.ints[0], w = s.ints[1];
            if (!s.half_pixel && !s.align_corners)
                return {resize_bilinear_legacy(to_graph_layout(x), h, w), false, {}};
            const auto y = F::interpolate(to_nchw(x, s.node), F::InterpolateFuncOptions()
                                                                  .size(std::vector<int64_t>{h, w})
                                                                  .mode(torch::kBilinear)
                                                                  .align_corners(s.align_corners));
            return {y, true, {}};
        }
        case Op::kSqueeze: {
            auto x = to_graph_layout(operand(0));
            if (s.ints.empty())
                return {x.squeeze(), false, {}};
            std::vector<int64_t> dims;
            for (auto d : s.ints)
                dims.push_back(d < 0 ? d + x.dim() : d);
            std::sort(dims.rbegin(), dims.rend());
            for (auto d : dims)
                x = x.squeeze(d);
            return {x, false, {}};
        }
    }
    throw Error(s.node, "internal: unknown step");
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers

std::string base64_decode(const std::string& in) {
    static const std::string chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int value = 0, bits = -8;
    for (const char c : in) {
        if (c == '=')
            break;
        const auto pos = chars.find(c);
        if (pos == std::string::npos)
            continue;
        value = (value << 6) + static_cast<int>(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((value >> bits) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

int64_t json_int(const ojson& v) {
    if (v.is_string())
        return std::stoll(v.get<std::string>());
    return v.get<int64_t>();
}

struct Node {
    std::string name, op;
    std::vector<std::string> inputs;  // data inputs: node names (":0" stripped)
    const ojson* attr = nullptr;
};

class Attrs {
public:
    Attrs(const Node& node, const std::string& subject)
        : node_(node), where_(subject + ": node '" + node.name + "' (" + node.op + ")") {}

    bool has(const std::string& key) const {
        return node_.attr != nullptr && node_.attr->contains(key);
    }
    std::string str(const std::string& key, const std::string& fallback = "") const {
        if (!has(key))
            return fallback;
        const auto& v = node_.attr->at(key);
        return v.contains("s") ? base64_decode(v["s"].get<std::string>()) : fallback;
    }
    bool boolean(const std::string& key, bool fallback = false) const {
        if (!has(key))
            return fallback;
        const auto& v = node_.attr->at(key);
        return v.contains("b") ? v["b"].get<bool>() : fallback;
    }
    double real(const std::string& key, double fallback) const {
        if (!has(key))
            return fallback;
        const auto& v = node_.attr->at(key);
        return v.contains("f") ? v["f"].get<double>() : fallback;
    }
    int64_t integer(const std::string& key, int64_t fallback) const {
        if (!has(key))
            return fallback;
        const auto& v = node_.attr->at(key);
        return v.contains("i") ? json_int(v["i"]) : fallback;
    }
    std::vector<int64_t> ints(const std::string& key) const {
        std::vector<int64_t> out;
        if (has(key)) {
            const auto& v = node_.attr->at(key);
            if (v.contains("list") && v["list"].contains("i")) {
                for (const auto& i : v["list"]["i"])
                    out.push_back(json_int(i));
            }
        }
        return out;
    }
    std::vector<std::string> strings(const std::string& key) const {
        std::vector<std::string> out;
        if (has(key)) {
            const auto& v = node_.attr->at(key);
            if (v.contains("list") && v["list"].contains("s")) {
                for (const auto& s : v["list"]["s"])
                    out.push_back(base64_decode(s.get<std::string>()));
            }
        }
        return out;
    }
    const std::string& where() const { return where_; }

private:
    const Node& node_;
    std::string where_;
};

std::string strip_output_suffix(const std::string& name) {
    const auto colon = name.rfind(':');
    if (colon != std::string::npos && colon + 1 < name.size() &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(colon + 1), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; }))
        return name.substr(0, colon);
    return name;
}

std::vector<int64_t> tensor_ints(const torch::Tensor& t) {
    const auto flat = t.to(torch::kCPU, torch::kLong).contiguous().view({-1});
    return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl

struct GraphModel::Impl {
    std::string subject;
    std::vector<std::string> input_names;
    std::vector<std::vector<int64_t>> input_shapes;
    std::vector<int> input_slots;
    std::vector<std::string> output_names;
    std::vector<std::string> output_nodes;
    std::vector<int> output_slots;
    std::vector<Value> init_slots;  // constants filled in, everything else empty
    std::vector<bool> is_constant;
    std::vector<Step> steps;
    torch::Device device = torch::kCPU;

    void compile(const ojson& model, const std::filesystem::path& base_dir);
    void fuse_steps();
};

namespace {

class Compiler {
public:
    Compiler(GraphModel::Impl& impl, const Weights& weights) : impl_(impl), weights_(weights) {}

    void add_node(const Node& node);
    int slot_of(const std::string& node_name) const {
        const auto it = slot_.find(node_name);
        check(it != slot_.end(), impl_.subject, "internal: node '" + node_name + "' not compiled");
        return it->second;
    }

private:
    int new_slot() {
        impl_.init_slots.emplace_back();
        impl_.is_constant.push_back(false);
        return static_cast<int>(impl_.init_slots.size()) - 1;
    }
    int constant_slot(torch::Tensor value) {
        const int slot = new_slot();
        set_constant(slot, std::move(value));
        return slot;
    }
    void set_constant(int slot, torch::Tensor value) {
        auto& v = impl_.init_slots[static_cast<size_t>(slot)];
        v.t = value;
        v.nchw = false;
        v.nchw_broadcast =
            value.dim() <= 4 ? graph_to_nchw_broadcast(value, "").contiguous() : torch::Tensor();
        impl_.is_constant[static_cast<size_t>(slot)] = true;
    }
    bool is_const(int slot) const { return impl_.is_constant[static_cast<size_t>(slot)]; }
    torch::Tensor const_value(const Attrs& a, const Node& node, size_t input) const {
        check(input < node.inputs.size(), a.where(),
              "expects at least " + std::to_string(input + 1) + " inputs");
        const int slot = slot_of(node.inputs[input]);
        check(is_const(slot), a.where(),
              "input " + std::to_string(input) + " ('" + node.inputs[input] +
                  "') must be a constant for this interpreter");
        return impl_.init_slots[static_cast<size_t>(slot)].t;
    }
    void require_inputs(const Attrs& a, const Node& node, size_t n) const {
        check(
            node.inputs.size() >= n, a.where(),
            "expects " + std::to_string(n) + " inputs, has " + std::to_string(node.inputs.size()));
    }
    void set_window(Step& s, const Attrs& a, const std::vector<int64_t>& strides,
                    const std::vector<int64_t>& dilations) {
        check(a.str("data_format", "NHWC") == "NHWC", a.where(), "only NHWC data is supported");
        if (!strides.empty()) {
            check(strides.size() == 4, a.where(), "strides must have 4 entries");
            s.stride_h = strides[1];
            s.stride_w = strides[2];
        }
        if (!dilations.empty()) {
            check(dilations.size() == 4, a.where(), "dilations must have 4 entries");
            s.dilation_h = dilations[1];
            s.dilation_w = dilations[2];
        }
        const auto padding = a.str("padding", "VALID");
        if (padding == "SAME") {
            s.padding = Padding::kSame;
        } else if (padding == "VALID") {
            s.padding = Padding::kValid;
        } else if (padding == "EXPLICIT") {
            const auto p = a.ints("explicit_paddings");
            check(p.size() == 8, a.where(), "explicit_paddings must have 8 entries");
            s.padding = Padding::kExplicit;
            s.explicit_pad = {p[2], p[3], p[4], p[5]};
        } else {
            throw Error(a.where(), "unsupported padding '" + padding + "'");
        }
    }
    void set_activation(Step& s, const Attrs& a, const std::string& name,
                        const torch::Tensor* prelu_alpha) {
        if (name == "Relu") {
            s.activation = Activation::kRelu;
        } else if (name == "Relu6") {
            s.activation = Activation::kRelu6;
        } else if (name == "Elu") {
            s.activation = Activation::kElu;
        } else if (name == "Sigmoid") {
            s.activation = Activation::kSigmoid;
        } else if (name == "Tanh") {
            s.activation = Activation::kTanh;
        } else if (name == "LeakyRelu") {
            s.activation = Activation::kLeakyRelu;
            s.leaky_alpha = a.real(a.has("leakyrelu_alpha") ? "leakyrelu_alpha" : "alpha", 0.2);
        } else if (name == "Prelu") {
            check(prelu_alpha != nullptr, a.where(), "Prelu without its alpha");
            s.activation = Activation::kPrelu;
            const auto alpha = prelu_alpha->to(torch::kFloat32);
            s.prelu_graph = alpha;
            s.prelu_nchw = graph_to_nchw_broadcast(alpha, a.where()).contiguous();
            // Per-channel alphas ([C], [1, 1, C], ...) run through torch::prelu.
            if (alpha.dim() >= 1 && alpha.numel() == alpha.size(-1) && alpha.numel() > 1)
                s.prelu_flat = alpha.reshape({-1}).contiguous();
        } else {
            throw Error(a.where(), "unsupported fused activation '" + name + "'");
        }
    }
    void fused_ops(Step& s, const Attrs& a, const Node& node, size_t first_arg) {
        const auto ops = a.strings("fused_ops");
        if (ops.empty() || ops[0] != "BiasAdd" || ops.size() > 2) {
            std::string list;
            for (const auto& op : ops)
                list += (list.empty() ? "" : ",") + op;
            throw Error(a.where(), "unsupported fused_ops [" + list + "]");
        }
        s.bias = const_value(a, node, first_arg).to(torch::kFloat32).reshape({-1}).contiguous();
        if (ops.size() == 2) {
            torch::Tensor alpha;
            if (ops[1] == "Prelu") {
                check(a.integer("num_args", 0) >= 2, a.where(), "Prelu fused without its alpha");
                alpha = const_value(a, node, first_arg + 1);
            }
            set_activation(s, a, ops[1], alpha.defined() ? &alpha : nullptr);
        }
    }

    void finish(Step s, const Node& node) {
        s.node = impl_.subject + ": node '" + node.name + "' (" + node.op + ")";
        s.out = new_slot();
        slot_[node.name] = s.out;
        bool all_const = true;
        for (const int slot : s.in)
            all_const = all_const && is_const(slot);
        if (all_const) {
            // Constant folding: evaluate once, keep the result as a constant.
            torch::NoGradGuard no_grad;
            const auto value = exec_step(s, impl_.init_slots);
            set_constant(s.out, to_graph_layout(value).contiguous());
            return;
        }
        impl_.steps.push_back(std::move(s));
    }

    GraphModel::Impl& impl_;
    const Weights& weights_;
    std::unordered_map<std::string, int> slot_;
};

const std::set<std::string> kBinaryOps{
    "Add",     "AddV2", "BiasAdd", "Sub",     "Mul",
    "RealDiv", "Div",   "Maximum", "Minimum", "SquaredDifference"};

void Compiler::add_node(const Node& node) {
    const Attrs a(node, impl_.subject);
    const auto& op = node.op;
    auto inputs_from = [&](Step& s, size_t first, size_t last) {
        for (size_t i = first; i < last; ++i)
            s.in.push_back(slot_of(node.inputs[i]));
    };

    if (op == "Const") {
        check(weights_.contains(node.name), a.where(),
              "constant has no entry in the weights manifest");
        slot_[node.name] = constant_slot(weights_.get(node.name));
        return;
    }
    if (op == "Placeholder") {
        const int slot = new_slot();
        slot_[node.name] = slot;
        return;
    }
    if (op == "Identity" || op == "StopGradient" || op == "Snapshot") {
        require_inputs(a, node, 1);
        slot_[node.name] = slot_of(node.inputs[0]);
        return;
    }

    Step s;
    if (op == "Conv2D" || op == "_FusedConv2D" || op == "DepthwiseConv2dNative" ||
        op == "FusedDepthwiseConv2dNative") {
        require_inputs(a, node, 2);
        const bool depthwise = op.find("Depthwise") != std::string::npos;
        s.op = Op::kConv;
        set_window(s, a, a.ints("strides"), a.ints("dilations"));
        const auto filter = const_value(a, node, 1).to(torch::kFloat32);
        check(filter.dim() == 4, a.where(), "filter must be 4-D");
        s.kernel_h = filter.size(0);
        s.kernel_w = filter.size(1);
        if (depthwise) {
            s.weight = depthwise_filter_to_torch(filter);
            s.groups = filter.size(2);
        } else {
            s.weight = conv_filter_to_torch(filter);
        }
        if (op == "_FusedConv2D" || op == "FusedDepthwiseConv2dNative")
            fused_ops(s, a, node, 2);
        inputs_from(s, 0, 1);
    } else if (op == "Conv2DBackpropInput") {
        require_inputs(a, node, 3);
        s.op = Op::kConvTranspose;
        set_window(s, a, a.ints("strides"), a.ints("dilations"));
        check(s.dilation_h == 1 && s.dilation_w == 1, a.where(), "dilated transposed convolution");
        check(s.padding != Padding::kExplicit, a.where(), "EXPLICIT padding is not supported");
        s.ints = tensor_ints(const_value(a, node, 0));
        check(s.ints.size() == 4, a.where(), "input_sizes must have 4 entries");
        const auto filter = const_value(a, node, 1).to(torch::kFloat32);  // [kh, kw, out, in]
        check(filter.dim() == 4, a.where(), "filter must be 4-D");
        s.kernel_h = filter.size(0);
        s.kernel_w = filter.size(1);
        s.weight = filter.permute({3, 2, 0, 1}).contiguous();  // [in, out, kh, kw]
        inputs_from(s, 2, 3);
    } else if (op == "MatMul" || op == "_FusedMatMul") {
        require_inputs(a, node, 2);
        s.op = Op::kMatMul;
        s.transpose_a = a.boolean("transpose_a");
        const bool transpose_b = a.boolean("transpose_b");
        const int b_slot = slot_of(node.inputs[1]);
        if (is_const(b_slot)) {
            auto w = impl_.init_slots[static_cast<size_t>(b_slot)].t.to(torch::kFloat32);
            s.weight = (transpose_b ? w.transpose(-2, -1) : w).contiguous();
            inputs_from(s, 0, 1);
        } else {
            s.ints = {transpose_b ? 1 : 0};
            inputs_from(s, 0, 2);
        }
        if (op == "_FusedMatMul")
            fused_ops(s, a, node, 2);
    } else if (kBinaryOps.count(op) != 0) {
        require_inputs(a, node, 2);
        s.op = Op::kBinary;
        if (op == "BiasAdd")
            check(a.str("data_format", "NHWC") == "NHWC", a.where(), "only NHWC is supported");
        if (op == "Add" || op == "AddV2" || op == "BiasAdd")
            s.binary = Binary::kAdd;
        else if (op == "Sub")
            s.binary = Binary::kSub;
        else if (op == "Mul")
            s.binary = Binary::kMul;
        else if (op == "RealDiv" || op == "Div")
            s.binary = Binary::kDiv;
        else if (op == "Maximum")
            s.binary = Binary::kMaximum;
        else if (op == "Minimum")
            s.binary = Binary::kMinimum;
        else
            s.binary = Binary::kSquaredDifference;
        inputs_from(s, 0, 2);
    } else if (op == "AddN") {
        require_inputs(a, node, 1);
        s.op = Op::kAddN;
        inputs_from(s, 0, node.inputs.size());
    } else if (op == "Relu" || op == "Relu6" || op == "Elu" || op == "Sigmoid" || op == "Tanh" ||
               op == "LeakyRelu") {
        require_inputs(a, node, 1);
        s.op = Op::kActivation;
        set_activation(s, a, op, nullptr);
        inputs_from(s, 0, 1);
    } else if (op == "Prelu") {
        require_inputs(a, node, 2);
        s.op = Op::kActivation;
        const auto alpha = const_value(a, node, 1);
        set_activation(s, a, op, &alpha);
        inputs_from(s, 0, 1);
    } else if (op == "Abs" || op == "Neg" || op == "Square" || op == "Sqrt" || op == "Rsqrt" ||
               op == "Exp" || op == "Log") {
        require_inputs(a, node, 1);
        s.op = Op::kUnary;
        static const std::map<std::string, Unary> kUnary{
            {"Abs", Unary::kAbs},   {"Neg", Unary::kNeg},     {"Square", Unary::kSquare},
            {"Sqrt", Unary::kSqrt}, {"Rsqrt", Unary::kRsqrt}, {"Exp", Unary::kExp},
            {"Log", Unary::kLog}};
        s.unary = kUnary.at(op);
        inputs_from(s, 0, 1);
    } else if (op == "Softmax") {
        require_inputs(a, node, 1);
        s.op = Op::kSoftmax;
        inputs_from(s, 0, 1);
    } else if (op == "MaxPool" || op == "AvgPool") {
        require_inputs(a, node, 1);
        s.op = Op::kPool;
        s.max_pool = op == "MaxPool";
        set_window(s, a, a.ints("strides"), {});
        check(s.padding != Padding::kExplicit, a.where(), "EXPLICIT padding is not supported");
        const auto k = a.ints("ksize");
        check(k.size() == 4 && k[0] == 1 && k[3] == 1, a.where(), "ksize must be [1, kh, kw, 1]");
        s.kernel_h = k[1];
        s.kernel_w = k[2];
        inputs_from(s, 0, 1);
    } else if (op == "Pad" || op == "PadV2") {
        require_inputs(a, node, 2);
        s.op = Op::kPad;
        s.ints = tensor_ints(const_value(a, node, 1));
        if (op == "PadV2" && node.inputs.size() > 2)
            s.pad_value = const_value(a, node, 2).item<double>();
        inputs_from(s, 0, 1);
    } else if (op == "Reshape") {
        require_inputs(a, node, 2);
        s.op = Op::kReshape;
        s.ints = tensor_ints(const_value(a, node, 1));
        inputs_from(s, 0, 1);
    } else if (op == "Mean" || op == "Sum" || op == "Max" || op == "Min") {
        require_inputs(a, node, 2);
        s.op = Op::kReduce;
        s.reduce = op == "Mean"  ? Reduce::kMean
                   : op == "Sum" ? Reduce::kSum
                   : op == "Max" ? Reduce::kMax
                                 : Reduce::kMin;
        s.ints = tensor_ints(const_value(a, node, 1));
        s.keep_dims = a.boolean("keep_dims");
        inputs_from(s, 0, 1);
    } else if (op == "ConcatV2") {
        require_inputs(a, node, 2);
        s.op = Op::kConcat;
        s.ints = tensor_ints(const_value(a, node, node.inputs.size() - 1));
        check(s.ints.size() == 1, a.where(), "axis must be a scalar");
        inputs_from(s, 0, node.inputs.size() - 1);
    } else if (op == "ResizeBilinear") {
        require_inputs(a, node, 2);
        s.op = Op::kResize;
        s.ints = tensor_ints(const_value(a, node, 1));
        check(s.ints.size() == 2, a.where(), "size must have 2 entries");
        s.half_pixel = a.boolean("half_pixel_centers");
        s.align_corners = a.boolean("align_corners");
        check(!(s.half_pixel && s.align_corners), a.where(),
              "half_pixel_centers together with align_corners");
        inputs_from(s, 0, 1);
    } else if (op == "Squeeze") {
        require_inputs(a, node, 1);
        s.op = Op::kSqueeze;
        s.ints = a.ints("squeeze_dims");
        inputs_from(s, 0, 1);
    } else {
        throw Error(impl_.subject, "unsupported op '" + op + "' (node '" + node.name + "')");
    }
    finish(std::move(s), node);
}

}  // namespace

void GraphModel::Impl::compile(const ojson& model, const std::filesystem::path& base_dir) {
    check(model.is_object() && model.contains("modelTopology") &&
              model["modelTopology"].contains("node") && model["modelTopology"]["node"].is_array(),
          subject, "not a TFJS graph model (no modelTopology.node)");
    check(model.contains("weightsManifest"), subject, "no weightsManifest");
    const auto weights =
        Weights::decode(nlohmann::json::parse(model["weightsManifest"].dump()), base_dir, subject);

    // Nodes.
    std::vector<Node> nodes;
    std::unordered_map<std::string, size_t> index;
    for (const auto& n : model["modelTopology"]["node"]) {
        check(n.contains("name") && n.contains("op"), subject, "a node without name or op");
        Node node;
        node.name = n["name"].get<std::string>();
        node.op = n["op"].get<std::string>();
        if (n.contains("attr"))
            node.attr = &n["attr"];
        if (n.contains("input")) {
            for (const auto& in : n["input"]) {
                auto name = in.get<std::string>();
                if (!name.empty() && name[0] == '^')
                    continue;  // control dependency: no data
                const auto colon = name.rfind(':');
                if (colon != std::string::npos) {
                    check(name.substr(colon + 1) == "0", subject,
                          "node '" + node.name + "' reads output '" + name +
                              "': only single-output ops are supported");
                    name = name.substr(0, colon);
                }
                node.inputs.push_back(name);
            }
        }
        check(index.emplace(node.name, nodes.size()).second, subject,
              "node '" + node.name + "' defined twice");
        nodes.push_back(std::move(node));
    }
    auto find_node = [&](const std::string& name, const std::string& what) {
        const auto it = index.find(name);
        check(it != index.end(), subject, what + " names an unknown node '" + name + "'");
        return it->second;
    };

    // Signature (top level, or under userDefinedMetadata) names the inputs and outputs in order.
    const ojson* signature = nullptr;
    if (model.contains("signature") && model["signature"].is_object())
        signature = &model["signature"];
    else if (model.contains("userDefinedMetadata") &&
             model["userDefinedMetadata"].contains("signature"))
        signature = &model["userDefinedMetadata"]["signature"];

    std::vector<size_t> input_nodes;
    if (signature != nullptr && signature->contains("inputs")) {
        for (const auto& [key, value] : (*signature)["inputs"].items()) {
            const auto name = strip_output_suffix(value.value("name", key));
            input_nodes.push_back(find_node(name, "signature input '" + key + "'"));
        }
    } else {
        for (size_t i = 0; i < nodes.size(); ++i) {
            if (nodes[i].op == "Placeholder")
                input_nodes.push_back(i);
        }
    }
    std::vector<size_t> outputs;
    if (signature != nullptr && signature->contains("outputs")) {
        for (const auto& [key, value] : (*signature)["outputs"].items()) {
            const auto name = strip_output_suffix(value.value("name", key));
            outputs.push_back(find_node(name, "signature output '" + key + "'"));
            output_names.push_back(key);
            output_nodes.push_back(name);
        }
    } else {
        std::set<std::string> consumed;
        for (const auto& n : nodes)
            consumed.insert(n.inputs.begin(), n.inputs.end());
        for (size_t i = 0; i < nodes.size(); ++i) {
            if (consumed.count(nodes[i].name) == 0 && nodes[i].op != "Const" &&
                nodes[i].op != "Placeholder") {
                outputs.push_back(i);
                output_names.push_back(nodes[i].name);
                output_nodes.push_back(nodes[i].name);
            }
        }
    }
    check(!outputs.empty(), subject, "the graph has no outputs");

    // Topological order of what the outputs need (iterative depth-first post-order).
    std::vector<int> state(nodes.size(), 0);  // 0 new, 1 on stack, 2 done
    std::vector<size_t> order;
    for (const size_t root : outputs) {
        std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
        while (!stack.empty()) {
            auto& [n, next] = stack.back();
            if (next == 0) {
                if (state[n] == 2) {
                    stack.pop_back();
                    continue;
                }
                state[n] = 1;
            }
            if (next < nodes[n].inputs.size()) {
                const size_t child =
                    find_node(nodes[n].inputs[next], "node '" + nodes[n].name + "'");
                ++next;
                check(state[child] != 1, subject,
                      "the graph has a cycle at '" + nodes[child].name + "'");
                if (state[child] == 0)
                    stack.emplace_back(child, 0);
                continue;
            }
            state[n] = 2;
            order.push_back(n);
            stack.pop_back();
        }
    }
    // Placeholders nothing reads still take their input.
    for (const size_t i : input_nodes) {
        if (state[i] != 2)
            order.insert(order.begin(), i);
        state[i] = 2;
    }

    // Every op is checked before any work.
    static const std::set<std::string> kSupported{"Const",
                                                  "Placeholder",
                                                  "Identity",
                                                  "StopGradient",
                                                  "Snapshot",
                                                  "Conv2D",
                                                  "_FusedConv2D",
                                                  "DepthwiseConv2dNative",
                                                  "FusedDepthwiseConv2dNative",
                                                  "Conv2DBackpropInput",
                                                  "MatMul",
                                                  "_FusedMatMul",
                                                  "Add",
                                                  "AddV2",
                                                  "BiasAdd",
                                                  "Sub",
                                                  "Mul",
                                                  "RealDiv",
                                                  "Div",
                                                  "Maximum",
                                                  "Minimum",
                                                  "SquaredDifference",
                                                  "AddN",
                                                  "Relu",
                                                  "Relu6",
                                                  "Elu",
                                                  "Sigmoid",
                                                  "Tanh",
                                                  "LeakyRelu",
                                                  "Prelu",
                                                  "Abs",
                                                  "Neg",
                                                  "Square",
                                                  "Sqrt",
                                                  "Rsqrt",
                                                  "Exp",
                                                  "Log",
                                                  "Softmax",
                                                  "MaxPool",
                                                  "AvgPool",
                                                  "Pad",
                                                  "PadV2",
                                                  "Reshape",
                                                  "Mean",
                                                  "Sum",
                                                  "Max",
                                                  "Min",
                                                  "ConcatV2",
                                                  "ResizeBilinear",
                                                  "Squeeze"};
    for (const size_t n : order) {
        check(kSupported.count(nodes[n].op) != 0, subject,
              "unsupported op '" + nodes[n].op + "' (node '" + nodes[n].name + "')");
    }

    Compiler compiler(*this, weights);
    for (const size_t n : order)
        compiler.add_node(nodes[n]);

    for (const size_t i : input_nodes) {
        input_names.push_back(nodes[i].name);
        input_slots.push_back(compiler.slot_of(nodes[i].name));
        std::vector<int64_t> shape;
        const Attrs a(nodes[i], subject);
        if (a.has("shape")) {
            const auto& s = nodes[i].attr->at("shape");
            if (s.contains("shape") && s["shape"].contains("dim")) {
                for (const auto& d : s["shape"]["dim"])
                    shape.push_back(d.contains("size") ? json_int(d["size"]) : -1);
            }
        }
        input_shapes.push_back(shape);
    }
    for (const auto& name : output_nodes)
        output_slots.push_back(compiler.slot_of(name));

    fuse_steps();

    // Free each intermediate after the last step that reads it.
    std::vector<int> last_use(init_slots.size(), -1);
    for (size_t i = 0; i < steps.size(); ++i) {
        for (const int slot : steps[i].in)
            last_use[static_cast<size_t>(slot)] = static_cast<int>(i);
    }
    for (const int slot : output_slots)
        last_use[static_cast<size_t>(slot)] = -1;
    for (size_t slot = 0; slot < last_use.size(); ++slot) {
        if (last_use[slot] >= 0 && !is_constant[slot])
            steps[static_cast<size_t>(last_use[slot])].release.push_back(static_cast<int>(slot));
    }
}

// Peephole fusion of a step with the single step that reads its result (never a graph output):
//   conv + per-channel constant Add/Sub/Mul      -> folded into the conv's bias / filter
//   conv, matmul or binary op + activation step  -> the activation applied in the same step
//   relu / relu6 / clamp + Maximum/Minimum with a scalar constant -> one clamp
// FaceRes (BN shift Add, Relu, Minimum 6, Maximum 0 after every conv) and BlazeFace (Add + Relu)
// lose most of their elementwise steps and intermediate buffers.
void GraphModel::Impl::fuse_steps() {
    std::vector<std::vector<size_t>> readers(init_slots.size());
    for (size_t i = 0; i < steps.size(); ++i) {
        for (const int slot : steps[i].in)
            readers[static_cast<size_t>(slot)].push_back(i);
    }
    std::vector<bool> is_output(init_slots.size(), false);
    for (const int slot : output_slots)
        is_output[static_cast<size_t>(slot)] = true;
    std::vector<bool> dead(steps.size(), false);

    auto constant_operand = [&](const Step& t, int produced) -> const torch::Tensor* {
        if (t.in.size() != 2)
            return nullptr;
        const int other = t.in[0] == produced ? t.in[1] : t.in[0];
        if (!is_constant[static_cast<size_t>(other)])
            return nullptr;
        return &init_slots[static_cast<size_t>(other)].t;
    };
    // A constant that broadcasts along the channel (last graph) axis only, as [C] floats.
    auto per_channel = [](const torch::Tensor& c, int64_t channels) -> torch::Tensor {
        if (!c.is_floating_point() || c.dim() > 4)
            return {};
        if (c.numel() == 1)
            return c.to(torch::kFloat32).reshape({1}).expand({channels}).contiguous();
        if (c.dim() >= 1 && c.numel() == channels && c.size(-1) == channels)
            return c.to(torch::kFloat32).reshape({channels}).contiguous();
        return {};
    };
    auto as_clamp = [](Step& s) {
        if (s.activation == Activation::kRelu) {
            s.clamp_min = 0;
        } else if (s.activation == Activation::kRelu6) {
            s.clamp_min = 0;
            s.clamp_max = 6;
        }
        s.activation = Activation::kClamp;
    };

    for (size_t i = 0; i < steps.size(); ++i) {
        if (dead[i])
            continue;
        Step& s = steps[i];
        for (;;) {
            const auto& r = readers[static_cast<size_t>(s.out)];
            if (r.size() != 1 || is_output[static_cast<size_t>(s.out)])
                break;
            Step& t = steps[r[0]];
            if (t.in.size() > 2 || (t.in.size() == 2 && t.in[0] == t.in[1]))
                break;
            bool fused = false;
            const torch::Tensor* c = t.op == Op::kBinary ? constant_operand(t, s.out) : nullptr;
            if (s.op == Op::kConv && s.activation == Activation::kNone && c != nullptr &&
                (t.binary == Binary::kAdd || t.binary == Binary::kMul ||
                 (t.binary == Binary::kSub && t.in[0] == s.out))) {
                const auto v = per_channel(*c, s.weight.size(0));
                if (v.defined()) {
                    if (t.binary == Binary::kMul) {
                        s.weight = (s.weight * v.view({-1, 1, 1, 1})).contiguous();
                        if (s.bias.defined())
                            s.bias = s.bias * v;
                    } else {
                        const auto shift = t.binary == Binary::kSub ? -v : v;
                        s.bias = s.bias.defined() ? s.bias + shift : shift;
                    }
                    fused = true;
                }
            } else if ((s.op == Op::kConv || s.op == Op::kConvTranspose || s.op == Op::kMatMul ||
                        s.op == Op::kBinary) &&
                       s.activation == Activation::kNone && t.op == Op::kActivation) {
                s.activation = t.activation;
                s.leaky_alpha = t.leaky_alpha;
                s.prelu_flat = t.prelu_flat;
                s.prelu_nchw = t.prelu_nchw;
                s.prelu_graph = t.prelu_graph;
                fused = true;
            } else if ((s.activation == Activation::kRelu || s.activation == Activation::kRelu6 ||
                        s.activation == Activation::kClamp ||
                        (s.activation == Activation::kNone &&
                         (s.op == Op::kConv || s.op == Op::kBinary))) &&
                       c != nullptr && c->numel() == 1 && c->is_floating_point() &&
                       (t.binary == Binary::kMaximum || t.binary == Binary::kMinimum)) {
                const double bound = c->item<double>();
                as_clamp(s);
                if (t.binary == Binary::kMaximum)
                    s.clamp_min = std::max(s.clamp_min, bound);
                else
                    s.clamp_max = std::min(s.clamp_max, bound);
                fused = true;
            }
            if (!fused)
                break;
            dead[r[0]] = true;
            s.node += " + " + t.node.substr(t.node.rfind('('));
            s.out = t.out;
        }
    }
    std::vector<Step> kept;
    for (size_t i = 0; i < steps.size(); ++i) {
        if (!dead[i])
            kept.push_back(std::move(steps[i]));
    }
    steps = std::move(kept);
}

// ---------------------------------------------------------------------------------------------
// GraphModel

void keep_freed_tensor_memory() {
    static std::once_flag once;
    std::call_once(once, [] {
#if defined(__GLIBC__)
        // A model run frees and re-allocates activation buffers of a few MB each. By default
        // glibc serves such blocks with mmap and returns freed heap tops to the kernel, so every
        // buffer is page-faulted and zero-filled again on every call: this dominated the run time
        // (BlazeFace 256 px: ~40 ms -> ~10 ms, one thread). Keep them in the heap instead.
        mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
    });
}

GraphModel GraphModel::from_json(const std::string& model_json_text,
                                 const std::filesystem::path& base_dir,
                                 const std::string& subject) {
    ojson model;
    try {
        model = ojson::parse(model_json_text);
    } catch (const ojson::exception& e) {
        throw Error(subject, std::string("not valid JSON: ") + e.what());
    }
    keep_freed_tensor_memory();
    GraphModel result;
    result.impl_ = std::make_shared<Impl>();
    result.impl_->subject = subject;
    result.impl_->compile(model, base_dir);
    return result;
}

GraphModel GraphModel::load(const std::filesystem::path& json_path) {
    return from_json(read_text_file(json_path), json_path.parent_path(), json_path.string());
}

namespace {
const GraphModel::Impl& require(const std::shared_ptr<GraphModel::Impl>& impl) {
    check(impl != nullptr, "GraphModel", "no model loaded");
    return *impl;
}
}  // namespace

const std::string& GraphModel::subject() const {
    return require(impl_).subject;
}

const std::vector<std::string>& GraphModel::input_names() const {
    return require(impl_).input_names;
}

const std::vector<int64_t>& GraphModel::input_shape(size_t i) const {
    const auto& impl = require(impl_);
    check(i < impl.input_shapes.size(), impl.subject, "no input " + std::to_string(i));
    return impl.input_shapes[i];
}

const std::vector<std::string>& GraphModel::output_names() const {
    return require(impl_).output_names;
}

size_t GraphModel::output_index(const std::string& name) const {
    const auto& impl = require(impl_);
    const auto stripped = strip_output_suffix(name);
    for (size_t i = 0; i < impl.output_names.size(); ++i) {
        if (impl.output_names[i] == name || strip_output_suffix(impl.output_names[i]) == stripped ||
            impl.output_nodes[i] == stripped)
            return i;
    }
    throw Error(impl.subject, "has no output '" + name + "'");
}

size_t GraphModel::num_steps() const {
    return require(impl_).steps.size();
}

torch::Device GraphModel::device() const {
    return require(impl_).device;
}

void GraphModel::to(torch::Device device) {
    require(impl_);
    auto& impl = *impl_;
    auto move = [&](torch::Tensor& t) {
        if (t.defined())
            t = t.to(device);
    };
    for (auto& v : impl.init_slots) {
        move(v.t);
        move(v.nchw_broadcast);
    }
    for (auto& s : impl.steps) {
        move(s.weight);
        move(s.bias);
        move(s.prelu_flat);
        move(s.prelu_nchw);
        move(s.prelu_graph);
    }
    impl.device = device;
}

std::vector<torch::Tensor> GraphModel::run(const torch::Tensor& input) const {
    return run(std::vector<torch::Tensor>{input});
}

std::vector<torch::Tensor> GraphModel::run(const std::vector<torch::Tensor>& inputs) const {
    return run_impl(inputs, nullptr);
}

std::vector<GraphModel::StepTime> GraphModel::profile(const std::vector<torch::Tensor>& inputs,
                                                      int repeats) const {
    const auto& impl = require(impl_);
    std::vector<double> total(impl.steps.size(), 0.0);
    run_impl(inputs, nullptr);
    for (int r = 0; r < std::max(repeats, 1); ++r)
        run_impl(inputs, &total);
    std::vector<StepTime> times;
    for (size_t i = 0; i < impl.steps.size(); ++i)
        times.push_back({impl.steps[i].node, total[i] / std::max(repeats, 1)});
    return times;
}

std::vector<torch::Tensor> GraphModel::run_impl(const std::vector<torch::Tensor>& inputs,
                                                std::vector<double>* step_ms) const {
    const auto& impl = require(impl_);
    check(inputs.size() == impl.input_slots.size(), impl.subject,
          "expects " + std::to_string(impl.input_slots.size()) + " input(s), got " +
              std::to_string(inputs.size()));
    std::vector<Value> slots = impl.init_slots;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const auto& x = inputs[i];
        check(x.defined(), impl.subject, "input '" + impl.input_names[i] + "' is undefined");
        const auto& shape = impl.input_shapes[i];
        if (!shape.empty()) {
            bool ok = x.dim() == static_cast<int64_t>(shape.size());
            for (size_t d = 1; ok && d < shape.size(); ++d)
                ok = shape[d] < 0 || shape[d] == x.size(static_cast<int64_t>(d));
            check(ok, impl.subject,
                  "input '" + impl.input_names[i] + "' has shape " + c10::str(x.sizes()) +
                      ", the graph expects " + c10::str(c10::IntArrayRef(shape)) + " (any batch)");
        }
        auto& v = slots[static_cast<size_t>(impl.input_slots[i])];
        const auto xf = x.scalar_type() == torch::kFloat32 ? x : x.to(torch::kFloat32);
        if (xf.dim() == 4) {
            // Logically NCHW, physically channels-last: the NHWC input needs no copy, and on
            // the CPU oneDNN convolutions, depthwise convolutions and pools run several times
            // faster on channels-last tensors than on contiguous NCHW ones.
            v.t = xf.permute({0, 3, 1, 2}).contiguous(torch::MemoryFormat::ChannelsLast);
            v.nchw = true;
        } else {
            v.t = xf;
        }
    }
    for (size_t i = 0; i < impl.steps.size(); ++i) {
        const auto& step = impl.steps[i];
        const auto start = step_ms != nullptr ? std::chrono::steady_clock::now()
                                              : std::chrono::steady_clock::time_point{};
        slots[static_cast<size_t>(step.out)] = exec_step(step, slots);
        for (const int slot : step.release)
            slots[static_cast<size_t>(slot)] = Value{};
        if (step_ms != nullptr) {
            (*step_ms)[i] +=
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
        }
    }
    std::vector<torch::Tensor> outputs;
    outputs.reserve(impl.output_slots.size());
    for (const int slot : impl.output_slots)
        outputs.push_back(to_graph_layout(slots[static_cast<size_t>(slot)]).contiguous());
    return outputs;
}

}  // namespace avatar::nn::tfjs
