#include "nn/stylegan2_reference_cases.h"

#include "core/reference_check.h"
#include "nn/bias_act.h"
#include "nn/upfirdn2d.h"

namespace avatar::nn {
namespace {
using nlohmann::json;

// Compares each named output of the case with the tensor of the same label in spec["outputs"].
class CaseOutputs {
  public:
    CaseOutputs(const ReferenceFixture& fixture, const json& spec)
        : fixture_(fixture), spec_(spec) {}

    torch::Tensor input(const std::string& name) const {
        return fixture_.tensor(spec_.at("inputs").at(name).get<std::string>(), &spec_);
    }
    void check(const std::string& output, const torch::Tensor& actual) {
        const auto key = spec_.at("outputs").at(output).get<std::string>();
        checks_.push_back(
            compare(output, actual, fixture_.tensor(key, &spec_), tolerance_for(spec_, output)));
    }
    std::vector<OutputCheck> results() const { return checks_; }

  private:
    const ReferenceFixture& fixture_;
    const json& spec_;
    std::vector<OutputCheck> checks_;
};

auto named(const std::string& name) {
    return [name](const json& spec) { return spec.value("name", "") == name; };
}

std::vector<OutputCheck> run_upfirdn2d(const ReferenceFixture& fixture, const json& spec) {
    CaseOutputs io(fixture, spec);
    const auto x = io.input("x");
    const auto f = make_resample_filter({1, 3, 3, 1});
    io.check("filter", f);
    io.check("upsample2d", upsample2d(x, f));
    io.check("downsample2d", downsample2d(x, f));
    io.check("up2_pad2121_gain4", upfirdn2d(x, f, 2, 1, {2, 1, 2, 1}, false, 4.0));
    io.check("blur_pad1111_gain4", upfirdn2d(x, f, 1, 1, {1, 1, 1, 1}, false, 4.0));
    io.check("crop_pad-1_2_0_1", upfirdn2d(x, f, 1, 1, {-1, 2, 0, 1}));
    return io.results();
}

std::vector<OutputCheck> run_bias_act(const ReferenceFixture& fixture, const json& spec) {
    CaseOutputs io(fixture, spec);
    const auto x = io.input("x");
    const auto b = io.input("b");
    io.check("lrelu", bias_act(x, b, Activation::kLeakyReLU));
    io.check("lrelu_gain1.5_clamp0.5", bias_act(x, b, Activation::kLeakyReLU, 1.5, 0.5));
    io.check("linear", bias_act(x, b, Activation::kLinear));
    return io.results();
}

}  // namespace

void register_stylegan2_reference_cases() {
    auto& registry = ReferenceRegistry::instance();
    registry.add({"stylegan2_ada", "nn::upfirdn2d, upsample2d, downsample2d", named("upfirdn2d"),
                  run_upfirdn2d});
    registry.add({"stylegan2_ada", "nn::bias_act", named("bias_act"), run_bias_act});
}

}  // namespace avatar::nn
