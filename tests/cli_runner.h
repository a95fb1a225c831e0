#pragma once
// Runs the built `avatar` program (AVATAR_CLI_PATH) from tests and captures what it printed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

namespace avatar::testing {

struct CliResult {
    int exit_status = -1;
    std::string output;  // stdout and stderr together, in order
};

// `args` is appended to the program path as is (quote paths with spaces yourself).
inline CliResult run_cli(const std::string& args) {
    const std::string command = std::string(AVATAR_CLI_PATH) + " " + args + " 2>&1";
    CliResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr)
        return result;
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
        result.output.append(buffer.data(), n);
    const int status = pclose(pipe);
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// A failed run that printed a single line starting "avatar: error:" and naming `subject`.
inline void expect_one_line_error(const CliResult& r, const std::string& subject) {
    EXPECT_NE(r.exit_status, 0);
    EXPECT_EQ(r.output.rfind("avatar: error: ", 0), 0u) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find(subject), std::string::npos) << r.output;
}

}  // namespace avatar::testing
