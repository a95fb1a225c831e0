#include "synth/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "face/face_model.h"
#include "face/head_pose.h"
#include "media/image.h"
#include "media/motion_file.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "synth/head.h"
#include "synth/motion_generator.h"
#include "synth/random.h"

namespace avatar::synth {
namespace {
namespace fs = std::filesystem;

// `version` changes only when a reader of the previous version would misread a set; additions
// that such a reader can ignore raise `revision` (2: masks and labels of the pair images, photo
// textures and backgrounds).
constexpr int kDatasetVersion = 1;
constexpr int kDatasetRevision = 3;  // 3: pair_rule in the manifest

void check_options(const DatasetOptions& o) {
    avatar::check(o.identities >= 1 && o.identities <= 100000, "--identities",
                  "must be 1..100000, got " + std::to_string(o.identities));
    avatar::check(o.frames >= 1 && o.frames <= 10000000, "--frames",
                  "must be >= 1, got " + std::to_string(o.frames));
    avatar::check(o.size >= 16 && o.size <= 4096 && o.size % 2 == 0, "--size",
                  "must be an even number in 16..4096, got " + std::to_string(o.size));
    avatar::check(o.fps > 0.0 && o.fps <= 1000.0, "--fps", "must be in (0, 1000]");
    avatar::check(o.camera_distance_cm >= 0.0f && std::isfinite(o.camera_distance_cm),
                  "--camera-distance", "must be >= 0 (0 = weak perspective)");
    avatar::check(o.supersample >= 1 && o.supersample <= 8, "--supersample", "must be 1..8");
    avatar::check(o.crf >= 0 && o.crf <= 51, "--crf", "must be 0..51");
    avatar::check(o.pairs >= 0 && o.pairs <= 1000000, "--pairs", "must be >= 0");
    avatar::check(o.pairs == 0 || o.identities >= 2, "--pairs", "needs at least 2 identities");
    avatar::check(o.pair_rule == 1 || o.pair_rule == 2, "pair_rule",
                  "must be 1 or 2, got " + std::to_string(o.pair_rule));
}

const char* hair_style_name(HairStyle s) {
    switch (s) {
        case HairStyle::buzz:
            return "buzz";
        case HairStyle::short_cut:
            return "short";
        case HairStyle::medium:
            return "medium";
        case HairStyle::long_cut:
            return "long";
        case HairStyle::bald:
            return "bald";
    }
    return "?";
}

std::string rgb_text(const float* c) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.4f %.4f %.4f", c[0], c[1], c[2]);
    return buf;
}

// One identity: render every frame into the video and collect the per-frame channels.
void write_identity(const fs::path& folder, int index, uint64_t appearance_seed,
                    uint64_t motion_seed, const DatasetOptions& o, const AppearanceSources& sources,
                    const std::function<void()>& on_frame) {
    fs::create_directories(folder);
    std::vector<std::pair<std::string, std::string>> looks;
    const auto appearance = sources.appearance(index, appearance_seed, 1.0, &looks);
    HeadRenderOptions render_options;
    render_options.width = render_options.height = o.size;
    render_options.supersample = o.supersample;
    render_options.camera_distance_cm = o.camera_distance_cm;
    HeadRenderer head(appearance, render_options);
    MotionOptions motion_options;
    motion_options.fps = o.fps;
    motion_options.width = motion_options.height = o.size;
    const auto rows = generate_motion(motion_seed, o.frames, motion_options);
    const int64_t D = face::face_layout_size();
    const int64_t N = o.frames, S = o.size;

    const auto fps = media::FrameRate::from_double(o.fps, "--fps");
    media::VideoWriterOptions video_options;
    video_options.frame_rate = fps;
    video_options.crf = o.crf;
    video_options.threads = 1;  // x264 output then depends on nothing but the frames
    media::VideoWriter video(folder / "video.mp4", o.size, o.size, video_options);

    auto mesh = torch::empty({N, 468, 3}, torch::kFloat32);
    auto masks = torch::empty({N, S, S}, torch::kUInt8);
    auto labels = torch::empty({N, S, S}, torch::kUInt8);
    auto frame = torch::empty({S, S, 3}, torch::kUInt8);
    torch::Tensor raw = o.raw_frames ? torch::empty({N, S, S, 3}, torch::kUInt8) : torch::Tensor();
    RenderOutput out;
    for (int64_t f = 0; f < N; ++f) {
        const float* row = &rows[static_cast<size_t>(f * D)];
        head.render(row, out);
        uint8_t* px = frame.data_ptr<uint8_t>();
        for (size_t i = 0; i < out.rgb.size(); ++i)
            px[i] = static_cast<uint8_t>(std::lround(std::clamp(out.rgb[i], 0.0f, 1.0f) * 255.0f));
        video.write(frame);
        if (raw.defined())
            raw[f].copy_(frame);
        uint8_t* m = masks[f].data_ptr<uint8_t>();
        for (size_t i = 0; i < out.mask.size(); ++i)
            m[i] = static_cast<uint8_t>(std::lround(out.mask[i] * 255.0f));
        std::copy(out.label.begin(), out.label.end(), labels[f].data_ptr<uint8_t>());
        // 468 points: screen x, y and a FaceMesh-like z (pixels, growing away from the viewer,
        // relative to the model origin's depth).
        const auto& screen = head.face_screen();
        float* p = mesh[f].data_ptr<float>();
        const float scale = row[6];
        for (int v = 0; v < 468; ++v) {
            p[3 * v] = screen[3 * v];
            p[3 * v + 1] = screen[3 * v + 1];
            p[3 * v + 2] = o.camera_distance_cm > 0.0f
                               ? (screen[3 * v + 2] - o.camera_distance_cm) * scale
                               : screen[3 * v + 2] - row[5];
        }
        if (on_frame)
            on_frame();
    }
    video.finish();

    const auto coefficients =
        torch::from_blob(const_cast<float*>(rows.data()), {N, D}, torch::kFloat32).clone();
    const auto parts = face::unpack_face_coefficients(coefficients);
    std::vector<int64_t> ids68(face::kMesh468Of68.begin(), face::kMesh468Of68.end());
    const auto landmarks68 =
        mesh.index_select(1, torch::tensor(ids68)).narrow(2, 0, 2).contiguous();
    const auto xy = mesh.narrow(2, 0, 2);
    const auto lo = std::get<0>(xy.min(1)), hi = std::get<0>(xy.max(1));
    media::Motion motion;
    motion.fps = fps;
    motion.frame_count = N;
    motion.image_width = motion.image_height = S;
    motion.layout = face::kFaceLayoutName;
    namespace ch = media::channel;
    motion.channels[ch::kPose] = parts.pose.contiguous();
    motion.channels[ch::kIdentity] = parts.identity.contiguous();
    motion.channels[ch::kExpression] = parts.expression.contiguous();
    motion.channels[ch::kGaze] = parts.gaze.contiguous();
    motion.channels[ch::kCoefficients] = coefficients;
    motion.channels[ch::kLandmarks468] = mesh;
    motion.channels[ch::kLandmarks68] = landmarks68;
    motion.channels[ch::kBox] = torch::cat({lo, hi}, 1).contiguous();
    motion.channels[ch::kFaceFound] = torch::ones({N}, torch::kBool);
    motion.channels["mask"] = masks;
    motion.channels["labels"] = labels;
    if (raw.defined())
        motion.channels["rgb"] = raw;
    motion.attributes = {
        {"source", "avatar synth (docs/synthetic-world.md)"},
        {"synth_version", std::to_string(kDatasetVersion)},
        {"identity_index", std::to_string(index)},
        {"appearance_seed", std::to_string(appearance_seed)},
        {"motion_seed", std::to_string(motion_seed)},
        {"camera", o.camera_distance_cm > 0.0f
                       ? "pinhole at " + std::to_string(o.camera_distance_cm) +
                             " cm, focal = scale x distance"
                       : std::string("weak perspective (the layout's projection)")},
        {"hair_style", hair_style_name(appearance.hair_style)},
        {"skin_rgb", rgb_text(appearance.skin)},
        {"hair_rgb", rgb_text(appearance.hair)},
        {"iris_rgb", rgb_text(appearance.iris)},
    };
    for (const auto& [key, value] : looks)
        motion.attributes[key] = value;
    media::write_motion(folder / "motion.safetensors", motion);
}

// One pair image: NAME.png (the frame), NAME_mask.png (coverage x 255) and NAME_labels.png
// (face-part label values, grey).
void save_pair_image(const fs::path& dir, const std::string& name, const RenderOutput& out) {
    auto t = torch::from_blob(const_cast<float*>(out.rgb.data()), {out.height, out.width, 3},
                              torch::kFloat32);
    media::write_image(dir / (name + ".png"), (t * 255.0f).round().clamp(0, 255).to(torch::kUInt8));
    auto m = torch::from_blob(const_cast<float*>(out.mask.data()), {out.height, out.width},
                              torch::kFloat32);
    media::write_image(dir / (name + "_mask.png"),
                       (m * 255.0f).round().clamp(0, 255).to(torch::kUInt8));
    auto l = torch::from_blob(const_cast<uint8_t*>(out.label.data()), {out.height, out.width},
                              torch::kUInt8);
    media::write_image(dir / (name + "_labels.png"), l.clone());
}

// The benchmark pairs (DatasetOptions::pairs).
nlohmann::json write_pairs(const fs::path& folder, const std::vector<uint64_t>& appearance_seeds,
                           const std::vector<uint64_t>& motion_seeds, const DatasetOptions& o,
                           const AppearanceSources& sources) {
    fs::create_directories(folder);
    const int64_t D = face::face_layout_size();
    const int64_t K = face::face_model().identity_count();
    MotionOptions motion_options;
    motion_options.fps = o.fps;
    motion_options.width = motion_options.height = o.size;
    HeadRenderOptions render_options;
    render_options.width = render_options.height = o.size;
    render_options.supersample = o.supersample;
    render_options.camera_distance_cm = o.camera_distance_cm;
    Random pick(o.seed ^ 0x9A125ULL);
    // The self-reenactment frame comes from a stream of its own, so that adding it left every
    // other image and row of a seed exactly as it was.
    Random pick_self(o.seed ^ 0x5E1F0ULL);
    const int64_t n = static_cast<int64_t>(appearance_seeds.size());
    // Row `frame` of identity `x`'s motion. Rule 1 generates a motion frame + 1 long and takes
    // its last row; rule 2 takes the frame of the video (its motion generated once, cached).
    std::map<int64_t, std::vector<float>> videos;
    const auto row_of = [&](int64_t x, int64_t frame) {
        const uint64_t seed = motion_seeds[static_cast<size_t>(x)];
        if (o.pair_rule == 1) {
            const auto rows = generate_motion(seed, frame + 1, motion_options);
            return std::vector<float>(rows.end() - D, rows.end());
        }
        auto video = videos.find(x);
        if (video == videos.end())
            video = videos.emplace(x, generate_motion(seed, o.frames, motion_options)).first;
        const auto first = video->second.begin() + frame * D;
        return std::vector<float>(first, first + D);
    };
    // The pose columns a cross-identity truth takes from B: all 7 (rule 1), or the rotation only
    // (rule 2; translation and scale stay A's).
    const int64_t transferred_pose = o.pair_rule == 1 ? face::kPoseSize : 3;
    nlohmann::json list = nlohmann::json::array();
    RenderOutput out;
    for (int k = 0; k < o.pairs; ++k) {
        const int64_t a = pick.index(n);
        const int64_t b = (a + 1 + pick.index(n - 1)) % n;
        const int64_t i = pick.index(o.frames), j = pick.index(o.frames);
        const auto ra = row_of(a, i), rb = row_of(b, j);
        // Self-reenactment: A at another frame k of its own motion, the driving image and the
        // truth at once.
        const int64_t k_self =
            o.frames > 1 ? (i + 1 + pick_self.index(o.frames - 1)) % o.frames : i;
        const auto rs = row_of(a, k_self);
        // Column ranges of the layout: pose [0, 7), identity [7, 7 + K), expression and gaze
        // [7 + K, D).
        const auto mix = [&](const std::vector<float>& pose, const std::vector<float>& expression) {
            std::vector<float> row = ra;  // A's identity
            std::copy(pose.begin(), pose.begin() + transferred_pose, row.begin());
            std::copy(expression.begin() + face::kPoseSize + K, expression.end(),
                      row.begin() + face::kPoseSize + K);
            return row;
        };
        const std::vector<std::pair<const char*, std::vector<float>>> targets = {
            {"source", ra},
            {"reenact", mix(rb, rb)},
            {"expression_only", mix(ra, rb)},
            {"pose_only", mix(rb, ra)},
            {"self_reenact", rs}};
        char name[32];
        std::snprintf(name, sizeof(name), "pair_%04d", k);
        const fs::path dir = folder / name;
        fs::create_directories(dir);
        nlohmann::json images;
        {
            HeadRenderer head(sources.appearance(a, appearance_seeds[static_cast<size_t>(a)], 1.0),
                              render_options);
            for (const auto& [target, row] : targets) {
                head.render(row.data(), out);
                save_pair_image(dir, target, out);
                images[target] = row;
            }
        }
        HeadRenderer driver(sources.appearance(b, appearance_seeds[static_cast<size_t>(b)], 1.0),
                            render_options);
        driver.render(rb.data(), out);
        save_pair_image(dir, "driving", out);
        images["driving"] = rb;
        list.push_back({{"folder", name},
                        {"identity_a", a},
                        {"frame_a", i},
                        {"identity_b", b},
                        {"frame_b", j},
                        {"frame_self", k_self},
                        {"rows", images}});
    }
    return list;
}

}  // namespace

