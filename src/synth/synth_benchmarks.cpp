// `avatar bench synth.render`: one full synthetic head frame at 256x256 (2x2 supersampling, all
// parts, every output map), geometry rebuilt from a coefficient row each frame as in a dataset
// run. The rows cycle through a turning, talking, blinking head so that the cost is that of
// typical frames, not of one lucky pose. `synth.render_photo`: the same with a photo texture and
// a photographic background.
#include <cmath>
#include <memory>
#include <vector>

#include "face/face_model.h"
#include "metrics/benchmark.h"
#include "synth/head.h"
#include "synth/photo_texture.h"
#include "synth/registration.h"

namespace avatar::synth {

namespace {

// 32 rows of a turning, talking, blinking head at 256x256.
std::shared_ptr<std::vector<std::vector<float>>> benchmark_rows() {
    const auto& model = face::face_model();
    const int64_t K = model.identity_count(), E = model.expression_count();
    const int64_t width = face::face_layout_size();
    auto rows = std::make_shared<std::vector<std::vector<float>>>();
    for (int f = 0; f < 32; ++f) {
        std::vector<float> row(static_cast<size_t>(width), 0.0f);
        const double t = f / 32.0;
        row[0] = static_cast<float>(0.2 * std::sin(2 * M_PI * t));
        row[1] = static_cast<float>(0.8 * std::sin(2 * M_PI * t * 2));
        row[3] = 128.0f;
        row[4] = 112.0f;
        row[6] = 6.0f;
        row[static_cast<size_t>(7)] = 0.3f;
        row[static_cast<size_t>(7 + K)] = static_cast<float>(0.3 + 0.3 * std::sin(9 * t));
        row[static_cast<size_t>(7 + K + 13)] = f % 8 == 0 ? 1.0f : 0.0f;
        row[static_cast<size_t>(7 + K + 14)] = f % 8 == 0 ? 1.0f : 0.0f;
        row[static_cast<size_t>(7 + K + E + 1)] = 0.1f;
        rows->push_back(std::move(row));
    }
    return rows;
}

std::function<void()> render_loop(const Appearance& appearance) {
    auto rows = benchmark_rows();
    auto head = std::make_shared<HeadRenderer>(appearance, HeadRenderOptions{});
    auto out = std::make_shared<RenderOutput>();
    auto index = std::make_shared<size_t>(0);
    return
        [rows, head, out, index] { head->render((*rows)[(*index)++ % rows->size()].data(), *out); };
}

}  // namespace

void register_synth_benchmarks() {
    metrics::BenchmarkRegistry::instance().add(
        {"synth.render",
         "256x256 head frame: geometry from an avatar-face-v1 row, face, shell, eyes, mouth, hair, "
         "neck, shoulders, background; 2x2 supersampling; RGB, mask, depth, UV, labels",
         "frame", [] { return render_loop(random_appearance(1)); }, std::nullopt});
    metrics::BenchmarkRegistry::instance().add(
        {"synth.render_photo",
         "synth.render with a photo texture (unwrapped, augmented) and a photographic background; "
         "the 'photo' is a 512x512 render, so no files are needed",
         "frame",
         [] {
             HeadRenderOptions options;
             options.width = options.height = 512;
             HeadRenderer source(random_appearance(2), options);
             std::vector<float> row(static_cast<size_t>(face::face_layout_size()), 0.0f);
             row[3] = 256.0f;
             row[4] = 236.0f;
             row[6] = 20.0f;
             RenderOutput out;
             source.render(row.data(), out);
             const auto photo =
                 (out.rgb_tensor() * 255.0f).round().clamp(0, 255).to(torch::kUInt8).contiguous();
             auto appearance = photo_appearance(unwrap_face(photo, row.data()), 3);
             choose_background({photo}, 3, 1.0, appearance);
             return render_loop(appearance);
         },
         std::nullopt});
}

}  // namespace avatar::synth
