#include "core/reference_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <regex>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"

namespace avatar {
namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// ReferenceFixture

ReferenceFixture ReferenceFixture::open(const fs::path& dir) {
    std::error_code ec;
    check(fs::is_directory(dir, ec), dir.string(), "not a directory");
    const fs::path config_path = dir / "config.json";
    const std::string text = read_text_file(config_path);
    ReferenceFixture fixture;
    fixture.dir_ = dir;
    try {
        fixture.config_ = std::make_shared<json>(json::parse(text));
    } catch (const json::exception& e) {
        throw Error(config_path.string(), std::string("invalid JSON: ") + e.what());
    }
    check(fixture.config_->is_object(), config_path.string(), "expected a JSON object");
    check(fixture.config_->contains("cases") && fixture.config_->at("cases").is_array(),
          config_path.string(), "no \"cases\" array");
    fixture.files_ = std::make_shared<std::map<std::string, SafetensorsFile>>();
    return fixture;
}

const SafetensorsFile& ReferenceFixture::file(const std::string& relative_path) const {
    check(!relative_path.empty() && fs::path(relative_path).is_relative() &&
              relative_path.find("..") == std::string::npos,
          relative_path, "fixture files must be named relative to the fixture folder");
    auto it = files_->find(relative_path);
    if (it == files_->end()) {
        it = files_->emplace(relative_path, SafetensorsFile::open(dir_ / relative_path)).first;
    }
    return it->second;
}

const SafetensorsFile& ReferenceFixture::weights(const std::string& name) const {
    return file(name);
}

const SafetensorsFile& ReferenceFixture::case_tensors() const {
    // Some configs name the cases file, some leave it at the conventional name.
    const auto& c = *config_;
    if (c.contains("cases_file") && c["cases_file"].is_string()) {
        return file(c["cases_file"].get<std::string>());
    }
    return file("cases.safetensors");
}

torch::Tensor ReferenceFixture::tensor(const std::string& key, const json* case_spec) const {
    const auto colon = key.find(".safetensors:");
    if (colon != std::string::npos) {
        const std::string path = key.substr(0, colon + 12);
        return file(path).get(key.substr(colon + 13));
    }
    if (case_spec != nullptr && case_spec->contains("file") && (*case_spec)["file"].is_string()) {
        return file((*case_spec)["file"].get<std::string>()).get(key);
    }
    return case_tensors().get(key);
}

// ---------------------------------------------------------------------------------------------
// ReferenceRegistry

ReferenceRegistry& ReferenceRegistry::instance() {
    static ReferenceRegistry registry;
    return registry;
}

void ReferenceRegistry::add(ReferenceCaseHandler handler) {
    check(!handler.fixture.empty() && handler.matches && handler.run, "reference registry",
          "a case handler needs a fixture id, a matcher and a runner");
    handlers_.push_back(std::move(handler));
}

void ReferenceRegistry::add_fixture_recognizer(std::string fixture_id,
                                               std::function<bool(const json&)> recognizes) {
    recognizers_.emplace_back(std::move(fixture_id), std::move(recognizes));
}

std::string ReferenceRegistry::identify(const ReferenceFixture& fixture) const {
    const auto& config = fixture.config();
    if (config.contains("fixture") && config["fixture"].is_string()) {
        return config["fixture"].get<std::string>();
    }
    for (const auto& [id, recognizes] : recognizers_) {
        if (recognizes(config))
            return id;
    }
    auto dir = fixture.dir();
    if (dir.filename().empty())
        dir = dir.parent_path();  // "x/" -> "x"
    return dir.filename().string();
}

const ReferenceCaseHandler* ReferenceRegistry::find(const std::string& fixture_id,
                                                    const json& spec) const {
    for (const auto& handler : handlers_) {
        if (handler.fixture == fixture_id && handler.matches(spec))
            return &handler;
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

bool is_flat_tolerance(const json& t) {
    return t.is_object() && (t.contains("atol") || t.contains("rtol")) &&
           (!t.contains("atol") || t["atol"].is_number()) &&
           (!t.contains("rtol") || t["rtol"].is_number());
}

Tolerance parse_tolerance(const json& t) {
    Tolerance tol;
    if (t.contains("atol"))
        tol.atol = t["atol"].get<double>();
    if (t.contains("rtol"))
        tol.rtol = t["rtol"].get<double>();
    return tol;
}

std::string case_name(const json& spec) {
    return spec.contains("name") && spec["name"].is_string() ? spec["name"].get<std::string>()
                                                             : std::string("(unnamed case)");
}

}  // namespace

std::function<bool(const json&)> case_named(std::string name) {
    return [name = std::move(name)](const json& spec) { return case_name(spec) == name; };
}

std::function<bool(const json&)> case_named_any(std::vector<std::string> names) {
    return [names = std::move(names)](const json& spec) {
        return std::find(names.begin(), names.end(), case_name(spec)) != names.end();
    };
}

Tolerance tolerance_for(const json& spec, const std::string& output) {
    const std::string name = case_name(spec);
    check(spec.contains("tolerance"), name, "case has no tolerance");
    const json& t = spec["tolerance"];
    if (is_flat_tolerance(t))
        return parse_tolerance(t);
    check(t.is_object(), name, "tolerance is not an object");

    std::vector<std::string> candidates{output};
    const auto note = output.find(" (");
    if (note != std::string::npos)
        candidates.push_back(output.substr(0, note));
    for (size_t i = 0, n = candidates.size(); i < n; ++i) {
        const auto slash = candidates[i].rfind('/');
        if (slash != std::string::npos)
            candidates.push_back(candidates[i].substr(slash + 1));
    }
    for (const auto& key : candidates) {
        if (t.contains(key) && is_flat_tolerance(t[key]))
            return parse_tolerance(t[key]);
    }
    throw Error(name, "no tolerance given for output '" + output + "'");
}

OutputCheck compare(const std::string& name, const torch::Tensor& actual,
                    const torch::Tensor& expected, Tolerance tolerance) {
    OutputCheck result;
    result.name = name;
    result.tolerance = tolerance;
    if (!actual.defined()) {
        result.note = "not computed by our implementation";
        result.max_abs_error = std::numeric_limits<double>::infinity();
        result.worst_ratio = std::numeric_limits<double>::infinity();
        result.elements_failing = expected.numel();
        return result;
    }
    if (actual.sizes() != expected.sizes()) {
        result.note = "shape " + c10::str(actual.sizes()) + " differs from the reference " +
                      c10::str(expected.sizes());
        result.max_abs_error = std::numeric_limits<double>::infinity();
        result.worst_ratio = std::numeric_limits<double>::infinity();
        result.elements_failing = expected.numel();
        return result;
    }
    if (expected.numel() == 0) {
        result.passed = true;
        return result;
    }
    const auto a = actual.detach().to(torch::kCPU, torch::kFloat64);
    const auto e = expected.detach().to(torch::kCPU, torch::kFloat64);
    const auto both_nan = a.isnan().logical_and(e.isnan());
    const auto diff = (a - e).abs().masked_fill(both_nan, 0.0);
    const auto allowed = e.abs().masked_fill(both_nan, 0.0) * tolerance.rtol + tolerance.atol;
    // NaN differences (a NaN on one side only) never satisfy <=, so they count as failing.
    const auto failing = diff.le(allowed).logical_not();
    result.elements_failing = failing.sum().item<int64_t>();
    const auto nan_diff = diff.isnan();
    if (nan_diff.any().item<bool>()) {
        result.note = std::to_string(nan_diff.sum().item<int64_t>()) + " NaN mismatch(es)";
        result.max_abs_error = std::numeric_limits<double>::infinity();
        result.worst_ratio = std::numeric_limits<double>::infinity();
    } else {
        result.max_abs_error = diff.max().item<double>();
        result.worst_ratio =
            (diff / allowed.clamp_min(std::numeric_limits<double>::min())).max().item<double>();
    }
    result.passed = result.elements_failing == 0;
    return result;
}

// ---------------------------------------------------------------------------------------------
// CaseChecker

torch::Tensor CaseChecker::input(const std::string& name) const {
    const auto& inputs = spec_.at("inputs");
    avatar::check(inputs.is_object() && inputs.contains(name), case_name(spec_),
                  "the case has no input '" + name + "'");
    return reference(inputs[name].get<std::string>());
}

void CaseChecker::output(const std::string& label, const torch::Tensor& actual) {
    const auto& outputs = spec_.at("outputs");
    avatar::check(outputs.is_object() && outputs.contains(label), case_name(spec_),
                  "the case has no output '" + label + "'");
    checks_.push_back(compare(label, actual, reference(outputs[label].get<std::string>()),
                              tolerance_for(spec_, label)));
}

void CaseChecker::check(const std::string& key, const torch::Tensor& actual, Tolerance tolerance) {
    checks_.push_back(compare(key, actual, reference(key), tolerance));
}

void CaseChecker::intermediate(const std::string& key, const torch::Tensor& actual) {
    checks_.push_back(compare(key, actual, reference(key), tolerance_for(spec_, key)));
}

// ---------------------------------------------------------------------------------------------
// Running

bool CaseOutcome::passed() const {
    if (!known || !error.empty() || checks.empty())
        return false;
    for (const auto& c : checks) {
        if (!c.passed)
            return false;
    }
    return true;
}

int ReferenceReport::known() const {
    int n = 0;
    for (const auto& c : cases)
        n += c.known ? 1 : 0;
    return n;
}

int ReferenceReport::failed() const {
    int n = 0;
    for (const auto& c : cases)
        n += (c.known && !c.passed()) ? 1 : 0;
    return n;
}

json ReferenceReport::to_json() const {
    json out;
    out["dir"] = dir.string();
    out["fixture"] = fixture;
    out["cases_total"] = cases.size();
    out["cases_known"] = known();
    out["cases_failed"] = failed();
    out["ok"] = ok();
    out["cases"] = json::array();
    for (const auto& c : cases) {
        json jc{{"name", c.name}, {"known", c.known}};
        if (!c.known) {
            out["cases"].push_back(jc);
            continue;
        }
        jc["implemented_by"] = c.implemented_by;
        jc["passed"] = c.passed();
        jc["seconds"] = c.seconds;
        if (!c.error.empty())
            jc["error"] = c.error;
        jc["outputs"] = json::array();
        for (const auto& o : c.checks) {
            // JSON has no infinity: a shape or NaN mismatch is reported as null.
            auto finite_or_null = [](double v) { return std::isfinite(v) ? json(v) : json(); };
            json jo{{"name", o.name},
                    {"passed", o.passed},
                    {"max_abs_error", finite_or_null(o.max_abs_error)},
                    {"worst_ratio", finite_or_null(o.worst_ratio)},
                    {"elements_failing", o.elements_failing},
                    {"atol", o.tolerance.atol},
                    {"rtol", o.tolerance.rtol}};
            if (!o.note.empty())
                jo["note"] = o.note;
            jc["outputs"].push_back(jo);
        }
        out["cases"].push_back(jc);
    }
    return out;
}

ReferenceReport run_reference_checks(const fs::path& dir, const ReferenceRunOptions& options) {
    const auto fixture = ReferenceFixture::open(dir);
    const auto& registry = ReferenceRegistry::instance();
    ReferenceReport report;
    report.dir = dir;
    report.fixture = registry.identify(fixture);

    std::optional<std::regex> filter;
    if (!options.case_filter.empty()) {
        try {
            filter.emplace(options.case_filter);
        } catch (const std::regex_error& e) {
            throw Error("--case", "invalid regular expression '" + options.case_filter + "'");
        }
    }

    std::vector<const json*> selected;
    for (const auto& spec : fixture.cases()) {
        check(spec.is_object(), (dir / "config.json").string(), "a case is not a JSON object");
        if (filter && !std::regex_search(case_name(spec), *filter))
            continue;
        selected.push_back(&spec);
    }

    Progress progress("check-reference " + report.fixture, static_cast<int64_t>(selected.size()),
                      "cases");
    if (!options.show_progress)
        progress.finish();
    for (const json* spec : selected) {
        CaseOutcome outcome;
        outcome.name = case_name(*spec);
        if (spec->contains("callable") && (*spec)["callable"].is_string()) {
            outcome.callable = (*spec)["callable"].get<std::string>();
        }
        if (const auto* handler = registry.find(report.fixture, *spec)) {
            outcome.known = true;
            outcome.implemented_by = handler->description;
            const auto start = std::chrono::steady_clock::now();
            try {
                torch::NoGradGuard no_grad;
                outcome.checks = handler->run(fixture, *spec);
                if (outcome.checks.empty())
                    outcome.error = "the runner compared no output";
            } catch (const c10::Error& e) {
                // LibTorch messages carry a C++ backtrace; the first line says what went wrong.
                const std::string message = e.what_without_backtrace();
                outcome.error = message.substr(0, message.find('\n'));
            } catch (const std::exception& e) {
                outcome.error = e.what();
            }
            outcome.seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        report.cases.push_back(std::move(outcome));
        if (options.show_progress)
            progress.advance();
    }
    return report;
}

}  // namespace avatar
