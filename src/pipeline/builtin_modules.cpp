#include "pipeline/builtin_modules.h"

#include <mutex>

#include "engines/dpe/registration.h"
#include "engines/otavatar/registration.h"
#include "engines/pvp/registration.h"
#include "face/registration.h"
#include "nn/eg3d/registration.h"
#include "nn/stylegan2_registration.h"
#include "pipeline/animation_benchmarks.h"
#include "synth/registration.h"

namespace avatar {

void register_builtin_modules() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Engines and face nets add their registration calls here as they land
        // (e.g. engines::dpe::register_model()).
        nn::register_stylegan2_reference_cases();
        nn::register_stylegan2_model();
        nn::eg3d::register_eg3d();
        engines::pvp::register_pvp();
        engines::otavatar::register_otavatar();
        engines::dpe::register_dpe();
        face::register_faceapi();
        face::register_human();
        face::register_tracker_benchmarks();
        synth::register_synth_benchmarks();
        face::register_face_fit_benchmarks();
        pipeline::register_animation_benchmarks();
    });
}

}  // namespace avatar