void write_dataset(const fs::path& dir, const DatasetOptions& o,
                   const std::function<void()>& on_frame) {
    check_options(o);
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        avatar::check(fs::is_directory(dir, ec) && fs::is_empty(dir, ec), dir.string(),
                      "exists and is not an empty folder");
    }
    const fs::path partial = dir.string() + ".partial";
    fs::remove_all(partial, ec);
    try {
        fs::create_directories(partial);
        const auto sources = AppearanceSources::load(o.photo_textures, o.backgrounds);
        Random seeds(o.seed);
        nlohmann::json ids = nlohmann::json::array();
        std::vector<uint64_t> appearance_seeds, motion_seeds;
        for (int i = 0; i < o.identities; ++i) {
            const uint64_t appearance_seed = seeds.next_u64();
            const uint64_t motion_seed = seeds.next_u64();
            appearance_seeds.push_back(appearance_seed);
            motion_seeds.push_back(motion_seed);
            char name[32];
            std::snprintf(name, sizeof(name), "identity_%04d", i);
            write_identity(partial / name, i, appearance_seed, motion_seed, o, sources, on_frame);
            ids.push_back({{"folder", name},
                           {"video", std::string(name) + "/video.mp4"},
                           {"motion", std::string(name) + "/motion.safetensors"}});
        }
        nlohmann::json pairs = nlohmann::json::array();
        if (o.pairs > 0) {
            pairs = write_pairs(partial / "pairs", appearance_seeds, motion_seeds, o, sources);
            const std::string text =
                nlohmann::json({{"layout", face::kFaceLayoutName}, {"pairs", pairs}}).dump(1) +
                "\n";
            write_file_atomic(partial / "pairs" / "pairs.json", text.data(), text.size());
        }
        nlohmann::json photo_faces = nlohmann::json::array();
        for (const auto& f : sources.faces)
            photo_faces.push_back({{"source", f.source},
                                   {"face", f.face},
                                   {"face_size_px", f.face_size_px},
                                   {"fit_rms_px", f.fit_rms_px},
                                   {"observed_fraction", f.unwrapped.observed_fraction},
                                   {"mirrored_fraction", f.unwrapped.mirrored_fraction}});
        const nlohmann::json manifest = {{"format", "avatar-synth"},
                                         {"name", o.name},
                                         {"pairs", o.pairs},
                                         {"version", kDatasetVersion},
                                         {"revision", kDatasetRevision},
                                         {"pair_maps", o.pairs > 0},
                                         {"pair_rule", o.pair_rule},
                                         {"photo_textures", photo_faces},
                                         {"backgrounds", sources.background_names},
                                         {"seed", std::to_string(o.seed)},
                                         {"identities", o.identities},
                                         {"frames", o.frames},
                                         {"size", o.size},
                                         {"fps", o.fps},
                                         {"camera_distance_cm", o.camera_distance_cm},
                                         {"supersample", o.supersample},
                                         {"crf", o.crf},
                                         {"raw_frames", o.raw_frames},
                                         {"layout", face::kFaceLayoutName},
                                         {"labels", label_names()},
                                         {"items", ids}};
        const std::string text = manifest.dump(2) + "\n";
        write_file_atomic(partial / "synth.json", text.data(), text.size());
        if (fs::exists(dir, ec))
            fs::remove(dir);  // empty, checked above
        fs::rename(partial, dir);
    } catch (...) {
        fs::remove_all(partial, ec);
        throw;
    }
}

