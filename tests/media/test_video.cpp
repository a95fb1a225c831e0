#include <gtest/gtest.h>

extern "C" {
#include <libavformat/avformat.h>
}

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/files.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "scratch_dir.h"

namespace avatar::media {
namespace {
using avatar::testing::write_bytes;
namespace fs = std::filesystem;

const fs::path kTalking = fs::path(AVATAR_SOURCE_DIR) / "assets/samples/talking.mp4";
constexpr int kTalkingFrames = 89;

fs::path scratch(const std::string& name) {
    return avatar::testing::fresh_dir("video", name);
}

size_t file_count(const fs::path& dir) {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), {}));
}

double psnr(const torch::Tensor& a, const torch::Tensor& b) {
    const double mse = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).pow(2).mean().item<double>();
    return mse == 0 ? 1000.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

// A smooth moving pattern (what a codec meets in real video, unlike noise): moving luminance
// stripes under a slow colour gradient.
torch::Tensor pattern(int64_t index, int64_t height, int64_t width) {
    const auto y = torch::arange(height, torch::kFloat32).reshape({height, 1, 1});
    const auto x = torch::arange(width, torch::kFloat32).reshape({1, width, 1});
    const auto c = torch::tensor({0.0f, 2.0f, 4.0f}).reshape({1, 1, 3});
    const auto t = static_cast<float>(index);
    return (127.5 + 70.0 * torch::sin(x * 0.11 + y * 0.07 + t * 0.3) +
            40.0 * torch::sin(x * 0.02 - y * 0.01 + c))
        .round()
        .clamp(0, 255)
        .to(torch::kUInt8);
}

std::vector<torch::Tensor> read_all(VideoReader& reader) {
    std::vector<torch::Tensor> frames;
    while (auto frame = reader.next_frame())
        frames.push_back(*frame);
    return frames;
}

// The audio packets of a file, demuxed independently of the code under test.
std::vector<std::vector<uint8_t>> audio_packets(const fs::path& path) {
    AVFormatContext* input = nullptr;
    EXPECT_EQ(avformat_open_input(&input, path.c_str(), nullptr, nullptr), 0) << path;
    if (!input)
        return {};
    std::vector<std::vector<uint8_t>> packets;
    const int audio = av_find_best_stream(input, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    AVPacket* packet = av_packet_alloc();
    while (audio >= 0 && av_read_frame(input, packet) >= 0) {
        if (packet->stream_index == audio)
            packets.emplace_back(packet->data, packet->data + packet->size);
        av_packet_unref(packet);
    }
    av_packet_free(&packet);
    avformat_close_input(&input);
    return packets;
}

template <typename F>
void expect_error_naming(const std::string& subject, F action) {
    try {
        action();
        ADD_FAILURE() << "expected an avatar::Error naming " << subject;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), subject) << e.what();
    }
}

// Decodes `input` and re-encodes it into `output` as the transcode command does.
void transcode(const fs::path& input, const fs::path& output) {
    VideoReader reader(input, 2);
    VideoWriterOptions options;
    options.frame_rate = reader.frame_rate();
    if (reader.has_audio())
        options.audio_from = input;
    options.preset = "ultrafast";
    options.threads = 2;
    VideoWriter writer(output, reader.width(), reader.height(), options);
    while (auto frame = reader.next_frame())
        writer.write(*frame);
    writer.finish();
}

TEST(VideoReader, ReadsTheSample) {
    VideoReader reader(kTalking, 2);
    EXPECT_EQ(reader.width(), 256);
    EXPECT_EQ(reader.height(), 256);
    EXPECT_EQ(reader.frame_rate(), (FrameRate{25, 1}));
    EXPECT_DOUBLE_EQ(reader.fps(), 25.0);
    EXPECT_EQ(reader.estimated_frame_count(), kTalkingFrames);
    EXPECT_NEAR(reader.duration_seconds(), 3.56, 0.01);
    EXPECT_TRUE(reader.has_audio());
    EXPECT_EQ(reader.audio_codec_name(), "aac");
    EXPECT_EQ(reader.codec_name(), "h264");

    const auto frames = read_all(reader);
    ASSERT_EQ(frames.size(), static_cast<size_t>(kTalkingFrames));
    EXPECT_EQ(reader.frames_read(), kTalkingFrames);
    EXPECT_FALSE(reader.next_frame().has_value());  // stays at the end
    for (const auto& f : frames) {
        ASSERT_EQ(f.sizes(), (std::vector<int64_t>{256, 256, 3}));
        ASSERT_EQ(f.scalar_type(), torch::kUInt8);
    }
    // The sample moves: consecutive frames differ.
    for (size_t i = 1; i < frames.size(); ++i)
        EXPECT_FALSE(torch::equal(frames[i], frames[i - 1])) << "frame " << i;
}

