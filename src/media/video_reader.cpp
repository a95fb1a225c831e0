#include "media/video_reader.h"

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "media/ffmpeg_util.h"

namespace avatar::media {
using namespace ffmpeg;

struct VideoReader::Impl {
    std::filesystem::path path;
    std::string subject;  // path as text, for errors
    InputContextPtr input;
    CodecContextPtr decoder;
    SwsContextPtr converter;
    FramePtr frame = make_frame();
    PacketPtr packet = make_packet();
    int stream_index = -1;
    int width = 0;
    int height = 0;
    FrameRate frame_rate;
    int64_t estimated_frames = 0;
    double duration = 0.0;
    std::string audio_codec;
    bool end_of_input = false;  // the demuxer is exhausted and the decoder has been told
    bool end_of_stream = false;
    int64_t frames_read = 0;

    torch::Tensor convert(const AVFrame& decoded);
};

namespace {

// The RGB conversion follows the colour tags of the stream; untagged video is taken as BT.601
// (what FFmpeg and most players assume for it).
void set_colorspace(SwsContext* converter, const AVFrame& frame) {
    int colorspace = SWS_CS_ITU601;
    switch (frame.colorspace) {
        case AVCOL_SPC_BT709:
            colorspace = SWS_CS_ITU709;
            break;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL:
            colorspace = SWS_CS_BT2020;
            break;
        case AVCOL_SPC_SMPTE240M:
            colorspace = SWS_CS_SMPTE240M;
            break;
        case AVCOL_SPC_FCC:
            colorspace = SWS_CS_FCC;
            break;
        default:
            break;
    }
    const auto format = static_cast<AVPixelFormat>(frame.format);
    const bool full_range = frame.color_range == AVCOL_RANGE_JPEG ||
                            format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P ||
                            format == AV_PIX_FMT_YUVJ444P;
    const int* coefficients = sws_getCoefficients(colorspace);
    sws_setColorspaceDetails(converter, coefficients, full_range ? 1 : 0, coefficients, 1, 0,
                             1 << 16, 1 << 16);
}

// The yuvj* formats are deprecated aliases; swscale warns about them unless told the range.
AVPixelFormat undeprecated(AVPixelFormat format) {
    switch (format) {
        case AV_PIX_FMT_YUVJ420P:
            return AV_PIX_FMT_YUV420P;
        case AV_PIX_FMT_YUVJ422P:
            return AV_PIX_FMT_YUV422P;
        case AV_PIX_FMT_YUVJ444P:
            return AV_PIX_FMT_YUV444P;
        case AV_PIX_FMT_YUVJ440P:
            return AV_PIX_FMT_YUV440P;
        default:
            return format;
    }
}

}  // namespace

torch::Tensor VideoReader::Impl::convert(const AVFrame& decoded) {
    const auto format = static_cast<AVPixelFormat>(decoded.format);
    check(decoded.width > 0 && decoded.height > 0 && format != AV_PIX_FMT_NONE, subject,
          "decoder returned an empty frame (damaged data?)");
    SwsContext* cached = converter.release();
    SwsContext* updated = sws_getCachedContext(
        cached, decoded.width, decoded.height, undeprecated(format), width, height,
        AV_PIX_FMT_RGB24, SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
    converter.reset(updated);
    check(converter != nullptr, subject,
          std::string("cannot convert pixel format ") +
              (av_get_pix_fmt_name(format) ? av_get_pix_fmt_name(format) : "?") + " to RGB");
    set_colorspace(converter.get(), decoded);

    torch::Tensor rgb = torch::empty({height, width, 3}, torch::kUInt8);
    uint8_t* planes[4] = {rgb.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
    const int strides[4] = {width * 3, 0, 0, 0};
    const int rows = sws_scale(converter.get(), decoded.data, decoded.linesize, 0, decoded.height,
                               planes, strides);
    check(rows == height, subject, "pixel format conversion failed");
    return rgb;
}

VideoReader::VideoReader(const std::filesystem::path& path, int threads)
    : impl_(std::make_unique<Impl>()) {
    Impl& d = *impl_;
    d.path = path;
    d.subject = path.string();
    d.input = open_input(d.subject);

    for (unsigned i = 0; i < d.input->nb_streams; ++i) {
        const AVStream* stream = d.input->streams[i];
        if (stream->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && d.audio_codec.empty())
            d.audio_codec = avcodec_get_name(stream->codecpar->codec_id);
        // Cover art in audio files is a one-picture "video" stream; it is not a video.
        const bool cover_art = (stream->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
        if (stream->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !cover_art && d.stream_index < 0)
            d.stream_index = static_cast<int>(i);
    }
    check(d.stream_index >= 0, d.subject, "has no video stream");
    AVStream* stream = d.input->streams[d.stream_index];
    // Only this stream is decoded; the demuxer may skip the packets of the others.
    for (unsigned i = 0; i < d.input->nb_streams; ++i) {
        if (static_cast<int>(i) != d.stream_index)
            d.input->streams[i]->discard = AVDISCARD_ALL;
    }

    const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
    check(
        codec != nullptr, d.subject,
        std::string("no decoder for video codec ") + avcodec_get_name(stream->codecpar->codec_id));
    d.decoder.reset(avcodec_alloc_context3(codec));
    if (!d.decoder)
        throw std::bad_alloc();
    int status = avcodec_parameters_to_context(d.decoder.get(), stream->codecpar);
    check(status >= 0, d.subject, "bad video stream parameters: " + error_text(status));
    d.decoder->thread_count = std::min(threads > 0 ? threads : hardware_threads(), 16);
    d.decoder->pkt_timebase = stream->time_base;
    status = avcodec_open2(d.decoder.get(), codec, nullptr);
    check(status >= 0, d.subject, "cannot open the video decoder: " + error_text(status));

    d.width = stream->codecpar->width;
    d.height = stream->codecpar->height;
    check(d.width > 0 && d.height > 0, d.subject,
          "video stream has no frame size (damaged or truncated?)");

    const AVRational rate = av_guess_frame_rate(d.input.get(), stream, nullptr);
    if (rate.num > 0 && rate.den > 0) {
        d.frame_rate = FrameRate{rate.num, rate.den};
    } else {
        spdlog::warn("{}: the video stream declares no frame rate; reading it at 25 fps",
                     d.subject);
        d.frame_rate = FrameRate{25, 1};
    }

    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
        d.duration = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
    else if (d.input->duration != AV_NOPTS_VALUE && d.input->duration > 0)
        d.duration = static_cast<double>(d.input->duration) / AV_TIME_BASE;
    if (stream->nb_frames > 0)
        d.estimated_frames = stream->nb_frames;
    else if (d.duration > 0)
        d.estimated_frames = std::llround(d.duration * d.frame_rate.value());
}

VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

const std::filesystem::path& VideoReader::path() const {
    return impl_->path;
}
int VideoReader::width() const {
    return impl_->width;
}
int VideoReader::height() const {
    return impl_->height;
}
FrameRate VideoReader::frame_rate() const {
    return impl_->frame_rate;
}
double VideoReader::fps() const {
    return impl_->frame_rate.value();
}
int64_t VideoReader::estimated_frame_count() const {
    return impl_->estimated_frames;
}
double VideoReader::duration_seconds() const {
    return impl_->duration;
}
bool VideoReader::has_audio() const {
    return !impl_->audio_codec.empty();
}
std::string VideoReader::audio_codec_name() const {
    return impl_->audio_codec;
}
int64_t VideoReader::frames_read() const {
    return impl_->frames_read;
}

std::string VideoReader::codec_name() const {
    return avcodec_get_name(impl_->decoder->codec_id);
}

std::optional<torch::Tensor> VideoReader::next_frame() {
    Impl& d = *impl_;
    if (d.end_of_stream)
        return std::nullopt;
    const auto where = [&d] { return " (after frame " + std::to_string(d.frames_read) + ")"; };
    while (true) {
        int status = avcodec_receive_frame(d.decoder.get(), d.frame.get());
        if (status == 0) {
            torch::Tensor rgb = d.convert(*d.frame);
            av_frame_unref(d.frame.get());
            ++d.frames_read;
            return rgb;
        }
        if (status == AVERROR_EOF) {
            d.end_of_stream = true;
            // E.g. a file cut inside its index: the demuxer may then see an empty track.
            check(d.frames_read > 0, d.subject,
                  "contains no decodable video frame (damaged or truncated?)");
            return std::nullopt;
        }
        check(status == AVERROR(EAGAIN), d.subject,
              "cannot decode the video" + where() + ": " + error_text(status));
        check(!d.end_of_input, d.subject, "decoder stalled at end of stream");

        status = av_read_frame(d.input.get(), d.packet.get());
        if (status == AVERROR_EOF) {
            // Drain: the decoder still holds the frames of its reordering and thread delay.
            d.end_of_input = true;
            status = avcodec_send_packet(d.decoder.get(), nullptr);
            check(status >= 0, d.subject, "cannot flush the video decoder: " + error_text(status));
            continue;
        }
        check(status >= 0, d.subject,
              "damaged or truncated file" + where() + ": " + error_text(status));
        if (d.packet->stream_index != d.stream_index) {
            av_packet_unref(d.packet.get());
            continue;
        }
        const bool corrupt = (d.packet->flags & AV_PKT_FLAG_CORRUPT) != 0;
        status =
            corrupt ? AVERROR_INVALIDDATA : avcodec_send_packet(d.decoder.get(), d.packet.get());
        av_packet_unref(d.packet.get());
        check(status >= 0, d.subject, "damaged video data" + where() + ": " + error_text(status));
    }
}

}  // namespace avatar::media
