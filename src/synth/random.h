#pragma once
// The synthetic world's own random numbers: splitmix64 (Steele, Lea, Flood 2014) and the few
// distributions it needs, written out so that a seed gives the same numbers with every compiler
// and standard library (std:: distributions are implementation-defined), plus a hashed value
// noise for procedural textures.
#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace avatar::synth {

class Random {
public:
    explicit Random(uint64_t seed) : state_(seed) {}

    uint64_t next_u64() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n), n > 0 (the tiny modulo bias of 64 bits is irrelevant here).
    int64_t index(int64_t n) { return static_cast<int64_t>(next_u64() % static_cast<uint64_t>(n)); }
    bool chance(double p) { return uniform() < p; }
    // Standard normal by Box-Muller (one of the pair; the other is dropped for simplicity).
    double normal() {
        const double u = 1.0 - uniform();  // (0, 1]
        const double v = uniform();
        return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
    }
    // A new independent stream, e.g. one per identity.
    Random split() { return Random(next_u64()); }

private:
    uint64_t state_;
};

// A well-mixed hash of integer coordinates and a seed, as a float in [0, 1).
inline float hash_unit(int64_t x, int64_t y, int64_t z, uint64_t seed) {
    uint64_t h = seed ^ 0x632BE59BD9B4E019ULL;
    for (const int64_t v : {x, y, z}) {
        h ^= static_cast<uint64_t>(v) + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
        h = (h ^ (h >> 31)) * 0x7FB5D329728EA185ULL;
        h = (h ^ (h >> 27)) * 0x81DADEF4BC2DD44DULL;
        h ^= h >> 33;
    }
    return static_cast<float>(h >> 40) * 0x1.0p-24f;
}

// Trilinear value noise in [0, 1) with a smooth (cubic) fade; period-free.
inline float value_noise(float x, float y, float z, uint64_t seed) {
    const float fx = std::floor(x), fy = std::floor(y), fz = std::floor(z);
    const auto ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy),
               iz = static_cast<int64_t>(fz);
    const auto fade = [](float t) { return t * t * (3.0f - 2.0f * t); };
    const float ax = fade(x - fx), ay = fade(y - fy), az = fade(z - fz);
    float c[2][2];
    for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 2; ++k) {
            const float a = hash_unit(ix, iy + j, iz + k, seed);
            const float b = hash_unit(ix + 1, iy + j, iz + k, seed);
            c[j][k] = a + ax * (b - a);
        }
    const float y0 = c[0][0] + ay * (c[1][0] - c[0][0]);
    const float y1 = c[0][1] + ay * (c[1][1] - c[0][1]);
    return y0 + az * (y1 - y0);
}

// Three octaves of value noise, in [0, 1).
inline float fractal_noise(float x, float y, float z, uint64_t seed) {
    return 0.5714286f * value_noise(x, y, z, seed) +
           0.2857143f * value_noise(2.0f * x, 2.0f * y, 2.0f * z, seed + 1) +
           0.1428571f * value_noise(4.0f * x, 4.0f * y, 4.0f * z, seed + 2);
}

}  // namespace avatar::synth