SyntheticDataset::SyntheticDataset(const fs::path& dir) : dir_(dir) {
    const auto path = dir / "synth.json";
    nlohmann::json manifest;
    try {
        manifest = nlohmann::json::parse(read_text_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string(), std::string("not valid JSON: ") + e.what());
    }
    avatar::check(manifest.value("format", "") == "avatar-synth", path.string(),
                  "not an avatar synth manifest");
    avatar::check(
        manifest.value("version", 0) >= 1 && manifest.value("version", 0) <= kDatasetVersion,
        path.string(), "unsupported version (this reader knows 1)");
    image_size_ = manifest.value("size", 0);
    name_ = manifest.value("name", std::string());
    pair_rule_ = manifest.value("pair_rule", 1);  // absent before revision 3: rule 1
    for (const auto& item : manifest.at("items"))
        folders_.push_back(item.at("folder").get<std::string>());
}

media::Motion SyntheticDataset::motion(int64_t i) const {
    avatar::check(i >= 0 && i < size(), dir_.string(), "no identity " + std::to_string(i));
    return media::read_motion(dir_ / folders_[static_cast<size_t>(i)] / "motion.safetensors");
}

torch::Tensor SyntheticDataset::frames(int64_t i) const {
    const auto m = motion(i);
    if (m.has("rgb"))
        return m.channels.at("rgb");
    media::VideoReader video(dir_ / folders_[static_cast<size_t>(i)] / "video.mp4", 1);
    std::vector<torch::Tensor> out;
    while (auto f = video.next_frame())
        out.push_back(*f);
    avatar::check(static_cast<int64_t>(out.size()) == m.frame_count,
                  (dir_ / folders_[static_cast<size_t>(i)] / "video.mp4").string(),
                  "frame count differs from the motion file's");
    return torch::stack(out);
}

