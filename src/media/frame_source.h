#pragma once
// One way to read "frames" from whatever a user points at: a still image (one frame), a folder
// of images (sorted by name), or a video (streamed). Used by commands that accept any of them
// (`avatar eval`, `avatar track`).
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "media/motion_file.h"  // FrameRate
#include "media/video_reader.h"

namespace avatar::media {

// Whether `path` has the extension of an image format read_image understands.
bool has_image_extension(const std::filesystem::path& path);

class FrameSource {
public:
    enum class Kind { image, folder, video };

    // Opens `path`; throws Error naming it if it does not exist, a folder holds no images, or
    // the file is neither an image nor a video. `threads` is passed to the video decoder.
    explicit FrameSource(const std::filesystem::path& path, int threads = 0);

    Kind kind() const { return kind_; }
    const std::filesystem::path& path() const { return path_; }
    // Frame count (exact for images and folders, the container's estimate for videos, 0 if
    // unknown).
    int64_t estimated_frame_count() const;
    // The video's frame rate; 25 for images and folders.
    FrameRate frame_rate() const;
    // Size of the first frame (read ahead on open).
    int width() const { return width_; }
    int height() const { return height_; }

    // The next frame, uint8 [H, W, 3] RGB, or nullopt after the last.
    std::optional<torch::Tensor> next();
    // A name for the frame next() returned last: the file name for folders, "frame N" else.
    std::string current_name() const;
    int64_t frames_read() const { return frames_read_; }

private:
    Kind kind_;
    std::filesystem::path path_;
    std::vector<std::filesystem::path> files_;
    std::unique_ptr<VideoReader> video_;
    std::optional<torch::Tensor> first_;
    int64_t frames_read_ = 0;
    int width_ = 0;
    int height_ = 0;
};

}  // namespace avatar::media
