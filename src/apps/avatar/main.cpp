// avatar: the command-line front end of libavatar. See `avatar --help`.
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/threads.h"
#include "core/version.h"
#include "pipeline/builtin_modules.h"

namespace {

// LibTorch errors carry a multi-line C++ backtrace; users get its first line only (-v shows all).
std::string first_line(const std::string& text) {
    const auto end = text.find('\n');
    return end == std::string::npos ? text : text.substr(0, end);
}

int report(const std::string& message) {
    std::fprintf(stderr, "avatar: error: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace avatar;
    CLI::App app{
        "avatar.cpp: editable, animatable portrait avatars (DPE, OTAvatar, 3DFlowRenderer, "
        "InvertAvatar, PVP) on LibTorch.\nRun `avatar COMMAND --help` for the flags of a command.",
        "avatar"};
    app.set_version_flag("--version",
                         std::string("avatar ") + kVersion + " (" + kGitDescribe + ")");
    app.require_subcommand(1, 1);
    app.fallthrough();
    // Parse errors, like every other error, are one line; subcommands inherit this.
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return "avatar: error: " + std::string(e.what()) + " (see --help)\n";
    });

    cli::GlobalOptions global;
    app.add_option("-t,--threads", global.threads,
                   "CPU threads for LibTorch and OpenCV (default: OMP_NUM_THREADS if set, else "
                   "the idle ones of the " +
                       std::to_string(hardware_threads()) +
                       " cores this process may use: their count less the 1-minute load "
                       "average, at least 1)")
        ->check(CLI::Range(0, 4096));
    app.add_flag("-v,--verbose", global.verbose, "Debug logging");
    app.add_flag("-q,--quiet", global.quiet, "Only warnings and errors; no progress display");
    app.add_flag("--json", global.json, "Print the result as JSON on stdout");

    cli::CommandList commands;
    cli::add_system_info_command(app, global, commands);
    cli::add_info_command(app, global, commands);
    cli::add_check_reference_command(app, global, commands);
    cli::add_transcode_command(app, global, commands);
    cli::add_bench_command(app, global, commands);
    cli::add_render_eg3d_command(app, global, commands);
    cli::add_eval_command(app, global, commands);
    cli::add_synth_command(app, global, commands);
    cli::add_track_command(app, global, commands);
    cli::add_retarget_command(app, global, commands);
    cli::add_face_model_command(app, global, commands);
    cli::add_benchmark_command(app, global, commands);
    cli::add_animate_command(app, global, commands);
    cli::add_edit_video_command(app, global, commands);
    cli::add_train_command(app, global, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // An unknown command reaches CLI11 as a stray argument; name it plainly.
        bool known_command = argc <= 1 || argv[1][0] == '-';
        for (const auto* sub : app.get_subcommands({})) {
            known_command = known_command || sub->get_name() == argv[1];
        }
        if (!known_command) {
            std::fprintf(stderr, "avatar: error: unknown command '%s' (see avatar --help)\n",
                         argv[1]);
            return 2;
        }
        return app.exit(e);
    }

    set_log_level(global.verbose ? LogLevel::kDebug
                  : global.quiet ? LogLevel::kWarning
                                 : LogLevel::kInfo);
    Progress::set_enabled(!global.quiet);
    try {
        set_threads(global.threads);
        register_builtin_modules();
        for (const auto& command : commands) {
            if (command.parser->parsed())
                return command.run();
        }
        return report("no command given (see avatar --help)");
    } catch (const Error& e) {
        return report(e.what());
    } catch (const c10::Error& e) {
        return report(global.verbose ? e.what() : first_line(e.what_without_backtrace()));
    } catch (const std::exception& e) {
        return report(e.what());
    }
}