DatasetOptions synthbench_v1() {
    DatasetOptions o;
    o.identities = 20;
    o.frames = 100;
    o.size = 256;
    o.seed = 20261121;
    o.fps = 25.0;
    o.camera_distance_cm = 0.0f;
    o.supersample = 2;
    o.crf = 18;
    o.pairs = 100;
    o.name = "synthbench-v1";
    o.pair_rule = 1;
    return o;
}

DatasetOptions synthbench_v2() {
    DatasetOptions o = synthbench_v1();
    o.name = "synthbench-v2";
    o.pair_rule = 2;
    return o;
}

DatasetOptions synthbench_v2_select() {
    DatasetOptions o = synthbench_v2();
    o.name = "synthbench-v2-select";
    o.seed = 20261206;
    o.identities = 80;
    o.pairs = 400;
    return o;
}

DatasetOptions dataset_preset(const std::string& name) {
    if (name == "synthbench-v1")
        return synthbench_v1();
    if (name == "synthbench-v2")
        return synthbench_v2();
    if (name == "synthbench-v2-select")
        return synthbench_v2_select();
    throw Error("--preset", "'" + name +
                                "' is not a known preset (synthbench-v1, synthbench-v2, "
                                "synthbench-v2-select)");
}

AppearanceSources AppearanceSources::load(const std::vector<std::string>& photo_textures,
                                          const std::vector<std::string>& backgrounds) {
    AppearanceSources s;
    if (!photo_textures.empty())
        s.faces = unwrap_photo_files(list_image_files(photo_textures, "--photo-textures"),
                                     "--photo-textures");
    if (!backgrounds.empty())
        for (const auto& f : list_image_files(backgrounds, "--backgrounds")) {
            s.backgrounds.push_back(media::read_image(f));
            s.background_names.push_back(f.filename().string());
        }
    return s;
}

