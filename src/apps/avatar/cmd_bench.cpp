// avatar bench: times registered modules (see metrics/benchmark.h).
#include <cstdio>
#include <sstream>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "core/threads.h"
#include "metrics/benchmark.h"

namespace avatar::cli {
namespace {

struct BenchOptions {
    std::vector<std::string> names;
    std::string threads = "1,2";
    int warmup = 1;
    int repetitions = 5;
    std::string format = "md";
    std::string output;
    bool list = false;
};

std::vector<int> parse_threads(const std::string& text) {
    std::vector<int> threads;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        try {
            size_t used = 0;
            const int n = std::stoi(item, &used);
            check(used == item.size() && n >= 1, "--threads-list",
                  "'" + item + "' is not a positive count");
            threads.push_back(n);
        } catch (const std::logic_error&) {
            throw Error("--threads-list", "'" + item + "' is not a number");
        }
    }
    check(!threads.empty(), "--threads-list", "empty");
    return threads;
}

// Timings of a busy machine say little, and LibTorch's OpenMP threads, which spin while they
// wait, suffer most from other load (a 2-thread run can be many times slower than a 1-thread
// one). Say so before the numbers, from the 1-minute load average (Linux).
void warn_if_busy() {
    const double load = load_average();  // 0 where it cannot be read: no warning
    const int cores = hardware_threads();
    if (load > 0.5 * cores)
        spdlog::warn(
            "the load average is {:.1f} on {} cores: other processes compete for the CPU, so "
            "these timings (multi-threaded ones most) are not representative; with other load, "
            "OMP_WAIT_POLICY=passive stops idle OpenMP threads from spinning",
            load, cores);
}

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<BenchOptions>();
    auto* cmd = app.add_subcommand(
        "bench",
        "Time modules at their official sizes (random weights cost the same as trained ones).\n"
        "For each benchmark and thread count: warm-up runs, then repetitions; reports median, "
        "min and max milliseconds per iteration, iterations per second and the process's peak "
        "resident memory. Markdown table by default, JSON with --json or --format json.");
    cmd->add_option("NAME", options->names,
                    "Benchmarks to run, by name or prefix (e.g. dpe); default all; see --list");
    cmd->add_option("--threads-list", options->threads,
                    "Comma-separated thread counts to run each benchmark at")
        ->capture_default_str();
    cmd->add_option("--warmup", options->warmup, "Untimed runs first")->capture_default_str();
    cmd->add_option("--repeat", options->repetitions, "Timed runs")->capture_default_str();
    cmd->add_option("--format", options->format, "md or json")
        ->check(CLI::IsMember({"md", "json"}))
        ->capture_default_str();
    cmd->add_option("-o,--output", options->output, "Also write the report to this file");
    cmd->add_flag("--list", options->list, "List the benchmarks and exit");
    commands.push_back(
        {cmd, [options, &global] {
             auto& registry = metrics::BenchmarkRegistry::instance();
             if (options->list) {
                 for (const auto& c : registry.all()) {
                     std::printf("%-28s %s\n", c.name.c_str(), c.description.c_str());
                 }
                 return 0;
             }
             warn_if_busy();
             metrics::BenchmarkOptions run;
             run.threads = parse_threads(options->threads);
             run.warmup = options->warmup;
             run.repetitions = options->repetitions;
             const auto results = metrics::run_benchmarks(registry.select(options->names), run);
             std::string report;
             if (global.json || options->format == "json") {
                 nlohmann::json j = nlohmann::json::array();
                 for (const auto& r : results)
                     j.push_back(r.to_json());
                 report = j.dump(2) + "\n";
             } else {
                 report = metrics::benchmarks_to_markdown(results);
             }
             std::fputs(report.c_str(), stdout);
             if (!options->output.empty()) {
                 write_file_atomic(options->output, report.data(), report.size());
             }
             return 0;
         }});
}

}  // namespace avatar::cli
