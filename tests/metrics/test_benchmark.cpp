#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "metrics/benchmark.h"

namespace avatar::metrics {
namespace {

TEST(Benchmark, TimesRepetitionsAndReportsStatistics) {
    int setups = 0, calls = 0;
    BenchmarkCase bench{"test.sleep", "sleeps 2 ms", "call",
                        [&] {
                            ++setups;
                            return std::function<void()>([&] {
                                ++calls;
                                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                            });
                        },
                        2e6};
    BenchmarkOptions options;
    options.threads = {1, 2};
    options.warmup = 2;
    options.repetitions = 4;
    const auto results = run_benchmarks({&bench}, options);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(setups, 2);           // once per thread count, untimed
    EXPECT_EQ(calls, 2 * (2 + 4));  // warm-up + repetitions per thread count
    for (const auto& r : results) {
        EXPECT_GE(r.min_ms, 2.0);
        EXPECT_LE(r.min_ms, r.median_ms);
        EXPECT_LE(r.median_ms, r.max_ms);
        EXPECT_NEAR(r.rate, 1000.0 / r.median_ms, 1e-9);
        ASSERT_TRUE(r.gflops_per_s.has_value());
        EXPECT_NEAR(*r.gflops_per_s, 2e6 / (r.median_ms * 1e6), 1e-9);
        EXPECT_GT(r.peak_rss_mb, 1.0);
    }
    EXPECT_NE(benchmarks_to_markdown(results).find("| test.sleep | 2 |"), std::string::npos);
    EXPECT_EQ(results[0].to_json()["repetitions"], 4);
}

TEST(Benchmark, SelectionByPrefix) {
    BenchmarkRegistry registry;
    auto noop = [] { return std::function<void()>([] {}); };
    registry.add({"dpe.encoder", "", "x", noop, std::nullopt});
    registry.add({"dpe.frame.exp", "", "x", noop, std::nullopt});
    registry.add({"eg3d.planes", "", "x", noop, std::nullopt});
    EXPECT_EQ(registry.select({"dpe"}).size(), 2u);
    EXPECT_EQ(registry.select({}).size(), 3u);
    EXPECT_THROW(registry.select({"pvp"}), Error);
    EXPECT_THROW(registry.add({"dpe.encoder", "", "x", noop, std::nullopt}), Error);
    BenchmarkOptions bad;
    bad.repetitions = 0;
    EXPECT_THROW(run_benchmarks(registry.select({}), bad), Error);
}

}  // namespace
}  // namespace avatar::metrics
