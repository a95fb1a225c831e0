// avatar face-model: what the face model (face/face_model.h) is made of. --list prints the modes
// of the layout avatar-face-v1; --sheet renders one picture per mode (docs/face-model.md shows
// the result), with the synthetic world's rasterizer.
#include <opencv2/imgproc.hpp>

#include <cstdio>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "face/canonical_face.h"
#include "face/face_model.h"
#include "media/image.h"
#include "synth/rasterizer.h"

namespace avatar::cli {
namespace {

struct FaceModelOptions {
    bool list = false;
    std::string sheet;
    int cell = 128;
};

// Per-vertex unit normals [V, 3] of a mesh (area-weighted face normals), float32.
torch::Tensor vertex_normals(const torch::Tensor& v, const torch::Tensor& triangles) {
    const auto t = triangles.to(torch::kInt64);
    const auto a = v.index_select(0, t.select(1, 0)), b = v.index_select(0, t.select(1, 1)),
               c = v.index_select(0, t.select(1, 2));
    const auto n = torch::cross(b - a, c - a, 1);
    auto normals = torch::zeros_like(v);
    for (int k = 0; k < 3; ++k)
        normals.index_add_(0, t.select(1, k), n);
    // The canonical mesh's triangles are not consistently wound toward the viewer everywhere;
    // orient every normal toward +z (the face looks at +z) so the shading is two-sided.
    normals = normals * torch::where(normals.select(1, 2) < 0, -1.0, 1.0).unsqueeze(1);
    return normals / normals.norm(2, 1, true).clamp_min(1e-9);
}

// One view of the model's vertices [468, 3] (cm, float64), shaded grey and tinted red by the
// displacement magnitude `heat` [468] in [0, 1]; yaw in degrees. uint8 [cell, cell, 3].
torch::Tensor render_view(const torch::Tensor& vertices, const torch::Tensor& heat, double yaw,
                          int cell) {
    const auto& face = face::canonical_face();
    const auto v = vertices.to(torch::kFloat32).contiguous();
    const auto r = face::euler_rad_to_rotation(torch::tensor({0.0, yaw * M_PI / 180, 0.0}))
                       .to(torch::kFloat32);
    const auto normals = vertex_normals(v, face.triangles).matmul(r.t());
    const auto light =
        torch::tensor({0.35f, 0.45f, 1.0f}) / std::sqrt(0.35f * 0.35f + 0.45f * 0.45f + 1.0f);
    const auto lambert = (normals.matmul(light).clamp_min(0) * 0.75 + 0.25).unsqueeze(1);
    const auto grey = torch::tensor({0.80f, 0.78f, 0.76f}),
               red = torch::tensor({0.95f, 0.15f, 0.10f});
    const auto h = heat.to(torch::kFloat32).unsqueeze(1);
    const auto colour = ((grey * (1 - h) + red * h) * lambert).contiguous();

    const float scale = static_cast<float>(cell) / 19.0f;  // the face is ~16 cm tall
    const float pose[7] = {0.0f,
                           static_cast<float>(yaw * M_PI / 180),
                           0.0f,
                           static_cast<float>(cell) / 2,
                           static_cast<float>(cell) * 0.47f,
                           0.0f,
                           scale};
    std::vector<float> screen(static_cast<size_t>(v.size(0) * 3));
    synth::project_weak_perspective(pose, v.data_ptr<float>(), v.size(0), screen.data());
    const auto triangles = face.triangles.to(torch::kInt32).contiguous();
    synth::MeshView mesh;
    mesh.screen = screen.data();
    mesh.color = colour.data_ptr<float>();
    mesh.triangles = triangles.data_ptr<int32_t>();
    mesh.vertex_count = v.size(0);
    mesh.triangle_count = triangles.size(0);
    synth::RenderSettings settings;
    settings.width = settings.height = cell;
    settings.supersample = 3;
    settings.perspective = false;
    std::vector<float> background(static_cast<size_t>(cell * cell * 3), 1.0f);
    settings.background = background.data();
    synth::Rasterizer rasterizer;
    synth::RenderOutput out;
    rasterizer.render({mesh}, settings, out);
    return (out.rgb_tensor() * 255).round().clamp(0, 255).to(torch::kUInt8);
}

void put_label(torch::Tensor& image, const std::string& text, int x, int y) {
    cv::Mat mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), CV_8UC3,
                image.data_ptr<uint8_t>());
    cv::putText(mat, text, {x, y}, cv::FONT_HERSHEY_SIMPLEX, 0.42, {30, 30, 30}, 1, cv::LINE_AA);
}

