// Shared main() of every test program: quiet logging unless AVATAR_TEST_VERBOSE is set.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/log.h"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    avatar::set_log_level(std::getenv("AVATAR_TEST_VERBOSE") ? avatar::LogLevel::kDebug
                                                             : avatar::LogLevel::kWarning);
    return RUN_ALL_TESTS();
}
