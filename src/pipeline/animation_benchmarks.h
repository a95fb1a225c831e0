#pragma once
// `avatar bench` cases of the animation pipeline (pipeline/portrait_animation.h): the per-frame
// work of `avatar animate` and `avatar edit-video` at the official DPE size, face tracking
// excluded (it has its own face.tracker benchmarks).

namespace avatar::pipeline {

void register_animation_benchmarks();

}  // namespace avatar::pipeline