Appearance AppearanceSources::appearance(
    int64_t identity, uint64_t seed, double aspect,
    std::vector<std::pair<std::string, std::string>>* describe) const {
    Appearance a;
    if (faces.empty()) {
        a = random_appearance(seed);
        if (describe)
            describe->push_back({"texture", "procedural"});
    } else {
        const auto& f = faces[static_cast<size_t>(identity % static_cast<int64_t>(faces.size()))];
        a = photo_appearance(f.unwrapped, seed);
        if (describe)
            describe->push_back(
                {"texture", "photo " + f.source + " face " + std::to_string(f.face)});
    }
    if (backgrounds.empty()) {
        if (describe)
            describe->push_back({"background", "procedural"});
    } else {
        const size_t chosen = choose_background(backgrounds, seed, aspect, a);
        if (describe) {
            char crop[96];
            std::snprintf(crop, sizeof(crop), " crop %.4f %.4f %.4f %.4f%s", a.background_crop[0],
                          a.background_crop[1], a.background_crop[2], a.background_crop[3],
                          a.background_mirror ? " mirrored" : "");
            describe->push_back({"background", "photo " + background_names[chosen] + crop});
        }
    }
    return a;
}

void write_contact_sheet(const fs::path& png, uint64_t seed, int identities, int tile) {
    write_contact_sheet(png, seed, identities, tile, AppearanceSources{});
}