struct RoundTripCase {
    FrameRate rate;
    int frames;
};

// Named in test output (and in ctest's test names) as "25/1 x 25 frames".
void PrintTo(const RoundTripCase& c, std::ostream* os) {
    *os << c.rate.num << "/" << c.rate.den << " x " << c.frames << " frames";
}

class VideoRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(VideoRoundTrip, FrameCountRateAndAudioBytesArePreserved) {
    const auto [rate, count] = GetParam();
    const auto dir = scratch("round_trip_" + std::to_string(rate.num));
    const fs::path out = dir / "out.mp4";
    VideoWriterOptions options;
    options.frame_rate = rate;
    options.crf = 18;
    options.preset = "veryfast";
    options.audio_from = kTalking;
    options.threads = 2;
    std::vector<torch::Tensor> written;
    {
        VideoWriter writer(out, 96, 64, options);
        for (int i = 0; i < count; ++i) {
            written.push_back(pattern(i, 64, 96));
            writer.write(written.back());
        }
        EXPECT_FALSE(fs::exists(out));  // not before finish()
        writer.finish();
        EXPECT_EQ(writer.frames_written(), count);
        EXPECT_TRUE(writer.has_audio());
        EXPECT_EQ(writer.encoded_width(), 96);
    }
    ASSERT_TRUE(fs::exists(out));
    EXPECT_EQ(file_count(dir), 1u);

    VideoReader reader(out, 2);
    EXPECT_EQ(reader.frame_rate(), rate);
    EXPECT_TRUE(reader.has_audio());
    EXPECT_EQ(reader.estimated_frame_count(), count);
    const auto frames = read_all(reader);
    ASSERT_EQ(frames.size(), static_cast<size_t>(count));
    for (int i = 0; i < count; ++i)
        EXPECT_GT(psnr(frames[static_cast<size_t>(i)], written[static_cast<size_t>(i)]), 38.0)
            << "frame " << i;

    // Audio is a stream copy: every packet of the source, byte for byte, in order. The video is
    // shorter than the audio here; the whole audio stream is kept all the same.
    const auto source = audio_packets(kTalking);
    const auto copied = audio_packets(out);
    ASSERT_GT(source.size(), 50u);
    ASSERT_EQ(copied.size(), source.size());
    for (size_t i = 0; i < source.size(); ++i)
        ASSERT_TRUE(copied[i] == source[i]) << "audio packet " << i << " differs";
}

std::string rate_name(const ::testing::TestParamInfo<RoundTripCase>& case_info) {
    return "fps_" + std::to_string(case_info.param.rate.num) + "_" +
           std::to_string(case_info.param.rate.den);
}

INSTANTIATE_TEST_SUITE_P(Rates, VideoRoundTrip,
                         ::testing::Values(RoundTripCase{{30000, 1001}, 31},
                                           RoundTripCase{{25, 1}, 25}),
                         rate_name);

TEST(VideoWriter, ReencodingRealFramesStaysClose) {
    const auto dir = scratch("reencode");
    const fs::path out = dir / "talking.mp4";
    transcode(kTalking, out);
    VideoReader original(kTalking, 2);
    VideoReader copy(out, 2);
    EXPECT_EQ(copy.frame_rate(), original.frame_rate());
    EXPECT_EQ(copy.estimated_frame_count(), kTalkingFrames);
    double worst = 1000.0;
    int64_t n = 0;
    while (auto a = original.next_frame()) {
        auto b = copy.next_frame();
        ASSERT_TRUE(b.has_value()) << "copy ends at frame " << n;
        worst = std::min(worst, psnr(*a, *b));
        ++n;
    }
    EXPECT_FALSE(copy.next_frame().has_value());
    EXPECT_EQ(n, kTalkingFrames);
    EXPECT_GT(worst, 36.0);  // CRF 18, ultrafast, on a real face
    EXPECT_TRUE(audio_packets(out) == audio_packets(kTalking));
}

