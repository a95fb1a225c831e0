#include "metrics/benchmark.h"

#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "core/progress.h"
#include "core/threads.h"

namespace avatar::metrics {

BenchmarkRegistry& BenchmarkRegistry::instance() {
    static BenchmarkRegistry registry;
    return registry;
}

void BenchmarkRegistry::add(BenchmarkCase bench) {
    check(bench.setup != nullptr, bench.name, "a benchmark needs a setup function");
    for (const auto& c : cases_)
        check(c.name != bench.name, bench.name, "benchmark registered twice");
    cases_.push_back(std::move(bench));
}

std::vector<const BenchmarkCase*> BenchmarkRegistry::select(
    const std::vector<std::string>& prefixes) const {
    std::vector<const BenchmarkCase*> selected;
    for (const auto& c : cases_) {
        const bool wanted = prefixes.empty() || std::any_of(prefixes.begin(), prefixes.end(),
                                                            [&](const std::string& p) {
                                                                return c.name.rfind(p, 0) == 0;
                                                            });
        if (wanted)
            selected.push_back(&c);
    }
    if (selected.empty()) {
        std::string known;
        for (const auto& c : cases_)
            known += (known.empty() ? "" : ", ") + c.name;
        throw Error(prefixes.empty() ? "bench" : prefixes.front(),
                    "no benchmark matches (known: " + known + ")");
    }
    return selected;
}

nlohmann::json BenchmarkResult::to_json() const {
    nlohmann::json j{{"name", name},
                     {"description", description},
                     {"unit", unit},
                     {"items_per_iteration", items},
                     {"threads", threads},
                     {"repetitions", repetitions},
                     {"median_ms", median_ms},
                     {"min_ms", min_ms},
                     {"max_ms", max_ms},
                     {"per_second", rate},
                     {"peak_rss_mb", peak_rss_mb}};
    j["gflops_per_s"] = gflops_per_s ? nlohmann::json(*gflops_per_s) : nlohmann::json();
    return j;
}

namespace {
double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
}  // namespace

std::vector<BenchmarkResult> run_benchmarks(const std::vector<const BenchmarkCase*>& cases,
                                            const BenchmarkOptions& options) {
    check(options.repetitions >= 1, "--repeat", "must be at least 1");
    check(options.warmup >= 0, "--warmup", "must not be negative");
    std::vector<BenchmarkResult> results;
    Progress progress("bench", static_cast<int64_t>(cases.size() * options.threads.size()), "runs");
    torch::NoGradGuard no_grad;
    for (const auto* bench : cases) {
        for (const int threads : options.threads) {
            set_threads(threads);
            const auto iteration = bench->setup();
            for (int i = 0; i < options.warmup; ++i)
                iteration();
            std::vector<double> ms;
            for (int i = 0; i < options.repetitions; ++i) {
                const auto start = std::chrono::steady_clock::now();
                iteration();
                ms.push_back(std::chrono::duration<double, std::milli>(
                                 std::chrono::steady_clock::now() - start)
                                 .count());
            }
            std::sort(ms.begin(), ms.end());
            BenchmarkResult r;
            r.name = bench->name;
            r.description = bench->description;
            r.unit = bench->unit;
            r.threads = threads;
            r.repetitions = options.repetitions;
            // Median of an even count is the mean of the two middle values.
            const size_t n = ms.size();
            r.median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
            r.min_ms = ms.front();
            r.max_ms = ms.back();
            r.items = bench->items;
            r.rate = 1000.0 * static_cast<double>(bench->items) / r.median_ms;
            r.peak_rss_mb = peak_rss_mb();
            if (bench->flops)
                r.gflops_per_s = *bench->flops / (r.median_ms * 1e6);
            results.push_back(r);
            progress.advance();
        }
    }
    return results;
}

std::string benchmarks_to_markdown(const std::vector<BenchmarkResult>& results) {
    std::string out =
        "| benchmark | threads | median ms | min ms | max ms | per second | GFLOP/s | peak RSS MB "
        "|\n"
        "|---|---|---|---|---|---|---|---|\n";
    char line[512];
    for (const auto& r : results) {
        char gflops[32] = "-";
        if (r.gflops_per_s)
            std::snprintf(gflops, sizeof gflops, "%.1f", *r.gflops_per_s);
        std::snprintf(line, sizeof line,
                      "| %s | %d | %.1f | %.1f | %.1f | %.2f %s/s | %s | %.0f |\n", r.name.c_str(),
                      r.threads, r.median_ms, r.min_ms, r.max_ms, r.rate, r.unit.c_str(), gflops,
                      r.peak_rss_mb);
        out += line;
    }
    return out;
}

}  // namespace avatar::metrics
