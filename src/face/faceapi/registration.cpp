#include "face/registration.h"

namespace avatar::face {

void register_faceapi() {}

}  // namespace avatar::face
