#pragma once
// Running a shared reference fixture (shared/reference/<name>) through check-reference inside a
// test: an absent fixture is reported so the test can skip; a present one must pass entirely.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "core/reference_check.h"
#include "pipeline/builtin_modules.h"

namespace avatar::testing {

inline std::filesystem::path shared_fixture_dir(const std::string& name) {
    return std::filesystem::path(AVATAR_SHARED_DIR) / "reference" / name;
}

// The report of every case of the fixture, or std::nullopt when the fixture is absent.
inline std::optional<ReferenceReport> run_shared_fixture(const std::string& name) {
    const auto dir = shared_fixture_dir(name);
    if (!std::filesystem::exists(dir / "config.json"))
        return std::nullopt;
    register_builtin_modules();
    ReferenceRunOptions options;
    options.show_progress = false;
    return run_reference_checks(dir, options);
}

// Every one of `expected_cases` cases implemented, every output and intermediate in tolerance.
inline void expect_all_cases_pass(const ReferenceReport& report, size_t expected_cases) {
    EXPECT_EQ(report.cases.size(), expected_cases);
    for (const auto& c : report.cases) {
        EXPECT_TRUE(c.known) << c.name << " is not implemented";
        EXPECT_TRUE(c.error.empty()) << c.name << ": " << c.error;
        for (const auto& o : c.checks) {
            EXPECT_TRUE(o.passed) << c.name << " / " << o.name << ": max |err| " << o.max_abs_error
                                  << " " << o.note;
        }
    }
    EXPECT_TRUE(report.ok());
}

}  // namespace avatar::testing
