#pragma once
// Registers the PVP engine's pieces: the pvp fixture cases (`avatar check-reference`) and the
// latent-module model (`avatar info`).

namespace avatar::engines::pvp {

void register_pvp();

}  // namespace avatar::engines::pvp
