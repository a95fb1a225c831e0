#include "core/threads.h"

#include <ATen/Parallel.h>
#include <opencv2/core/utility.hpp>

#include <cstdlib>
#include <thread>

namespace avatar {

int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
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
    return hardware_threads();
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
