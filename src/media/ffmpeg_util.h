#pragma once
// Internal helpers shared by the FFmpeg-based media code (video_reader.cpp, video_writer.cpp):
// owning smart pointers for every FFmpeg object, error text, and routing of FFmpeg's own log
// into ours. Not part of the public media API; include it from .cpp files only.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace avatar::media::ffmpeg {

struct CodecContextDeleter {
    void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct FrameDeleter {
    void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct PacketDeleter {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsContextDeleter {
    void operator()(SwsContext* p) const { sws_freeContext(p); }
};
// An input format context (avformat_open_input) is closed, not freed.
struct InputContextDeleter {
    void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};

using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;
using InputContextPtr = std::unique_ptr<AVFormatContext, InputContextDeleter>;

// Allocators that throw std::bad_alloc instead of returning null.
FramePtr make_frame();
PacketPtr make_packet();

// FFmpeg's text for an AVERROR code ("Invalid data found when processing input").
std::string error_text(int code);

// Sends FFmpeg's own log lines to our logger at debug level (visible with -v), once per process.
// Our errors carry their own message naming the file, so FFmpeg's chatter about damaged input
// would only duplicate them on stderr.
void route_log_once();

// Opens `path` for demuxing and reads the stream parameters; throws Error naming the path,
// also for a file that check_not_truncated rejects.
InputContextPtr open_input(const std::string& path);

// Containers with an index of their media data (MP4/MOV sample tables, Matroska cues) tell
// where every packet lies; a file cut short (an interrupted download or copy) has index entries
// beyond its end. Demuxers read such a file up to the cut and then report a normal end of
// stream, so without this check a truncated video would pass as a shorter one. Formats without
// an index (MPEG-TS, raw streams) are not checked here; there a cut shows up as a shorter video.
void check_not_truncated(AVFormatContext& input, const std::string& path);

}  // namespace avatar::media::ffmpeg
