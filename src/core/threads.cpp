#include "core/threads.h"

#include <ATen/Parallel.h>
#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#include "core/log.h"

namespace avatar {

namespace {

// CPUs this process may run on (`taskset`, `docker --cpuset-cpus`), 0 if unknown.
// std::thread::hardware_concurrency counts the machine's online CPUs instead, so a process
// pinned to one core of many would start one spinning OpenMP thread per core on that core.
int cpus_in_affinity_mask() {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        return CPU_COUNT(&set);
#endif
    return 0;
}

}  // namespace

int cpu_quota_threads(const std::string& cpu_max_line) {
    // cgroup v2 cpu.max: "<quota> <period>" in microseconds, or "max <period>" for no limit.
    // A quota of 1.5 CPUs still gets 2 threads: the half core is worth using.
    std::string quota;
    double period = 0;
    std::istringstream in(cpu_max_line);
    if (!(in >> quota >> period) || quota == "max" || period <= 0)
        return 0;
    char* end = nullptr;
    const double q = std::strtod(quota.c_str(), &end);
    if (end == quota.c_str() || *end != '\0' || q <= 0)
        return 0;
    return std::max(1, static_cast<int>(std::ceil(q / period)));
}

int hardware_threads() {
    const unsigned online = std::thread::hardware_concurrency();
    int n = online == 0 ? 1 : static_cast<int>(online);
    if (const int allowed = cpus_in_affinity_mask(); allowed > 0)
        n = std::min(n, allowed);
    // A container's CPU quota (cgroup v2, where the process's own cgroup is mounted at the root
    // of /sys/fs/cgroup, as in Docker and Kubernetes): more threads than the quota only queue.
    std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");
    std::string line;
    if (cpu_max && std::getline(cpu_max, line))
        if (const int quota = cpu_quota_threads(line); quota > 0)
            n = std::min(n, quota);
    return std::max(1, n);
}

double load_average() {
    std::ifstream in("/proc/loadavg");
    double load = 0;
    return in >> load ? load : 0.0;
}

int threads_for_load(int cores, double load) {
    // The 1-minute load average counts the runnable processes (ours has not started its work
    // yet); rounding keeps an idle machine's background noise (0.3-0.5) from costing a core.
    const long busy = std::lround(std::max(0.0, load));
    const long idle = static_cast<long>(cores) - busy;
    return static_cast<int>(std::clamp(idle, 1L, static_cast<long>(std::max(1, cores))));
}

int default_threads() {
    // OMP_NUM_THREADS is how users (and `make test`, which runs tests side by side) cap OpenMP;
    // LibTorch honours it only until set_num_threads is called, so honour it here too.
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= 1024)
            return static_cast<int>(n);
    }
    // Only the idle cores: OpenMP threads wait for each other at every parallel region, so one
    // that shares its core with another process holds all of them up (make demo's animation on
    // the 2-core dev box with both cores busy: 0.8 frames/s at two threads, 18 at one).
    const int cores = hardware_threads();
    const double load = load_average();
    const int n = threads_for_load(cores, load);
    spdlog::debug("{} CPU threads ({} cores usable, load average {:.2f}; --threads sets it)", n,
                  cores, load);
    return n;
}

int set_threads(int threads) {
    const int n = threads > 0 ? threads : default_threads();
    at::set_num_threads(n);
    // The inter-op pool can be sized only once, before first use; later calls are refused by
    // LibTorch, which is harmless here (we do not use inter-op parallelism for correctness).
    static bool interop_set = false;
    if (!interop_set) {
        try {
            at::set_num_interop_threads(n);
        } catch (const std::exception&) {
        }
        interop_set = true;
    }
    cv::setNumThreads(n);
    return n;
}

SingleThreadScope::SingleThreadScope() : previous_(at::get_num_threads()) {
    if (previous_ != 1)
        at::set_num_threads(1);
}

SingleThreadScope::~SingleThreadScope() {
    if (previous_ != 1)
        at::set_num_threads(previous_);
}

}  // namespace avatar
