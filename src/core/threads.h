#pragma once
// Thread count for LibTorch (intra-op and inter-op) and OpenCV. LibTorch's own default is not
// trusted (Debian's build starts with 1 intra-op thread), so every entry point sets it explicitly.

#include <string>

namespace avatar {

// Number of CPUs this process can use (at least 1): the online CPUs, capped by the process's
// affinity mask and by a cgroup v2 CPU quota (/sys/fs/cgroup/cpu.max) when there is one.
int hardware_threads();

// Threads worth running under a cgroup v2 `cpu.max` line ("150000 100000" -> 2); 0 when the
// line sets no limit ("max 100000") or cannot be read.
int cpu_quota_threads(const std::string& cpu_max_line);

// The 1-minute load average of the machine (/proc/loadavg), 0 where it cannot be read.
double load_average();

// The idle ones of `cores` under a load average of `load` (at least 1): cores - round(load).
int threads_for_load(int cores, double load);

// OMP_NUM_THREADS when it is set to a positive number, else the idle cores this process may
// use: threads_for_load(hardware_threads(), load_average()).
int default_threads();

// Sets the intra-op threads of LibTorch and the threads of OpenCV; `threads` <= 0 means
// default_threads(). Returns the number set.
int set_threads(int threads);

// For the rest of a scope, LibTorch ops started from this thread use one intra-op thread; the
// previous count comes back at the end. For work made of many small tensor ops (the face model
// fit), where a second OpenMP thread costs more in synchronisation than it gains, and where
// spinning OpenMP threads collapse on a busy machine (measured: 2 threads 4-20x slower than 1
// under load). OpenMP's thread count is per calling thread, so other threads are not affected.
class SingleThreadScope {
public:
    SingleThreadScope();
    ~SingleThreadScope();
    SingleThreadScope(const SingleThreadScope&) = delete;
    SingleThreadScope& operator=(const SingleThreadScope&) = delete;

private:
    int previous_;
};

}  // namespace avatar
