#include "face/registration.h"

namespace avatar::face {

void register_human() {}

}  // namespace avatar::face
