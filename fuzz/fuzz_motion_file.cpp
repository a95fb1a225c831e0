// libFuzzer target: the motion-file parsers. The first byte picks the parser (JSON motion file,
// NumPy .npy coefficients, .txt coefficients, safetensors motion file); the rest is its input.
// A motion that parses must also write back to JSON and parse again to the same frame count:
// the writer has to accept everything the readers accept.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "media/motion_file.h"

namespace {

avatar::media::Motion parse(uint8_t selector, const uint8_t* data, size_t size) {
    using namespace avatar::media;
    // Exact-size heap copies, so that AddressSanitizer sees any read past the end.
    std::vector<uint8_t> bytes(data, data + size);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    switch (selector % 4) {
        case 0:
            return parse_motion_json(text, "fuzz.json");
        case 1:
            return parse_coefficients_npy(bytes.data(), bytes.size(), "fuzz.npy");
        case 2:
            return parse_coefficients_txt(text, "fuzz.txt");
        default:
            return motion_from_safetensors(
                avatar::SafetensorsFile::from_bytes(std::move(bytes), "fuzz.safetensors"));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    avatar::media::Motion motion;
    try {
        motion = parse(data[0], data + 1, size - 1);
    } catch (const avatar::Error&) {
        return 0;
    }
    // Accepted: the round trip through JSON must work and keep the content.
    const auto text = avatar::media::motion_to_json(motion);
    const auto again = avatar::media::parse_motion_json(text, "round-trip");
    if (again.frame_count != motion.frame_count ||
        again.channels.size() != motion.channels.size() || !(again.fps == motion.fps) ||
        again.layout != motion.layout) {
        __builtin_trap();
    }
    return 0;
}
