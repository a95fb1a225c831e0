#include "synth/motion_generator.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "face/face_model.h"
#include "synth/random.h"

namespace avatar::synth {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180.0;

double smoothstep(double e0, double e1, double x) {
    const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}

// A raised-cosine pulse over [start, start + length], peak 1 in the middle.
double pulse(double t, double start, double length) {
    const double x = (t - start) / length;
    if (x <= 0.0 || x >= 1.0)
        return 0.0;
    const double s = std::sin(kPi * x);
    return s * s;
}

// Smooth random motion: a sum of three sinusoids with random frequencies and phases, scaled to
// peak at about `amplitude`.
struct Wobble {
    double amplitude[3], frequency[3], phase[3];
    Wobble(Random& rng, double amp, double f_lo, double f_hi) {
        for (int k = 0; k < 3; ++k) {
            amplitude[k] = amp * rng.uniform(0.2, 0.5);
            frequency[k] = rng.uniform(f_lo, f_hi);
            phase[k] = rng.uniform(0.0, 2.0 * kPi);
        }
    }
    double operator()(double t) const {
        double v = 0.0;
        for (int k = 0; k < 3; ++k)
            v += amplitude[k] * std::sin(2.0 * kPi * frequency[k] * t + phase[k]);
        return v;
    }
};

struct Syllable {
    double start, length, amplitude;
    int vowel;         // 0 open, 1 spread, 2 round
    bool close_after;  // lips press together after it
    double emphasis;   // brows and nod
};

struct Turn {
    double start, ramp, hold, yaw, pitch;
    double weight(double t) const {
        const double a = smoothstep(start, start + ramp, t);
        const double b = smoothstep(start + ramp + hold, start + 2 * ramp + hold, t);
        return a * (1.0 - b);
    }
};

struct Fixation {
    double start, pitch, yaw;
};

int64_t mode(const std::vector<std::string>& names, const char* name) {
    const auto it = std::find(names.begin(), names.end(), name);
    avatar::check(it != names.end(), "avatar-face-v1", std::string("no expression mode ") + name);
    return it - names.begin();
}

}  // namespace

