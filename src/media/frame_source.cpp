#include "media/frame_source.h"

#include <algorithm>
#include <cctype>
#include <system_error>

#include "core/error.h"
#include "media/image.h"

namespace avatar::media {
namespace fs = std::filesystem;

bool has_image_extension(const fs::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    static const char* const kImageExtensions[] = {".png", ".jpg",  ".jpeg", ".bmp", ".webp",
                                                   ".tif", ".tiff", ".ppm",  ".pgm"};
    return std::any_of(std::begin(kImageExtensions), std::end(kImageExtensions),
                       [&](const char* e) { return ext == e; });
}

FrameSource::FrameSource(const fs::path& path, int threads) : path_(path) {
    std::error_code ec;
    check(fs::exists(path, ec), path.string(), "no such file or folder");
    if (fs::is_directory(path, ec)) {
        kind_ = Kind::folder;
        for (const auto& entry : fs::directory_iterator(path, ec)) {
            if (entry.is_regular_file() && has_image_extension(entry.path()))
                files_.push_back(entry.path());
        }
        check(!ec, path.string(), "cannot list the folder: " + ec.message());
        check(!files_.empty(), path.string(), "the folder holds no image files");
        std::sort(files_.begin(), files_.end());
    } else if (has_image_extension(path)) {
        kind_ = Kind::image;
        files_.push_back(path);
    } else {
        kind_ = Kind::video;
        video_ = std::make_unique<VideoReader>(path, threads);
    }
    if (video_) {
        width_ = video_->width();
        height_ = video_->height();
    } else {
        first_ = read_image(files_.front());
        height_ = static_cast<int>(first_->size(0));
        width_ = static_cast<int>(first_->size(1));
    }
}

int64_t FrameSource::estimated_frame_count() const {
    return video_ ? video_->estimated_frame_count() : static_cast<int64_t>(files_.size());
}

FrameRate FrameSource::frame_rate() const {
    return video_ ? video_->frame_rate() : FrameRate{};
}

std::optional<torch::Tensor> FrameSource::next() {
    std::optional<torch::Tensor> frame;
    if (video_) {
        frame = video_->next_frame();
    } else if (first_) {
        frame = std::move(first_);
        first_.reset();
    } else if (frames_read_ < static_cast<int64_t>(files_.size())) {
        frame = read_image(files_[static_cast<size_t>(frames_read_)]);
    }
    if (frame)
        ++frames_read_;
    return frame;
}

std::string FrameSource::current_name() const {
    if (!video_ && frames_read_ > 0)
        return files_[static_cast<size_t>(frames_read_ - 1)].filename().string();
    return "frame " + std::to_string(frames_read_ > 0 ? frames_read_ - 1 : 0);
}

}  // namespace avatar::media
