#pragma once
// Motion files: per-frame motion (pose, expression, gaze, landmarks, ...) saved from a driving
// video and replayed later without it. The format is documented in docs/motion-format.md:
// format id "avatar-motion", version 1, in two encodings with the same content, JSON (small,
// human-readable) and safetensors (large; one [N, ...] tensor per channel). Official coefficient
// files (NumPy .npy, whitespace-separated .txt) are read into the same structure.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/safetensors.h"

namespace avatar::media {

inline constexpr const char* kMotionFormatId = "avatar-motion";
inline constexpr int kMotionFormatVersion = 1;

// Frames per second as a rational (30000/1001 stays exact).
struct FrameRate {
    int64_t num = 25;
    int64_t den = 1;
    double value() const { return static_cast<double>(num) / static_cast<double>(den); }
    std::string to_string() const;  // "25" or "30000/1001"
    // Parses "25", "29.97" or "30000/1001"; throws Error(subject, ...) otherwise.
    static FrameRate parse(const std::string& text, const std::string& subject);
    // The simplest fraction within 1e-9 (relative) of `fps`; throws unless finite and > 0.
    static FrameRate from_double(double fps, const std::string& subject);
    bool operator==(const FrameRate& other) const {
        return num * other.den == other.num * den;  // both reduced and positive
    }
};

// Channel names with a fixed meaning. Per-frame shapes (each channel tensor is [N, ...]):
//   pose [7]: rotation (pitch, yaw, roll) in radians, translation (3), scale (1)
//   identity [K], expression [E], coefficients [D] (a whole coefficient row of `layout`)
//   gaze [4], box [4] (x0, y0, x1, y1 in source pixels)
//   landmarks68 [68, 2], landmarks468 [468, 3], iris [10, 2] or [10, 3]
//   face_found [] (bool)
// Known channels other than face_found are float32. Any other name is an extra channel,
// preserved as it is (float32/64, int32/64, uint8 or bool).
namespace channel {
inline constexpr const char* kPose = "pose";
inline constexpr const char* kIdentity = "identity";
inline constexpr const char* kExpression = "expression";
inline constexpr const char* kCoefficients = "coefficients";
inline constexpr const char* kGaze = "gaze";
inline constexpr const char* kBox = "box";
inline constexpr const char* kLandmarks68 = "landmarks68";
inline constexpr const char* kLandmarks468 = "landmarks468";
inline constexpr const char* kIris = "iris";
inline constexpr const char* kFaceFound = "face_found";
}  // namespace channel

struct Motion {
    FrameRate fps;
    int64_t frame_count = 0;
    int64_t image_width = 0;  // source image size in pixels; 0 when unknown
    int64_t image_height = 0;
    // How coefficient channels are to be read: "avatar-face-v1" (the project's face model),
    // "deep3d-257", "otavatar-70", "pirender-73", "deca-53" or "raw".
    std::string layout = "raw";
    std::map<std::string, torch::Tensor> channels;  // name -> [frame_count, ...] CPU tensor
    std::map<std::string, std::string> attributes;  // free-form (source video, tracker, ...)

    bool has(const std::string& name) const { return channels.count(name) > 0; }
};

// Throws Error(subject, ...) unless `motion` obeys the format (shapes, dtypes, frame counts,
// finite values except NaN in frames whose face_found is false, ...). Readers and writers call it.
void validate_motion(const Motion& motion, const std::string& subject);

// Reads a motion file, chosen by extension: .json / .safetensors (this format), .npy / .txt
// (official coefficient rows; see MotionImportOptions). Throws Error naming the path.
struct MotionImportOptions {
    std::string layout;  // empty: guessed from the row width (257 -> deep3d-257, ...; else raw)
    FrameRate fps;       // coefficient files carry no frame rate
};
Motion read_motion(const std::filesystem::path& path, const MotionImportOptions& options = {});

// Writes .json or .safetensors (by extension) atomically. Throws Error naming the path.
void write_motion(const std::filesystem::path& path, const Motion& motion);

// The layout guessed from a coefficient row width.
std::string guess_coefficient_layout(int64_t width);

// Parse-from-bytes entry points (the readers above use them; so do the fuzzers). `subject`
// names the source in errors.
Motion parse_motion_json(std::string_view text, const std::string& subject);
std::string motion_to_json(const Motion& motion);
Motion motion_from_safetensors(const SafetensorsFile& file);
Motion parse_coefficients_npy(const uint8_t* data, size_t size, const std::string& subject,
                              const MotionImportOptions& options = {});
Motion parse_coefficients_txt(std::string_view text, const std::string& subject,
                              const MotionImportOptions& options = {});

}  // namespace avatar::media
