#pragma once
// Registers the stylegan2_ada fixture cases that nn/ implements with `avatar check-reference`.

namespace avatar::nn {

void register_stylegan2_reference_cases();

}  // namespace avatar::nn