int run_face_model(const FaceModelOptions& options, const GlobalOptions& global) {
    const auto& model = face::face_model();
    if (options.list || options.sheet.empty()) {
        if (global.json) {
            print_json({{"layout", face::kFaceLayoutName},
                        {"size", face::face_layout_size()},
                        {"identity", model.identity_names},
                        {"expression", model.expression_names}});
            return 0;
        }
        std::printf("layout %s: %lld columns = pose 7 + identity %lld + expression %lld + gaze 4\n",
                    face::kFaceLayoutName, static_cast<long long>(face::face_layout_size()),
                    static_cast<long long>(model.identity_count()),
                    static_cast<long long>(model.expression_count()));
        int64_t column = face::kPoseSize;
        for (const auto& name : model.identity_names)
            std::printf("  %2lld  identity    %s\n", static_cast<long long>(column++),
                        name.c_str());
        for (const auto& name : model.expression_names)
            std::printf("  %2lld  expression  %s\n", static_cast<long long>(column++),
                        name.c_str());
        if (options.sheet.empty())
            return 0;
    }

    // One cell per mode: frontal and three-quarter views at coefficient 1, tinted by how far each
    // vertex moved (relative to the mode's largest displacement); the first cell is the mean.
    struct Entry {
        std::string label;
        torch::Tensor identity, expression;
    };
    std::vector<Entry> entries;
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    entries.push_back({"mean (all 0)", torch::zeros({model.identity_count()}, f64),
                       torch::zeros({model.expression_count()}, f64)});
    for (int64_t i = 0; i < model.identity_count(); ++i) {
        auto id = torch::zeros({model.identity_count()}, f64);
        id[i] = 1.0;
        entries.push_back({"id " + model.identity_names[static_cast<size_t>(i)] + " +1", id,
                           torch::zeros({model.expression_count()}, f64)});
    }
    for (int64_t i = 0; i < model.expression_count(); ++i) {
        auto ex = torch::zeros({model.expression_count()}, f64);
        ex[i] = 1.0;
        entries.push_back({model.expression_names[static_cast<size_t>(i)] + " 1",
                           torch::zeros({model.identity_count()}, f64), ex});
    }
    const int cell = options.cell, label_height = 18, columns = 5;
    const int rows = static_cast<int>((entries.size() + columns - 1) / columns);
    auto sheet =
        torch::full({rows * (cell + label_height), columns * 2 * cell, 3}, 255, torch::kUInt8);
    for (size_t k = 0; k < entries.size(); ++k) {
        const auto& e = entries[k];
        const auto v = model.vertices(e.identity, e.expression);
        const auto moved = (v - model.mean).norm(2, 1);
        const auto heat = moved / moved.max().clamp_min(1e-9);
        const int y0 = static_cast<int>(k / columns) * (cell + label_height);
        const int x0 = static_cast<int>(k % columns) * 2 * cell;
        sheet.narrow(0, y0 + label_height, cell)
            .narrow(1, x0, cell)
            .copy_(render_view(v, heat, 0.0, cell));
        sheet.narrow(0, y0 + label_height, cell)
            .narrow(1, x0 + cell, cell)
            .copy_(render_view(v, heat, 40.0, cell));
        put_label(sheet, e.label, x0 + 6, y0 + 13);
    }
    media::write_image(options.sheet, sheet);
    if (!global.quiet)
        std::printf("wrote %s: %zu cells (%d x %d px)\n", options.sheet.c_str(), entries.size(),
                    static_cast<int>(sheet.size(1)), static_cast<int>(sheet.size(0)));
    return 0;
}

}  // namespace

void add_face_model_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<FaceModelOptions>();
    auto* cmd = app.add_subcommand(
        "face-model",
        "The project's face model (docs/face-model.md): list the coefficient layout "
        "avatar-face-v1, or render a contact sheet with one picture per identity and expression "
        "mode (frontal and three-quarter view at coefficient 1, red where the mode moves the "
        "face).");
    cmd->add_flag("--list", options->list, "Print the layout's columns (the default)");
    cmd->add_option("--sheet", options->sheet,
                    "Write the contact sheet to this image (.png or .jpg)");
    cmd->add_option("--cell", options->cell, "Size of one view in pixels")
        ->check(CLI::Range(64, 512))
        ->capture_default_str();
    commands.push_back({cmd, [options, &global] { return run_face_model(*options, global); }});
}

}  // namespace avatar::cli