std::vector<float> generate_motion(uint64_t seed, int64_t frames, const MotionOptions& o) {
    avatar::check(frames >= 0, "motion generator", "frame count must be >= 0");
    avatar::check(o.fps > 0.0 && std::isfinite(o.fps), "motion generator", "fps must be positive");
    avatar::check(o.width > 0 && o.height > 0, "motion generator", "frame size must be positive");
    avatar::check(o.max_yaw_deg >= 0.0 && o.max_yaw_deg <= 90.0 && o.max_pitch_deg >= 0.0 &&
                      o.max_pitch_deg <= 60.0,
                  "motion generator",
                  "max yaw must be in [0, 90] and max pitch in [0, 60] degrees");
    const auto& model = face::face_model();
    const int64_t K = model.identity_count(), E = model.expression_count();
    const int64_t D = face::face_layout_size();
    const auto& names = model.expression_names;
    const int64_t jaw_open = mode(names, "jaw_open"), mouth_close = mode(names, "mouth_close"),
                  smile_l = mode(names, "smile_left"), smile_r = mode(names, "smile_right"),
                  pucker = mode(names, "pucker"), funnel = mode(names, "funnel"),
                  stretch_l = mode(names, "stretch_left"), stretch_r = mode(names, "stretch_right"),
                  lower_lip_down = mode(names, "lower_lip_down"),
                  upper_lip_up = mode(names, "upper_lip_up"), blink_l = mode(names, "blink_left"),
                  blink_r = mode(names, "blink_right"), brow_inner = mode(names, "brow_inner_up"),
                  brow_down_l = mode(names, "brow_down_left"),
                  brow_down_r = mode(names, "brow_down_right"),
                  brow_outer_l = mode(names, "brow_outer_up_left"),
                  brow_outer_r = mode(names, "brow_outer_up_right");

    Random rng(seed ^ 0x5EED0F1107104ULL);
    const double duration = static_cast<double>(frames) / o.fps;

    // Identity.
    std::vector<float> identity(static_cast<size_t>(K));
    for (auto& c : identity)
        c = static_cast<float>(std::clamp(0.4 * rng.normal(), -1.0, 1.0));

    // Speech: alternating pauses and talking stretches made of syllables.
    std::vector<Syllable> syllables;
    std::vector<std::pair<double, double>> talking;
    for (double t = rng.uniform(0.0, 1.0); t < duration;) {
        const double end = t + rng.uniform(2.0, 6.0);
        talking.emplace_back(t, end);
        const double rate = rng.uniform(4.0, 5.0);
        for (double s = t; s < end;) {
            const double length = rng.uniform(0.8, 1.2) / rate;
            syllables.push_back({s, length, rng.uniform(0.15, 0.6), static_cast<int>(rng.index(3)),
                                 rng.chance(0.3), rng.chance(0.15) ? rng.uniform(0.3, 1.0) : 0.0});
            s += length;
        }
        t = end + rng.uniform(0.4, 2.0);
    }
    // Blinks.
    std::vector<double> blinks;
    for (double t = rng.uniform(0.3, 3.0); t < duration; t += rng.uniform(2.0, 6.0))
        blinks.push_back(t);
    // Large turns.
    std::vector<Turn> turns;
    if (o.large_turn_interval > 0.0) {
        for (double t = -std::log(1.0 - rng.uniform()) * o.large_turn_interval; t < duration;) {
            Turn turn{t, rng.uniform(0.6, 1.2), rng.uniform(0.5, 2.5),
                      (rng.chance(0.5) ? 1.0 : -1.0) * rng.uniform(0.3, 1.0) * o.max_yaw_deg,
                      rng.uniform(-1.0, 1.0) * o.max_pitch_deg * 0.8};
            turns.push_back(turn);
            t = turn.start + 2 * turn.ramp + turn.hold -
                std::log(1.0 - rng.uniform()) * o.large_turn_interval;
        }
    }
    // Gaze fixations.
    std::vector<Fixation> fixations;
    for (double t = 0.0; t < duration + 2.0; t += rng.uniform(0.4, 2.0))
        fixations.push_back({t, rng.uniform(-0.15, 0.15), rng.uniform(-0.3, 0.3)});
    // Slow components.
    const Wobble yaw_w(rng, 6.0, 0.05, 0.4), pitch_w(rng, 4.0, 0.05, 0.4),
        roll_w(rng, 3.0, 0.05, 0.3);
    const Wobble tx_w(rng, 0.02 * o.width, 0.02, 0.15), ty_w(rng, 0.02 * o.height, 0.02, 0.15);
    const Wobble scale_w(rng, 0.03, 0.02, 0.1);
    const Wobble brow_w(rng, 0.25, 0.05, 0.3), smile_w(rng, 0.5, 0.02, 0.15),
        frown_w(rng, 0.4, 0.02, 0.1), smile_side_w(rng, 0.1, 0.05, 0.2);
    const double size = std::min(o.width, o.height);
    const double scale0 = size / 256.0 * rng.uniform(5.2, 6.5);
    const double x0 = o.width * (0.5 + rng.uniform(-0.04, 0.04));
    const double y0 = o.height * rng.uniform(0.40, 0.46);
    const double smile_bias = rng.uniform(-0.3, 0.2);

    std::vector<float> rows(static_cast<size_t>(frames * D), 0.0f);
    size_t syllable_first = 0, k = 0;
    for (int64_t f = 0; f < frames; ++f) {
        const double t = static_cast<double>(f) / o.fps;
        float* row = &rows[static_cast<size_t>(f * D)];
        float* ex = row + face::kPoseSize + K;
        float* gaze = ex + E;
        std::copy(identity.begin(), identity.end(), row + face::kPoseSize);

        // Speech.
        while (syllable_first < syllables.size() &&
               syllables[syllable_first].start + syllables[syllable_first].length + 0.2 < t)
            ++syllable_first;
        double jaw = 0, spread = 0, round = 0, close = 0, emphasis = 0, lower = 0;
        for (size_t i = syllable_first; i < syllables.size() && syllables[i].start < t; ++i) {
            const auto& s = syllables[i];
            const double p = pulse(t, s.start, s.length);
            jaw += s.amplitude * p * (s.vowel == 0 ? 1.2 : 0.8);
            spread += s.vowel == 1 ? 0.45 * p : 0.0;
            round += s.vowel == 2 ? 0.6 * p : 0.0;
            lower += s.vowel == 0 ? 0.25 * p : 0.0;
            if (s.close_after)
                close += 0.7 * pulse(t, s.start + 0.75 * s.length, 0.12);
            emphasis += s.emphasis * pulse(t, s.start - 0.1, s.length + 0.4);
        }
        double talk = 0.0;
        for (const auto& [a, b] : talking)
            talk = std::max(talk, smoothstep(a - 0.15, a, t) * (1.0 - smoothstep(b, b + 0.15, t)));
        close += 0.45 * (1.0 - talk);
        ex[jaw_open] = static_cast<float>(jaw);
        ex[mouth_close] = static_cast<float>(close);
        ex[stretch_l] = ex[stretch_r] = static_cast<float>(spread);
        ex[pucker] = static_cast<float>(round);
        ex[funnel] = static_cast<float>(0.5 * round);
        ex[lower_lip_down] = static_cast<float>(lower);
        ex[upper_lip_up] = static_cast<float>(0.3 * spread);
        const double smile = std::max(0.0, smile_w(t) + smile_bias);
        ex[smile_l] = static_cast<float>(smile * (1.0 + smile_side_w(t)));
        ex[smile_r] = static_cast<float>(smile * (1.0 - smile_side_w(t)));

        // Blinks: close in 0.08 s, stay 0.03 s, open in 0.15 s.
        double blink = 0.0;
        for (const double b : blinks)
            blink = std::max(
                blink, smoothstep(b, b + 0.08, t) * (1.0 - smoothstep(b + 0.11, b + 0.26, t)));
        ex[blink_l] = ex[blink_r] = static_cast<float>(blink);

        // Brows.
        const double raise = std::max(0.0, brow_w(t)) + 0.5 * emphasis;
        ex[brow_inner] = static_cast<float>(raise);
        ex[brow_outer_l] = ex[brow_outer_r] = static_cast<float>(0.7 * raise);
        const double frown = std::max(0.0, frown_w(t) - 0.2);
        ex[brow_down_l] = ex[brow_down_r] = static_cast<float>(frown);

        for (int64_t e = 0; e < E; ++e)
            ex[e] = std::clamp(ex[e], 0.0f, 1.0f);

        // Head pose.
        double yaw = yaw_w(t), pitch = pitch_w(t) + 1.5 * jaw, roll = roll_w(t);
        for (const auto& turn : turns) {
            const double w = turn.weight(t);
            yaw += w * turn.yaw;
            pitch += w * turn.pitch;
        }
        yaw = std::clamp(yaw, -o.max_yaw_deg, o.max_yaw_deg);
        pitch = std::clamp(pitch, -o.max_pitch_deg, o.max_pitch_deg);
        row[0] = static_cast<float>(pitch * kDeg);
        row[1] = static_cast<float>(yaw * kDeg);
        row[2] = static_cast<float>(roll * kDeg);
        row[3] = static_cast<float>(x0 + tx_w(t));
        row[4] = static_cast<float>(y0 + ty_w(t));
        row[5] = 0.0f;
        row[6] = static_cast<float>(scale0 * (1.0 + scale_w(t)));

        // Gaze: the last fixation started, reached by a 50 ms saccade from the one before.
        while (k + 1 < fixations.size() && fixations[k + 1].start <= t)
            ++k;
        double gp = fixations[k].pitch, gy = fixations[k].yaw;
        if (k > 0) {
            const double w = smoothstep(fixations[k].start, fixations[k].start + 0.05, t);
            gp = fixations[k - 1].pitch + w * (gp - fixations[k - 1].pitch);
            gy = fixations[k - 1].yaw + w * (gy - fixations[k - 1].yaw);
        }
        gaze[0] = gaze[2] = static_cast<float>(gp);
        gaze[1] = gaze[3] = static_cast<float>(gy);
    }
    return rows;
}

}  // namespace avatar::synth
