#pragma once
// Talking-head motion for the synthetic world (issue #8): rows in the avatar-face-v1 layout
// (face/face_model.h: pose 7 + identity K + expression E + gaze 4), deterministic from a seed on
// every platform (synth/random.h, no std:: distributions).
//
// What a sequence contains (times in seconds, converted with `fps`):
// - identity: drawn once per sequence (each mode normal with sd 0.4, clamped to [-1, 1]);
// - head: smooth small motion (a few slow sinusoids, about +-6 deg yaw, +-4 pitch, +-3 roll) plus
//   occasional large turns (on average every large_turn_interval s: ease to a target of up to
//   +-max_yaw_deg yaw and +-max_pitch_deg pitch in 0.6-1.2 s, hold 0.5-2.5 s, ease back); scale
//   and translation drift slowly around the frame's centre;
// - speech: talking stretches of 2-6 s separated by pauses of 0.4-2 s; while talking, syllables at
//   4-5 per second, each a raised-cosine jaw_open pulse (0.15-0.6) with a vowel shape (open,
//   spread = stretch, round = pucker/funnel), lips close between some syllables and in pauses;
// - blinks every 2-6 s (close in ~0.08 s, open in ~0.15 s), both eyes;
// - brows raised with emphasis and by slow noise, occasional frowns, slow smiles;
// - gaze: fixations of 0.4-2 s with quick saccades, both eyes together.
#include <cstdint>
#include <vector>

namespace avatar::synth {

struct MotionOptions {
    double fps = 25.0;
    int width = 256;  // frame size the pose is for (translation in pixels, scale in px/cm)
    int height = 256;
    double max_yaw_deg = 60.0;
    double max_pitch_deg = 30.0;
    double large_turn_interval = 8.0;  // mean seconds between large turns; <= 0: none
};

// `frames` rows of face_layout_size() floats, row-major. Throws avatar::Error on bad options.
std::vector<float> generate_motion(uint64_t seed, int64_t frames, const MotionOptions& options);

}  // namespace avatar::synth
