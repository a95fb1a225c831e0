#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace avatar {
namespace {
LogLevel g_level = LogLevel::kInfo;

spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return spdlog::level::debug;
        case LogLevel::kInfo:
            return spdlog::level::info;
        case LogLevel::kWarning:
            return spdlog::level::warn;
        case LogLevel::kError:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

void install_stderr_logger() {
    static bool installed = false;
    if (installed)
        return;
    auto logger = spdlog::stderr_color_mt("avatar");
    logger->set_pattern("[%^%l%$] %v");
    spdlog::set_default_logger(logger);
    installed = true;
}
}  // namespace

void set_log_level(LogLevel level) {
    install_stderr_logger();
    g_level = level;
    spdlog::set_level(to_spdlog(level));
}

LogLevel log_level() {
    return g_level;
}

}  // namespace avatar
