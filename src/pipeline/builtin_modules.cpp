#include "pipeline/builtin_modules.h"

#include <mutex>

namespace avatar {

void register_builtin_modules() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Engines and face nets add their registration calls here as they land
        // (e.g. nn::register_stylegan2_reference_cases(), engines::dpe::register_model()).
    });
}

}  // namespace avatar
