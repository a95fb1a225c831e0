#pragma once
// Versions and capabilities of the FFmpeg libraries this build links against.
#include <nlohmann/json.hpp>

namespace avatar::media {

// {"version": "...", "libavformat": "...", "libavcodec": "...", "h264_encoder": "libx264" | "none"}
nlohmann::json ffmpeg_info();

}  // namespace avatar::media
