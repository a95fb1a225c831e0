// Thread counts: the default honours OMP_NUM_THREADS (how users and `make test` cap OpenMP) and
// falls back to every core when it is unset or not a positive number.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/threads.h"

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
    for (const char* bad : {"0", "-2", "two", "4x", ""}) {
        OmpEnv env(bad);
        EXPECT_EQ(default_threads(), hardware_threads()) << "'" << bad << "'";
    }
    OmpEnv unset(nullptr);
    EXPECT_EQ(default_threads(), hardware_threads());
    EXPECT_GE(hardware_threads(), 1);
}

}  // namespace
}  // namespace avatar