void write_contact_sheet(const fs::path& png, uint64_t seed, int identities, int tile,
                         const AppearanceSources& sources) {
    avatar::check(identities >= 1 && identities <= 256, "--identities",
                  "must be 1..256 for a contact sheet");
    avatar::check(tile >= 32 && tile <= 1024 && tile % 2 == 0, "--size",
                  "must be an even number in 32..1024 for a contact sheet");
    const auto& model = face::face_model();
    const int64_t K = model.identity_count(), D = face::face_layout_size();
    const auto& names = model.expression_names;
    const auto mode = [&](const char* name) {
        return face::kPoseSize + K + (std::find(names.begin(), names.end(), name) - names.begin());
    };
    // Expressions: name -> value pairs on top of a neutral row.
    const std::vector<std::vector<std::pair<const char*, float>>> expressions = {
        {{"mouth_close", 0.5f}},
        {{"smile_left", 0.8f}, {"smile_right", 0.8f}},
        {{"jaw_open", 0.45f}, {"lower_lip_down", 0.3f}},
        {{"brow_inner_up", 1.0f},
         {"brow_outer_up_left", 0.8f},
         {"brow_outer_up_right", 0.8f},
         {"eye_wide_left", 0.6f},
         {"eye_wide_right", 0.6f},
         {"jaw_open", 0.25f}}};
    const float yaws[3] = {-35.0f, 0.0f, 35.0f};
    const int columns = 12;
    auto sheet = torch::zeros({identities * tile, columns * tile, 3}, torch::kUInt8);
    Random seeds(seed);
    RenderOutput out;
    for (int i = 0; i < identities; ++i) {
        const uint64_t appearance_seed = seeds.next_u64();
        const uint64_t motion_seed = seeds.next_u64();
        HeadRenderOptions options;
        options.width = options.height = tile;
        HeadRenderer head(sources.appearance(i, appearance_seed, 1.0), options);
        MotionOptions motion;
        motion.width = motion.height = tile;
        const auto first = generate_motion(motion_seed, 1, motion);
        for (size_t e = 0; e < expressions.size(); ++e)
            for (int p = 0; p < 3; ++p) {
                std::vector<float> row(static_cast<size_t>(D), 0.0f);
                std::copy(first.begin() + face::kPoseSize, first.begin() + face::kPoseSize + K,
                          row.begin() + face::kPoseSize);
                row[1] = yaws[p] * static_cast<float>(M_PI / 180.0);
                row[3] = 0.5f * tile;
                row[4] = 0.52f * tile;
                row[6] = tile / 256.0f * 7.5f;  // the head fills most of the tile
                for (const auto& [name, value] : expressions[e])
                    row[static_cast<size_t>(mode(name))] = value;
                head.render(row.data(), out);
                auto t = torch::from_blob(out.rgb.data(), {tile, tile, 3}, torch::kFloat32);
                const int column = static_cast<int>(e) * 3 + p;
                sheet.narrow(0, i * tile, tile)
                    .narrow(1, column * tile, tile)
                    .copy_((t * 255.0f).round().clamp(0, 255).to(torch::kUInt8));
            }
    }
    media::write_image(png, sheet);
}

}  // namespace avatar::synth
