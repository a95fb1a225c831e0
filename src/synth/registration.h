#pragma once
// Registers the synthetic world's pieces with the registries.

namespace avatar::synth {

// `avatar bench synth.render`: one full head frame (src/synth/synth_benchmarks.cpp).
void register_synth_benchmarks();

}  // namespace avatar::synth
