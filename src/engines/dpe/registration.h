#pragma once
// Registers the DPE engine's pieces: the dpe fixture cases (`avatar check-reference`) and the
// generator model (`avatar info`).

namespace avatar::engines::dpe {

void register_dpe();

}  // namespace avatar::engines::dpe
