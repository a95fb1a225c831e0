// Thread counts: the default honours OMP_NUM_THREADS (how users and `make test` cap OpenMP) and
// falls back to the idle ones of the CPUs the process may use (affinity mask, cgroup quota, load
// average) when it is unset or not a positive number.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/threads.h"

#if defined(__linux__)
#include <sched.h>
#endif

namespace avatar {
namespace {

// Sets OMP_NUM_THREADS for the scope and restores what was there.
class OmpEnv {
public:
    explicit OmpEnv(const char* value) {
        if (const char* old = std::getenv("OMP_NUM_THREADS"))
            previous_ = old;
        if (value)
            setenv("OMP_NUM_THREADS", value, 1);
        else
            unsetenv("OMP_NUM_THREADS");
    }
    ~OmpEnv() {
        if (previous_)
            setenv("OMP_NUM_THREADS", previous_->c_str(), 1);
        else
            unsetenv("OMP_NUM_THREADS");
    }

private:
    std::optional<std::string> previous_;
};

TEST(Threads, DefaultHonoursOmpNumThreads) {
    {
        OmpEnv env("3");
        EXPECT_EQ(default_threads(), 3);
    }
    // Otherwise the idle cores, which depend on the machine's load at the moment of the call.
    for (const char* bad : {"0", "-2", "two", "4x", ""}) {
        OmpEnv env(bad);
        EXPECT_GE(default_threads(), 1) << "'" << bad << "'";
        EXPECT_LE(default_threads(), hardware_threads()) << "'" << bad << "'";
    }
    OmpEnv unset(nullptr);
    EXPECT_GE(default_threads(), 1);
    EXPECT_LE(default_threads(), hardware_threads());
    EXPECT_GE(hardware_threads(), 1);
    EXPECT_GE(load_average(), 0.0);
}

TEST(Threads, DefaultLeavesBusyCoresAlone) {
    EXPECT_EQ(threads_for_load(2, 0.0), 2);
    EXPECT_EQ(threads_for_load(2, 0.44), 2);  // an idle machine's background noise
    EXPECT_EQ(threads_for_load(2, 1.2), 1);   // one core busy
    EXPECT_EQ(threads_for_load(2, 2.6), 1);   // every core busy: still one thread
    EXPECT_EQ(threads_for_load(16, 3.0), 13);
    EXPECT_EQ(threads_for_load(16, 40.0), 1);
    EXPECT_EQ(threads_for_load(8, -1.0), 8);  // an unreadable load counts as idle
    EXPECT_EQ(threads_for_load(0, 0.0), 1);
}

TEST(Threads, CpuQuotaLine) {
    EXPECT_EQ(cpu_quota_threads("max 100000"), 0);
    EXPECT_EQ(cpu_quota_threads("100000 100000"), 1);
    EXPECT_EQ(cpu_quota_threads("150000 100000"), 2);
    EXPECT_EQ(cpu_quota_threads("400000 100000\n"), 4);
    EXPECT_EQ(cpu_quota_threads("50000 100000"), 1);
    for (const char* bad : {"", "garbage", "100000", "12x 100000", "-5 100000", "100000 0"})
        EXPECT_EQ(cpu_quota_threads(bad), 0) << "'" << bad << "'";
}

#if defined(__linux__)
// A process pinned to one core (`taskset -c 0`) must not start one OpenMP thread per core of
// the machine on it.
TEST(Threads, HardwareThreadsHonoursTheAffinityMask) {
    cpu_set_t before;
    CPU_ZERO(&before);
    ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && first < 0; ++cpu)
        if (CPU_ISSET(cpu, &before))
            first = cpu;
    ASSERT_GE(first, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    const int pinned = hardware_threads();
    ASSERT_EQ(sched_setaffinity(0, sizeof(before), &before), 0);
    EXPECT_EQ(pinned, 1);
    EXPECT_LE(hardware_threads(), CPU_COUNT(&before));
}
#endif

}  // namespace
}  // namespace avatar
