#pragma once
// H.264 video encoding (libx264 through libavcodec, yuv420p) into MP4 (or another container
// that holds H.264, chosen by the file's extension: .mov, .mkv), with optional audio
// pass-through from another file.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "media/motion_file.h"  // FrameRate

namespace avatar::media {

struct VideoWriterOptions {
    FrameRate frame_rate{25, 1};  // stored exactly: 30000/1001 stays 30000/1001
    int crf = 18;                 // x264 constant rate factor, 0 (lossless) .. 51; 18 ~ transparent
    std::string preset = "medium";  // x264 preset: ultrafast .. veryslow (speed vs. size)
    // Copy the (first) audio stream of this file into the output, packets unchanged (stream
    // copy: no re-encoding, no quality loss, the whole stream). Empty: no audio. If the audio
    // codec cannot be stored in the output container (e.g. PCM or Vorbis in MP4), the
    // constructor throws Error naming the file: convert the audio first or leave it out.
    // Silent re-encoding to AAC would hide a quality loss the caller did not ask for.
    std::filesystem::path audio_from;
    // false: the whole audio stream is copied, also where it outlasts the video. true: audio
    // packets that start after the end of the video are left out (for a clip cut short; the
    // audio then ends within one packet, ~20-60 ms, of the video).
    bool trim_audio_to_video = false;
    int threads = 0;  // encoder threads; 0 = every usable core (hardware_threads())
};

// Frames go in one at a time; the file is written to a temporary sibling (same extension) and
// renamed into place by finish(). If finish() is never called (an exception, an early return),
// the destructor removes the temporary file: nothing is ever left under the final name.
//
// Odd sizes: yuv420p needs even width and height, so an odd width or height is padded by one
// column or row that repeats the last one; the file is then (width+1) x height etc.
// (encoded_width/encoded_height). Nothing of the picture is lost and the padding is invisible.
//
// Colour: RGB is converted with the BT.709 matrix at limited range and the stream is tagged
// BT.709, so players and VideoReader convert it back the same way.
class VideoWriter {
public:
    VideoWriter(const std::filesystem::path& path, int width, int height,
                VideoWriterOptions options = {});
    ~VideoWriter();
    VideoWriter(const VideoWriter&) = delete;
    VideoWriter& operator=(const VideoWriter&) = delete;

    // Encodes one frame: uint8 [height, width, 3] RGB, any device.
    void write(const torch::Tensor& frame);
    // Flushes the encoder, copies the rest of the audio, finishes the file and moves it into
    // place. Must be called once, after the last write().
    void finish();

    const std::filesystem::path& path() const;
    int width() const;  // as given to the constructor
    int height() const;
    int encoded_width() const;  // even, >= width
    int encoded_height() const;
    FrameRate frame_rate() const;
    int64_t frames_written() const;
    bool has_audio() const;
    std::string audio_codec_name() const;  // empty without audio
    int64_t audio_packets_copied() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace avatar::media
