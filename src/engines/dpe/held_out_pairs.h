#pragma once
// Held-out pairs of a DPE training run (ours): fixed pairs of the training world that the run
// never trains on, scored with the exported (moving-average) generator at the start and at every
// checkpoint, and written to the run's validation.csv. losses.csv scores each step on that
// step's own few pairs, so its rows jump by more than a checkpoint improves; these scores are
// comparable from row to row and from run to run with the same world. The people may appear in
// training too (the world draws them from the run's seed); synthbench's selection set
// (docs/benchmarks.md) also holds out the people, and remains what models are chosen on.
#include <cstdint>
#include <string>

#include "engines/dpe/generator.h"
#include "train/synthetic_clips.h"

namespace avatar::engines::dpe {

class HeldOutPairs {
public:
    // `pairs` pairs (even, >= 2): half of two frames of one clip, half across identities.
    HeldOutPairs(train::SyntheticClipSampler& sampler, int64_t pairs);

    // The first line of validation.csv (ends with a newline).
    static const char* csv_header();
    // One line of validation.csv for `generator` after `step` steps: for each half, the
    // first edits' flow-point loss, the expression-point loss, what flows that move nothing
    // score on the latter, and the first edits' L1 against their rendered truth (the columns of
    // losses.csv of the same names, docs/training.md). Runs without gradients, in eval mode.
    std::string score(Generator& generator, int64_t step) const;

private:
    train::ClipPairs within_, across_;
};

}  // namespace avatar::engines::dpe
