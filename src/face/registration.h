#pragma once
// Registers the face front end's pieces with the registries: the face_models fixture cases
// (`avatar check-reference`), one registration function per model family.

namespace avatar::face {

// face-api nets (src/face/faceapi/registration.cpp).
void register_faceapi();
// human / MediaPipe graph models and the identity pairs case (src/face/human/registration.cpp).
void register_human();
// `avatar bench face.track`: the tracker end to end (src/face/tracker_benchmarks.cpp).
void register_tracker_benchmarks();
// `avatar bench face.fit`: the face model fit on real tracked points
// (src/face/face_fit_benchmarks.cpp).
void register_face_fit_benchmarks();

}  // namespace avatar::face
