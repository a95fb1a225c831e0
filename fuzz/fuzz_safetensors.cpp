// libFuzzer target: parse a safetensors buffer and read every tensor. Any outcome other than
// success or avatar::Error (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        // An exact-size heap copy, so that AddressSanitizer sees any read past the end.
        const auto file =
            avatar::SafetensorsFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz");
        for (const auto& info : file.tensors()) {
            const auto tensor = file.get(info.name);
            if (tensor.sizes().vec() != info.shape)
                __builtin_trap();
            const auto bytes = static_cast<size_t>(tensor.numel()) * tensor.element_size();
            if (bytes != info.end - info.begin)
                __builtin_trap();
            // Touch every byte here, in instrumented code (LibTorch is not instrumented).
            const auto* p = static_cast<const volatile uint8_t*>(tensor.data_ptr());
            uint8_t acc = 0;
            for (size_t i = 0; i < bytes; ++i)
                acc ^= p[i];
            (void)acc;
        }
        (void)file.data_bytes();
    } catch (const avatar::Error&) {
    }
    return 0;
}