TEST(VideoWriter, OddSizesArePaddedByRepeatingTheEdge) {
    const auto dir = scratch("odd");
    const fs::path out = dir / "odd.mp4";
    const torch::Tensor frame = pattern(0, 25, 33);
    {
        VideoWriter writer(out, 33, 25, {});
        EXPECT_EQ(writer.encoded_width(), 34);
        EXPECT_EQ(writer.encoded_height(), 26);
        for (int i = 0; i < 3; ++i)
            writer.write(frame);
        writer.finish();
    }
    VideoReader reader(out, 1);
    EXPECT_EQ(reader.width(), 34);
    EXPECT_EQ(reader.height(), 26);
    const auto decoded = reader.next_frame();
    ASSERT_TRUE(decoded.has_value());
    // A tiny, busy colour pattern: chroma subsampling costs more here than on real video.
    EXPECT_GT(psnr(decoded->slice(0, 0, 25).slice(1, 0, 33), frame), 30.0);
    // The padding column repeats the last one.
    EXPECT_GT(psnr(decoded->select(1, 33), decoded->select(1, 32)), 30.0);
}

TEST(VideoWriter, FlatColoursComeBackUnshifted) {
    // A wrong matrix or range (BT.601 vs 709, limited vs full) shifts flat colours by 10 and
    // more; coding itself moves them by a few levels at most.
    const auto dir = scratch("colours");
    const std::vector<std::array<int, 3>> colours = {{200, 60, 30},   {20, 180, 90},
                                                     {40, 70, 230},   {16, 16, 16},
                                                     {235, 235, 235}, {128, 128, 128}};
    {
        VideoWriter writer(dir / "flat.mp4", 32, 32, {});
        for (const auto& rgb : colours)
            writer.write(torch::tensor({rgb[0], rgb[1], rgb[2]}, torch::kUInt8)
                             .reshape({1, 1, 3})
                             .expand({32, 32, 3}));
        writer.finish();
    }
    VideoReader reader(dir / "flat.mp4", 1);
    for (const auto& rgb : colours) {
        const auto frame = reader.next_frame();
        ASSERT_TRUE(frame.has_value());
        const torch::Tensor mean = frame->to(torch::kFloat32).mean(std::vector<int64_t>{0, 1});
        for (int ch = 0; ch < 3; ++ch)
            EXPECT_NEAR(mean[ch].item<float>(), rgb[static_cast<size_t>(ch)], 4.0)
                << "colour " << rgb[0] << "," << rgb[1] << "," << rgb[2] << " channel " << ch;
    }
}

