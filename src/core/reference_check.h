#pragma once
// Parity checks against golden tensors computed by the official implementations
// (shared/reference/<name>/, format in its README.md): `avatar check-reference DIR`.
//
// A fixture folder holds config.json (the list of cases: callable, inputs, outputs, tolerance),
// weights.safetensors (weights with official names) and cases.safetensors (inputs, intermediates,
// outputs). Layers register a runner for each case they implement; the runner computes the
// outputs with our code and compares them with compare(). Cases nobody registered are reported
// as unknown, and a fixture with no known case does not pass.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace avatar {

// Elementwise rule of every fixture: |x - ref| <= atol + rtol * |ref|.
struct Tolerance {
    double atol = 0.0;
    double rtol = 0.0;
};

// The comparison of one output (or intermediate) with its reference.
struct OutputCheck {
    std::string name;
    bool passed = false;
    double max_abs_error = 0.0;
    // Largest |x - ref| / (atol + rtol * |ref|) over all elements: <= 1 passes.
    double worst_ratio = 0.0;
    int64_t elements_failing = 0;
    Tolerance tolerance;
    std::string note;  // shape mismatch, NaNs, or a runner-specific rule ("count exact")
};

// An opened fixture folder. Safetensors files are opened on first use and kept.
class ReferenceFixture {
public:
    // Reads DIR/config.json; throws Error naming the file if it is missing or not a JSON object
    // with a "cases" array.
    static ReferenceFixture open(const std::filesystem::path& dir);

    const std::filesystem::path& dir() const { return dir_; }
    const nlohmann::json& config() const { return *config_; }
    const nlohmann::json& cases() const { return config_->at("cases"); }

    // DIR/weights.safetensors, or another weights file of the folder (e.g. a case's own weights).
    const SafetensorsFile& weights(const std::string& file = "weights.safetensors") const;
    // DIR/cases.safetensors (or the file named by config "cases_file").
    const SafetensorsFile& case_tensors() const;
    // Any safetensors file inside DIR, by relative path.
    const SafetensorsFile& file(const std::string& relative_path) const;

    // A reference tensor by key. "key" reads the case's own file (its "file" field) or
    // cases.safetensors; "other.safetensors:key" reads another file of the folder.
    torch::Tensor tensor(const std::string& key, const nlohmann::json* case_spec = nullptr) const;

private:
    std::filesystem::path dir_;
    std::shared_ptr<nlohmann::json> config_;
    std::shared_ptr<std::map<std::string, SafetensorsFile>> files_;
};

using CaseRunner =
    std::function<std::vector<OutputCheck>(const ReferenceFixture&, const nlohmann::json& spec)>;

struct ReferenceCaseHandler {
    std::string fixture;      // fixture id, e.g. "stylegan2_ada"
    std::string description;  // what of ours is checked, e.g. "nn::upfirdn2d"
    // Whether this handler implements the case (usually a test of spec["name"]).
    std::function<bool(const nlohmann::json& spec)> matches;
    CaseRunner run;
};

class ReferenceRegistry {
public:
    static ReferenceRegistry& instance();

    void add(ReferenceCaseHandler handler);
    // For fixtures whose config.json has no "fixture" field: recognise them by content.
    void add_fixture_recognizer(std::string fixture_id,
                                std::function<bool(const nlohmann::json& config)> recognizes);

    // config "fixture" field, else a recognizer, else the folder name.
    std::string identify(const ReferenceFixture& fixture) const;
    const ReferenceCaseHandler* find(const std::string& fixture_id,
                                     const nlohmann::json& spec) const;

private:
    std::vector<ReferenceCaseHandler> handlers_;
    std::vector<std::pair<std::string, std::function<bool(const nlohmann::json&)>>> recognizers_;
};

// ---- helpers for runners ----

// Matchers for ReferenceCaseHandler::matches: the case's "name" is `name` / one of `names`.
std::function<bool(const nlohmann::json& spec)> case_named(std::string name);
std::function<bool(const nlohmann::json& spec)> case_named_any(std::vector<std::string> names);

// The tolerance of `output` in a case spec: a flat {"atol", "rtol"} object applies to every
// output; otherwise the per-output entry whose key equals the output label, its last '/'
// component, or the label without a trailing " (...)" note. Throws Error if none applies.
Tolerance tolerance_for(const nlohmann::json& spec, const std::string& output);

// Compares elementwise in float64. Shapes must match exactly. A NaN passes only where the
// reference holds a NaN too.
OutputCheck compare(const std::string& name, const torch::Tensor& actual,
                    const torch::Tensor& expected, Tolerance tolerance);

// Collects the checks of one case: inputs by the names of spec["inputs"], outputs by the labels
// of spec["outputs"], intermediates by their tensor keys; tolerances from the spec.
class CaseChecker {
public:
    CaseChecker(const ReferenceFixture& fixture, const nlohmann::json& spec)
        : fixture_(fixture), spec_(spec) {}

    torch::Tensor input(const std::string& name) const;
    torch::Tensor reference(const std::string& key) const { return fixture_.tensor(key, &spec_); }
    // Compares with the reference tensor that spec["outputs"][label] names.
    void output(const std::string& label, const torch::Tensor& actual);
    // Compares with the reference tensor `key` (an intermediate), at the case's tolerance.
    void intermediate(const std::string& key, const torch::Tensor& actual);
    // Compares with the reference tensor `key` at an explicit tolerance.
    void check(const std::string& key, const torch::Tensor& actual, Tolerance tolerance);
    // The tolerance the case gives an output label (tolerance_for).
    Tolerance tolerance(const std::string& label) const { return tolerance_for(spec_, label); }
    std::vector<OutputCheck> results() const { return checks_; }

private:
    const ReferenceFixture& fixture_;
    const nlohmann::json& spec_;
    std::vector<OutputCheck> checks_;
};

// A model built once per key (usually the fixture's weights path) and shared by the cases of a
// run: parity runs load the same weights for many cases.
template <typename Model>
Model cached_model(const std::string& key, const std::function<Model()>& build) {
    static std::map<std::string, Model> cache;
    auto it = cache.find(key);
    if (it == cache.end())
        it = cache.emplace(key, build()).first;
    return it->second;
}

// ---- running a folder ----

struct CaseOutcome {
    std::string name;
    std::string callable;        // the official callable, as the fixture describes it
    std::string implemented_by;  // the handler's description; empty if unknown
    bool known = false;
    std::string error;  // set if the runner threw
    std::vector<OutputCheck> checks;
    double seconds = 0.0;
    bool passed() const;
};

struct ReferenceReport {
    std::filesystem::path dir;
    std::string fixture;
    std::vector<CaseOutcome> cases;
    int known() const;
    int failed() const;
    // At least one known case, and every known case passed.
    bool ok() const { return known() > 0 && failed() == 0; }
    nlohmann::json to_json() const;
};

struct ReferenceRunOptions {
    std::string case_filter;  // ECMAScript regex matched against case names; empty = all
    bool show_progress = true;
};

ReferenceReport run_reference_checks(const std::filesystem::path& dir,
                                     const ReferenceRunOptions& options = {});

}  // namespace avatar
