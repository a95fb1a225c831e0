// avatar check-reference DIR: parity of our modules with golden tensors of the official code.
#include <cstdio>

#include "apps/avatar/commands.h"
#include "core/reference_check.h"

namespace avatar::cli {
namespace {

struct CheckReferenceOptions {
    std::string dir;
    std::string case_filter;
};

std::string format_error(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3e", v);
    return buf;
}

void print_report(const ReferenceReport& report) {
    std::printf("fixture %s (%s): %zu case(s), %d implemented here\n", report.fixture.c_str(),
                report.dir.string().c_str(), report.cases.size(), report.known());
    std::vector<std::string> unknown;
    bool header_printed = false;
    for (const auto& c : report.cases) {
        if (!c.known) {
            unknown.push_back(c.name);
            continue;
        }
        if (!header_printed) {
            std::printf("  %-28s %-34s %-11s %-19s %-8s %s\n", "case", "output", "max|err|",
                        "atol / rtol", "worst", "result");
            header_printed = true;
        }
        if (!c.error.empty()) {
            std::printf("  %-28s %-34s %-11s %-19s %-8s FAIL: %s\n", c.name.c_str(), "-", "-", "-",
                        "-", c.error.c_str());
            continue;
        }
        for (const auto& o : c.checks) {
            char tol[40];
            std::snprintf(tol, sizeof tol, "%.0e / %.0e", o.tolerance.atol, o.tolerance.rtol);
            char worst[16];
            std::snprintf(worst, sizeof worst, "%.3f", o.worst_ratio);
            std::printf("  %-28s %-34s %-11s %-19s %-8s %s%s%s\n", c.name.c_str(), o.name.c_str(),
                        format_error(o.max_abs_error).c_str(), tol, worst,
                        o.passed ? "pass" : "FAIL", o.note.empty() ? "" : ": ", o.note.c_str());
        }
    }
    if (!unknown.empty()) {
        std::string names;
        for (size_t i = 0; i < unknown.size() && i < 12; ++i) {
            names += (i ? ", " : "") + unknown[i];
        }
        if (unknown.size() > 12)
            names += ", ... (" + std::to_string(unknown.size() - 12) + " more)";
        std::printf("  not implemented yet (%zu): %s\n", unknown.size(), names.c_str());
    }
    if (report.known() == 0) {
        std::printf("result: FAIL: no case of this fixture is implemented yet\n");
    } else if (report.failed() > 0) {
        std::printf("result: FAIL: %d of %d implemented case(s) failed\n", report.failed(),
                    report.known());
    } else {
        std::printf("result: pass: all %d implemented case(s) match the reference\n",
                    report.known());
    }
}

}  // namespace

void add_check_reference_command(CLI::App& app, const GlobalOptions& global,
                                 CommandList& commands) {
    auto options = std::make_shared<CheckReferenceOptions>();
    auto* cmd = app.add_subcommand(
        "check-reference",
        "Check our modules against golden tensors of the official code.\n"
        "DIR holds config.json, weights.safetensors and cases.safetensors (see "
        "shared/reference/README.md). Every case whose callable we implement is run and each "
        "output is compared elementwise (|x - ref| <= atol + rtol*|ref|). Exits non-zero if a "
        "case fails or if no case of DIR is implemented.");
    cmd->add_option("DIR", options->dir, "Fixture folder")
        ->required()
        ->check(CLI::ExistingDirectory);
    cmd->add_option("--case", options->case_filter,
                    "Only the cases whose name matches this regular expression");
    commands.push_back({cmd, [options, &global] {
                            ReferenceRunOptions run_options;
                            run_options.case_filter = options->case_filter;
                            run_options.show_progress = !global.json;
                            const auto report = run_reference_checks(options->dir, run_options);
                            if (global.json) {
                                print_json(report.to_json());
                            } else {
                                print_report(report);
                            }
                            return report.ok() ? 0 : 1;
                        }});
}

}  // namespace avatar::cli
