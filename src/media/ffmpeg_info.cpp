#include "media/ffmpeg_info.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
}

#include <string>

namespace avatar::media {
namespace {
std::string version_string(unsigned v) {
    return std::to_string(v >> 16) + "." + std::to_string((v >> 8) & 0xff) + "." +
           std::to_string(v & 0xff);
}
}  // namespace

nlohmann::json ffmpeg_info() {
    const AVCodec* h264 = avcodec_find_encoder(AV_CODEC_ID_H264);
    return {{"version", av_version_info()},
            {"libavformat", version_string(avformat_version())},
            {"libavcodec", version_string(avcodec_version())},
            {"h264_encoder", h264 ? h264->name : "none"}};
}

}  // namespace avatar::media
