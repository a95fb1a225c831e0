#pragma once
// Registers the StyleGAN2 pieces of nn/ with the registries: the stylegan2_ada fixture cases
// (`avatar check-reference`) and the generator model (`avatar info`, engines).

namespace avatar::nn {

void register_stylegan2_reference_cases();

// Registers "stylegan2-ada" (NVlabs layout) with the model registry: detected from shapes.
void register_stylegan2_model();

}  // namespace avatar::nn
