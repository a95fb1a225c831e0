#pragma once
// Streaming video decoding on the FFmpeg libraries: frames come out one at a time as uint8
// [H, W, 3] RGB tensors, so memory does not grow with the length of the video.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "media/motion_file.h"  // FrameRate

namespace avatar::media {

// Reads the first video stream of anything FFmpeg demuxes and decodes (MP4, MOV, MKV, WebM, AVI,
// GIF, image sequences, ...). Every failure (missing file, not a video, no video stream, damaged
// or truncated data) throws Error naming the file. Not thread-safe; one reader per thread.
class VideoReader {
public:
    // `threads`: decoder threads; 0 = every usable core (hardware_threads()).
    explicit VideoReader(const std::filesystem::path& path, int threads = 0);
    ~VideoReader();
    VideoReader(VideoReader&&) noexcept;
    VideoReader& operator=(VideoReader&&) noexcept;
    VideoReader(const VideoReader&) = delete;
    VideoReader& operator=(const VideoReader&) = delete;

    const std::filesystem::path& path() const;
    // Size of every frame next_frame() returns (frames of another size mid-stream are scaled).
    int width() const;
    int height() const;
    // The stream's frame rate (exact, e.g. 30000/1001) and the same as a double. Streams that
    // declare none are read at 25 fps.
    FrameRate frame_rate() const;
    double fps() const;
    // Frame count from the container's index, or estimated from duration x fps; 0 if unknown.
    // An estimate: next_frame() is the truth.
    int64_t estimated_frame_count() const;
    // Duration of the video stream in seconds (of the file if the stream has none); 0 if unknown.
    double duration_seconds() const;
    bool has_audio() const;
    std::string codec_name() const;        // e.g. "h264"
    std::string audio_codec_name() const;  // e.g. "aac"; empty without audio

    // The next frame, uint8 [height, width, 3] RGB on the CPU, or nullopt after the last one
    // (frames still buffered in the decoder at end of stream included).
    std::optional<torch::Tensor> next_frame();
    // Number of frames next_frame() has returned so far.
    int64_t frames_read() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace avatar::media
