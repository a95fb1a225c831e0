// Decode and encode throughput of the media layer (frames per second, reported as items/s):
// the bundled 256x256 sample and a generated 640x480 clip. Encoding uses the defaults of
// VideoWriter (x264 preset medium, CRF 18); both sides use 2 threads.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <vector>

#include "media/video_reader.h"
#include "media/video_writer.h"

namespace {
namespace fs = std::filesystem;
using namespace avatar::media;

constexpr int kThreads = 2;
const fs::path kSample = fs::path(AVATAR_SOURCE_DIR) / "assets/samples/talking.mp4";

fs::path scratch_dir() {
    const fs::path dir = fs::temp_directory_path() / "avatar_bench_media";
    fs::create_directories(dir);
    return dir;
}

// A smooth moving pattern with some texture, 640x480, 60 frames.
std::vector<torch::Tensor> generated_frames() {
    std::vector<torch::Tensor> frames;
    const auto y = torch::arange(480, torch::kFloat32).reshape({480, 1, 1});
    const auto x = torch::arange(640, torch::kFloat32).reshape({1, 640, 1});
    const auto c = torch::tensor({0.0f, 2.0f, 4.0f}).reshape({1, 1, 3});
    for (int i = 0; i < 60; ++i) {
        const float t = static_cast<float>(i);
        frames.push_back((127.5 + 60.0 * torch::sin(x * 0.05 + y * 0.03 + c + t * 0.2) +
                          40.0 * torch::sin(x * 0.31 - y * 0.17 + t * 0.5))
                             .round()
                             .clamp(0, 255)
                             .to(torch::kUInt8));
    }
    return frames;
}

std::vector<torch::Tensor> decode_all(const fs::path& path) {
    VideoReader reader(path, kThreads);
    std::vector<torch::Tensor> frames;
    while (auto frame = reader.next_frame())
        frames.push_back(*frame);
    return frames;
}

void encode_all(const std::vector<torch::Tensor>& frames, const fs::path& path) {
    VideoWriterOptions options;
    options.threads = kThreads;
    VideoWriter writer(path, static_cast<int>(frames[0].size(1)),
                       static_cast<int>(frames[0].size(0)), options);
    for (const auto& frame : frames)
        writer.write(frame);
    writer.finish();
}

const fs::path& generated_clip() {
    static const fs::path path = [] {
        const fs::path p = scratch_dir() / "generated_640x480.mp4";
        encode_all(generated_frames(), p);
        return p;
    }();
    return path;
}

void decode(benchmark::State& state, const fs::path& path) {
    int64_t frames = 0;
    for (auto _ : state) {
        VideoReader reader(path, kThreads);
        while (auto frame = reader.next_frame()) {
            benchmark::DoNotOptimize(frame->data_ptr());
            ++frames;
        }
    }
    state.SetItemsProcessed(frames);
}

void encode(benchmark::State& state, const std::vector<torch::Tensor>& frames) {
    const fs::path out = scratch_dir() / "encoded.mp4";
    for (auto _ : state)
        encode_all(frames, out);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(frames.size()));
}

void BM_DecodeSample256(benchmark::State& state) {
    decode(state, kSample);
}
void BM_Decode640x480(benchmark::State& state) {
    decode(state, generated_clip());
}
void BM_EncodeSample256(benchmark::State& state) {
    static const auto frames = decode_all(kSample);
    encode(state, frames);
}
void BM_Encode640x480(benchmark::State& state) {
    static const auto frames = generated_frames();
    encode(state, frames);
}

BENCHMARK(BM_DecodeSample256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Decode640x480)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EncodeSample256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Encode640x480)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
