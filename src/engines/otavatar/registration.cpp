#include "engines/otavatar/registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "engines/otavatar/controller.h"
#include "engines/otavatar/driving.h"

namespace avatar::engines::otavatar {
namespace {
using nlohmann::json;

// Per README: Q agrees to atol 1e-5 across LAPACK builds; intermediates of the controller are
// held to the alpha tolerance.
constexpr Tolerance kBasisTolerance{1e-5, 0.0};
constexpr Tolerance kIntermediateTolerance{5e-5, 1e-5};

std::vector<OutputCheck> run_controller(const ReferenceFixture& fixture, const json& spec) {
    const std::string name = spec.at("name").get<std::string>();
    auto controller = load_motion_controller(fixture.weights());
    const auto ref = [&](const std::string& key) { return fixture.tensor(name + "/" + key); };
    const auto out = controller->forward(ref("driving"));
    std::vector<OutputCheck> checks;
    auto add = [&](const std::string& key, const torch::Tensor& actual, Tolerance tolerance) {
        checks.push_back(compare(name + "/" + key, actual, ref(key), tolerance));
    };
    add("alpha", out.alpha, tolerance_for(spec, "alpha"));
    add("directions", out.directions, tolerance_for(spec, "directions"));
    add("Q", controller->basis(), kBasisTolerance);
    add("first_out", out.first_out, kIntermediateTolerance);
    for (size_t i = 0; i < out.encoder_inputs.size(); ++i) {
        add("enc" + std::to_string(i) + "_in", out.encoder_inputs[i], kIntermediateTolerance);
        add("enc" + std::to_string(i) + "_conv_out", out.encoder_conv_outputs[i],
            kIntermediateTolerance);
    }
    add("pool_in", out.pool_in, kIntermediateTolerance);
    add("descriptor", out.descriptor, kIntermediateTolerance);
    add("shared_linear_outs", torch::stack(out.shared_linear_outputs), kIntermediateTolerance);
    add("refine_sum", out.refine_sum, kIntermediateTolerance);
    add("refine_out300", out.refine_out, kIntermediateTolerance);
    return checks;
}

std::vector<OutputCheck> run_window(const ReferenceFixture& fixture, const json& spec) {
    const auto coefficients = fixture.tensor("window/coeff_seq");
    const auto frame_index = fixture.tensor("window/frame_index");
    const std::vector<int64_t> frames(frame_index.data_ptr<int64_t>(),
                                      frame_index.data_ptr<int64_t>() + frame_index.numel());
    const auto [index, windows] = motion_windows(coefficients, frames);
    return {compare("window/seq_index", index, fixture.tensor("window/seq_index"), {0.0, 0.0}),
            compare("window/semantics", windows, fixture.tensor("window/semantics"),
                    tolerance_for(spec, "semantics"))};
}

std::vector<OutputCheck> run_camera(const ReferenceFixture& fixture, const json& spec) {
    const std::string name = spec.at("name").get<std::string>();
    const auto conditions = fixture.tensor(name + "/conditions");
    return {compare(name + "/R_per_frame", condition_rotations(conditions),
                    fixture.tensor(name + "/R_per_frame"), tolerance_for(spec, "c25")),
            compare(name + "/c25", conditions_to_cameras(conditions), fixture.tensor(name + "/c25"),
                    tolerance_for(spec, "c25"))};
}

std::vector<OutputCheck> run_add_bias(const ReferenceFixture& fixture, const json& spec) {
    return {compare(
        "add_bias/c_out",
        add_intrinsic_bias(fixture.tensor("add_bias/c"), fixture.tensor("add_bias/intri_bias")),
        fixture.tensor("add_bias/c_out"), tolerance_for(spec, "c_out"))};
}

}  // namespace

void register_otavatar() {
    auto& references = ReferenceRegistry::instance();
    // The fixture's config.json has no "fixture" field: recognise it by the class it checks.
    references.add_fixture_recognizer("otavatar_controller", [](const json& config) {
        return config.value("class", "") == "models.controller.VideoCodeBook";
    });
    references.add({"otavatar_controller", "engines::otavatar::MotionController",
                    case_named_any({"case0", "case1", "case2"}), run_controller});
    references.add({"otavatar_controller", "engines::otavatar::motion_windows",
                    case_named_any({"window"}), run_window});
    references.add({"otavatar_controller", "engines::otavatar::conditions_to_cameras",
                    case_named_any({"camera", "camera_short"}), run_camera});
    references.add({"otavatar_controller", "engines::otavatar::add_intrinsic_bias",
                    case_named_any({"add_bias"}), run_add_bias});

    ModelSpec spec;
    spec.name = "otavatar-controller";
    spec.engine = "otavatar";
    spec.description =
        "OTAvatar motion controller (VideoCodeBook): coefficient window -> latent offsets";
    spec.detect =
        detect_config<ControllerConfig>({"mapping_3DMM.first.0.weight", "direction.weight"});
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::engines::otavatar
