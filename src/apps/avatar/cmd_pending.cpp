// Temporary registrations for commands whose implementation is being written (removed as each
// cmd_*.cpp lands).
#include "apps/avatar/commands.h"
#include "core/error.h"

namespace avatar::cli {
void add_check_reference_command(CLI::App&, const GlobalOptions&, CommandList&) {}
}  // namespace avatar::cli
