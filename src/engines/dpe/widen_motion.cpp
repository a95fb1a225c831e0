#include "engines/dpe/widen_motion.h"

#include <string>

#include "core/error.h"
#include "nn/state_dict.h"

namespace avatar::engines::dpe {

void load_widening_motion(Generator& g, const SafetensorsFile& file) {
    const auto from = DPEConfig::detect_from_weights(file);
    const auto& to = g->config();
    auto widened = from;
    widened.motion_dim = to.motion_dim;
    check(widened.to_json() == to.to_json() && from.motion_dim <= to.motion_dim, file.subject(),
          "has another architecture (" + from.to_json().dump() + ") than the run (" +
              to.to_json().dump() + "); only the number of motion directions may grow");
    if (from.motion_dim == to.motion_dim) {
        nn::load_state(*g, file);
        g->refresh_basis();
        return;
    }
    // The file loaded strictly into its own architecture, then copied across. (Building it draws
    // random initial weights: a widened run is as reproducible as any, but its later random
    // draws, e.g. the discriminator's, differ from those of a run that was not widened.)
    Generator narrow(from);
    nn::load_state(*narrow, file);
    torch::NoGradGuard no_grad;
    const int64_t known = from.motion_dim;
    const auto source = narrow->named_parameters(/*recurse=*/true);
    for (auto& item : g->named_parameters(/*recurse=*/true)) {
        const auto& name = item.key();
        auto& target = item.value();
        const auto& value = source[name];
        if (value.sizes() == target.sizes()) {
            target.copy_(value);
        } else if (name == "dir.weight") {  // [style_dim, motion_dim]: new columns stay random
            target.narrow(1, 0, known).copy_(value);
        } else if (name.rfind("mlp.", 0) == 0) {  // alpha's layer, [motion_dim, ...]: new rows 0
            target.zero_();
            target.narrow(0, 0, known).copy_(value);
        } else {
            throw Error(file.subject(), "tensor '" + name + "' cannot be widened");
        }
    }
    const auto buffers = narrow->named_buffers(/*recurse=*/true);
    for (auto& item : g->named_buffers(/*recurse=*/true))
        item.value().copy_(buffers[item.key()]);
    g->refresh_basis();
}

}  // namespace avatar::engines::dpe
