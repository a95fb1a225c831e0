#include "media/video_writer.h"

extern "C" {
#include <libavutil/opt.h>
}

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "media/ffmpeg_util.h"

namespace avatar::media {
using namespace ffmpeg;

namespace {

// An output format context owns its I/O context; neither has a one-call destructor.
struct OutputContextDeleter {
    void operator()(AVFormatContext* p) const {
        if (p->pb && !(p->oformat->flags & AVFMT_NOFILE))
            avio_closep(&p->pb);
        avformat_free_context(p);
    }
};
using OutputContextPtr = std::unique_ptr<AVFormatContext, OutputContextDeleter>;

constexpr std::array<const char*, 10> kPresets = {"ultrafast", "superfast", "veryfast", "faster",
                                                  "fast",      "medium",    "slow",     "slower",
                                                  "veryslow",  "placebo"};

std::string preset_list() {
    std::string list;
    for (const char* p : kPresets)
        list += (list.empty() ? "" : ", ") + std::string(p);
    return list;
}

// The audio stream of another file, copied packet by packet into the output as the video
// advances, so that the two are interleaved in the file as they are written.
struct AudioCopy {
    std::string subject;
    InputContextPtr input;
    int input_index = -1;
    AVStream* output = nullptr;
    int64_t shift = 0;  // the input's start time, in the input stream's time base
    PacketPtr pending = make_packet();
    bool has_pending = false;
    bool exhausted = false;
    int64_t copied = 0;
    std::string codec;
};

}  // namespace

struct VideoWriter::Impl {
    // Declared first so that it is destroyed last, after the output file has been closed.
    AtomicOutput output;
    std::string subject;
    int width = 0;
    int height = 0;
    int encoded_width = 0;
    int encoded_height = 0;
    VideoWriterOptions options;
    OutputContextPtr muxer;
    CodecContextPtr encoder;
    SwsContextPtr converter;
    AVStream* video = nullptr;
    FramePtr frame = make_frame();
    PacketPtr packet = make_packet();
    std::unique_ptr<AudioCopy> audio;
    int64_t frames_written = 0;
    bool finished = false;

    explicit Impl(const std::filesystem::path& path) : output(path), subject(path.string()) {}

