#pragma once
// Timing of registered modules for `avatar bench`: warm-up, repetitions, median / min / max,
// rate, peak memory, at given thread counts. Layers register what is worth timing (usually at the
// official configuration with random weights, which costs the same as trained ones).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace avatar::metrics {

struct BenchmarkCase {
    std::string name;            // "dpe.frame.exp"
    std::string description;     // what one iteration is
    std::string unit = "frame";  // what one iteration produces, for the rate column
    // Builds the module and inputs (not timed) and returns one iteration to time.
    std::function<std::function<void()>()> setup;
    std::optional<double> flops;  // per iteration, where known
    int64_t items = 1;            // units produced by one iteration (a batch of frames)
};

class BenchmarkRegistry {
public:
    static BenchmarkRegistry& instance();
    void add(BenchmarkCase bench);
    const std::vector<BenchmarkCase>& all() const { return cases_; }
    // Cases whose name starts with any of the prefixes (all if empty); Error if none match.
    std::vector<const BenchmarkCase*> select(const std::vector<std::string>& prefixes) const;

private:
    std::vector<BenchmarkCase> cases_;
};

struct BenchmarkOptions {
    std::vector<int> threads{1, 2};
    int warmup = 1;
    int repetitions = 5;
};

struct BenchmarkResult {
    std::string name, description, unit;
    int threads = 1;
    int repetitions = 0;
    double median_ms = 0, min_ms = 0, max_ms = 0;
    int64_t items = 1;       // units per iteration
    double rate = 0;         // units per second (items / median)
    double peak_rss_mb = 0;  // process peak resident memory after the runs
    std::optional<double> gflops_per_s;
    nlohmann::json to_json() const;
};

std::vector<BenchmarkResult> run_benchmarks(const std::vector<const BenchmarkCase*>& cases,
                                            const BenchmarkOptions& options);

std::string benchmarks_to_markdown(const std::vector<BenchmarkResult>& results);

}  // namespace avatar::metrics
