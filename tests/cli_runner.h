#pragma once
// Runs the built `avatar` program (AVATAR_CLI_PATH) from tests and captures what it printed.
#include <sys/wait.h>

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

}  // namespace avatar::testing
