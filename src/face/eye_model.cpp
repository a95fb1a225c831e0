#include "face/eye_model.h"

#include "core/error.h"
#include "face/face_model.h"

namespace avatar::face {

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
    const auto back = torch::tensor({0.0, 0.0, -kEyeballRadius}, c.options());
    return c + back;
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
    return centres + kEyeballRadius * dirs;
}

}  // namespace avatar::face
