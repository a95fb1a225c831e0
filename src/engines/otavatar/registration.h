#pragma once
// Registers the OTAvatar engine's pieces: the otavatar_controller fixture cases
// (`avatar check-reference`) and the motion-controller model (`avatar info`).

namespace avatar::engines::otavatar {

void register_otavatar();

}  // namespace avatar::engines::otavatar
