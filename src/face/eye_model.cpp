#include "face/eye_model.h"

#include <algorithm>

#include "core/error.h"
#include "face/face_model.h"

namespace avatar::face {

namespace {

int64_t eye_size_mode() {
    const auto& names = face_model().identity_names;
    const auto it = std::find(names.begin(), names.end(), "eye_size");
    avatar::check(it != names.end(), "eye_model", "the face model has no eye_size mode");
    return it - names.begin();
}

}  // namespace

torch::Tensor eyeball_radii(const torch::Tensor& identity) {
    if (!identity.defined())
        return torch::tensor(kEyeballRadius, torch::kFloat64);
    return kEyeballRadius * (1 + kEyeballSizePerUnit * identity.select(-1, eye_size_mode()));
}

torch::Tensor eyeball_centres(const torch::Tensor& identity) {
    const auto& model = face_model();
    const auto vertices = model.vertices(identity, {});  // [..., 468, 3]
    const auto opts = torch::TensorOptions().dtype(torch::kInt64);
    std::vector<torch::Tensor> centres;
    for (const auto& contour : model.eye_contours) {
        const auto ids = torch::tensor(contour, opts).to(vertices.device());
        centres.push_back(vertices.index_select(-2, ids).mean(-2));  // [..., 3]
    }
    auto c = torch::stack(centres, -2);  // [..., 2, 3]
    const auto back = torch::tensor({0.0, 0.0, -kEyeballDepth}, c.options());
    return c + eyeball_radii(identity).to(c.options()).unsqueeze(-1).unsqueeze(-1) * back;
}

torch::Tensor gaze_directions(const torch::Tensor& gaze) {
    avatar::check(gaze.defined() && gaze.dim() >= 1 && gaze.size(-1) == kGazeSize, "gaze",
                  "gaze must be [..., 4] (left pitch, yaw; right pitch, yaw)");
    auto sizes = gaze.sizes().vec();
    sizes.back() = 2;
    sizes.push_back(2);
    const auto py = gaze.reshape(sizes);  // [..., 2 eyes, (pitch, yaw)]
    const auto p = py.select(-1, 0), y = py.select(-1, 1);
    return torch::stack(
        {torch::sin(y) * torch::cos(p), -torch::sin(p), torch::cos(y) * torch::cos(p)}, -1);
}

torch::Tensor iris_centres(const torch::Tensor& identity, const torch::Tensor& gaze) {
    const auto dirs = gaze_directions(gaze);
    const auto centres = eyeball_centres(identity.defined() ? identity.to(gaze.dtype()) : identity)
                             .to(dirs.options());
    const auto radii =
        eyeball_radii(identity.defined() ? identity.to(gaze.dtype()) : identity).to(dirs.options());
    return centres + radii.unsqueeze(-1).unsqueeze(-1) * dirs;
}

}  // namespace avatar::face
