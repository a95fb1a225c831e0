#pragma once
// Starting a DPE generator with more motion directions from a trained one with fewer, so that a
// trained model can be given a wider motion code without a retrain from scratch.
#include "core/safetensors.h"
#include "engines/dpe/generator.h"

namespace avatar::engines::dpe {

// Loads the DPE generator file `file` into `g`, whose architecture must be the file's, or the
// file's with more motion directions (config().motion_dim). The directions the file lacks start
// silent: their rows of the last `mlp` layer (the one that gives alpha) are zero, so alpha is zero
// along them and `g` renders what the file renders. The file's directions keep their basis
// vectors: the first k columns of a Householder QR depend only on the first k columns of the
// matrix. The new columns of dir.weight keep g's own random values, so the basis stays full rank
// and the new directions are free to learn. Throws, naming the file, for any other architecture.
void load_widening_motion(Generator& g, const SafetensorsFile& file);

}  // namespace avatar::engines::dpe
