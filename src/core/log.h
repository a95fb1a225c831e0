#pragma once
// Logging goes to stderr (stdout is kept for results, e.g. --json), through spdlog.
#include <spdlog/spdlog.h>

namespace avatar {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Installs the stderr logger on first use and sets its level.
void set_log_level(LogLevel level);
LogLevel log_level();

}  // namespace avatar