TEST(VideoWriter, NothingIsLeftWithoutFinish) {
    const auto dir = scratch("no_finish");
    {
        VideoWriterOptions options;
        options.audio_from = kTalking;
        VideoWriter writer(dir / "out.mp4", 64, 64, options);
        for (int i = 0; i < 5; ++i)
            writer.write(pattern(i, 64, 64));
        EXPECT_EQ(file_count(dir), 1u);  // the temporary file, while writing
    }
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST(VideoWriter, BadRequestsAreErrors) {
    const auto dir = scratch("bad_requests");
    const fs::path out = dir / "out.mp4";
    VideoWriterOptions bad_crf;
    bad_crf.crf = 60;
    EXPECT_THROW(VideoWriter(out, 64, 64, bad_crf), Error);
    VideoWriterOptions bad_preset;
    bad_preset.preset = "warp";
    EXPECT_THROW(VideoWriter(out, 64, 64, bad_preset), Error);
    EXPECT_THROW(VideoWriter(out, 0, 64, {}), Error);
    expect_error_naming((dir / "out.unknownext").string(),
                        [&] { VideoWriter(dir / "out.unknownext", 64, 64, {}); });

    // Audio from a file without audio, and audio MP4 cannot hold (PCM in a WAV file).
    VideoWriterOptions no_audio;
    no_audio.audio_from = dir / "silent.mp4";
    {
        VideoWriter silent(no_audio.audio_from, 64, 64, {});
        silent.write(pattern(0, 64, 64));
        silent.finish();
    }
    expect_error_naming(no_audio.audio_from.string(), [&] { VideoWriter(out, 64, 64, no_audio); });
    std::vector<uint8_t> wav = {
        'R',  'I',  'F', 'F', 36 + 200, 0,    0, 0, 'W', 'A', 'V', 'E',
        'f',  'm',  't', ' ', 16,       0,    0, 0, 1,   0,   1,   0,  // PCM, mono
        0x40, 0x1F, 0,   0,   0x80,     0x3E, 0, 0, 2,   0,   16,  0,  // 8 kHz, 16 bit
        'd',  'a',  't', 'a', 200,      0,    0, 0};
    wav.resize(wav.size() + 200, 0);
    write_bytes(dir / "speech.wav", wav);
    VideoWriterOptions pcm;
    pcm.audio_from = dir / "speech.wav";
    expect_error_naming(pcm.audio_from.string(), [&] { VideoWriter(out, 64, 64, pcm); });

    {
        VideoWriter writer(out, 64, 64, {});
        EXPECT_THROW(writer.write(torch::zeros({64, 32, 3}, torch::kUInt8)), Error);
        EXPECT_THROW(writer.write(torch::zeros({64, 64, 3})), Error);  // float
        EXPECT_THROW(writer.finish(), Error);                          // no frames
    }
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(file_count(dir), 2u);  // silent.mp4 and speech.wav
}

TEST(VideoReader, DamagedInputIsAnErrorNamingTheFileAndLeavesNoOutput) {
    const auto dir = scratch("damaged");
    const std::vector<uint8_t> sample = read_file(kTalking);
    std::mt19937 rng(11);
    std::vector<uint8_t> noise(64 * 1024);
    for (auto& b : noise)
        b = static_cast<uint8_t>(rng());
    // Faststart MP4: the index comes first, so a cut keeps the index and loses media data.
    const auto cut = [&](double fraction) {
        return std::vector<uint8_t>(sample.begin(),
                                    sample.begin() + static_cast<long>(sample.size() * fraction));
    };
    std::vector<uint8_t> damaged_middle = sample;
    for (size_t i = sample.size() / 3; i < sample.size() / 3 + 4000; ++i)
        damaged_middle[i] = static_cast<uint8_t>(rng());

    const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
        {"empty.mp4", {}},
        {"noise.mp4", noise},
        {"text.mp4", {'n', 'o', 't', ' ', 'a', ' ', 'v', 'i', 'd', 'e', 'o', '\n'}},
        {"header_only.mp4", cut(0.01)},
        {"half.mp4", cut(0.5)},
        {"most.mp4", cut(0.9)},
    };
    for (const auto& [name, bytes] : cases) {
        SCOPED_TRACE(name);
        const fs::path in = dir / name;
        write_bytes(in, bytes);
        expect_error_naming(in.string(), [&] { transcode(in, dir / ("out_" + name)); });
        EXPECT_FALSE(fs::exists(dir / ("out_" + name)));
    }
    expect_error_naming((dir / "missing.mp4").string(),
                        [&] { transcode(dir / "missing.mp4", dir / "out.mp4"); });
    expect_error_naming(dir.string(), [&] { transcode(dir, dir / "out.mp4"); });
    EXPECT_EQ(file_count(dir), cases.size());  // the inputs only: no output, no temporary

    // Damage inside the media data: the H.264 decoder conceals what it can, so this may decode;
    // either way there is no crash, and an error names the file.
    const fs::path in = dir / "damaged_middle.mp4";
    write_bytes(in, damaged_middle);
    try {
        transcode(in, dir / "out_damaged_middle.mp4");
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), in.string());
        EXPECT_FALSE(fs::exists(dir / "out_damaged_middle.mp4"));
    }
}

TEST(VideoReader, AudioOnlyFileHasNoVideoStream) {
    const auto dir = scratch("audio_only");
    std::vector<uint8_t> wav = {'R', 'I', 'F',  'F',  36 + 200, 0,   0,    0,    'W', 'A', 'V',
                                'E', 'f', 'm',  't',  ' ',      16,  0,    0,    0,   1,   0,
                                1,   0,   0x40, 0x1F, 0,        0,   0x80, 0x3E, 0,   0,   2,
                                0,   16,  0,    'd',  'a',      't', 'a',  200,  0,   0,   0};
    wav.resize(wav.size() + 200, 0);
    write_bytes(dir / "speech.wav", wav);
    try {
        VideoReader reader(dir / "speech.wav");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), (dir / "speech.wav").string());
        EXPECT_NE(e.message().find("no video stream"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace avatar::media
