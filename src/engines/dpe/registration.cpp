#include "engines/dpe/registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "engines/dpe/generator.h"

namespace avatar::engines::dpe {
namespace {
using nlohmann::json;

Generator fixture_generator(const ReferenceFixture& fixture) {
    static std::map<std::string, Generator> cache;
    const auto key = fixture.dir().string();
    auto it = cache.find(key);
    if (it == cache.end())
        it = cache.emplace(key, load_dpe_generator(fixture.weights())).first;
    return it->second;
}

// Compares every listed intermediate with what our trace recorded under the same key; one that
// was not recorded is a failure, not a skip.
void check_intermediates(CaseChecker& io, const json& spec,
                         const std::map<std::string, torch::Tensor>& recorded) {
    for (const auto& key_json : spec.value("intermediates", json::array())) {
        const auto key = key_json.get<std::string>();
        const auto it = recorded.find(key);
        if (it != recorded.end()) {
            io.intermediate(key, it->second);
        } else {
            io.intermediate(key, torch::Tensor());
        }
    }
}

std::vector<OutputCheck> run_encoder(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    std::map<std::string, torch::Tensor> recorded;
    auto [wa, feats] =
        fixture_generator(fixture)->encoder()->forward(io.input("img"), Trace(&recorded, "enc/"));
    io.output("wa", wa);
    for (size_t i = 0; i < feats.size(); ++i) {
        const auto r = feats[i].size(2);
        io.output("feats[" + std::to_string(i) + "] (" + std::to_string(r) + "x" +
                      std::to_string(r) + ")",
                  feats[i]);
    }
    check_intermediates(io, spec, recorded);
    return io.results();
}

std::vector<OutputCheck> run_direction(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    io.output("Q", generator->basis());
    io.output("directions", generator->directions(io.input("alpha")));
    return io.results();
}

std::vector<OutputCheck> run_mlp(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    io.output("alpha", generator->alpha(io.input("wa")));
    io.output("mlp_pose(d)", generator->mlp_pose(io.input("d")));
    io.output("mlp_exp(d)", generator->mlp_exp(io.input("d")));
    std::map<std::string, torch::Tensor> recorded;
    generator->alpha(io.input("wa"), Trace(&recorded, "mlp/"));
    check_intermediates(io, spec, recorded);
    return io.results();
}

std::vector<OutputCheck> run_decoders(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    const std::vector<torch::Tensor> feats{io.input("feat0"), io.input("feat1"), io.input("feat2")};
    std::map<std::string, torch::Tensor> recorded;
    const auto latent = io.input("latent");
    io.output("dec_pose img",
              generator->dec_pose()->forward(latent, feats, Trace(&recorded, "dec/dec_pose/")));
    io.output("dec_exp img",
              generator->dec_exp()->forward(latent, feats, Trace(&recorded, "dec/dec_exp/")));
    check_intermediates(io, spec, recorded);
    return io.results();
}

std::vector<OutputCheck> run_stage(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    const std::string name = spec.at("name").get<std::string>();
    const Stage stage = parse_stage(name.substr(0, name.find('_')));
    std::map<std::string, torch::Tensor> recorded;
    io.output("img",
              fixture_generator(fixture)->forward(io.input("img_source"), io.input("img_drive"),
                                                  stage, Trace(&recorded, name + "/")));
    check_intermediates(io, spec, recorded);
    return io.results();
}

std::vector<OutputCheck> run_chain(const ReferenceFixture& fixture, const json& spec) {
    CaseChecker io(fixture, spec);
    auto generator = fixture_generator(fixture);
    const auto y = generator->forward(io.input("src"), io.input("drv_exp"), Stage::kExpression);
    io.output("out_exp", y);
    io.output("out", generator->forward(y, io.input("drv_pose"), Stage::kPose));
    return io.results();
}

auto named(const std::string& name) {
    return [name](const json& spec) { return spec.value("name", "") == name; };
}

bool is_stage_case(const json& spec) {
    const auto name = spec.value("name", "");
    for (const char* prefix : {"exp_", "pose_", "both_"}) {
        if (name.rfind(prefix, 0) == 0)
            return true;
    }
    return false;
}

}  // namespace

void register_dpe() {
    auto& references = ReferenceRegistry::instance();
    references.add({"dpe", "engines::dpe::Encoder", named("enc"), run_encoder});
    references.add({"dpe", "engines::dpe direction basis", named("dir"), run_direction});
    references.add({"dpe", "engines::dpe motion MLPs", named("mlp"), run_mlp});
    references.add({"dpe", "engines::dpe::Decoder (both)", named("dec"), run_decoders});
    references.add({"dpe", "engines::dpe::Generator::forward", is_stage_case, run_stage});
    references.add({"dpe", "engines::dpe exp -> pose chain", named("chain"), run_chain});

    ModelSpec spec;
    spec.name = "dpe";
    spec.engine = "dpe";
    spec.description = "DPE generator (official layout): disentangled pose and expression editing";
    spec.detect = [](const SafetensorsFile& file) -> std::optional<json> {
        if (!file.contains("dec_pose.input.input") || !file.contains("dir.weight")) {
            return std::nullopt;
        }
        try {
            return DPEConfig::detect_from_weights(file).to_json();
        } catch (const Error&) {
            return std::nullopt;
        }
    };
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::engines::dpe
