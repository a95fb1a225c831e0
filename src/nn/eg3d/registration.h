#pragma once
// Registers EG3D's tri-plane generator (nn/eg3d) with the registries: every case of the eg3d
// fixture (`avatar check-reference shared/reference/eg3d`) and the "eg3d" model, detected from
// tensor shapes.

namespace avatar::nn::eg3d {

void register_eg3d();

}  // namespace avatar::nn::eg3d
