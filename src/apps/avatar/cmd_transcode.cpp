// avatar transcode INPUT -o OUT.mp4: decode any video and re-encode it as H.264 MP4, keeping its
// audio (stream copy). The media layer's end-to-end path, and the last stage of every pipeline.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "media/video_reader.h"
#include "media/video_writer.h"

namespace avatar::cli {
namespace {

struct TranscodeOptions {
    std::string input;
    std::string output;
    std::string audio_from;
    bool no_audio = false;
    int crf = 18;
    std::string preset = "medium";
    int64_t max_frames = 0;  // 0 = all
};

int run_transcode(const TranscodeOptions& options, const GlobalOptions& global) {
    const auto start = std::chrono::steady_clock::now();
    media::VideoReader reader(options.input, global.threads);

    media::VideoWriterOptions writer_options;
    writer_options.frame_rate = reader.frame_rate();
    writer_options.crf = options.crf;
    writer_options.preset = options.preset;
    writer_options.threads = global.threads;
    if (!options.audio_from.empty())
        writer_options.audio_from = options.audio_from;
    else if (!options.no_audio && reader.has_audio())
        writer_options.audio_from = options.input;
    // A clip cut short by --max-frames keeps only the audio that goes with it.
    writer_options.trim_audio_to_video = options.max_frames > 0;
    media::VideoWriter writer(options.output, reader.width(), reader.height(), writer_options);

    int64_t total = reader.estimated_frame_count();
    if (options.max_frames > 0)
        total = total > 0 ? std::min(total, options.max_frames) : options.max_frames;
    {
        Progress progress("transcode", total, "frames");
        while (options.max_frames <= 0 || writer.frames_written() < options.max_frames) {
            auto frame = reader.next_frame();
            if (!frame)
                break;
            writer.write(*frame);
            progress.advance();
        }
    }
    writer.finish();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const auto bytes = std::filesystem::file_size(options.output);
    const int64_t frames = writer.frames_written();
    if (global.json) {
        nlohmann::json audio = {{"kept", writer.has_audio()}};
        if (writer.has_audio()) {
            audio["codec"] = writer.audio_codec_name();
            audio["source"] = writer_options.audio_from.string();
            audio["packets"] = writer.audio_packets_copied();
        }
        print_json({{"input", options.input},
                    {"output", options.output},
                    {"frames", frames},
                    {"frame_rate", writer.frame_rate().to_string()},
                    {"fps", writer.frame_rate().value()},
                    {"width", writer.width()},
                    {"height", writer.height()},
                    {"encoded_width", writer.encoded_width()},
                    {"encoded_height", writer.encoded_height()},
                    {"crf", options.crf},
                    {"preset", options.preset},
                    {"audio", audio},
                    {"bytes", bytes},
                    {"seconds", seconds}});
        return 0;
    }
    std::printf(
        "wrote %s: %lld frames, %dx%d%s, %s fps (%.3f), %.1f kB, in %.2f s (%.1f frames/s)\n",
        options.output.c_str(), static_cast<long long>(frames), writer.width(), writer.height(),
        writer.encoded_width() != writer.width() || writer.encoded_height() != writer.height()
            ? (" (padded to " + std::to_string(writer.encoded_width()) + "x" +
               std::to_string(writer.encoded_height()) + ")")
                  .c_str()
            : "",
        writer.frame_rate().to_string().c_str(), writer.frame_rate().value(),
        static_cast<double>(bytes) / 1000.0, seconds,
        seconds > 0 ? static_cast<double>(frames) / seconds : 0.0);
    if (writer.has_audio()) {
        std::printf("audio kept: %s from %s (%lld packets copied unchanged)\n",
                    writer.audio_codec_name().c_str(), writer_options.audio_from.c_str(),
                    static_cast<long long>(writer.audio_packets_copied()));
    } else {
        std::printf("audio kept: no (%s)\n", options.no_audio ? "--no-audio" : "input has none");
    }
    return 0;
}

}  // namespace

void add_transcode_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<TranscodeOptions>();
    auto* cmd = app.add_subcommand(
        "transcode",
        "Decode a video (anything FFmpeg reads) and re-encode it as H.264 MP4 at the same frame "
        "rate.\nThe audio of INPUT is copied unchanged (no re-encoding) unless --no-audio or "
        "--audio-from is given; audio that MP4 cannot hold (e.g. PCM) is an error: use "
        "--no-audio or convert it first. Odd frame sizes are padded to even by repeating the "
        "last row/column.");
    cmd->add_option("INPUT", options->input, "Input video")->required();
    cmd->add_option("-o,--output", options->output, "Output file (.mp4)")->required();
    auto* audio_from = cmd->add_option("--audio-from", options->audio_from,
                                       "Take the audio from this file instead of INPUT");
    auto* no_audio = cmd->add_flag("--no-audio", options->no_audio, "Write no audio");
    audio_from->excludes(no_audio);
    cmd->add_option("--crf", options->crf,
                    "x264 quality, 0 (lossless) .. 51 (worst); 18 is visually transparent")
        ->check(CLI::Range(0, 51))
        ->capture_default_str();
    cmd->add_option("--preset", options->preset,
                    "x264 speed/size trade-off: ultrafast, superfast, veryfast, faster, fast, "
                    "medium, slow, slower, veryslow")
        ->capture_default_str();
    cmd->add_option("--max-frames", options->max_frames,
                    "Stop after this many frames (the audio is cut to match); 0 = all")
        ->check(CLI::NonNegativeNumber);
    commands.push_back({cmd, [options, &global] { return run_transcode(*options, global); }});
}

}  // namespace avatar::cli
