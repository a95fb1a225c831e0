#include "media/ffmpeg_util.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <algorithm>
#include <cstdarg>
#include <filesystem>
#include <mutex>
#include <new>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"

namespace avatar::media::ffmpeg {

FramePtr make_frame() {
    FramePtr frame(av_frame_alloc());
    if (!frame)
        throw std::bad_alloc();
    return frame;
}

PacketPtr make_packet() {
    PacketPtr packet(av_packet_alloc());
    if (!packet)
        throw std::bad_alloc();
    return packet;
}

std::string error_text(int code) {
    char buffer[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(code, buffer, sizeof buffer);
    return buffer;
}

namespace {
void log_callback(void* context, int level, const char* format, va_list args) {
    if (level > AV_LOG_VERBOSE)
        return;
    static thread_local int print_prefix = 1;
    char line[1024];
    av_log_format_line2(context, level, format, args, line, sizeof line, &print_prefix);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    if (!text.empty())
        spdlog::debug("ffmpeg: {}", text);
}
}  // namespace

void route_log_once() {
    static std::once_flag once;
    std::call_once(once, [] { av_log_set_callback(log_callback); });
}

void check_not_truncated(AVFormatContext& input, const std::string& path) {
    const int64_t file_size = input.pb ? avio_size(input.pb) : -1;
    if (file_size <= 0)
        return;  // not a seekable file: nothing to compare with
    int64_t index_end = 0;
    for (unsigned i = 0; i < input.nb_streams; ++i) {
        AVStream* stream = input.streams[i];
        const int entries = avformat_index_get_entries_count(stream);
        for (int e = 0; e < entries; ++e) {
            const AVIndexEntry* entry = avformat_index_get_entry(stream, e);
            if (entry && entry->pos >= 0)
                index_end = std::max(index_end, entry->pos + entry->size);
        }
    }
    check(index_end <= file_size, path,
          "truncated: its index refers to " + std::to_string(index_end - file_size) +
              " bytes beyond the end of the file");
}

InputContextPtr open_input(const std::string& path) {
    route_log_once();
    // FFmpeg would report a directory or a missing file as an obscure I/O error; say it plainly.
    require_regular_file(path);
    AVFormatContext* raw = nullptr;
    const int opened = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    check(opened >= 0, path,
          "cannot open as media (not a format FFmpeg reads, or damaged): " + error_text(opened));
    InputContextPtr input(raw);
    const int found = avformat_find_stream_info(input.get(), nullptr);
    check(found >= 0, path, "cannot read the stream parameters (damaged?): " + error_text(found));
    check_not_truncated(*input, path);
    return input;
}

}  // namespace avatar::media::ffmpeg
