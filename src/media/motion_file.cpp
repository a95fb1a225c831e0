#include "media/motion_file.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/files.h"

namespace avatar::media {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Frame rates beyond these are typos, and keeping num/den below 2^31 keeps FrameRate::operator==
// free of overflow.
constexpr int64_t kMaxRationalPart = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxImageSide = 1 << 20;
// Per-frame rank and dimension caps: far above any real channel, low enough that a hostile file
// cannot make us allocate or recurse without bound.
constexpr size_t kMaxFrameRank = 6;
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxElements = int64_t{1} << 28;  // per JSON channel

// ---- channel schema -------------------------------------------------------------------------

struct KnownChannel {
    const char* name;
    std::vector<int64_t> frame_shape;  // -1: any size
};

// face_found is handled apart (bool, per-frame shape []).
const std::vector<KnownChannel>& known_channels() {
    static const std::vector<KnownChannel> channels = {
        {channel::kPose, {7}},
        {channel::kIdentity, {-1}},
        {channel::kExpression, {-1}},
        {channel::kCoefficients, {-1}},
        {channel::kGaze, {4}},
        {channel::kBox, {4}},
        {channel::kLandmarks68, {68, 2}},
        {channel::kLandmarks468, {468, 3}},
        {channel::kIris, {10, -1}},
    };
    return channels;
}

const KnownChannel* find_known(const std::string& name) {
    for (const auto& c : known_channels()) {
        if (name == c.name)
            return &c;
    }
    return nullptr;
}

// The dtypes a channel may have, with their JSON names.
struct ChannelDType {
    const char* name;
    torch::ScalarType type;
};
constexpr ChannelDType kChannelDTypes[] = {
    {"float32", torch::kFloat32}, {"float64", torch::kFloat64}, {"int32", torch::kInt32},
    {"int64", torch::kInt64},     {"uint8", torch::kUInt8},     {"bool", torch::kBool},
};

const char* channel_dtype_name(torch::ScalarType type) {
    for (const auto& d : kChannelDTypes) {
        if (d.type == type)
            return d.name;
    }
    return nullptr;
}

std::string shape_text(torch::IntArrayRef shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
}

bool valid_layout_name(const std::string& layout) {
    if (layout.empty() || layout.size() > 64)
        return false;
    return std::all_of(layout.begin(), layout.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

std::string lower_extension(const fs::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext;
}

// Parses a whole string as a double, locale-independently; false on any leftover character.
bool parse_double(std::string_view text, double& value) {
    if (!text.empty() && text.front() == '+')
        text.remove_prefix(1);
    if (text.empty())
        return false;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

bool parse_int(std::string_view text, int64_t& value) {
    if (text.empty())
        return false;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

}  // namespace

// ---- FrameRate ------------------------------------------------------------------------------

std::string FrameRate::to_string() const {
    return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den);
}

namespace {
FrameRate make_rate(int64_t num, int64_t den, const std::string& subject) {
    check(num > 0 && den > 0, subject, "frame rate must be positive");
    const int64_t g = std::gcd(num, den);
    num /= g;
    den /= g;
    check(num <= kMaxRationalPart && den <= kMaxRationalPart, subject,
          "frame rate " + std::to_string(num) + "/" + std::to_string(den) + " is out of range");
    return FrameRate{num, den};
}
}  // namespace

FrameRate FrameRate::from_double(double fps, const std::string& subject) {
    check(std::isfinite(fps) && fps > 0 && fps <= 1e6, subject,
          "frame rate must be a positive finite number, got " + std::to_string(fps));
    // Continued fractions: the simplest fraction close enough, so 29.97002997 becomes 30000/1001.
    int64_t h0 = 1, h1 = 0, k0 = 0, k1 = 1;  // convergents h/k
    double x = fps;
    for (int i = 0; i < 40; ++i) {
        const double a_real = std::floor(x);
        if (a_real > static_cast<double>(kMaxRationalPart))
            break;
        const auto a = static_cast<int64_t>(a_real);
        const int64_t h2 = a * h0 + h1;
        const int64_t k2 = a * k0 + k1;
        if (h2 > kMaxRationalPart || k2 > kMaxRationalPart)
            break;
        h1 = h0;
        k1 = k0;
        h0 = h2;
        k0 = k2;
        const double approx = static_cast<double>(h0) / static_cast<double>(k0);
        if (std::fabs(approx - fps) <= 1e-9 * fps)
            break;
        const double frac = x - a_real;
        if (frac <= 0)
            break;
        x = 1.0 / frac;
    }
    check(h0 > 0 && k0 > 0, subject, "frame rate " + std::to_string(fps) + " is out of range");
    return make_rate(h0, k0, subject);
}

FrameRate FrameRate::parse(const std::string& text, const std::string& subject) {
    const auto slash = text.find('/');
    if (slash != std::string::npos) {
        int64_t num = 0, den = 0;
        check(parse_int(std::string_view(text).substr(0, slash), num) &&
                  parse_int(std::string_view(text).substr(slash + 1), den),
              subject, "frame rate '" + text + "' is not NUM/DEN");
        return make_rate(num, den, subject);
    }
    double value = 0;
    check(parse_double(text, value), subject, "frame rate '" + text + "' is not a number");
    return from_double(value, subject);
}

// ---- validation -----------------------------------------------------------------------------

void validate_motion(const Motion& motion, const std::string& subject) {
    check(motion.fps.num > 0 && motion.fps.den > 0 && motion.fps.num <= kMaxRationalPart &&
              motion.fps.den <= kMaxRationalPart,
          subject, "frame rate " + motion.fps.to_string() + " is out of range");
    check(motion.frame_count >= 0, subject, "negative frame count");
    check(motion.image_width >= 0 && motion.image_width <= kMaxImageSide &&
              motion.image_height >= 0 && motion.image_height <= kMaxImageSide,
          subject, "image size out of range");
    check(valid_layout_name(motion.layout), subject,
          "layout '" + motion.layout + "' is not a layout name (letters, digits, - _ .)");
    for (const auto& [key, value] : motion.attributes) {
        check(!key.empty(), subject, "empty attribute name");
    }

    torch::Tensor found;  // [N] bool, when present
    for (const auto& [name, tensor] : motion.channels) {
        const std::string who = "channel '" + name + "'";
        check(!name.empty(), subject, "empty channel name");
        check(tensor.defined(), subject, who + " is undefined");
        check(tensor.layout() == torch::kStrided && tensor.device().is_cpu(), subject,
              who + " must be a dense CPU tensor");
        check(channel_dtype_name(tensor.scalar_type()) != nullptr, subject,
              who + ": dtype " + c10::toString(tensor.scalar_type()) + " is not allowed");
        check(tensor.dim() >= 1 && static_cast<size_t>(tensor.dim()) <= kMaxFrameRank + 1, subject,
              who + " must be [frames, ...] with at most 6 per-frame dimensions");
        check(tensor.size(0) == motion.frame_count, subject,
              who + " has " + std::to_string(tensor.size(0)) + " frames, the header says " +
                  std::to_string(motion.frame_count));
        for (int64_t d = 1; d < tensor.dim(); ++d) {
            check(tensor.size(d) <= kMaxDim, subject, who + ": dimension too large");
        }
        if (name == channel::kFaceFound) {
            check(tensor.scalar_type() == torch::kBool && tensor.dim() == 1, subject,
                  who + " must be bool [frames], got " + channel_dtype_name(tensor.scalar_type()) +
                      " " + shape_text(tensor.sizes()));
            found = tensor;
        } else if (const auto* known = find_known(name)) {
            check(tensor.scalar_type() == torch::kFloat32, subject, who + " must be float32");
            bool ok = static_cast<size_t>(tensor.dim()) == known->frame_shape.size() + 1;
            for (size_t d = 0; ok && d < known->frame_shape.size(); ++d) {
                const int64_t want = known->frame_shape[d];
                const int64_t got = tensor.size(static_cast<int64_t>(d) + 1);
                ok = want < 0 ? got > 0 : got == want;
            }
            if (ok && name == channel::kIris) {
                ok = tensor.size(2) == 2 || tensor.size(2) == 3;
            }
            check(ok, subject,
                  who + " has shape " + shape_text(tensor.sizes()) +
                      "; see docs/motion-format.md for its per-frame shape");
        }
    }
    // Values must be finite; NaN means "unknown" and is allowed only in frames without a face.
    for (const auto& [name, tensor] : motion.channels) {
        if (!tensor.is_floating_point() || tensor.numel() == 0)
            continue;
        const std::string who = "channel '" + name + "'";
        check(!tensor.isinf().any().item<bool>(), subject, who + " holds an infinite value");
        const auto nan_frames = tensor.isnan().reshape({tensor.size(0), -1}).any(1);
        if (!nan_frames.any().item<bool>())
            continue;
        check(found.defined(), subject,
              who + " holds NaN, which is allowed only in frames whose face_found is false");
        const auto bad = nan_frames.logical_and(found);
        if (bad.any().item<bool>()) {
            const auto frame = bad.nonzero()[0][0].item<int64_t>();
            throw Error(subject, who + " holds NaN in frame " + std::to_string(frame) +
                                     ", where face_found is true");
        }
    }
}

// ---- JSON encoding --------------------------------------------------------------------------

namespace {

// Shortest decimal text that reads back as the same value ("0.1", not 0.10000000149011612);
// NaN (an unknown value of a frame without a face) is written as null.
template <typename Float>
void append_float(std::string& out, Float v) {
    if (std::isnan(v)) {
        out += "null";
        return;
    }
    if (v == 0 && std::signbit(v)) {
        out += "-0.0";  // "-0" would read back as the integer 0 and lose the sign
        return;
    }
    char text[64];
    const auto result = std::to_chars(text, text + sizeof(text), v);
    out.append(text, result.ptr);
}

void append_element(std::string& out, const torch::Tensor& flat, int64_t i) {
    switch (flat.scalar_type()) {
        case torch::kFloat32:
            return append_float(out, flat.data_ptr<float>()[i]);
        case torch::kFloat64:
            return append_float(out, flat.data_ptr<double>()[i]);
        case torch::kInt32:
            out += std::to_string(flat.data_ptr<int32_t>()[i]);
            return;
        case torch::kInt64:
            out += std::to_string(flat.data_ptr<int64_t>()[i]);
            return;
        case torch::kUInt8:
            out += std::to_string(flat.data_ptr<uint8_t>()[i]);
            return;
        case torch::kBool:
            out += flat.data_ptr<bool>()[i] ? "true" : "false";
            return;
        default:
            throw Error("motion", "unexpected dtype");  // excluded by validate_motion
    }
}

// Nested arrays for dims[level..], starting at flat element `offset`.
void append_nested(std::string& out, const torch::Tensor& flat, torch::IntArrayRef dims,
                   size_t level, int64_t& offset) {
    if (level == dims.size()) {
        append_element(out, flat, offset++);
        return;
    }
    out += '[';
    for (int64_t i = 0; i < dims[level]; ++i) {
        if (i > 0)
            out += ',';
        append_nested(out, flat, dims, level + 1, offset);
    }
    out += ']';
}

}  // namespace

namespace {
std::string motion_to_json_unchecked(const Motion& motion);
}

std::string motion_to_json(const Motion& motion) {
    validate_motion(motion, "motion");
    try {
        return motion_to_json_unchecked(motion);
    } catch (const json::exception&) {
        throw Error("motion", "a channel or attribute name is not valid UTF-8");
    }
}

namespace {
std::string motion_to_json_unchecked(const Motion& motion) {
    // Laid out by hand so that every frame of a channel is one line: readable and diffable,
    // where nlohmann's indented dump would put every number on its own line.
    std::string out = "{\n";
    auto field = [&out](const char* key, const json& value) {
        out += "  " + json(key).dump() + ": " + value.dump() + ",\n";
    };
    field("format", kMotionFormatId);
    field("version", kMotionFormatVersion);
    field("fps", motion.fps.den == 1 ? json(motion.fps.num) : json(motion.fps.to_string()));
    field("frame_count", motion.frame_count);
    field("image_size", json::array({motion.image_width, motion.image_height}));
    field("layout", motion.layout);
    field("attributes", json(motion.attributes));
    out += "  \"channels\": {";
    bool first_channel = true;
    for (const auto& [name, tensor] : motion.channels) {
        const auto flat = tensor.contiguous().reshape({-1});
        out += first_channel ? "\n" : ",\n";
        first_channel = false;
        out += "    " + json(name).dump() + ": {\"dtype\": \"" +
               channel_dtype_name(tensor.scalar_type()) +
               "\", \"shape\": " + json(tensor.sizes().vec()).dump() + ", \"data\": [";
        const auto frame_dims = tensor.sizes().slice(1);
        int64_t offset = 0;
        for (int64_t f = 0; f < tensor.size(0); ++f) {
            out += f == 0 ? "\n      " : ",\n      ";
            append_nested(out, flat, frame_dims, 0, offset);
        }
        out += tensor.size(0) > 0 ? "\n    ]}" : "]}";
    }
    out += first_channel ? "}\n}\n" : "\n  }\n}\n";
    return out;
}
}  // namespace

namespace {

struct JsonReader {
    const std::string& subject;

    int64_t integer(const json& value, const std::string& what) const {
        if (value.is_number_integer()) {
            if (value.is_number_unsigned()) {
                check(value.get<uint64_t>() <=
                          static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                      subject, what + " is too large");
            }
            return value.get<int64_t>();
        }
        throw Error(subject, what + " must be an integer, got " + value.dump());
    }

    // Fills `out` (flat, row-major) from nested arrays that must match `dims` exactly.
    void fill(const json& node, const std::vector<int64_t>& dims, size_t level,
              torch::ScalarType type, std::vector<double>& floats, std::vector<int64_t>& ints,
              const std::string& who) const {
        if (level == dims.size()) {
            element(node, type, floats, ints, who);
            return;
        }
        check(node.is_array() && static_cast<int64_t>(node.size()) == dims[level], subject,
              who + ": data does not match its shape at depth " + std::to_string(level));
        for (const auto& item : node)
            fill(item, dims, level + 1, type, floats, ints, who);
    }

    void element(const json& node, torch::ScalarType type, std::vector<double>& floats,
                 std::vector<int64_t>& ints, const std::string& who) const {
        switch (type) {
            case torch::kFloat32:
            case torch::kFloat64:
                if (node.is_null()) {
                    floats.push_back(std::numeric_limits<double>::quiet_NaN());
                } else {
                    check(node.is_number(), subject,
                          who + ": expected a number or null, got " + node.dump());
                    floats.push_back(node.get<double>());
                }
                return;
            case torch::kBool:
                check(node.is_boolean(), subject, who + ": expected true or false");
                ints.push_back(node.get<bool>() ? 1 : 0);
                return;
            default: {
                const int64_t v = integer(node, who + " value");
                const bool fits =
                    type == torch::kInt64 ||
                    (type == torch::kInt32 && v >= std::numeric_limits<int32_t>::min() &&
                     v <= std::numeric_limits<int32_t>::max()) ||
                    (type == torch::kUInt8 && v >= 0 && v <= 255);
                check(fits, subject, who + ": value " + std::to_string(v) + " out of range");
                ints.push_back(v);
                return;
            }
        }
    }

    torch::Tensor channel_tensor(const std::string& name, const json& value) const {
        const std::string who = "channel '" + name + "'";
        check(value.is_object(), subject, who + " must be an object {dtype, shape, data}");
        for (const auto& item : value.items()) {
            check(item.key() == "dtype" || item.key() == "shape" || item.key() == "data", subject,
                  who + ": unexpected field '" + item.key() + "'");
        }
        torch::ScalarType type = torch::kFloat32;
        if (value.contains("dtype")) {
            const auto& dtype = value["dtype"];
            check(dtype.is_string(), subject, who + ": dtype must be a string");
            bool found = false;
            for (const auto& d : kChannelDTypes) {
                if (dtype.get<std::string>() == d.name) {
                    type = d.type;
                    found = true;
                }
            }
            check(found, subject, who + ": unknown dtype " + dtype.dump());
        }
        check(value.contains("shape") && value["shape"].is_array(), subject,
              who + ": shape must be an array");
        check(value.contains("data"), subject, who + ": no data");
        const auto& shape_json = value["shape"];
        check(!shape_json.empty() && shape_json.size() <= kMaxFrameRank + 1, subject,
              who + ": shape must be [frames, ...] with at most 6 per-frame dimensions");
        std::vector<int64_t> dims;
        int64_t span = 1;  // product of the non-zero sizes: LibTorch's strides must not overflow
        for (const auto& d : shape_json) {
            const int64_t n = integer(d, who + " shape entry");
            check(n >= 0 && n <= kMaxDim, subject, who + ": shape entry out of range");
            span *= std::max<int64_t>(n, 1);  // <= 2^52 before the check below
            check(span <= kMaxElements, subject, who + ": shape out of range");
            dims.push_back(n);
        }
        std::vector<double> floats;
        std::vector<int64_t> ints;
        fill(value["data"], dims, 0, type, floats, ints, who);
        if (type == torch::kFloat32 || type == torch::kFloat64) {
            return torch::tensor(floats, torch::kFloat64).reshape(dims).to(type);
        }
        return torch::tensor(ints, torch::kInt64).reshape(dims).to(type);
    }
};

}  // namespace

Motion parse_motion_json(std::string_view text, const std::string& subject) {
    json root;
    try {
        root = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        throw Error(subject, std::string("not valid JSON: ") + e.what());
    }
    check(root.is_object(), subject, "a motion file must be a JSON object");
    check(root.contains("format") && root["format"] == kMotionFormatId, subject,
          "not an avatar motion file (\"format\" must be \"avatar-motion\")");
    const JsonReader reader{subject};
    check(root.contains("version"), subject, "no format version");
    const int64_t version = reader.integer(root["version"], "version");
    check(version <= kMotionFormatVersion, subject,
          "motion format version " + std::to_string(version) +
              " is newer than this build reads (version 1): update avatar");
    check(version >= 1, subject, "invalid motion format version " + std::to_string(version));

    Motion motion;
    check(root.contains("fps"), subject, "no fps");
    const auto& fps = root["fps"];
    if (fps.is_string()) {
        motion.fps = FrameRate::parse(fps.get<std::string>(), subject);
    } else {
        check(fps.is_number(), subject, "fps must be a number or \"NUM/DEN\"");
        motion.fps = FrameRate::from_double(fps.get<double>(), subject);
    }
    check(root.contains("frame_count"), subject, "no frame_count");
    motion.frame_count = reader.integer(root["frame_count"], "frame_count");
    if (root.contains("image_size")) {
        const auto& size = root["image_size"];
        check(size.is_array() && size.size() == 2, subject, "image_size must be [width, height]");
        motion.image_width = reader.integer(size[0], "image width");
        motion.image_height = reader.integer(size[1], "image height");
    }
    if (root.contains("layout")) {
        check(root["layout"].is_string(), subject, "layout must be a string");
        motion.layout = root["layout"].get<std::string>();
    }
    if (root.contains("attributes")) {
        const auto& attributes = root["attributes"];
        check(attributes.is_object(), subject, "attributes must be an object");
        for (const auto& item : attributes.items()) {
            check(item.value().is_string(), subject,
                  "attribute '" + item.key() + "' must be a string");
            motion.attributes[item.key()] = item.value().get<std::string>();
        }
    }
    check(root.contains("channels") && root["channels"].is_object(), subject,
          "channels must be an object");
    for (const auto& item : root["channels"].items()) {
        motion.channels[item.key()] = reader.channel_tensor(item.key(), item.value());
    }
    validate_motion(motion, subject);
    return motion;
}

// ---- safetensors encoding -------------------------------------------------------------------

namespace {
constexpr const char* kAttributePrefix = "attribute.";
}

Motion motion_from_safetensors(const SafetensorsFile& file) {
    const std::string& subject = file.subject();
    const auto& meta = file.metadata();
    auto get = [&](const char* key) -> const std::string& {
        const auto it = meta.find(key);
        check(it != meta.end(), subject, std::string("no '") + key + "' in the metadata");
        return it->second;
    };
    auto integer = [&](const char* key) {
        int64_t value = 0;
        check(parse_int(get(key), value), subject,
              std::string("metadata '") + key + "' is not an integer: " + get(key));
        return value;
    };
    check(meta.count("format") && meta.at("format") == kMotionFormatId, subject,
          "not an avatar motion file (metadata \"format\" must be \"avatar-motion\")");
    const int64_t version = integer("version");
    check(version <= kMotionFormatVersion, subject,
          "motion format version " + std::to_string(version) +
              " is newer than this build reads (version 1): update avatar");
    check(version >= 1, subject, "invalid motion format version " + std::to_string(version));

    Motion motion;
    motion.fps = FrameRate::parse(get("fps"), subject);
    motion.frame_count = integer("frame_count");
    if (meta.count("image_width"))
        motion.image_width = integer("image_width");
    if (meta.count("image_height"))
        motion.image_height = integer("image_height");
    if (meta.count("layout"))
        motion.layout = get("layout");
    for (const auto& [key, value] : meta) {
        if (key.rfind(kAttributePrefix, 0) == 0) {
            motion.attributes[key.substr(std::strlen(kAttributePrefix))] = value;
        }
    }
    for (const auto& t : file.tensors()) {
        // A copy: the mapping is read-only, and callers smooth or edit motion in place.
        motion.channels[t.name] = file.get(t.name).clone();
    }
    validate_motion(motion, subject);
    return motion;
}

namespace {

void write_motion_safetensors(const fs::path& path, const Motion& motion) {
    std::map<std::string, std::string> meta = {
        {"format", kMotionFormatId},
        {"version", std::to_string(kMotionFormatVersion)},
        {"fps", motion.fps.to_string()},
        {"frame_count", std::to_string(motion.frame_count)},
        {"image_width", std::to_string(motion.image_width)},
        {"image_height", std::to_string(motion.image_height)},
        {"layout", motion.layout},
    };
    for (const auto& [key, value] : motion.attributes)
        meta[kAttributePrefix + key] = value;
    save_safetensors(path, TensorMap(motion.channels.begin(), motion.channels.end()), meta);
}

// ---- coefficient files (.npy, .txt) ---------------------------------------------------------

Motion coefficient_motion(torch::Tensor rows, const std::string& subject,
                          const MotionImportOptions& options) {
    check(rows.size(1) > 0, subject, "coefficient rows are empty");
    check(torch::isfinite(rows).all().item<bool>(), subject,
          "coefficients hold NaN or infinite values");
    rows = rows.to(torch::kFloat32).contiguous();
    check(torch::isfinite(rows).all().item<bool>(), subject,
          "coefficients exceed the float32 range");
    Motion motion;
    motion.fps = options.fps;
    motion.frame_count = rows.size(0);
    motion.layout =
        options.layout.empty() ? guess_coefficient_layout(rows.size(1)) : options.layout;
    motion.channels[channel::kCoefficients] = rows;
    validate_motion(motion, subject);
    return motion;
}

// A minimal reader of the Python literal that .npy headers hold:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 257), }
class PyLiteralParser {
public:
    PyLiteralParser(std::string_view text, const std::string& subject)
        : text_(text), subject_(subject) {}

    struct Header {
        std::string descr;
        bool fortran_order = false;
        std::vector<int64_t> shape;
        bool has_descr = false, has_order = false, has_shape = false;
    };

    Header parse() {
        Header header;
        expect('{');
        while (true) {
            skip_space();
            if (peek() == '}') {
                ++pos_;
                break;
            }
            const std::string key = string();
            expect(':');
            skip_space();
            if (key == "descr") {
                check(peek() == '\'' || peek() == '"', subject_,
                      "npy: structured or unusual dtypes are not supported (descr must be a "
                      "string like '<f4')");
                header.descr = string();
                header.has_descr = true;
            } else if (key == "fortran_order") {
                header.fortran_order = boolean();
                header.has_order = true;
            } else if (key == "shape") {
                header.shape = tuple();
                header.has_shape = true;
            } else {
                fail("unexpected key '" + key + "' in the header");
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect('}');
            break;
        }
        skip_space();
        check(pos_ == text_.size(), subject_, "npy: trailing characters after the header dict");
        check(header.has_descr && header.has_order && header.has_shape, subject_,
              "npy: header lacks descr, fortran_order or shape");
        return header;
    }

private:
    [[noreturn]] void fail(const std::string& message) const {
        throw Error(subject_, "npy: " + message);
    }
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\t' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }
    void expect(char c) {
        skip_space();
        if (peek() != c)
            fail(std::string("malformed header dict (expected '") + c + "')");
        ++pos_;
    }
    std::string string() {
        skip_space();
        const char quote = peek();
        if (quote != '\'' && quote != '"')
            fail("malformed header dict (expected a string)");
        const auto end = text_.find(quote, pos_ + 1);
        if (end == std::string_view::npos)
            fail("unterminated string in the header");
        std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
        return value;
    }
    bool boolean() {
        if (text_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        if (text_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        fail("fortran_order must be True or False");
    }
    std::vector<int64_t> tuple() {
        expect('(');
        std::vector<int64_t> dims;
        while (true) {
            skip_space();
            if (peek() == ')') {
                ++pos_;
                return dims;
            }
            const size_t start = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9')
                ++pos_;
            int64_t value = 0;
            if (!parse_int(text_.substr(start, pos_ - start), value)) {
                fail("shape entries must be non-negative integers");
            }
            dims.push_back(value);
            if (dims.size() > 8)
                fail("too many dimensions");
            skip_space();
            if (peek() == ',') {
                ++pos_;
            } else if (peek() != ')') {
                fail("malformed shape tuple");
            }
        }
    }

    std::string_view text_;
    const std::string& subject_;
    size_t pos_ = 0;
};

}  // namespace

std::string guess_coefficient_layout(int64_t width) {
    switch (width) {
        case 257:
            return "deep3d-257";
        case 70:
            return "otavatar-70";
        case 73:
            return "pirender-73";
        case 53:
            return "deca-53";
        default:
            return "raw";
    }
}

Motion parse_coefficients_npy(const uint8_t* data, size_t size, const std::string& subject,
                              const MotionImportOptions& options) {
    static const uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    check(size >= 10 && std::memcmp(data, kMagic, 6) == 0, subject,
          "not a NumPy .npy file (bad magic)");
    const uint8_t major = data[6];
    check(major >= 1 && major <= 3, subject,
          "npy format version " + std::to_string(major) + " is not supported");
    size_t header_len = 0;
    size_t header_start = 10;
    if (major == 1) {
        header_len = static_cast<size_t>(data[8]) | static_cast<size_t>(data[9]) << 8;
    } else {
        check(size >= 12, subject, "npy: truncated header");
        uint32_t len = 0;
        std::memcpy(&len, data + 8, 4);
        header_len = len;
        header_start = 12;
    }
    check(header_len <= size - header_start, subject, "npy: header runs past the end of the file");
    const std::string_view header_text(reinterpret_cast<const char*>(data) + header_start,
                                       header_len);
    const auto header = PyLiteralParser(header_text, subject).parse();

    const std::string& d = header.descr;
    check(d.size() >= 2, subject, "npy: unsupported dtype '" + d + "'");
    check(d[0] != '>', subject,
          "npy: big-endian data ('" + d + "') is not supported; save it little-endian ('<" +
              d.substr(1) + "')");
    struct NpyType {
        const char* descr;
        torch::ScalarType type;
        size_t size;
    };
    static const NpyType kTypes[] = {{"<f4", torch::kFloat32, 4},
                                     {"<f8", torch::kFloat64, 8},
                                     {"<f2", torch::kFloat16, 2},
                                     {"<i4", torch::kInt32, 4},
                                     {"<i8", torch::kInt64, 8}};
    const NpyType* npy_type = nullptr;
    for (const auto& t : kTypes) {
        if (d == t.descr)
            npy_type = &t;
    }
    check(npy_type != nullptr, subject,
          "npy: dtype '" + d + "' is not supported (expected '<f4', '<f8', '<f2', '<i4' or '<i8')");
    const torch::ScalarType type = npy_type->type;
    const size_t item = npy_type->size;
    check(header.shape.size() == 1 || header.shape.size() == 2, subject,
          "npy: coefficients must be [frames, width] or [width], got " +
              std::to_string(header.shape.size()) + " dimensions");
    check(!header.fortran_order || header.shape.size() == 1, subject,
          "npy: Fortran-order arrays are not supported; save with np.ascontiguousarray");
    const int64_t frames = header.shape.size() == 2 ? header.shape[0] : 1;
    const int64_t width = header.shape.back();
    check(frames <= kMaxDim * 16 && width <= kMaxDim, subject, "npy: shape out of range");
    uint64_t bytes = 0;
    check(!__builtin_mul_overflow(static_cast<uint64_t>(frames) * static_cast<uint64_t>(width),
                                  item, &bytes),
          subject, "npy: shape out of range");
    const size_t data_start = header_start + header_len;
    check(bytes == size - data_start, subject,
          "npy: the data has " + std::to_string(size - data_start) + " bytes, the header needs " +
              std::to_string(bytes));
    auto rows = torch::empty({frames, width}, torch::TensorOptions().dtype(type));
    if (bytes > 0)
        std::memcpy(rows.data_ptr(), data + data_start, bytes);
    return coefficient_motion(rows, subject, options);
}

Motion parse_coefficients_txt(std::string_view text, const std::string& subject,
                              const MotionImportOptions& options) {
    std::vector<double> values;
    int64_t width = -1;
    int64_t frames = 0;
    size_t line_start = 0;
    for (int64_t line_number = 1; line_start <= text.size(); ++line_number) {
        size_t line_end = text.find('\n', line_start);
        if (line_end == std::string_view::npos)
            line_end = text.size();
        std::string_view line = text.substr(line_start, line_end - line_start);
        line_start = line_end + 1;
        const auto hash = line.find('#');
        if (hash != std::string_view::npos)
            line = line.substr(0, hash);
        const std::string where = "line " + std::to_string(line_number);
        int64_t count = 0;
        size_t pos = 0;
        while (true) {
            while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos])))
                ++pos;
            if (pos == line.size())
                break;
            size_t end = pos;
            while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end])))
                ++end;
            double value = 0;
            const auto token = line.substr(pos, end - pos);
            check(parse_double(token, value), subject,
                  where + ": '" + std::string(token.substr(0, 32)) + "' is not a number");
            check(std::isfinite(value), subject, where + ": value is not finite");
            values.push_back(value);
            ++count;
            pos = end;
        }
        if (count == 0)
            continue;  // blank or comment line
        if (width < 0)
            width = count;
        check(count == width, subject,
              where + " has " + std::to_string(count) + " values, the first row has " +
                  std::to_string(width));
        ++frames;
    }
    check(frames > 0, subject, "no coefficient rows");
    auto rows = torch::tensor(values, torch::kFloat64).reshape({frames, width});
    return coefficient_motion(rows, subject, options);
}