    void open_audio(const std::filesystem::path& source);
    void copy_audio_until(double seconds);
    void drain_encoder();
};

void VideoWriter::Impl::open_audio(const std::filesystem::path& source) {
    auto copy = std::make_unique<AudioCopy>();
    copy->subject = source.string();
    copy->input = open_input(copy->subject);
    copy->input_index =
        av_find_best_stream(copy->input.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    check(copy->input_index >= 0, copy->subject, "has no audio stream to copy");
    for (unsigned i = 0; i < copy->input->nb_streams; ++i) {
        if (static_cast<int>(i) != copy->input_index)
            copy->input->streams[i]->discard = AVDISCARD_ALL;
    }
    const AVStream* in = copy->input->streams[copy->input_index];
    copy->codec = avcodec_get_name(in->codecpar->codec_id);
    check(avformat_query_codec(muxer->oformat, in->codecpar->codec_id, FF_COMPLIANCE_NORMAL) == 1,
          copy->subject,
          "its audio (" + copy->codec + ") cannot be stored in " + muxer->oformat->name +
              " without re-encoding; convert it first (e.g. ffmpeg -i IN -c:a aac OUT) or "
              "leave the audio out");

    copy->output = avformat_new_stream(muxer.get(), nullptr);
    if (!copy->output)
        throw std::bad_alloc();
    const int status = avcodec_parameters_copy(copy->output->codecpar, in->codecpar);
    check(status >= 0, copy->subject, "cannot copy the audio parameters: " + error_text(status));
    // The tag is the input container's name for the codec; the muxer picks its own.
    copy->output->codecpar->codec_tag = 0;
    copy->output->time_base = in->time_base;
    // Keep audio and video in sync as they were in the source: both start where it started.
    if (copy->input->start_time != AV_NOPTS_VALUE)
        // av_make_q rather than AV_TIME_BASE_Q, a C compound literal that C++ does not have.
        copy->shift =
            av_rescale_q(copy->input->start_time, av_make_q(1, AV_TIME_BASE), in->time_base);
    audio = std::move(copy);
}

void VideoWriter::Impl::copy_audio_until(double seconds) {
    if (!audio)
        return;
    AudioCopy& a = *audio;
    const AVStream* in = a.input->streams[a.input_index];
    while (!a.exhausted) {
        if (!a.has_pending) {
            const int status = av_read_frame(a.input.get(), a.pending.get());
            if (status == AVERROR_EOF) {
                a.exhausted = true;
                break;
            }
            check(status >= 0, a.subject,
                  "damaged or truncated audio (after packet " + std::to_string(a.copied) +
                      "): " + error_text(status));
            if (a.pending->stream_index != a.input_index) {
                av_packet_unref(a.pending.get());
                continue;
            }
            a.has_pending = true;
        }
        AVPacket* p = a.pending.get();
        const int64_t stamp = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
        if (stamp != AV_NOPTS_VALUE &&
            static_cast<double>(stamp - a.shift) * av_q2d(in->time_base) > seconds)
            break;  // belongs after video not yet encoded
        if (p->pts != AV_NOPTS_VALUE)
            p->pts -= a.shift;
        if (p->dts != AV_NOPTS_VALUE)
            p->dts -= a.shift;
        av_packet_rescale_ts(p, in->time_base, a.output->time_base);
        p->stream_index = a.output->index;
        p->pos = -1;
        const int status = av_interleaved_write_frame(muxer.get(), p);  // takes the data
        a.has_pending = false;
        check(status >= 0, subject, "cannot write audio: " + error_text(status));
        ++a.copied;
    }
}

void VideoWriter::Impl::drain_encoder() {
    while (true) {
        int status = avcodec_receive_packet(encoder.get(), packet.get());
        if (status == AVERROR(EAGAIN) || status == AVERROR_EOF)
            return;
        check(status >= 0, subject, "video encoding failed: " + error_text(status));
        if (packet->duration == 0)
            packet->duration = 1;  // one frame; gives the last sample its length in the file
        av_packet_rescale_ts(packet.get(), encoder->time_base, video->time_base);
        packet->stream_index = video->index;
        status = av_interleaved_write_frame(muxer.get(), packet.get());
        check(status >= 0, subject, "cannot write video: " + error_text(status));
    }
}

VideoWriter::VideoWriter(const std::filesystem::path& path, int width, int height,
                         VideoWriterOptions options)
    : impl_(std::make_unique<Impl>(path)) {
    route_log_once();
    Impl& d = *impl_;
    const std::string& subject = d.subject;
    check(width > 0 && height > 0, subject,
          "invalid frame size " + std::to_string(width) + "x" + std::to_string(height));
    check(options.frame_rate.num > 0 && options.frame_rate.den > 0 &&
              options.frame_rate.num <= std::numeric_limits<int>::max() &&
              options.frame_rate.den <= std::numeric_limits<int>::max(),
          subject, "invalid frame rate " + options.frame_rate.to_string());
    check(options.crf >= 0 && options.crf <= 51, "crf",
          "must be between 0 and 51, got " + std::to_string(options.crf));
    check(std::find(kPresets.begin(), kPresets.end(), options.preset) != kPresets.end(), "preset",
          "unknown x264 preset '" + options.preset + "' (one of: " + preset_list() + ")");
    d.width = width;
    d.height = height;
    d.encoded_width = width + (width & 1);
    d.encoded_height = height + (height & 1);
    d.options = options;

    // The container comes from the final name (the temporary name has the same extension).
    AVFormatContext* raw = nullptr;
    avformat_alloc_output_context2(&raw, nullptr, nullptr, path.string().c_str());
    check(raw != nullptr, subject, "unknown output format (use a .mp4 file name)");
    d.muxer.reset(raw);
    check(avformat_query_codec(d.muxer->oformat, AV_CODEC_ID_H264, FF_COMPLIANCE_NORMAL) == 1,
          subject,
          std::string("the ") + d.muxer->oformat->name + " format cannot hold H.264 (use .mp4)");

    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    check(codec != nullptr, subject, "this FFmpeg has no libx264 H.264 encoder");
    d.encoder.reset(avcodec_alloc_context3(codec));
    if (!d.encoder)
        throw std::bad_alloc();
    AVCodecContext& enc = *d.encoder;
    const AVRational rate{static_cast<int>(options.frame_rate.num),
                          static_cast<int>(options.frame_rate.den)};
    enc.width = d.encoded_width;
    enc.height = d.encoded_height;
    enc.pix_fmt = AV_PIX_FMT_YUV420P;
    enc.time_base = av_inv_q(rate);  // one tick per frame: pts = frame index
    enc.framerate = rate;
    enc.sample_aspect_ratio = AVRational{1, 1};
    enc.color_range = AVCOL_RANGE_MPEG;
    enc.colorspace = AVCOL_SPC_BT709;
    enc.color_primaries = AVCOL_PRI_BT709;
    enc.color_trc = AVCOL_TRC_BT709;
    enc.thread_count = std::min(options.threads > 0 ? options.threads : hardware_threads(), 16);
    if (d.muxer->oformat->flags & AVFMT_GLOBALHEADER)
        enc.flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(enc.priv_data, "preset", options.preset.c_str(), 0);
    av_opt_set_int(enc.priv_data, "crf", options.crf, 0);
    int status = avcodec_open2(&enc, codec, nullptr);
    check(status >= 0, subject, "cannot open the H.264 encoder: " + error_text(status));

    d.video = avformat_new_stream(d.muxer.get(), nullptr);
    if (!d.video)
        throw std::bad_alloc();
    status = avcodec_parameters_from_context(d.video->codecpar, &enc);
    check(status >= 0, subject, "cannot set the video parameters: " + error_text(status));
    d.video->time_base = enc.time_base;
    d.video->avg_frame_rate = rate;
    d.video->r_frame_rate = rate;

    if (!options.audio_from.empty())
        d.open_audio(options.audio_from);

    d.converter.reset(sws_getContext(d.encoded_width, d.encoded_height, AV_PIX_FMT_RGB24,
                                     d.encoded_width, d.encoded_height, AV_PIX_FMT_YUV420P,
                                     SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
    check(d.converter != nullptr, subject, "cannot set up the RGB to YUV conversion");
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(d.converter.get(), bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);
    d.frame->format = AV_PIX_FMT_YUV420P;
    d.frame->width = d.encoded_width;
    d.frame->height = d.encoded_height;
    status = av_frame_get_buffer(d.frame.get(), 0);
    check(status >= 0, subject, "cannot allocate a frame: " + error_text(status));

    // The muxer reopens its file by this name to move the index to the front (faststart).
    const std::string temp = d.output.temp_path().string();
    av_freep(&d.muxer->url);
    d.muxer->url = av_strdup(temp.c_str());
    status = avio_open(&d.muxer->pb, temp.c_str(), AVIO_FLAG_WRITE);
    check(status >= 0, subject, "cannot create the output file: " + error_text(status));
    AVDictionary* muxer_options = nullptr;
    // The index (moov) goes to the front, so the file plays while it downloads.
    av_dict_set(&muxer_options, "movflags", "+faststart", 0);
    status = avformat_write_header(d.muxer.get(), &muxer_options);
    av_dict_free(&muxer_options);
    check(status >= 0, subject, "cannot write the file header: " + error_text(status));
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const torch::Tensor& frame) {
    Impl& d = *impl_;
    check(!d.finished, d.subject, "write() after finish()");
    check(frame.scalar_type() == torch::kUInt8 && frame.dim() == 3 && frame.size(2) == 3, d.subject,
          "frames must be uint8 [H, W, 3] RGB (use to_uint8_hwc), got " +
              std::string(c10::toString(frame.scalar_type())) + " " + c10::str(frame.sizes()));
    check(frame.size(0) == d.height && frame.size(1) == d.width, d.subject,
          "frame " + std::to_string(d.frames_written) + " is " + std::to_string(frame.size(1)) +
              "x" + std::to_string(frame.size(0)) + ", the video is " + std::to_string(d.width) +
              "x" + std::to_string(d.height));
    torch::Tensor rgb = frame.to(torch::kCPU);
    if (d.encoded_width != d.width)
        rgb = torch::cat({rgb, rgb.narrow(1, d.width - 1, 1)}, 1);
    if (d.encoded_height != d.height)
        rgb = torch::cat({rgb, rgb.narrow(0, d.height - 1, 1)}, 0);
    rgb = rgb.contiguous();

    // The encoder may still hold a reference to the previous frame's buffers.
    int status = av_frame_make_writable(d.frame.get());
    check(status >= 0, d.subject, "cannot allocate a frame: " + error_text(status));
    const uint8_t* planes[4] = {rgb.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
    const int strides[4] = {d.encoded_width * 3, 0, 0, 0};
    sws_scale(d.converter.get(), planes, strides, 0, d.encoded_height, d.frame->data,
              d.frame->linesize);
    d.frame->pts = d.frames_written;
    status = avcodec_send_frame(d.encoder.get(), d.frame.get());
    check(status >= 0, d.subject, "video encoding failed: " + error_text(status));
    ++d.frames_written;
    d.drain_encoder();
    d.copy_audio_until(static_cast<double>(d.frames_written) / d.options.frame_rate.value());
}

void VideoWriter::finish() {
    Impl& d = *impl_;
    check(!d.finished, d.subject, "finish() called twice");
    d.finished = true;  // whatever happens next, the writer is done
    check(d.frames_written > 0, d.subject, "no frames were written");
    int status = avcodec_send_frame(d.encoder.get(), nullptr);
    check(status >= 0, d.subject, "cannot flush the encoder: " + error_text(status));
    d.drain_encoder();
    // All of the audio stream, also where it is longer than the video, unless asked otherwise.
    const double video_end = static_cast<double>(d.frames_written) / d.options.frame_rate.value();
    d.copy_audio_until(d.options.trim_audio_to_video ? video_end
                                                     : std::numeric_limits<double>::infinity());
    status = av_write_trailer(d.muxer.get());
    check(status >= 0, d.subject, "cannot finish the file: " + error_text(status));
    status = avio_closep(&d.muxer->pb);
    check(status >= 0, d.subject, "cannot close the file (disk full?): " + error_text(status));
    d.output.commit();
}

const std::filesystem::path& VideoWriter::path() const {
    return impl_->output.final_path();
}
int VideoWriter::width() const {
    return impl_->width;
}
int VideoWriter::height() const {
    return impl_->height;
}
int VideoWriter::encoded_width() const {
    return impl_->encoded_width;
}
int VideoWriter::encoded_height() const {
    return impl_->encoded_height;
}
FrameRate VideoWriter::frame_rate() const {
    return impl_->options.frame_rate;
}
int64_t VideoWriter::frames_written() const {
    return impl_->frames_written;
}
bool VideoWriter::has_audio() const {
    return impl_->audio != nullptr;
}
std::string VideoWriter::audio_codec_name() const {
    return impl_->audio ? impl_->audio->codec : std::string();
}
int64_t VideoWriter::audio_packets_copied() const {
    return impl_->audio ? impl_->audio->copied : 0;
}

}  // namespace avatar::media
