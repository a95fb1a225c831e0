#pragma once
// The subcommands of the `avatar` program. Each lives in its own cmd_*.cpp file and registers
// itself through one add_*_command() function; main.cpp parses, sets up logging and threads, and
// runs the one command the user chose.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace avatar::cli {

// Flags common to every subcommand (accepted before or after the subcommand name).
struct GlobalOptions {
    int threads = 0;  // 0 = default_threads(): the idle usable cores (core/threads.h)
    bool verbose = false;
    bool quiet = false;
    bool json = false;
};

// A registered subcommand: its CLI11 parser and what runs it (returns the exit status).
struct Command {
    CLI::App* parser = nullptr;
    std::function<int()> run;
};

using CommandList = std::vector<Command>;

void add_system_info_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_info_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_check_reference_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_transcode_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_bench_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_render_eg3d_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_track_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_retarget_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_face_model_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_benchmark_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_eval_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_synth_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_animate_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_edit_video_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);
void add_train_command(CLI::App& app, const GlobalOptions& global, CommandList& commands);

// "a,b,,c" -> {"a", "b", "c"}: the comma-separated lists of options such as --metrics.
std::vector<std::string> split_comma_list(const std::string& text);

// Prints `value` as indented JSON on stdout.
void print_json(const nlohmann::json& value);

}  // namespace avatar::cli
