#include "engines/dpe/registration.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/reference_check.h"
#include "engines/dpe/generator.h"
#include "engines/dpe/trainer.h"
#include "metrics/benchmark.h"

namespace avatar::engines::dpe {
namespace {
using nlohmann::json;

Generator fixture_generator(const ReferenceFixture& fixture) {
    return cached_model<Generator>(fixture.weights().subject(),
                                   [&] { return load_dpe_generator(fixture.weights()); });
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
    std::map<std::string, torch::Tensor> recorded;
    io.output("alpha", generator->alpha(io.input("wa"), Trace(&recorded, "mlp/")));
    io.output("mlp_pose(d)", generator->mlp_pose(io.input("d")));
    io.output("mlp_exp(d)", generator->mlp_exp(io.input("d")));
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

bool is_stage_case(const json& spec) {
    const auto name = spec.value("name", "");
    for (const char* prefix : {"exp_", "pose_", "both_"}) {
        if (name.rfind(prefix, 0) == 0)
            return true;
    }
    return false;
}

// One official-size generator with random weights, shared by the benchmarks (69 M parameters).
Generator official_generator() {
    static Generator generator = [] {
        torch::manual_seed(0);
        Generator g(DPEConfig::official());
        g->eval();
        return g;
    }();
    return generator;
}

torch::Tensor random_image() {
    return torch::rand({1, 3, 256, 256}) * 2 - 1;
}

void register_benchmarks() {
    auto& benches = metrics::BenchmarkRegistry::instance();
    benches.add({"dpe.encoder", "DPE encoder on one 256x256 image (official size)", "image",
                 [] {
                     auto g = official_generator();
                     auto image = random_image();
                     return std::function<void()>([g, image]() mutable { g->encode(image); });
                 },
                 std::nullopt});
    for (const auto& [stage_name, stage] : std::vector<std::pair<std::string, Stage>>{
             {"exp", Stage::kExpression}, {"pose", Stage::kPose}, {"both", Stage::kBoth}}) {
        const Stage s = stage;
        benches.add({"dpe.frame." + stage_name,
                     "DPE per driving frame, stage '" + stage_name +
                         "', source encoded once beforehand (our pipeline)",
                     "frame",
                     [s] {
                         auto g = official_generator();
                         auto code = g->encode(random_image());
                         auto driving = random_image();
                         return std::function<void()>([g, code, driving, s]() mutable {
                             g->render(code, g->motion(driving), s);
                         });
                     },
                     std::nullopt});
        benches.add({"dpe.own.frame." + stage_name,
                     "DPE per driving frame, stage '" + stage_name +
                         "', at the size of our own model (models/dpe-synth128: 128x128, 8-64 "
                         "channels; random weights), source encoded once",
                     "frame",
                     [s] {
                         torch::manual_seed(0);
                         Generator g(compact_config(128, 8, 64));
                         g->eval();
                         auto code = g->encode(torch::rand({1, 3, 128, 128}) * 2 - 1);
                         auto driving = torch::rand({1, 3, 128, 128}) * 2 - 1;
                         return std::function<void()>([g, code, driving, s]() mutable {
                             g->render(code, g->motion(driving), s);
                         });
                     },
                     std::nullopt});
        benches.add({"dpe.forward." + stage_name,
                     "DPE Generator.forward(source, driving, '" + stage_name +
                         "') as the official demo runs it per frame (re-encodes the source)",
                     "frame",
                     [s] {
                         auto g = official_generator();
                         auto source = random_image(), driving = random_image();
                         return std::function<void()>(
                             [g, source, driving, s]() mutable { g->forward(source, driving, s); });
                     },
                     std::nullopt});
    }
}

}  // namespace

void register_dpe() {
    register_benchmarks();
    auto& references = ReferenceRegistry::instance();
    references.add({"dpe", "engines::dpe::Encoder", case_named("enc"), run_encoder});
    references.add({"dpe", "engines::dpe direction basis", case_named("dir"), run_direction});
    references.add({"dpe", "engines::dpe motion MLPs", case_named("mlp"), run_mlp});
    references.add({"dpe", "engines::dpe::Decoder (both)", case_named("dec"), run_decoders});
    references.add({"dpe", "engines::dpe::Generator::forward", is_stage_case, run_stage});
    references.add({"dpe", "engines::dpe exp -> pose chain", case_named("chain"), run_chain});

    // Our own model (trained by `avatar train -m dpe`, models/dpe-synth128/MODEL_CARD.md) has the
    // official layout too; its metadata tells it apart. Registered first so detect() names it.
    ModelSpec own;
    own.name = "dpe-own";
    own.engine = "dpe";
    own.description = "DPE trained by this project on the synthetic world (128x128, the default)";
    own.default_weights = "dpe-synth128/model.safetensors";
    own.detect = [detect = detect_config<DPEConfig>({"dec_pose.input.input", "dir.weight"})](
                     const SafetensorsFile& file) -> std::optional<nlohmann::json> {
        const auto it = file.metadata().find("format");
        if (it == file.metadata().end() || it->second != "avatar-dpe-own-v1")
            return std::nullopt;
        return detect(file);
    };
    ModelRegistry::instance().add(std::move(own));

    ModelSpec spec;
    spec.name = "dpe";
    spec.engine = "dpe";
    spec.description = "DPE generator (official layout): disentangled pose and expression editing";
    spec.detect = detect_config<DPEConfig>({"dec_pose.input.input", "dir.weight"});
    ModelRegistry::instance().add(std::move(spec));
}

}  // namespace avatar::engines::dpe