// ---- files ----------------------------------------------------------------------------------

Motion read_motion(const fs::path& path, const MotionImportOptions& options) {
    const std::string subject = path.string();
    const std::string ext = lower_extension(path);
    if (ext == ".json")
        return parse_motion_json(read_text_file(path), subject);
    if (ext == ".safetensors")
        return motion_from_safetensors(SafetensorsFile::open(path));
    if (ext == ".npy") {
        const auto bytes = read_file(path);
        return parse_coefficients_npy(bytes.data(), bytes.size(), subject, options);
    }
    if (ext == ".txt")
        return parse_coefficients_txt(read_text_file(path), subject, options);
    throw Error(subject, "unknown motion file extension '" + ext +
                             "' (expected .json, .safetensors, .npy or .txt)");
}

void write_motion(const fs::path& path, const Motion& motion) {
    const std::string subject = path.string();
    const std::string ext = lower_extension(path);
    check(ext == ".json" || ext == ".safetensors", subject,
          "motion files are written as .json or .safetensors, not '" + ext + "'");
    validate_motion(motion, subject);
    if (ext == ".json") {
        const std::string text = motion_to_json(motion);
        write_file_atomic(path, text.data(), text.size());
    } else {
        write_motion_safetensors(path, motion);
    }
}

}  // namespace avatar::media
